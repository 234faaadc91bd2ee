//! Component test: the real `run` with the gRPC link, against a tiny fake tonic Engine server on a
//! temp-dir Unix socket, probing real TCP and HTTP servers on 127.0.0.1. Covers a server going away
//! and an engine restart (the new engine gets a full resync). Runs on real time with short
//! intervals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_common::uds;
use seesaw_healthcheck::Options;
use seesaw_healthcheck::engine_link::GrpcEngineLink;
use seesaw_proto::engine as pb;
use seesaw_proto::engine_stubs::engine_server::{Engine, EngineServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The engine's side of the healthcheck API; every other RPC is unimplemented.
#[derive(Default)]
struct FakeEngine {
    checks: Vec<pb::Check>,
    /// Latest result per id (a full batch replaces everything).
    view: BTreeMap<u64, pb::HealthResult>,
    full_batches: usize,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<FakeEngine>>);

impl Shared {
    fn view(&self) -> BTreeMap<u64, (bool, String)> {
        let st = self.0.lock().unwrap();
        st.view
            .iter()
            .map(|(id, r)| (*id, (r.healthy, r.message.clone())))
            .collect()
    }
}

#[tonic::async_trait]
impl Engine for Shared {
    async fn healthchecks(&self, _: Request<pb::Empty>) -> Result<Response<pb::Checks>, Status> {
        let checks = self.0.lock().unwrap().checks.clone();
        Ok(Response::new(pb::Checks { checks }))
    }
    async fn health_state(
        &self,
        req: Request<pb::HealthBatch>,
    ) -> Result<Response<pb::Empty>, Status> {
        let batch = req.into_inner();
        let mut st = self.0.lock().unwrap();
        if batch.full {
            st.view.clear();
            st.full_batches += 1;
        }
        for r in batch.results {
            st.view.insert(r.id, r);
        }
        Ok(Response::new(pb::Empty {}))
    }
}

/// Serves `engine` on the engine socket under `run_dir` until the returned token is cancelled.
fn serve_engine(run_dir: &Path, engine: Shared) -> (CancellationToken, JoinHandle<()>) {
    let listener = uds::bind_exclusive(&seesaw_common::paths::engine_socket(run_dir)).unwrap();
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(EngineServer::new(engine))
            .serve_with_incoming_shutdown(uds::incoming(listener), stop2.cancelled_owned())
            .await
            .unwrap();
    });
    (stop, task)
}

/// Accepts TCP connections (and drops them) until aborted.
async fn tcp_server() -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    (addr, task)
}

/// Answers every HTTP request with 200 and body `ok`.
async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    addr
}

fn check(id: u64, kind: pb::CheckKind, addr: SocketAddr) -> pb::Check {
    pb::Check {
        id,
        kind: kind as i32,
        target: addr.ip().to_string(),
        port: u32::from(addr.port()),
        interval_ms: 200,
        timeout_ms: 1000,
        rise: 1,
        retries: 0,
        receive: if kind == pb::CheckKind::Http {
            "ok".into()
        } else {
            String::new()
        },
        description: format!("component check {id}"),
        ..Default::default()
    }
}

/// Polls `cond` every 50 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_report_over_grpc_and_survive_an_engine_restart() {
    let run_dir = tempfile::tempdir().unwrap();
    let (tcp_addr, tcp_task) = tcp_server().await;
    let http_addr = http_server().await;
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let checks = vec![
        check(1, pb::CheckKind::Tcp, tcp_addr),
        check(2, pb::CheckKind::Http, http_addr),
        pb::Check {
            mode: "DSR".into(),
            ..check(3, pb::CheckKind::Icmp, tcp_addr)
        },
        check(4, pb::CheckKind::Tcp, closed),
    ];
    let engine = Shared::default();
    engine.0.lock().unwrap().checks = checks.clone();
    let (engine_stop, engine_task) = serve_engine(run_dir.path(), engine.clone());

    let shutdown = CancellationToken::new();
    let opts = Options {
        fetch_interval: Duration::from_millis(300),
        retry_interval: Duration::from_millis(200),
        ..Options::default()
    };
    let hc = tokio::spawn(seesaw_healthcheck::run(
        opts,
        GrpcEngineLink::new(run_dir.path()),
        shutdown.clone(),
    ));

    eventually("every check reported", || engine.view().len() == 4).await;
    let view = engine.view();
    assert!(view[&1].0, "{view:?}");
    assert!(
        view[&2].0 && view[&2].1.starts_with("http 200 in "),
        "{view:?}"
    );
    assert_eq!(
        view[&3],
        (false, "icmp checks cannot run in DSR mode".to_owned())
    );
    assert_eq!(
        view[&4],
        (false, format!("tcp connect {closed}: connection refused"))
    );

    // The TCP server goes away: check 1 turns unhealthy.
    tcp_task.abort();
    let _ = tcp_task.await;
    eventually("check 1 unhealthy", || {
        engine.view().get(&1).is_some_and(|r| !r.0)
    })
    .await;
    assert_eq!(
        engine.view()[&1].1,
        format!("tcp connect {tcp_addr}: connection refused")
    );

    // The engine restarts with no memory; the healthcheck resyncs it in full.
    engine_stop.cancel();
    engine_task.await.unwrap();
    // Down for longer than a fetch interval so the outage is seen; the resync must then come
    // from the refetch, well before the 15 s periodic one (`eventually` gives up after 10 s).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let engine2 = Shared::default();
    engine2.0.lock().unwrap().checks = checks;
    let (engine2_stop, engine2_task) = serve_engine(run_dir.path(), engine2.clone());
    eventually("full resync to the new engine", || {
        engine2.0.lock().unwrap().full_batches > 0 && engine2.view().len() == 4
    })
    .await;
    let view = engine2.view();
    assert!(
        !view[&1].0 && view[&2].0 && !view[&3].0 && !view[&4].0,
        "{view:?}"
    );

    shutdown.cancel();
    hc.await.unwrap();
    engine2_stop.cancel();
    engine2_task.await.unwrap();
}
