//! Component test: the real gRPC link and runtime against a scripted engine served by tonic on a
//! Unix socket in a temp dir, the way `seesaw_ha` talks to `seesaw_engine`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_common::{paths, uds};
use seesaw_ha::link::{EngineLink, GrpcEngineLink, HaReport};
use seesaw_ha::node::State;
use seesaw_proto::engine::{self as pb};
use seesaw_proto::engine_stubs::engine_server::{Engine, EngineServer};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Answers `HaConfig` with a fixed config and records every `HaUpdate`; nothing else is scripted.
#[derive(Clone)]
struct ScriptedEngine {
    config: pb::HaConfig,
    updates: Arc<Mutex<Vec<pb::HaStatus>>>,
}

#[tonic::async_trait]
impl Engine for ScriptedEngine {
    async fn ha_config(&self, _: Request<pb::Empty>) -> Result<Response<pb::HaConfig>, Status> {
        Ok(Response::new(self.config.clone()))
    }
    async fn ha_update(
        &self,
        r: Request<pb::HaStatus>,
    ) -> Result<Response<pb::HaUpdateReply>, Status> {
        let mut updates = self.updates.lock().expect("not poisoned");
        updates.push(r.into_inner());
        // Scripted: the second report is answered with a failover request.
        Ok(Response::new(pb::HaUpdateReply {
            failover: updates.len() == 2,
        }))
    }
}

fn serve(run_dir: &Path, engine: ScriptedEngine, stop: CancellationToken) {
    let listener = uds::bind_exclusive(&paths::engine_socket(run_dir)).expect("bind engine socket");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EngineServer::new(engine))
            .serve_with_incoming_shutdown(uds::incoming(listener), stop.cancelled_owned()),
    );
}

/// A scripted engine whose HA config names peer `remote`, served in a new temp run dir: the
/// dir, the engine and the token that stops serving.
fn serve_in_temp_dir(remote: &str) -> (tempfile::TempDir, ScriptedEngine, CancellationToken) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(remote);
    let stop = CancellationToken::new();
    serve(dir.path(), engine.clone(), stop.clone());
    (dir, engine, stop)
}

fn engine(remote: &str) -> ScriptedEngine {
    ScriptedEngine {
        config: pb::HaConfig {
            enabled: true,
            local_addr: "192.0.2.1".into(),
            remote_addr: remote.into(),
            priority: 100,
            vrid: 60,
            advert_interval_ms: 100,
            preempt: false,
            ..Default::default()
        },
        updates: Arc::default(),
    }
}

#[tokio::test]
async fn link_round_trips_config_and_status() {
    let (dir, engine, stop) = serve_in_temp_dir("192.0.2.2");

    let mut link = GrpcEngineLink::new(dir.path(), Duration::from_secs(1));
    let config = link.ha_config().await.expect("config");
    assert_eq!(config.remote_addr.as_deref(), Some("192.0.2.2"));
    assert_eq!((config.priority, config.vrid), (100, 60));
    assert_eq!(config.advert_interval, Duration::from_millis(100));
    assert_eq!(config.auth, seesaw_ha::auth::AuthSetting::Off);
    let mut adverts_rejected = seesaw_ha::advert::Rejections::default();
    adverts_rejected.add(&seesaw_ha::advert::AdvertError::BadMac);
    let report = HaReport {
        state: State::Backup,
        since_ms: 1_700_000_000_000,
        transitions: 1,
        adverts_sent: 0,
        adverts_received: 0,
        adverts_rejected,
    };
    assert!(!link.ha_update(report).await.expect("update"));
    assert!(
        link.ha_update(report).await.expect("update"),
        "failover bit lost"
    );
    let got = engine.updates.lock().expect("not poisoned").clone();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].state.as_str(), got[0].since_ms, got[0].transitions),
        ("BACKUP", 1_700_000_000_000, 1)
    );
    assert_eq!(got[0].adverts_rejected.get("bad_mac"), Some(&1));
    stop.cancel();
}

#[tokio::test]
async fn link_reads_the_key_files_the_engine_names() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("ha.key");
    std::fs::write(&key, [9u8; 32]).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut engine = engine("192.0.2.2");
    engine.config.auth_key_file = key.display().to_string();
    let stop = CancellationToken::new();
    serve(dir.path(), engine.clone(), stop.clone());
    let mut link = GrpcEngineLink::new(dir.path(), Duration::from_secs(1));
    let config = link.ha_config().await.expect("config");
    let want = seesaw_ha::auth::AuthKeys {
        send: seesaw_ha::auth::Key::derive(&[9u8; 32]),
        accept: None,
    };
    assert_eq!(config.auth, seesaw_ha::auth::AuthSetting::Keys(want));
    stop.cancel();
}

#[tokio::test]
async fn single_node_run_reports_leader_then_shutdown() {
    let (dir, engine, stop_engine) = serve_in_temp_dir("");

    let shutdown = CancellationToken::new();
    let link = GrpcEngineLink::new(dir.path(), Duration::from_secs(1));
    let task = tokio::spawn(seesaw_ha::run(
        seesaw_ha::RunConfig::default(),
        link,
        seesaw_ha::transport::RawOpener,
        shutdown.clone(),
    ));
    let states = || -> Vec<String> {
        engine
            .updates
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|u| u.state.clone())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while states().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(states(), ["LEADER"]);
    shutdown.cancel();
    task.await.expect("run does not panic");
    assert_eq!(states(), ["LEADER", "SHUTDOWN"]);
    stop_engine.cancel();
}
