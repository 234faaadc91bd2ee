//! The `seesaw_ncc` binary as the watchdog runs it: it refuses a data plane this build lacks, and
//! it serves its API on the run dir's socket, applies a desired state (real traffic flows through
//! the proxy relay, `seesaw_proxy`), reports zero changes when re-sent the same state, and stops
//! on SIGTERM. Relayed connections outlive kill -9 of ncc, and a restarted relay is announced on
//! ncc's `Watch` stream at once.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seesaw_proto::ncc as pb;

fn ncc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seesaw_ncc"))
}

/// `seesaw_proxy` (the relay) for `cfg` and `run`; killed on drop.
fn relay(cfg: &std::path::Path, run: &std::path::Path) -> Killed {
    daemon(Command::new(env!("CARGO_BIN_EXE_seesaw_proxy")), cfg, run)
}

/// `seesaw_ncc` for `cfg` and `run`; killed on drop.
fn start_ncc(cfg: &std::path::Path, run: &std::path::Path) -> Killed {
    daemon(ncc(), cfg, run)
}

/// `cmd` started with config dir `cfg` and run dir `run`, its stderr dropped; killed on drop.
fn daemon(mut cmd: Command, cfg: &std::path::Path, run: &std::path::Path) -> Killed {
    let child = cmd
        .arg("--config-dir")
        .arg(cfg)
        .arg("--run-dir")
        .arg(run)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One NAT service on `address:port` (`proto`, `sched`) forwarding to 127.0.0.1:`backend`.
fn nat_service(
    address: &str,
    port: u16,
    proto: pb::Protocol,
    sched: pb::Scheduler,
    backend: u16,
) -> pb::Service {
    pb::Service {
        address: address.into(),
        protocol: proto as i32,
        port: u32::from(port),
        scheduler: sched as i32,
        mode: pb::ForwardMode::Nat as i32,
        destinations: vec![pb::Destination {
            address: "127.0.0.1".into(),
            port: u32::from(backend),
            weight: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A config dir whose seesaw.cfg picks the proxy plane, and an empty run dir.
fn proxy_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("seesaw.cfg"),
        "[cluster]\nname = x\n[dataplane]\nkind = proxy\n",
    )
    .unwrap();
    (cfg, tempfile::tempdir().unwrap())
}

/// The relay and ncc on the proxy plane in fresh dirs, once ncc's API socket is up: the config
/// and run dirs, the relay, ncc and ncc's socket.
fn proxy_ncc() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    Killed,
    Killed,
    std::path::PathBuf,
) {
    let (cfg, run) = proxy_dirs();
    let relay = relay(cfg.path(), run.path());
    let ncc = start_ncc(cfg.path(), run.path());
    let sock = run.path().join("ncc/ncc.sock");
    wait_for_socket(&sock);
    (cfg, run, relay, ncc, sock)
}

/// A free port on 127.0.0.1 (right now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child killed (SIGKILL) and reaped on drop.
struct Killed(std::process::Child);

impl Killed {
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn wait_for_socket(sock: &std::path::Path) {
    seesaw_lab::wait_until(&sock.display().to_string(), Duration::from_secs(10), || {
        sock.exists()
    })
    .expect("socket");
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
    let (_cfg, _run, _relay, mut ncc_proc, sock) = proxy_ncc();
    let backend_port = hi_backend(3);
    let vip_port = free_port();
    let desired = local_tcp(vip_port, pb::Scheduler::Rr, backend_port);
    let rt = current_thread_runtime();
    let (first, second) = rt.block_on(async {
        let mut client = ncc_client(&sock, Duration::from_secs(5));
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
        nix::unistd::Pid::from_raw(i32::try_from(ncc_proc.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = ncc_proc.0.try_wait().unwrap() {
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

/// A backend on 127.0.0.1 that answers each of its first `connections` with "hi" and closes it.
fn hi_backend(connections: usize) -> u16 {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in backend.incoming().take(connections) {
            let _ = s.unwrap().write_all(b"hi");
        }
    });
    port
}

/// A client of ncc's API on `sock`.
fn ncc_client(
    sock: &std::path::Path,
    timeout: Duration,
) -> pb::ncc_client::NccClient<tonic::transport::Channel> {
    pb::ncc_client::NccClient::new(seesaw_common::uds::channel(sock, timeout))
}

/// A desired state of one TCP NAT service on 127.0.0.1:`port` to 127.0.0.1:`backend`.
fn local_tcp(port: u16, sched: pb::Scheduler, backend: u16) -> pb::DesiredState {
    only(nat_service(
        "127.0.0.1",
        port,
        pb::Protocol::Tcp,
        sched,
        backend,
    ))
}

/// A desired state of just `service`.
fn only(service: pb::Service) -> pb::DesiredState {
    pb::DesiredState {
        services: vec![service],
        ..Default::default()
    }
}

/// A backend that answers every line with "ok\n" on connections it keeps open.
fn line_backend() -> u16 {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in backend.incoming().take(64) {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = std::io::BufReader::new(s);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut r, &mut line).is_ok_and(|n| n > 0) {
                    line.clear();
                    if w.write_all(b"ok\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn ask(s: &mut std::io::BufReader<TcpStream>) -> String {
    s.get_mut().write_all(b"ping\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(s, &mut line).unwrap();
    line
}

fn connect(port: u16) -> std::io::BufReader<TcpStream> {
    connect_to("127.0.0.1", port)
}

/// A connection to `host:port` whose reads give up after 5 s.
fn connect_to(host: &str, port: u16) -> std::io::BufReader<TcpStream> {
    let s = TcpStream::connect((host, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::BufReader::new(s)
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the restart time is reported to the person running the test"
)]
fn relayed_connections_outlive_ncc_and_a_relay_restart_is_announced_at_once() {
    let (cfg, run, mut relay_proc, mut ncc_proc, sock) = proxy_ncc();
    let backend = line_backend();
    let vip_port = free_port();
    let desired = local_tcp(vip_port, pb::Scheduler::Wlc, backend);
    let rt = current_thread_runtime();
    let client = || ncc_client(&sock, Duration::from_secs(5));
    let apply = |d: &pb::DesiredState| {
        rt.block_on(async {
            // A restarted ncc may take a moment to bind its socket.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match client().apply(d.clone()).await {
                    Ok(r) => return r.into_inner().changes,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("apply failed: {e}"),
                }
            }
        })
    };
    assert_eq!(apply(&desired).len(), 2);
    let mut kept = connect(vip_port);
    assert_eq!(ask(&mut kept), "ok\n");

    // kill -9 of ncc: the established connection and new ones keep working.
    ncc_proc.kill9();
    assert_eq!(ask(&mut kept), "ok\n", "the established connection broke");
    assert_eq!(ask(&mut connect(vip_port)), "ok\n");
    // A restarted ncc adopts what the relay holds: the same state changes nothing.
    let _ = std::fs::remove_file(&sock);
    ncc_proc = start_ncc(cfg.path(), run.path());
    wait_for_socket(&sock);
    assert_eq!(
        apply(&desired),
        Vec::<String>::new(),
        "a restarted ncc re-did the relay's work"
    );
    assert_eq!(ask(&mut kept), "ok\n");

    // kill -9 of the relay: ncc's Watch stream sends a new id at once (the engine re-sends on it).
    let (first, second, took) = rt.block_on(async {
        let mut stream = client().watch(pb::Empty {}).await.unwrap().into_inner();
        let first = stream.message().await.unwrap().unwrap().boot_id;
        relay_proc.kill9();
        let killed = Instant::now();
        relay_proc = relay(cfg.path(), run.path());
        let second = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("no new id within 10 s of the relay's restart")
            .unwrap()
            .unwrap()
            .boot_id;
        (first, second, killed.elapsed())
    });
    assert_ne!(first, second);
    eprintln!(
        "relay restart announced {} ms after kill -9",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The restarted relay is empty; the re-sent state fills it.
    assert_eq!(apply(&desired).len(), 2);
    assert_eq!(ask(&mut connect(vip_port)), "ok\n");
    drop(ncc_proc);
}

/// 10,000 TCP vservers apply on the proxy relay within its descriptors (here: the hard limit
/// of the test's environment, 20,000 on the development machine, which one listener per worker
/// per service would exceed with two workers), and a vserver at the start, middle and end
/// serves. 10,001 UDP services are refused before anything is bound, with the reason.
#[test]
fn ten_thousand_vservers_fit_in_the_relay() {
    let cfg = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let _relay = relay(cfg.path(), run.path());
    let sock = run.path().join("proxy/proxy.sock");
    wait_for_socket(&sock);
    let backend = line_backend();
    let port = TcpListener::bind("127.10.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vip = |i: usize| format!("127.10.{}.{}", i / 250, i % 250 + 1);
    let service = |i: usize, proto: pb::Protocol| {
        nat_service(&vip(i), port, proto, pb::Scheduler::Rr, backend)
    };
    let tcp = pb::DesiredState {
        services: (0..10_000).map(|i| service(i, pb::Protocol::Tcp)).collect(),
        ..Default::default()
    };
    let udp = pb::DesiredState {
        services: (0..10_001).map(|i| service(i, pb::Protocol::Udp)).collect(),
        ..Default::default()
    };
    let rt = current_thread_runtime();
    let (added, refused) = rt.block_on(async {
        let mut c = ncc_client(&sock, Duration::from_secs(300));
        let added = c.apply(tcp).await.unwrap().into_inner().changes.len();
        let refused = c.apply(udp).await.unwrap_err();
        (added, refused)
    });
    assert_eq!(added, 20_000, "10,000 services and their destinations");
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");
    assert!(
        refused.message().contains("UDP services need")
            || refused.message().contains("listening sockets"),
        "{}",
        refused.message()
    );
    for i in [0, 5_000, 9_999] {
        assert_eq!(ask(&mut connect_to(&vip(i), port)), "ok\n", "vserver {i}");
    }
}

/// The fence, seen by a client: a unicast VIP's service answers while the lease is renewed,
/// refuses new connections once a lease is not renewed for its length, comes back on the next
/// renewal, and goes at once on a zero lease. An anycast VIP's service is never touched. ncc
/// stopped (SIGSTOP) for longer than the lease does not fence on SIGCONT when renewals were
/// queued meanwhile.
#[test]
fn the_fence_withdraws_unicast_services_when_the_lease_runs_out() {
    let (_cfg, run, _relay, ncc_proc, sock) = proxy_ncc();
    let backend_port = hi_backend(1000);
    let (unicast, anycast) = (free_port(), free_port());
    let to_backend = |address: &str, port: u16| {
        nat_service(
            address,
            port,
            pb::Protocol::Tcp,
            pb::Scheduler::Rr,
            backend_port,
        )
    };
    let desired = pb::DesiredState {
        services: vec![
            to_backend("127.0.0.1", unicast),
            to_backend("127.0.0.2", anycast),
        ],
        vips: vec![
            pb::Vip {
                address: "127.0.0.1".into(),
                kind: pb::VipKind::Unicast as i32,
            },
            pb::Vip {
                address: "127.0.0.2".into(),
                kind: pb::VipKind::Anycast as i32,
            },
        ],
        vips_managed: true,
        ..Default::default()
    };
    let answers = |ip: &str, port: u16| {
        TcpStream::connect((ip, port)).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut got = String::new();
            s.read_to_string(&mut got).is_ok() && got == "hi"
        })
    };
    let rt = current_thread_runtime();
    let guard = rt.enter();
    let mut client = ncc_client(&sock, Duration::from_secs(5));
    drop(guard);
    let lease = |client: &mut pb::ncc_client::NccClient<_>, ms: u32| {
        rt.block_on(lease_once(client, ms)).unwrap().fenced
    };
    rt.block_on(client.apply(desired.clone())).unwrap();
    assert!(answers("127.0.0.1", unicast) && answers("127.0.0.2", anycast));
    // Renewed every 30 ms for 90 ms: serving throughout.
    assert!(!lease(&mut client, 90));
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(30));
        assert!(!lease(&mut client, 90));
    }
    assert!(answers("127.0.0.1", unicast));
    // Not renewed: fenced within the lease (bounded wait), anycast untouched.
    let end = Instant::now() + Duration::from_secs(2);
    while answers("127.0.0.1", unicast) {
        assert!(
            Instant::now() < end,
            "still serving 2 s after a 90 ms lease ran out"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        answers("127.0.0.2", anycast),
        "the anycast service went too"
    );
    // The engine's applies while fenced keep it fenced.
    rt.block_on(client.apply(desired.clone())).unwrap();
    assert!(!answers("127.0.0.1", unicast));
    // A renewal puts it back in one apply.
    assert!(!lease(&mut client, 90_000));
    assert!(answers("127.0.0.1", unicast));
    // A zero lease withdraws at once.
    assert!(lease(&mut client, 0));
    assert!(!answers("127.0.0.1", unicast));
    assert!(!lease(&mut client, 300));
    let fences_before = rt.block_on(lease_once(&mut client, 300)).unwrap().fences;
    assert_eq!(fences_before, 2, "one run-out and one zero lease");
    let fences_before = fences_before + 1; // the datagrams' zero lease below

    // ha's path: datagrams on the lease socket. A renewal holds, a stale one (it waited in the
    // socket past its end) or an older one than the last is ignored, a zero one gives up.
    {
        use seesaw_common::lease::{LeaseMsg, now_us};
        let dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let lease_sock = seesaw_common::paths::ncc_lease_socket(run.path());
        let send = |m: LeaseMsg| {
            dgram.send_to(&m.encode(), &lease_sock).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        };
        send(LeaseMsg {
            sent_at_us: now_us(),
            ttl_ms: 0,
        });
        assert!(!answers("127.0.0.1", unicast), "a zero datagram gives up");
        send(LeaseMsg {
            sent_at_us: now_us() - 10_000_000,
            ttl_ms: 300,
        });
        assert!(
            !answers("127.0.0.1", unicast),
            "a renewal over before it arrived"
        );
        send(LeaseMsg {
            sent_at_us: now_us(),
            ttl_ms: 60_000,
        });
        assert!(answers("127.0.0.1", unicast), "a fresh renewal");
        let fresh = now_us();
        send(LeaseMsg {
            sent_at_us: fresh,
            ttl_ms: 60_000,
        });
        send(LeaseMsg {
            sent_at_us: fresh - 1,
            ttl_ms: 0,
        });
        assert!(
            answers("127.0.0.1", unicast),
            "a give-up older than the last renewal"
        );
    }

    // ncc stopped for 1 s with renewals queued: no fence on SIGCONT.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(ncc_proc.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let renewer = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = ncc_client(&sock, Duration::from_secs(5));
                lease_once(&mut c, 300).await.map(|r| r.fences)
            })
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(
        renewer.join().unwrap().ok(),
        Some(fences_before),
        "ncc fenced when it ran again, though a renewal was queued"
    );
    assert!(answers("127.0.0.1", unicast));
}

/// One lease request on a stream of its own, and its reply.
async fn lease_once(
    client: &mut pb::ncc_client::NccClient<tonic::transport::Channel>,
    ttl_ms: u32,
) -> Result<pb::LeaseReply, tonic::Status> {
    let mut replies = client
        .lease(tokio_stream::once(pb::LeaseRequest { ttl_ms }))
        .await?
        .into_inner();
    replies
        .message()
        .await?
        .ok_or_else(|| tonic::Status::unavailable("the lease stream ended"))
}
