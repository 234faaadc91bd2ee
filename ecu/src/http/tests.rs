//! Router tests with the fake engine, through `tower::ServiceExt::oneshot`: JSON shapes, 404s,
//! the engine being down, and the metrics text.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::router_with;
use crate::engine_view::fake::{self, FakeEngine};
use crate::model::{Attribute, Check, ConfigStatus, Destination, HaStatus, Vserver};

fn vserver(name: &str, port: u32) -> Vserver {
    let be1 = Destination {
        checks: vec![Check {
            name: "HTTP/80".into(),
            id: 7,
            state: "healthy".into(),
            message: "200 OK".into(),
            stats: None,
        }],
        active_conns: 3,
        total_conns: 40,
        bytes_in: 500,
        bytes_out: 6000,
        ..fake::destination("be1.demo.", 2)
    };
    fake::vserver(name, vec![fake::service(port, "wrr", vec![be1])])
}

fn engine() -> FakeEngine {
    let fake = FakeEngine::new();
    fake.set_vservers(vec![vserver("web", 8080), vserver("web2", 8081)]);
    fake.set_ha(HaStatus {
        state: "LEADER".into(),
        since_ms: 1_700_000_000_000,
        transitions: 1,
        adverts_rejected: [("bad_mac".to_owned(), 12), ("replay".to_owned(), 3)].into(),
        last_update_ms: 1_700_000_001_000,
        ..HaStatus::default()
    });
    fake.set_config(ConfigStatus {
        generation: 3,
        last_updated: 1_699_999_000,
        loaded_at_ms: 1_700_000_000_500,
        source: "disk".into(),
        attributes: vec![Attribute {
            name: "owner".into(),
            value: "netops".into(),
        }],
        warnings: vec!["vserver \"old\": no healthchecks".into()],
        reload_failures: 2,
        ..ConfigStatus::default()
    });
    fake
}

async fn get(fake: &FakeEngine, uri: &str) -> (StatusCode, Option<String>, String) {
    get_with(fake, None, uri, None).await
}

/// GET `uri` (with `accept` as its `Accept` header, if any) from the router over `fake` and the
/// watchdog status file `status`: the response's status, content type and body.
async fn get_with(
    fake: &FakeEngine,
    status: Option<std::path::PathBuf>,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let request = request.body(Body::empty()).expect("valid request");
    let response = router_with(fake.clone(), status)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8(body.to_vec()).expect("utf-8 body");
    (status, content_type, body)
}

async fn get_json(fake: &FakeEngine, uri: &str) -> (StatusCode, Value) {
    let (status, content_type, body) = get(fake, uri).await;
    assert_eq!(content_type.as_deref(), Some("application/json"), "{uri}");
    (status, serde_json::from_str(&body).expect("json body"))
}

fn web_json() -> Value {
    json!({
        "name": "web",
        "hostname": "web.demo.",
        "enabled": true,
        "override_state": "",
        "vips": ["127.0.0.1"],
        "warnings": [],
        "services": [{
            "address": "127.0.0.1",
            "protocol": "TCP",
            "port": 8080,
            "scheduler": "wrr",
            "mode": "NAT",
            "healthy": true,
            "active": true,
            "destinations": [{
                "name": "be1",
                "backend": "be1.demo.",
                "address": "127.0.0.2",
                "port": 80,
                "weight": 2,
                "enabled": true,
                "override_state": "",
                "healthy": true,
                "active": true,
                "checks": [{"name": "HTTP/80", "id": 7, "state": "healthy", "message": "200 OK"}],
                "active_conns": 3,
                "total_conns": 40,
                "bytes_in": 500,
                "bytes_out": 6000
            }]
        }]
    })
}

