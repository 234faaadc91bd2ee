//! The HTTP surface: read-only JSON under `/v1` and Prometheus metrics under `/metrics`, each
//! request answered from a fresh engine read (the ECU caches nothing, so it never serves stale
//! state after an engine restart).
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/vservers` | `[Vserver]` |
//! | `GET /v1/vservers/{name}` | `Vserver`, 404 if there is none by that exact name |
//! | `GET /v1/ha` | `HaStatus` |
//! | `GET /v1/config` | `ConfigStatus` |
//! | `GET /v1/processes` | `Processes` from the watchdog's status file; 404 without a watchdog |
//! | `GET /metrics` | OpenMetrics when asked for (`Accept: application/openmetrics-text`), else Prometheus text 0.0.4; 200 even when the engine is down (`seesaw_engine_up 0`) |
//!
//! Errors are JSON `{"error": "..."}`: 404 unknown vserver or route, 503 engine unavailable,
//! 502 engine answered with an error.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::engine_view::{EngineView, ViewError};
use crate::metrics::{self, EngineSnapshot};
use crate::processes::{self, ProcessStatusError, Processes};

/// Builds the router over `view`, without process status.
pub fn router<V: EngineView>(view: V) -> Router {
    router_with(view, None)
}

/// Builds the router over `view`; `process_status` is the watchdog's status file, if any.
pub fn router_with<V: EngineView>(view: V, process_status: Option<PathBuf>) -> Router {
    Router::new()
        .route("/v1/vservers", get(list_vservers::<V>))
        .route("/v1/vservers/{name}", get(get_vserver::<V>))
        .route("/v1/ha", get(ha::<V>))
        .route("/v1/config", get(config::<V>))
        .route("/v1/processes", get(list_processes::<V>))
        .route("/metrics", get(scrape::<V>))
        .fallback(not_found)
        .with_state(Arc::new(Monitor {
            view,
            process_status,
        }))
}

/// What the handlers share.
struct Monitor<V> {
    view: V,
    process_status: Option<PathBuf>,
}

impl<V> Monitor<V> {
    /// The watchdog's status, read now; `None` (logged at debug) when there is none to use.
    async fn processes(&self) -> Result<Processes, ProcessStatusError> {
        let Some(path) = self.process_status.clone() else {
            return Err(ProcessStatusError::Missing(PathBuf::from(
                "(no run directory)",
            )));
        };
        // A small file, but still a blocking read: keep it off the async workers.
        tokio::task::spawn_blocking(move || processes::read(&path))
            .await
            .unwrap_or_else(|e| {
                Err(ProcessStatusError::Invalid {
                    path: PathBuf::new(),
                    why: format!("reader task failed: {e}"),
                })
            })
    }
}

/// An API error, rendered as `{"error": "..."}` with its status code.
#[derive(Debug)]
enum ApiError {
    NotFound(String),
    Engine(ViewError),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            Self::NotFound(what) => (StatusCode::NOT_FOUND, what),
            Self::Engine(e @ ViewError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            Self::Engine(e @ ViewError::Rpc { .. }) => (StatusCode::BAD_GATEWAY, e.to_string()),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        Self::Engine(e)
    }
}

type Shared<V> = State<Arc<Monitor<V>>>;

async fn list_vservers<V: EngineView>(State(m): Shared<V>) -> Result<Response, ApiError> {
    Ok(Json(m.view.vservers(String::new()).await?).into_response())
}

async fn list_processes<V: EngineView>(State(m): Shared<V>) -> Result<Response, ApiError> {
    match m.processes().await {
        Ok(p) => Ok(Json(p).into_response()),
        Err(e) => Err(ApiError::NotFound(e.to_string())),
    }
}

async fn get_vserver<V: EngineView>(
    State(m): Shared<V>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    // The engine matches prefixes too; the API promises exactly one name.
    match m.view.vserver_named(name.clone()).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::NotFound(format!("no vserver named {name:?}"))),
    }
}

async fn ha<V: EngineView>(State(m): Shared<V>) -> Result<Response, ApiError> {
    Ok(Json(m.view.ha_status().await?).into_response())
}

async fn config<V: EngineView>(State(m): Shared<V>) -> Result<Response, ApiError> {
    Ok(Json(m.view.config_status().await?).into_response())
}

async fn scrape<V: EngineView>(State(m): Shared<V>, headers: HeaderMap) -> Response {
    let view = &m.view;
    // Prometheus asks for OpenMetrics; anything else gets the classic text format.
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (vservers, ha, config, procs) = tokio::join!(
        view.vservers(String::new()),
        view.ha_status(),
        view.config_status(),
        m.processes()
    );
    let procs = match procs {
        Ok(p) => Some(p),
        Err(ProcessStatusError::Missing(_)) => None,
        Err(e) => {
            tracing::debug!(error = %e, "metrics scrape without process status");
            None
        }
    };
    let snapshot = match (vservers, ha, config) {
        (Ok(vservers), Ok(ha), Ok(config)) => Ok(EngineSnapshot {
            vservers,
            ha,
            config,
        }),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::debug!(error = %e, "metrics scrape without engine data");
            Err(e)
        }
    };
    if openmetrics {
        (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::encode(&snapshot, procs.as_ref()),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, metrics::TEXT_CONTENT_TYPE)],
            metrics::encode_text(&snapshot, procs.as_ref()),
        )
            .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

#[cfg(test)]
mod tests;
