//! Two engine binaries as a pair on loopback (127.0.0.1 and 127.0.0.2): the backup mirrors the
//! master's overrides, a `failover` asked on the backup reaches the master, the backup can take its
//! config from the peer, and a host that is not the peer is refused by the sync API.

mod support;

use std::future::Future;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use seesaw_proto::engine as pb;
use support::{Engine, free_port, report_ha};

/// One vserver on the nodes of this test.
static CLUSTER: LazyLock<String> = LazyLock::new(|| support::cluster(&["127.0.0.1", "127.0.0.2"]));

fn start(dir: &Path, name: &str, node: &str, peer: &str, sync_port: u16, cluster: &str) -> Engine {
    let config = dir.join(name).join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("seesaw.cfg"),
        format!(
            "[cluster]\nname = pair\nnode_ipv4 = {node}\npeer_ipv4 = {peer}\n\
             [engine]\nsync_port = {sync_port}\n[dataplane]\nkind = proxy\n"
        ),
    )
    .unwrap();
    std::fs::write(config.join("cluster.pb"), cluster).unwrap();
    Engine::with_fake_ncc(&config, &dir.join(name).join("run"))
}

type Client = pb::engine_client::EngineClient<tonic::transport::Channel>;

/// Sets vserver `web`'s override to `state`, as a trusted proxy (the ECU) for `on_behalf_of`.
async fn override_web(
    c: &mut Client,
    state: pb::OverrideState,
    on_behalf_of: &str,
) -> Result<tonic::Response<pb::OverrideReply>, tonic::Status> {
    c.override_vserver(pb::OverrideRequest {
        target: "web".into(),
        state: state as i32,
        acting_user: String::new(),
        on_behalf_of: on_behalf_of.into(),
    })
    .await
}

/// The engine's overrides.
async fn overrides(mut c: Client) -> Vec<pb::Override> {
    c.overrides(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .overrides
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_mirrors_overrides_and_relays_failover() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let e1 = start(dir.path(), "n1", "127.0.0.1", "127.0.0.2", port, &CLUSTER);
    let e2 = start(
        dir.path(),
        "n2",
        "127.0.0.2",
        "127.0.0.1",
        port,
        &CLUSTER.replace("port: 80", "port: 81"),
    );
    let (mut c1, mut c2) = (e1.client(), e2.client());
    assert!(!report_ha(&mut c1, "LEADER").await);
    assert!(!report_ha(&mut c2, "BACKUP").await);
    // Stand in for both ha processes, which report every second (a report older than 3 s no
    // longer counts); remember whether the master was ever told to hand over.
    let told = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut ha1, mut ha2, told1) = (c1.clone(), c2.clone(), told.clone());
    let reporter = tokio::spawn(async move {
        loop {
            if report_ha(&mut ha1, "LEADER").await {
                told1.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            report_ha(&mut ha2, "BACKUP").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // An override on the master appears on the backup. Set as a trusted proxy (the ECU does this)
    // on behalf of an end user it authorised: recorded as that user's.
    override_web(&mut c1, pb::OverrideState::OverrideDisabled, "alice")
        .await
        .unwrap();
    let set_by = overrides(c1.clone())
        .await
        .into_iter()
        .map(|o| o.set_by)
        .collect::<Vec<_>>();
    assert!(
        set_by.len() == 1 && set_by[0].starts_with("alice (via "),
        "{set_by:?}"
    );
    // A name that would forge log lines is refused, and nothing changes.
    let bad = override_web(&mut c1, pb::OverrideState::OverrideEnabled, "alice\nroot")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let mut c2b = c2.clone();
    wait_for(
        "the backup to mirror the override",
        Duration::from_secs(6),
        || {
            let c = c2b.clone();
            async move {
                let o = overrides(c).await;
                o.len() == 1
                    && o[0].target == "web"
                    && o[0].state == pb::OverrideState::OverrideDisabled as i32
            }
        },
    )
    .await;
    let v = support::vservers(&mut c2b, "web").await;
    assert!(
        !v[0].enabled,
        "the mirrored override takes effect on the backup"
    );

    // Back to default on the master: the backup follows.
    override_web(&mut c1, pb::OverrideState::OverrideDefault, "")
        .await
        .unwrap();
    wait_for(
        "the backup to drop the override",
        Duration::from_secs(6),
        || {
            let c = c2b.clone();
            async move { overrides(c).await.is_empty() }
        },
    )
    .await;

    // `failover` on the backup is relayed: the master's next HA report is answered "fail over".
    let r = c2.failover(pb::Empty {}).await.unwrap().into_inner();
    assert!(r.message.contains("relayed to the master"), "{}", r.message);
    wait_for(
        "the master to be told to hand over",
        Duration::from_secs(3),
        || {
            let told = told.clone();
            async move { told.load(std::sync::atomic::Ordering::SeqCst) }
        },
    )
    .await;

    // Config source peer: the backup takes the master's cluster.pb (port 80, not its own 81).
    c2.config_source(pb::ConfigSourceRequest {
        source: "peer".into(),
    })
    .await
    .unwrap();
    wait_for(
        "the backup to load the peer's config",
        Duration::from_secs(6),
        || {
            let mut c = c2b.clone();
            async move {
                support::vservers(&mut c, "web")
                    .await
                    .first()
                    .is_some_and(|v| v.services.first().is_some_and(|s| s.port == 80))
            }
        },
    )
    .await;
    reporter.abort();
}

#[tokio::test]
async fn a_host_that_is_not_the_peer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The node listens on 127.0.0.3 with peer 127.0.0.4; we connect from 127.0.0.5.
    let _e = start(
        dir.path(),
        "n3",
        "127.0.0.3",
        "127.0.0.4",
        port,
        &CLUSTER.replace("127.0.0.1/8", "127.0.0.3/8"),
    );
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.5:0".parse().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.5:0".parse().unwrap()).unwrap();
        match s
            .connect(format!("127.0.0.3:{port}").parse().unwrap())
            .await
        {
            Ok(st) => break st,
            Err(e) => {
                assert!(Instant::now() < deadline, "sync port never opened: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    drop(sock);
    let mut stream = Some(stream);
    let channel = tonic::transport::Endpoint::from_static("http://sync")
        .connect_with_connector(tower::service_fn(move |_| {
            let s = stream.take();
            async move {
                s.map(hyper_util::rt::TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("one connection only"))
            }
        }))
        .await
        .unwrap();
    let err = seesaw_proto::sync::engine_sync_client::EngineSyncClient::new(channel)
        .overrides(seesaw_proto::sync::Empty {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.message().contains("127.0.0.5 is not this node's peer"));
}
