//! What the engine's binary tests share: the engine binary started on a config and run
//! directory (killed on drop), a client on its socket, a free loopback port, a check of a
//! refused config change, and the stand-in ncc (`fake_ncc`).

#![allow(
    dead_code,
    reason = "each test binary uses a part of the support module"
)]

pub(crate) mod fake_ncc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use tonic::transport::Channel;

/// Asserts that the config change `r` answers was refused, with an error containing `needle`.
pub(crate) fn assert_refused(r: &seesaw_proto::engine::ConfigReloadReply, needle: &str) {
    assert!(!r.applied, "{r:?}");
    assert!(
        r.errors.iter().any(|e| e.contains(needle)),
        "no error containing {needle:?}: {:?}",
        r.errors
    );
}

/// The engine binary under test.
pub(crate) fn engine_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw_engine"))
}

/// Starts the engine on `config` and `run` (stderr discarded) and waits for its socket.
pub(crate) fn spawn_engine(config: &Path, run: &Path) -> Child {
    let child = engine_command()
        .arg("--config-dir")
        .arg(config)
        .arg("--run-dir")
        .arg(run)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket(run);
    child
}

/// Waits (10 s at most) for the engine's socket under `run`.
pub(crate) fn wait_for_socket(run: &Path) {
    let sock = socket(run);
    seesaw_lab::wait_until(
        &format!("the engine socket under {}", run.display()),
        Duration::from_secs(10),
        || sock.exists(),
    )
    .expect("engine socket");
}

/// The engine's socket under `run`.
pub(crate) fn socket(run: &Path) -> PathBuf {
    run.join("engine/engine.sock")
}

/// A client on the engine's socket under `run`.
pub(crate) fn client(run: &Path) -> EngineClient<Channel> {
    EngineClient::new(seesaw_common::uds::channel(
        &socket(run),
        Duration::from_secs(30),
    ))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An engine process, killed (and reaped) on drop.
pub(crate) struct Engine {
    pub(crate) child: Child,
    pub(crate) run: PathBuf,
}

impl Engine {
    /// Starts the engine on `config` and `run` with the stand-in ncc beside it (the engine
    /// answers ha only once ncc holds the plane).
    pub(crate) fn with_fake_ncc(config: &Path, run: &Path) -> Self {
        fake_ncc::serve(run);
        Self {
            child: spawn_engine(config, run),
            run: run.to_owned(),
        }
    }

    /// A client on this engine's socket.
    pub(crate) fn client(&self) -> EngineClient<Channel> {
        client(&self.run)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reports `state` as ha does; true if the engine asks this node to hand over (failover).
pub(crate) async fn report_ha(c: &mut EngineClient<Channel>, state: &str) -> bool {
    c.ha_update(seesaw_proto::engine::HaStatus {
        state: state.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .failover
}

/// A cluster.pb with the nodes `n1.`, `n2.`, … at `nodes` and one vserver, "web" (TCP port 80
/// on 127.0.0.20, NAT, RR) with one backend, b1 at 127.0.0.21.
pub(crate) fn cluster(nodes: &[&str]) -> String {
    let nodes: String = nodes
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                "node < fqdn: \"n{}.\" ipv4: \"{ip}/8\" status: PRODUCTION >\n",
                i + 1
            )
        })
        .collect();
    format!(
        r#"
seesaw_vip < fqdn: "v." ipv4: "127.0.0.10/8" status: PRODUCTION >
{nodes}vserver < name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "127.0.0.20/32" >
  vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: RR >
  backend < host < fqdn: "b1." ipv4: "127.0.0.21/32" > >
>
"#
    )
}

/// The vservers the engine reports under `name` (every vserver for "").
pub(crate) async fn vservers(
    c: &mut EngineClient<Channel>,
    name: &str,
) -> Vec<seesaw_proto::engine::VserverStatus> {
    c.vservers(seesaw_proto::engine::VserversRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .vservers
}
