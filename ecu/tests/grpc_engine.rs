//! Component test: the ECU over real sockets, its gRPC view reading a scripted engine served by
//! tonic on a Unix socket in a temp dir, and HTTP requests on a loopback TCP port.

use std::path::Path;
use std::time::Duration;

use seesaw_common::{paths, uds};
use seesaw_ecu::engine_view::GrpcEngineView;
use seesaw_proto::engine::{self as pb};
use seesaw_proto::engine_stubs::engine_server::{Engine, EngineServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Serves one vserver, an HA status and a config status; the writes are not scripted.
struct ScriptedEngine;

fn web() -> pb::VserverStatus {
    pb::VserverStatus {
        name: "web".into(),
        enabled: true,
        vips: vec!["127.0.0.1".into()],
        services: vec![pb::ServiceStatus {
            address: "127.0.0.1".into(),
            protocol: "TCP".into(),
            port: 8080,
            scheduler: "rr".into(),
            mode: "NAT".into(),
            healthy: true,
            active: true,
            destinations: vec![pb::DestinationStatus {
                name: "be1".into(),
                address: "127.0.0.2".into(),
                port: 80,
                weight: 1,
                healthy: true,
                active: true,
                total_conns: 7,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Engine for ScriptedEngine {
    async fn vservers(
        &self,
        r: Request<pb::VserversRequest>,
    ) -> Result<Response<pb::VserversReply>, Status> {
        let name = r.into_inner().name;
        let vservers = [web()]
            .into_iter()
            .filter(|v| v.name.starts_with(&name))
            .collect();
        Ok(Response::new(pb::VserversReply { vservers }))
    }
    async fn ha_status(&self, _: Request<pb::Empty>) -> Result<Response<pb::HaStatus>, Status> {
        Ok(Response::new(pb::HaStatus {
            state: "LEADER".into(),
            since_ms: 1_700_000_000_000,
            transitions: 1,
            ..Default::default()
        }))
    }
    async fn config_status(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::ConfigStatus>, Status> {
        Ok(Response::new(pb::ConfigStatus {
            generation: 5,
            reload_failures: 1,
            ..Default::default()
        }))
    }
}

fn serve_engine(run_dir: &Path, stop: CancellationToken) {
    let listener = uds::bind_exclusive(&paths::engine_socket(run_dir)).expect("bind engine socket");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EngineServer::new(ScriptedEngine))
            .serve_with_incoming_shutdown(uds::incoming(listener), stop.cancelled_owned()),
    );
}

/// A minimal HTTP/1.0 GET: the server closes the connection after the response.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: ecu\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .await
        .expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

#[tokio::test]
async fn serves_engine_state_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let view = GrpcEngineView::new(dir.path(), Duration::from_secs(1));
    let shutdown = CancellationToken::new();
    let ecu = tokio::spawn(seesaw_ecu::run(
        listener,
        view,
        None,
        None,
        shutdown.clone(),
    ));

    // No engine yet: JSON says 503, metrics say the engine is down.
    let (status, body) = http_get(addr, "/v1/ha").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("\nseesaw_engine_up 0\n"), "{body}");

    // The engine comes up: the next requests read it, no restart of the ECU needed.
    let stop_engine = CancellationToken::new();
    serve_engine(dir.path(), stop_engine.clone());
    let (status, body) = http_get(addr, "/v1/vservers/web").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["services"][0]["destinations"][0]["total_conns"], 7);
    assert_eq!(http_get(addr, "/v1/vservers/we").await.0, 404);
    let (_, body) = http_get(addr, "/v1/ha").await;
    assert!(body.contains("\"state\":\"LEADER\""), "{body}");
    let (_, body) = http_get(addr, "/metrics").await;
    for line in [
        "seesaw_up 1",
        "seesaw_config_generation 5",
        "seesaw_config_reload_failures_total 1",
        r#"seesaw_destination_connections_total{vserver="web",service="127.0.0.1:8080/TCP",destination="be1"} 7"#,
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }

    shutdown.cancel();
    ecu.await.expect("no panic").expect("clean stop");
    stop_engine.cancel();
}
