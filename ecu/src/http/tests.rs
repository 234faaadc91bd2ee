//! Router tests with the fake engine, through `tower::ServiceExt::oneshot`: JSON shapes, 404s,
//! the engine being down, and the metrics text.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::router;
use crate::engine_view::fake::FakeEngine;
use crate::model::{Attribute, Check, ConfigStatus, Destination, HaStatus, Service, Vserver};

fn vserver(name: &str, port: u32) -> Vserver {
    Vserver {
        name: name.into(),
        hostname: format!("{name}.demo."),
        enabled: true,
        override_state: String::new(),
        vips: vec!["127.0.0.1".into()],
        warnings: Vec::new(),
        services: vec![Service {
            address: "127.0.0.1".into(),
            protocol: "TCP".into(),
            port,
            scheduler: "wrr".into(),
            mode: "NAT".into(),
            healthy: true,
            active: true,
            destinations: vec![Destination {
                name: "be1".into(),
                backend: "be1.demo.".into(),
                address: "127.0.0.2".into(),
                port: 80,
                weight: 2,
                enabled: true,
                override_state: String::new(),
                healthy: true,
                active: true,
                checks: vec![Check {
                    name: "HTTP/80".into(),
                    id: 7,
                    state: "healthy".into(),
                    message: "200 OK".into(),
                }],
                active_conns: 3,
                total_conns: 40,
                bytes_in: 500,
                bytes_out: 6000,
            }],
        }],
    }
}

fn engine() -> FakeEngine {
    let fake = FakeEngine::new();
    fake.set_vservers(vec![vserver("web", 8080), vserver("web2", 8081)]);
    fake.set_ha(HaStatus {
        state: "LEADER".into(),
        since_ms: 1_700_000_000_000,
        transitions: 1,
        adverts_sent: 0,
        adverts_received: 0,
        last_update_ms: 1_700_000_001_000,
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
        last_reload_errors: Vec::new(),
        reload_failures: 2,
    });
    fake
}

async fn get(fake: &FakeEngine, uri: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("valid request");
    let response = router(fake.clone())
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
    let request = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,*/*;q=0.1",
        )
        .body(Body::empty())
        .expect("valid request");
    let response = router(fake.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some(crate::metrics::CONTENT_TYPE)
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
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
    ];
    let lines: Vec<&str> = text.lines().collect();
    for line in &expected {
        assert!(
            lines.contains(&line.as_str()),
            "missing {line:?} in\n{text}"
        );
    }
    // One-hot: exactly one HA state is 1.
    let hot = lines
        .iter()
        .filter(|l| l.starts_with("seesaw_ha_state{") && l.ends_with(" 1"))
        .count();
    assert_eq!(hot, 1);
    assert_eq!(lines.last(), Some(&"# EOF"));
}