#[tokio::test]
async fn vservers_list_and_one() {
    let fake = engine();
    let (status, body) = get_json(&fake, "/v1/vservers").await;
    assert_eq!(status, StatusCode::OK);
    let list = body.as_array().expect("an array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], web_json());
    assert_eq!(list[1]["name"], "web2");

    // Exact name, although the engine also matches "web2" by prefix.
    let (status, body) = get_json(&fake, "/v1/vservers/web").await;
    assert_eq!((status, body), (StatusCode::OK, web_json()));
}

#[tokio::test]
async fn unknown_vserver_and_route_are_404_json() {
    let fake = engine();
    let (status, body) = get_json(&fake, "/v1/vservers/we").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "no vserver named \"we\""}));
    let (status, body) = get_json(&fake, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn ha_and_config_json() {
    let fake = engine();
    let (status, body) = get_json(&fake, "/v1/ha").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "state": "LEADER",
            "since_ms": 1_700_000_000_000_i64,
            "transitions": 1,
            "adverts_sent": 0,
            "adverts_received": 0,
            "adverts_rejected": { "bad_mac": 12, "replay": 3 },
            "last_update_ms": 1_700_000_001_000_i64
        })
    );
    let (status, body) = get_json(&fake, "/v1/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "generation": 3,
            "last_updated": 1_699_999_000,
            "loaded_at_ms": 1_700_000_000_500_i64,
            "source": "disk",
            "attributes": [{"name": "owner", "value": "netops"}],
            "warnings": ["vserver \"old\": no healthchecks"],
            "last_reload_errors": [],
            "reload_failures": 2
        })
    );
}

