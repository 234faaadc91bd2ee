//! The `seesaw_ncc` binary as the watchdog runs it: it refuses a data plane this build lacks, and
//! it serves its API on the run dir's socket, applies a desired state (real traffic flows through
//! the proxy plane), reports zero changes when re-sent the same state, and stops on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seesaw_proto::ncc as pb;

fn ncc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw_ncc"))
}

#[test]
fn a_missing_data_plane_is_a_config_error_not_a_fallback() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("seesaw.cfg"),
        "[cluster]\nname = x\n[dataplane]\nkind = ipvs\n",
    )
    .unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = ncc()
        .arg("--config-dir")
        .arg(cfg.path())
        .arg("--run-dir")
        .arg(run.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[dataplane] kind = ipvs"));
}

#[test]
fn serves_applies_and_stops_on_sigterm() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("seesaw.cfg"),
        "[cluster]\nname = x\n[dataplane]\nkind = proxy\n",
    )
    .unwrap();
    let run = tempfile::tempdir().unwrap();
    let mut child = ncc()
        .arg("--config-dir")
        .arg(cfg.path())
        .arg("--run-dir")
        .arg(run.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = run.path().join("ncc/ncc.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ncc socket never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A backend that answers "hi" and closes.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in backend.incoming().take(3) {
            let _ = s.unwrap().write_all(b"hi");
        }
    });
    let vip_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let desired = pb::DesiredState {
        services: vec![pb::Service {
            address: "127.0.0.1".into(),
            protocol: pb::Protocol::Tcp as i32,
            port: u32::from(vip_port),
            scheduler: pb::Scheduler::Rr as i32,
            mode: pb::ForwardMode::Nat as i32,
            persistence_s: 0,
            destinations: vec![pb::Destination {
                address: "127.0.0.1".into(),
                port: u32::from(backend_port),
                weight: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first, second) = rt.block_on(async {
        let mut client = pb::ncc_client::NccClient::new(seesaw_common::uds::channel(
            &sock,
            Duration::from_secs(5),
        ));
        let first = client
            .apply(desired.clone())
            .await
            .unwrap()
            .into_inner()
            .changes;
        let second = client.apply(desired).await.unwrap().into_inner().changes;
        (first, second)
    });
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(second.is_empty(), "same state again: {second:?}");

    let mut s = TcpStream::connect(("127.0.0.1", vip_port)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hi");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ncc did not stop within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
