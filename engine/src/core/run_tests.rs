//! The engine's event loop run against fake ncc and ha ports.

use super::*;
use crate::desired::DesiredState;
use crate::machine::{apply_backoff, mark_unapplied, snapshot};
use crate::ncc_port::FakeNcc;
use crate::state::EngineState;

/// The HA config the engine's snapshot gives ha for `loaded` (proxy plane, config from disk).
fn ha_config_of(loaded: Loaded) -> HaConfigView {
    let state = EngineState::new(loaded, SystemTime::now());
    snapshot(
        &state,
        Some(crate::ncc_port::PlaneKind::Proxy),
        Vec::new(),
        ConfigSource::Disk,
        None,
    )
    .ha_config
}

/// ha is told the key files seesaw.cfg names (it reads them itself), "" when there are none.
#[test]
fn the_ha_config_names_the_advert_key_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
    let mut loaded = crate::config::load_dir(&dir).expect("the shipped config loads");
    let c = ha_config_of(loaded.clone());
    assert_eq!(
        (c.auth_key_file.as_str(), c.auth_accept_key_file.as_str()),
        ("", "")
    );
    loaded.settings.ha_auth_key_file = Some("/etc/seesaw/ha.key".into());
    loaded.settings.ha_auth_accept_key_file = Some("/etc/seesaw/ha.key.new".into());
    let c = ha_config_of(loaded);
    assert_eq!(c.auth_key_file, "/etc/seesaw/ha.key");
    assert_eq!(c.auth_accept_key_file, "/etc/seesaw/ha.key.new");
}

/// A service the plane refused is shown as not applied, with the reason, never active;
/// one the plane holds keeps its state.
#[test]
fn services_the_plane_does_not_hold_are_not_applied_never_active() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
    let loaded = crate::config::load_dir(&dir).expect("the shipped config loads");
    let mut state = EngineState::new(loaded, SystemTime::now());
    let (mut views, _) = state.evaluate();
    for s in views
        .iter_mut()
        .flat_map(|v| Arc::make_mut(v).services.iter_mut())
    {
        s.active = true;
    }
    let all: Vec<&crate::state::ServiceView> =
        views.iter().flat_map(|v| v.services.iter()).collect();
    assert!(all.len() >= 2, "the shipped config has several services");
    // The plane confirmed the first service only.
    let first = all[0];
    let applied = DesiredState {
        services: vec![Arc::new(crate::desired::ServiceSpec {
            key: first.key,
            scheduler: first.entry.scheduler,
            mode: first.entry.mode,
            persistence: first.entry.persistence,
            dests: Vec::new(),
            proxy: first.entry.proxy.clone(),
            marks: Vec::new(),
            kernel: crate::desired::KernelOpts::of(&first.entry),
            anchor: None,
        })],
        ..DesiredState::default()
    };
    let held = first.key;
    mark_unapplied(
        &mut views,
        Some(&applied),
        "cannot listen: Too many open files",
    );
    for s in views.iter().flat_map(|v| v.services.iter()) {
        if s.key == held {
            assert!(s.active && s.not_applied.is_none(), "{}", s.key);
        } else {
            assert!(!s.active, "{}", s.key);
            assert_eq!(
                s.not_applied.as_deref(),
                Some("cannot listen: Too many open files")
            );
        }
    }
    // Nothing confirmed yet: every active service is not applied.
    let (mut views, _) = state.evaluate();
    for s in views
        .iter_mut()
        .flat_map(|v| Arc::make_mut(v).services.iter_mut())
    {
        s.active = true;
    }
    mark_unapplied(&mut views, None, "not yet");
    assert!(
        views
            .iter()
            .flat_map(|v| v.services.iter())
            .all(|s| !s.active && s.not_applied.as_deref() == Some("not yet"))
    );
}

#[test]
fn apply_backoff_doubles_to_30_s() {
    let secs: Vec<u64> = (1..=8).map(|n| apply_backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
}

/// The real loop on a copy of the demo config in a temp dir, serving its API on `engine.sock`
/// there, with a fake ncc that refuses every apply until told otherwise.
struct Refusing {
    dir: tempfile::TempDir,
    ncc: FakeNcc,
    shutdown: CancellationToken,
    engine: tokio::task::JoinHandle<Result<(), EngineError>>,
}

impl Refusing {
    fn start() -> Self {
        let etc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/demo");
        let dir = tempfile::tempdir().expect("temp dir");
        for f in ["seesaw.cfg", "cluster.pb"] {
            std::fs::copy(etc.join(f), dir.path().join(f)).expect("copy");
        }
        let loaded = crate::config::load_dir(dir.path()).expect("the demo config loads");
        let listener =
            seesaw_common::uds::bind_exclusive(&dir.path().join("engine.sock")).expect("bind");
        let ncc = FakeNcc::default();
        ncc.set_failing(Some("refused for the test"));
        let shutdown = CancellationToken::new();
        let engine = tokio::spawn(run(
            loaded,
            listener,
            ncc.clone(),
            dir.path().to_owned(),
            shutdown.clone(),
        ));
        Self {
            dir,
            ncc,
            shutdown,
            engine,
        }
    }
}

/// The real loop with the fake ncc: while ncc refuses, the same desired state is retried
/// with backoff (not on every loop turn), and the first apply after ncc heals gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_apply_is_retried_with_backoff() {
    let Refusing {
        dir: _dir,
        ncc,
        shutdown,
        engine,
    } = Refusing::start();
    // Past the start-up gate (3 s without an HA report), then 7 s of refusals: tries at
    // about 3, 4, 6 and 10 s — not one per loop turn (every tick, every second at least).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let tries = ncc.attempts();
    assert!((2..=5).contains(&tries), "{tries} apply attempts in 10 s");
    ncc.set_failing(None);
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(ncc.applies() >= 1, "healed ncc never got the state");
    shutdown.cancel();
    let _ = engine.await;
}

/// The real driver behind the real API, with the fake ncc: an HA report is not answered while
/// ncc refuses the plane it implies — neither by the core nor on the API's fast path — and is
/// answered once ncc holds it; then a repeat is answered at once. An unknown state is refused
/// at the boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_an_ha_report_only_once_ncc_holds_the_plane() {
    use seesaw_proto::engine as pb;
    let Refusing {
        dir,
        ncc,
        shutdown,
        engine,
    } = Refusing::start();
    let sock = dir.path().join("engine.sock");
    let mut c = pb::engine_client::EngineClient::new(seesaw_common::uds::channel(
        &sock,
        Duration::from_secs(60),
    ));
    let report = |state: &str| pb::HaStatus {
        state: state.to_owned(),
        transitions: 1,
        ..pb::HaStatus::default()
    };
    let bad = c.ha_update(report("MASTERISH")).await.expect_err("refused");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    // Past the start-up gate, so the engine programs the plane (and ncc refuses).
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(2), c.ha_update(report("LEADER"))).await;
        assert!(r.is_err(), "answered while ncc refuses the plane: {r:?}");
    }
    ncc.set_failing(None);
    let r = tokio::time::timeout(Duration::from_secs(40), c.ha_update(report("LEADER")))
        .await
        .expect("answered once ncc holds the plane")
        .expect("the report is taken");
    assert!(!r.into_inner().failover);
    assert!(ncc.applies() >= 1);
    // The plane reflects it now: a repeat is answered on the fast path.
    let r = tokio::time::timeout(Duration::from_secs(2), c.ha_update(report("LEADER"))).await;
    assert!(r.is_ok(), "a repeat of a reflected report waited");
    shutdown.cancel();
    let _ = engine.await;
}