#[tokio::test]
async fn engine_down_is_503_for_json_and_engine_up_0_for_metrics() {
    let fake = engine();
    fake.set_unreachable(true);
    for uri in ["/v1/vservers", "/v1/vservers/web", "/v1/ha", "/v1/config"] {
        let (status, body) = get_json(&fake, uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        let error = body["error"].as_str().expect("error string");
        assert!(error.starts_with("engine unavailable"), "{uri}: {error}");
    }
    let (status, _, text) = get(&fake, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\nseesaw_engine_up 0\n"), "{text}");
    assert!(!text.contains("seesaw_destination"), "{text}");

    // Back up: the next request reads fresh state.
    fake.set_unreachable(false);
    let (status, _) = get_json(&fake, "/v1/ha").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_text() {
    let fake = engine();
    let (status, content_type, text) = get(&fake, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // No Accept header: the classic text format.
    assert_eq!(
        content_type.as_deref(),
        Some(crate::metrics::TEXT_CONTENT_TYPE)
    );
    assert!(!text.contains("# EOF"));
    let (_, content_type, text) = get_with(
        &fake,
        None,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,*/*;q=0.1"),
    )
    .await;
    assert_eq!(content_type.as_deref(), Some(crate::metrics::CONTENT_TYPE));
    let svc = r#"vserver="web",service="127.0.0.1:8080/TCP""#;
    let dst = format!(r#"{svc},destination="be1""#);
    let expected = [
        "seesaw_up 1".to_owned(),
        "seesaw_engine_up 1".to_owned(),
        r#"seesaw_ha_state{state="LEADER"} 1"#.to_owned(),
        r#"seesaw_ha_state{state="BACKUP"} 0"#.to_owned(),
        "seesaw_config_generation 3".to_owned(),
        "seesaw_config_reload_failures_total 2".to_owned(),
        format!("seesaw_service_healthy{{{svc}}} 1"),
        format!("seesaw_destination_healthy{{{dst}}} 1"),
        format!("seesaw_destination_weight{{{dst}}} 2"),
        format!("seesaw_destination_active_connections{{{dst}}} 3"),
        format!("seesaw_destination_connections_total{{{dst}}} 40"),
        format!(r#"seesaw_destination_bytes_total{{{dst},direction="in"}} 500"#),
        format!(r#"seesaw_destination_bytes_total{{{dst},direction="out"}} 6000"#),
        r#"seesaw_check_healthy{vserver="web",destination="be1",check="HTTP/80"} 1"#.to_owned(),
        r#"seesaw_vserver_enabled{vserver="web"} 1"#.to_owned(),
        "seesaw_ha_transitions_total 1".to_owned(),
        r#"seesaw_ha_adverts_rejected_total{reason="bad_mac"} 12"#.to_owned(),
        r#"seesaw_ha_adverts_rejected_total{reason="replay"} 3"#.to_owned(),
        "# TYPE seesaw_ha_adverts_rejected counter".to_owned(),
    ];
    let lines = lines_with(&text, &expected);
    // One-hot: exactly one HA state is 1.
    let hot = lines
        .iter()
        .filter(|l| l.starts_with("seesaw_ha_state{") && l.ends_with(" 1"))
        .count();
    assert_eq!(hot, 1);
    assert_eq!(lines.last(), Some(&"# EOF"));
}

/// A check with probe statistics: 7 passed, 2 failed; latencies 0.4 ms ×5, 3 ms ×3, 7 s ×1.
fn stats() -> crate::model::CheckStats {
    crate::model::CheckStats {
        successes: 7,
        failures: 2,
        last_latency_us: 2_900,
        latency_sum_us: 5 * 400 + 3 * 3_000 + 7_000_000,
        latency_bounds_us: vec![1_000, 5_000, 5_000_000],
        latency_counts: vec![5, 3, 0, 1],
    }
}

/// The engine of `engine()` whose check reports `stats()`, served with a watchdog status file.
fn engine_with_stats() -> FakeEngine {
    let fake = engine();
    let mut v = vserver("web", 8080);
    v.services[0].destinations[0].checks[0].stats = Some(stats());
    // The same check under a second service of the vserver: reported once per destination.
    let mut second = v.services[0].clone();
    second.port = 8443;
    v.services.push(second);
    fake.set_vservers(vec![v]);
    fake
}

fn status_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("status.json");
    let me = std::process::id();
    std::fs::write(
        &path,
        format!(
            r#"{{"version":1,"watchdog_pid":{me},"written_at_ms":1700000000000,"services":[
              {{"name":"ncc","pid":{me},"running":true,"ready":true,"restarts":0,"failures":0,"since_ms":1700000000000}},
              {{"name":"engine","pid":null,"running":false,"ready":false,"restarts":3,"failures":2,"since_ms":null}}]}}"#
        ),
    )
    .expect("write status");
    path
}

async fn scrape_with(
    fake: &FakeEngine,
    status: Option<std::path::PathBuf>,
    accept: &str,
) -> String {
    get_with(fake, status, "/metrics", Some(accept)).await.2
}

#[tokio::test]
async fn check_latency_results_and_processes_are_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = status_file(dir.path());
    let fake = engine_with_stats();
    let text = scrape_with(&fake, Some(status.clone()), "text/plain").await;
    let chk = r#"vserver="web",destination="be1",check="HTTP/80""#;
    let expected = [
        format!(r#"seesaw_check_probes_total{{{chk},result="success"}} 7"#),
        format!(r#"seesaw_check_probes_total{{{chk},result="failure"}} 2"#),
        format!("seesaw_check_last_duration_seconds{{{chk}}} 0.0029"),
        format!("seesaw_check_duration_seconds_sum{{{chk}}} 7.011"),
        format!("seesaw_check_duration_seconds_count{{{chk}}} 9"),
        // Cumulative buckets.
        format!(r#"seesaw_check_duration_seconds_bucket{{le="0.001",{chk}}} 5"#),
        format!(r#"seesaw_check_duration_seconds_bucket{{le="0.005",{chk}}} 8"#),
        format!(r#"seesaw_check_duration_seconds_bucket{{le="5.0",{chk}}} 8"#),
        format!(r#"seesaw_check_duration_seconds_bucket{{le="+Inf",{chk}}} 9"#),
        "# TYPE seesaw_check_duration_seconds histogram".to_owned(),
        "# TYPE seesaw_process_restarts_total counter".to_owned(),
        r#"seesaw_process_up{process="ncc"} 1"#.to_owned(),
        r#"seesaw_process_up{process="engine"} 0"#.to_owned(),
        r#"seesaw_process_restarts_total{process="engine"} 3"#.to_owned(),
        r#"seesaw_process_restarts_total{process="ncc"} 0"#.to_owned(),
        r#"seesaw_process_start_time_seconds{process="ncc"} 1700000000"#.to_owned(),
    ];
    let lines = lines_with(&text, &expected);
    // Shared by two services of one destination: one series, not a doubled count.
    let counts = lines
        .iter()
        .filter(|l| l.starts_with("seesaw_check_duration_seconds_count{"))
        .count();
    assert_eq!(counts, 1, "{text}");
    assert!(
        !text.contains(r#"seesaw_process_start_time_seconds{process="engine"}"#),
        "a process that is down has no start time:\n{text}"
    );
    promtool_accepts(&text);

    // OpenMetrics renders the same samples.
    let open = scrape_with(&fake, Some(status.clone()), "application/openmetrics-text").await;
    assert!(
        open.contains(r#"seesaw_process_restarts_total{process="engine"} 3"#),
        "{open}"
    );
    assert!(
        open.contains(&format!(
            r#"seesaw_check_duration_seconds_bucket{{le="+Inf",{chk}}} 9"#
        )),
        "{open}"
    );

    // With the engine down the processes are still there: that is when they matter.
    fake.set_unreachable(true);
    let down = scrape_with(&fake, Some(status.clone()), "text/plain").await;
    assert!(down.contains("\nseesaw_engine_up 0\n"), "{down}");
    assert!(
        down.contains(r#"seesaw_process_up{process="engine"} 0"#),
        "{down}"
    );
    assert!(!down.contains("seesaw_check_"), "{down}");

    // No watchdog (no file, or a stale one): no process series, nothing else changes.
    std::fs::remove_file(&status).expect("remove");
    let none = scrape_with(&fake, Some(status), "text/plain").await;
    assert!(!none.contains("seesaw_process_"), "{none}");
}

#[tokio::test]
async fn processes_json_and_404_without_a_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = status_file(dir.path());
    let fake = engine();
    let (code, _, body) = get_with(&fake, Some(status), "/v1/processes", None).await;
    assert_eq!(code, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["services"][1]["name"], "engine");
    assert_eq!(body["services"][1]["restarts"], 3);
    assert_eq!(body["services"][1]["up"], false);
    assert_eq!(body["services"][0]["up"], true);
    let (status, body) = get_json(&fake, "/v1/processes").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn check_stats_appear_in_the_vserver_json() {
    let fake = engine_with_stats();
    let (status, body) = get_json(&fake, "/v1/vservers/web").await;
    assert_eq!(status, StatusCode::OK);
    let check = &body["services"][0]["destinations"][0]["checks"][0];
    assert_eq!(check["stats"]["successes"], 7);
    assert_eq!(check["stats"]["last_latency_us"], 2_900);
    assert_eq!(check["stats"]["latency_counts"], json!([5, 3, 0, 1]));
}

/// `promtool check metrics` when it is installed (Debian `prometheus`); says so when not.
#[allow(clippy::print_stderr, reason = "a skipped check says why")]
fn promtool_accepts(text: &str) {
    if !seesaw_lab::cmd::promtool_accepts(text) {
        eprintln!("SKIP promtool check: promtool not installed (apt-get install prometheus)");
    }
}

/// The lines of `text`, which holds every line of `expected`.
fn lines_with<'t>(text: &'t str, expected: &[String]) -> Vec<&'t str> {
    let lines: Vec<&str> = text.lines().collect();
    for line in expected {
        assert!(
            lines.contains(&line.as_str()),
            "missing {line:?} in\n{text}"
        );
    }
    lines
}
