//! `GET /v1/series` (reader role, like `/v1/vservers`): the dashboard's 15-minute history, and
//! the sampler task that fills it by reading the engine every interval (2 s by default; the
//! ECU's `--series-interval-ms`). The history itself is [`crate::series::Series`], which does no
//! I/O; this module owns the clock and the engine reads.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::series::{Sample, Series};

/// The history the sampler writes and the route reads.
pub type SharedSeries = Arc<Mutex<Series>>;

/// The `/v1/series` route over `state` (for authentication) and `series`; merged into the API
/// router by the caller.
pub fn series_routes<V: EngineView>(state: Arc<ApiState<V>>, series: SharedSeries) -> Router {
    Router::new()
        .route(
            "/v1/series",
            get(move |who: Who| {
                let series = Arc::clone(&series);
                async move {
                    who.require(Role::Reader)?;
                    let view = series.lock().unwrap_or_else(PoisonError::into_inner).view();
                    Ok::<_, ApiError>(Json(view).into_response())
                }
            }),
        )
        .with_state(state)
}

/// Samples `view` into `series` every `interval` until `shutdown`. A read the engine does not
/// answer is skipped (the dashboard shows a gap); the HA state is optional in a sample.
pub async fn sample_engine<V: EngineView>(
    view: V,
    series: SharedSeries,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (vservers, ha) = tokio::join!(view.vservers(String::new()), view.ha_status());
        match vservers {
            Ok(vs) => {
                let sample = Sample::from_model(&vs, ha.ok().as_ref());
                let now_ms = chrono::Utc::now().timestamp_millis();
                series
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(&sample, now_ms);
            }
            Err(e) => tracing::debug!("series sample skipped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;
    use crate::api::tests::send;
    use crate::auth::{User, token_digest};
    use crate::engine_view::fake::{self, FakeEngine};
    use crate::model::Destination;

    const READER: &str = "reader-token-0123456789";

    fn vserver(total_conns: u64) -> Vserver {
        let be1 = Destination {
            active_conns: 1,
            total_conns,
            bytes_in: 10,
            bytes_out: 10,
            ..fake::destination("be1.demo.", 1)
        };
        Vserver {
            name: "web@demo".into(),
            ..fake::vserver("web", vec![fake::service(80, "rr", vec![be1])])
        }
    }

    async fn get_series(app: Router, token: Option<&str>) -> (StatusCode, Value) {
        let (status, bytes) = send(app, "GET", "/v1/series", token, Body::empty()).await;
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    fn points(series: &SharedSeries) -> usize {
        let view = series.lock().unwrap_or_else(PoisonError::into_inner).view();
        view.vservers.first().map_or(0, |v| v.points.t.len())
    }

    /// The sampler fills the history from the engine, skipping reads the engine does not
    /// answer; the route serves it to readers only.
    #[tokio::test]
    async fn the_sampler_fills_what_the_route_serves() {
        let fake = FakeEngine::new();
        fake.set_vservers(vec![vserver(5)]);
        let dir = tempfile::tempdir().expect("temp dir");
        let users = Users::new(vec![User {
            name: "rita".into(),
            role: Role::Reader,
            token_sha256: Some(token_digest(READER)),
            cert_cn: None,
        }]);
        let audit = AuditLog::open(&dir.path().join("audit.log")).expect("audit");
        let state = Arc::new(ApiState::new(fake.clone(), users, audit));
        let interval = Duration::from_millis(10);
        let series: SharedSeries =
            Arc::new(Mutex::new(Series::new(interval, crate::series::WINDOW)));
        let shutdown = CancellationToken::new();
        let sampler = tokio::spawn(sample_engine(
            fake.clone(),
            Arc::clone(&series),
            interval,
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for (total, want) in [(9, 2), (20, 3)] {
            while points(&series) < want {
                assert!(tokio::time::Instant::now() < deadline, "no samples");
                tokio::time::sleep(interval).await;
            }
            fake.set_vservers(vec![vserver(total)]);
        }
        // An unreachable engine: no more points (after a sample already under way).
        fake.set_unreachable(true);
        tokio::time::sleep(interval * 5).await;
        let before = points(&series);
        tokio::time::sleep(interval * 10).await;
        assert_eq!(points(&series), before);
        shutdown.cancel();
        sampler.await.expect("sampler ends on shutdown");

        let app = series_routes(Arc::clone(&state), Arc::clone(&series));
        assert_eq!(
            get_series(app.clone(), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = get_series(app, Some(READER)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let points = &body["vservers"][0]["points"];
        assert_eq!(body["vservers"][0]["name"], "web@demo");
        let n = points["t"].as_array().map_or(0, Vec::len);
        assert!(n >= 3, "{body}");
        assert_eq!(points["conns"], json!(vec![1; n]));
        assert_eq!(points["new_per_s"][0], Value::Null);
        assert_eq!(body["vservers"][0]["backends"][0]["host"], "be1.demo.");
        assert_eq!(body["ha"][0]["state"], "UNKNOWN");
        assert_eq!(body["interval_ms"], 10);
    }
}
