//! Many stateless forwarding nodes on etcd (issue 15), in the namespace lab (root only; skips
//! with a message when etcd, bird or gobgpd is missing — `.ci/run` installs them):
//!
//! `client` → `router` (bird2, ECMP over every node's BGP path, L4 hash) → `lb1..lb3` (the whole
//! suite under its watchdog, nftables plane, config source etcd, GoBGP) → `be1..be4` (DSR: the
//! backends hold the anycast range on `lo` and answer the client directly). A three-member etcd
//! cluster (`etcd1..etcd3`) holds the config. `probe` reaches each node directly (one source
//! address per node, policy-routed), so "serves on node N" is seen from outside.
//!
//! Asserted, in order (the `SCALE-OUT` lines are the figures for bench/RESULTS.md):
//! 1. the three nodes' Maglev table fingerprints for the long-lived mh service are equal;
//! 2. 20 pools created through node 1's API (each drawing its VIP from the `vip_pool` in etcd)
//!    serve through every node within 1 s p99;
//! 3. a backend registered with a 2 s lease serves while renewed; once renewals stop it takes no
//!    new flow on any node;
//! 4. kill -9 of one whole node (every process, and its link down): ≥ 99 % of the long-lived
//!    connections the other two nodes carried continue (DSR + identical Maglev tables: a flow the
//!    router's ECMP moves between the survivors reaches the same backend);
//! 5. the etcd leader killed: a write through node 1 succeeds again after the election, and no
//!    request through the nodes fails meanwhile;
//! 6. all of etcd stopped: every node keeps serving and reports it (`seesaw_config_etcd_up 0`).
#![allow(
    clippy::print_stdout,
    reason = "the figures are the output of this lab"
)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_common::maglev;
use seesaw_lab::{Lab, ProcId, anycast, bins, procs};
use socket2::{Domain, Socket, Type};

const ROUTER: &str = "192.0.2.254";
const CLIENT: &str = "192.0.2.100";
/// Extra client addresses: the DSR mh service hashes the client address, so these spread the
/// long-lived connections over the backends.
const CLIENT_EXTRA: u8 = 15;
const LBS: [(&str, &str); 3] = [
    ("lb1", "192.0.2.10"),
    ("lb2", "192.0.2.11"),
    ("lb3", "192.0.2.12"),
];
/// Probe source addresses: traffic from `PROBES[i]` is routed through `LBS[i]`.
const PROBES: [&str; 3] = ["192.0.2.201", "192.0.2.202", "192.0.2.203"];
const BACKENDS: [(&str, &str); 4] = [
    ("be1", "192.0.2.21"),
    ("be2", "192.0.2.22"),
    ("be3", "192.0.2.23"),
    ("be4", "192.0.2.24"),
];
const ETCDS: [(&str, &str); 3] = [
    ("etcd1", "192.0.2.31"),
    ("etcd2", "192.0.2.32"),
    ("etcd3", "192.0.2.33"),
];
/// The anycast range (Seesaw's default): the long-lived VIP and the pool the API draws from.
const ANYCAST: &str = "192.168.255.0/24";
const LONG_VIP: &str = "192.168.255.200";
const LONG_NAME: &str = "longlived@lab";
const ADMIN: &str = "admin-token-for-the-scale-lab";
const API_PORT: u16 = 8443;
const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";
const EDITS: usize = 20;
/// Long-lived connections held open through the router.
const LONG_CONNS: usize = 96;

fn etcd_endpoints() -> String {
    ETCDS
        .iter()
        .map(|(_, ip)| format!("http://{ip}:2379"))
        .collect::<Vec<_>>()
        .join(",")
}

fn seesaw_cfg(ip: &str) -> String {
    format!(
        "[cluster]\nname = lab\nnode_ipv4 = {ip}\nanycast_enabled = true\n\n\
         [interface]\nnode = eth0\nlb = eth0\n\n[dataplane]\nkind = nftables\n\n\
         [bgp]\ngobgp_api = 127.0.0.1:50051\n\n[ecu]\nlisten = 127.0.0.1:10257\n\n\
         [etcd]\nendpoints = {}\nprefix = /seesaw/scale\ndial_timeout_ms = 500\n",
        etcd_endpoints()
    )
}

fn cluster_pb() -> String {
    let mut s = String::from(
        "seesaw_vip: < fqdn: \"seesaw-vip.lab.\" ipv4: \"192.0.2.1/24\" status: PRODUCTION >\n",
    );
    for (name, ip) in LBS {
        s.push_str(&format!(
            "node: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION >\n"
        ));
    }
    s.push_str(&format!(
        "bgp_local_asn: 64513\nbgp_remote_asn: 64512\n\
         bgp_peer: < fqdn: \"router.lab.\" ipv4: \"{ROUTER}/24\" status: PRODUCTION >\n\
         vip_pool: < name: \"anycast\" cidr: \"192.168.255.0/25\" >\n\
         vserver: <\n  name: \"{LONG_NAME}\"\n  entry_address: < fqdn: \"long.lab.\" ipv4: \"{LONG_VIP}/32\" status: PRODUCTION >\n  rp: \"lab@example.com\"\n  \
         vserver_entry: < protocol: TCP port: 80 scheduler: MH mode: DSR >\n"
    ));
    for (name, ip) in &BACKENDS[..3] {
        s.push_str(&format!(
            "  backend: < host: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION > weight: 1 >\n"
        ));
    }
    s.push_str(">\n");
    s
}

fn run(lab: &Lab, node: &str, cmd: &str, args: &[&str]) -> String {
    lab.stdout_of(node, cmd, args, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The router's next hops for `vip` (empty: no route).
fn next_hops(lab: &Lab, vip: &str) -> Vec<String> {
    anycast::next_hops(lab, "router", vip)
}

/// The node the router's ECMP hash sends this TCP flow to.
fn router_choice(lab: &Lab, src: SocketAddr, dst: SocketAddr) -> Option<String> {
    let (s, d) = (src.ip().to_string(), dst.ip().to_string());
    let (sp, dp) = (src.port().to_string(), dst.port().to_string());
    let out = lab
        .exec(
            "router",
            "ip",
            &[
                "-4", "route", "get", &d, "from", &s, "iif", "eth0", "ipproto", "tcp", "sport",
                &sp, "dport", &dp,
            ],
            &[],
            Duration::from_secs(5),
        )
        .ok()?;
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
}

/// A TCP connection from `src` (port 0: any) to `dst`, connected within `timeout`.
fn connect_from(src: Ipv4Addr, dst: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into())?;
    sock.connect_timeout(&dst.into(), timeout)?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(s)
}

/// One HTTP/1.1 request on `s` (keep-alive); the backend's name from the body.
fn request(s: &mut TcpStream, host: SocketAddr) -> std::io::Result<String> {
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(std::io::Error::other(
                        head.lines().next().unwrap_or("").to_owned(),
                    ));
                }
                return Ok(body.trim().to_owned());
            }
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("response too large"));
        }
    }
}

/// One request on a new connection from `src`; the backend's name.
fn get_from(src: Ipv4Addr, dst: SocketAddr, connect: Duration) -> Result<String, String> {
    let mut s = connect_from(src, dst, connect).map_err(|e| format!("connect: {e}"))?;
    request(&mut s, dst).map_err(|e| e.to_string())
}

/// One HTTPS request to node 1's API (from inside lb1, the server's certificate pinned).
fn api(lab: &Lab, cacert: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let ca = cacert.to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{API_PORT}{path}");
    let auth = format!("Authorization: Bearer {ADMIN}");
    let mut args = vec![
        "-sS",
        "--max-time",
        "5",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--cacert",
        &ca,
        "-H",
        &auth,
    ];
    if !body.is_empty() {
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    args.push(&url);
    let out = lab
        .exec("lb1", "curl", &args, &[], Duration::from_secs(10))
        .expect("curl");
    let text = out.stdout;
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// `seesaw -o json -c CMD` on a node.
fn shell_json(lab: &Lab, node: &str, cmd: &str) -> serde_json::Value {
    let seesaw = bins::binary("seesaw").expect("checked");
    let r = lab
        .run_dir(node)
        .expect("node")
        .to_string_lossy()
        .into_owned();
    let out = lab
        .exec(
            node,
            &seesaw,
            &["--run-dir", &r, "-o", "json", "-c", cmd],
            &[],
            Duration::from_secs(10),
        )
        .expect("shell");
    serde_json::from_str(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Every `table_hash` in a JSON document.
fn table_hashes(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("table_hash", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => table_hashes(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| table_hashes(v, out)),
        _ => {}
    }
}

/// Waits (at most 30 s) until every node shows `want` as the long-lived service's table hash;
/// the hashes seen.
fn wait_hashes(lab: &Lab, want: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    wait_until(Duration::from_secs(30), || {
        hashes = LBS
            .iter()
            .map(|(n, _)| {
                let mut h = Vec::new();
                table_hashes(
                    &shell_json(lab, n, &format!("show vservers {LONG_NAME}")),
                    &mut h,
                );
                h.into_iter().next().unwrap_or_default()
            })
            .collect();
        hashes.iter().all(|h| h == want)
    })
    .unwrap_or_else(|| panic!("the nodes' Maglev tables are {hashes:?}, not all {want}"));
    hashes
}

/// A node's `seesaw_config_etcd_up` from its ECU's metrics (None: not readable).
fn etcd_up(lab: &Lab, node: &str) -> Option<String> {
    let out = lab
        .exec(
            node,
            "curl",
            &["-sS", "--max-time", "3", "http://127.0.0.1:10257/metrics"],
            &[],
            Duration::from_secs(5),
        )
        .ok()?;
    out.stdout
        .lines()
        .find(|l| l.starts_with("seesaw_config_etcd_up"))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_owned)
}

/// Waits (bounded) until `f` holds; returns when.
fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> Option<Instant> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    seesaw_lab::ha_pair::pct(v, p)
}

/// SIGKILLs a process the lab started (the lab reaps it when it is dropped).
fn sigkill(lab: &Lab, id: ProcId) {
    let pid = i32::try_from(lab.pid(id)).expect("a pid");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
}

fn missing_tools() -> Option<String> {
    [
        anycast::GOBGPD,
        anycast::BIRD,
        ETCD,
        ETCDCTL,
        "/usr/bin/curl",
    ]
    .iter()
    .find(|p| !Path::new(p).exists())
    .map(|p| (*p).to_owned())
}

/// The etcd member that leads, as its index in [`ETCDS`].
fn etcd_leader(lab: &Lab) -> Option<usize> {
    let out = lab
        .exec(
            "router",
            ETCDCTL,
            &[
                "--endpoints",
                &etcd_endpoints(),
                "--command-timeout=2s",
                "endpoint",
                "status",
                "-w",
                "json",
            ],
            &[("ETCDCTL_API", "3")],
            Duration::from_secs(5),
        )
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    v.as_array()?.iter().find_map(|e| {
        let st = e.get("Status")?;
        let me = st.get("header")?.get("member_id")?.as_u64()?;
        let leader = st.get("leader")?.as_u64()?;
        let ep = e.get("Endpoint")?.as_str()?;
        (me == leader).then(|| ETCDS.iter().position(|(_, ip)| ep.contains(ip)))?
    })
}

/// Requests through the router to `vips`, a new connection each, every 20 ms until stopped:
/// (total, failed).
fn steady_load(
    lab: &Arc<Lab>,
    vips: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    let lab = Arc::clone(lab);
    std::thread::spawn(move || {
        lab.run_in("client", || {
            let src: Ipv4Addr = CLIENT.parse().expect("literal");
            let (mut total, mut failed) = (0u64, Vec::new());
            // Bounded: at most 10 minutes.
            for i in 0..30_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let t = Instant::now();
                let vip = vips[i % vips.len()];
                total += 1;
                if let Err(e) = get_from(src, vip, Duration::from_secs(2)) {
                    failed.push(format!("{vip}: {e}"));
                }
                std::thread::sleep(Duration::from_millis(20).saturating_sub(t.elapsed()));
            }
            (total, failed)
        })
        .expect("client ns")
    })
}

/// Outcome of one long-lived connection.
#[derive(Debug, Default, Clone)]
struct Held {
    /// The client's end of it.
    local: Option<SocketAddr>,
    /// The node the router sent it to before the kill.
    via: String,
    /// ... and after.
    via_after: String,
    /// Requests answered, before and after the kill.
    ok: u64,
    /// The first error, if any.
    error: Option<String>,
    /// The longest wait for one answer.
    longest: Duration,
    /// When it last got an answer.
    last_ok: Option<Instant>,
}

#[test]
#[allow(clippy::too_many_lines, reason = "one lab, its phases in order")]
fn many_nodes_share_etcd_and_survive_node_and_etcd_faults() {
    if !seesaw_lab::require_root() {
        return;
    }
    if let Some(tool) = missing_tools() {
        println!(
            "SKIP scale-out lab: {tool} is missing (apt-get install etcd-server gobgpd bird2 curl)"
        );
        return;
    }
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    let t_lab = Instant::now();
    let mut client_addrs = vec![format!("{CLIENT}/24")];
    client_addrs.extend((1..=CLIENT_EXTRA).map(|i| format!("192.0.2.{}/24", 100 + i)));
    let client_refs: Vec<&str> = client_addrs.iter().map(String::as_str).collect();
    let probe_addrs: Vec<String> = PROBES.iter().map(|p| format!("{p}/24")).collect();
    let probe_refs: Vec<&str> = probe_addrs.iter().map(String::as_str).collect();
    let mut b = Lab::builder()
        .node("client", &client_refs)
        .route("client", ANYCAST, ROUTER)
        .node("probe", &probe_refs)
        .node("router", &[&format!("{ROUTER}/24")]);
    b = b.hosts(&LBS);
    for (name, ip) in BACKENDS {
        b = b.node(name, &[&format!("{ip}/24")]).loopback(name, ANYCAST);
    }
    let mut lab = b
        .hosts(&ETCDS)
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    anycast::ecmp_router(
        &lab,
        &[
            // L4 hash from the headers (policy 3, fields: addresses, protocol, ports). Policy 1
            // reuses a hash the skb already carries — over veth the client socket's random
            // txhash, which `ip route get` cannot know and a retransmission re-rolls.
            "net.ipv4.fib_multipath_hash_policy=3",
            "net.ipv4.fib_multipath_hash_fields=0x0037",
        ],
    )
    .expect("sysctl");
    // DSR backends: the anycast range is local on lo but never answered for on the wire.
    for (name, _) in BACKENDS {
        for kv in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            lab.sysctl(name, kv).expect("sysctl");
        }
    }
    // The probe reaches node i from PROBES[i].
    for (i, (src, (_, lb))) in PROBES.iter().zip(LBS).enumerate() {
        let table = (101 + i).to_string();
        run(
            &lab,
            "probe",
            "ip",
            &["rule", "add", "from", src, "lookup", &table],
        );
        run(
            &lab,
            "probe",
            "ip",
            &["route", "add", ANYCAST, "via", lb, "table", &table],
        );
    }

    // etcd: three members, fast elections.
    let dir: PathBuf = lab.dir().to_owned();
    let cluster: String = ETCDS
        .iter()
        .map(|(n, ip)| format!("{n}=http://{ip}:2380"))
        .collect::<Vec<_>>()
        .join(",");
    let mut etcd_ids: Vec<ProcId> = Vec::new();
    for (name, ip) in ETCDS {
        let data = dir
            .join(format!("{name}-data"))
            .to_string_lossy()
            .into_owned();
        let (client_url, peer_url) = (format!("http://{ip}:2379"), format!("http://{ip}:2380"));
        let id = lab
            .spawn(
                name,
                ETCD,
                &[
                    "--name",
                    name,
                    "--data-dir",
                    &data,
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "seesaw-scale-lab",
                    "--heartbeat-interval",
                    "50",
                    "--election-timeout",
                    "500",
                ],
                &[],
            )
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        etcd_ids.push(id);
    }
    wait_until(Duration::from_secs(30), || etcd_leader(&lab).is_some())
        .expect("the etcd cluster elected a leader within 30 s");

    anycast::start_bird(&mut lab, "router", ROUTER, &LBS).expect("starting bird");
    let seesaw = bins::binary("seesaw").expect("checked");
    for (name, ip) in BACKENDS {
        let listen = "0.0.0.0:80";
        lab.spawn(
            name,
            &seesaw,
            &["demo-backend", "--listen", listen, "--name", name],
            &[],
        )
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        lab.wait_tcp(
            name,
            format!("{ip}:80").parse().expect("literal"),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{name} listening: {e}"));
    }

    // Node 1 also serves the HTTPS API.
    let (cert, key) = seesaw_ecu::tls::self_signed(&["127.0.0.1"]).expect("certificate");
    let lb1_config = lab.config_dir("lb1").expect("lb1");
    std::fs::create_dir_all(&lb1_config).expect("config dir");
    std::fs::write(lb1_config.join("cert.pem"), cert).expect("cert");
    std::fs::write(lb1_config.join("key.pem"), key).expect("key");
    let ecu_cfg = lb1_config.join("ecu.cfg");
    std::fs::write(
        &ecu_cfg,
        format!(
            "[api]\nlisten = 127.0.0.1:{API_PORT}\ncert = cert.pem\nkey = key.pem\n\n\
             [user alice]\nrole = admin\ntoken = {ADMIN}\n"
        ),
    )
    .expect("ecu.cfg");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ecu_cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let cacert = lb1_config.join("cert.pem");
    let mut run_dirs = Vec::new();
    for (name, ip) in LBS {
        anycast::start_bgp_suite(&mut lab, name, &seesaw_cfg(ip), &cluster_pb())
            .unwrap_or_else(|e| panic!("starting the suite on {name}: {e}"));
        run_dirs.push(lab.run_dir(name).expect("lb"));
    }
    let all_hops: Vec<String> = LBS.iter().map(|(_, ip)| (*ip).to_owned()).collect();
    let t_start = Instant::now();
    let ecmp = wait_until(Duration::from_secs(60), || {
        next_hops(&lab, LONG_VIP) == all_hops
    })
    .unwrap_or_else(|| {
        panic!(
            "no ECMP route over all three nodes: {:?}",
            next_hops(&lab, LONG_VIP)
        )
    });
    println!(
        "SCALE-OUT etcd leader elected, three nodes up, ECMP over all three {:?} after the suites started",
        ecmp - t_start
    );

    // 1. One Maglev table on every node: the one built from the three backends; after an edit
    // through the API removes be3, the one derived from it (stored in etcd with the edit) —
    // also on a node rebuilt afterwards (its nftables flushed, its suite restarted), which
    // a table derived from what each node held before would not give.
    let key_of = |ip: &str| maglev::addr_key(SocketAddr::new(ip.parse().expect("literal"), 80));
    let three: Vec<(u64, u32)> = BACKENDS[..3]
        .iter()
        .map(|(_, ip)| (key_of(ip), 1))
        .collect();
    let built = maglev::Anchor::derive(None, &three);
    let hashes = wait_hashes(&lab, &format!("{:016x}", built.hash()));
    println!("SCALE-OUT Maglev table of {LONG_NAME} on the three nodes: {hashes:?}");
    let (code, reply) = api(
        &lab,
        &cacert,
        "DELETE",
        &format!("/v1/pools/{LONG_NAME}/members/be3.lab."),
        "",
    );
    assert_eq!(code, 200, "remove be3: {reply}");
    let derived = maglev::Anchor::derive(Some(&built), &three[..2]);
    let fresh = maglev::Anchor::derive(None, &three[..2]);
    assert_ne!(
        derived.hash(),
        fresh.hash(),
        "the test needs tables that differ"
    );
    let want = format!("{:016x}", derived.hash());
    wait_hashes(&lab, &want);
    let lb3_suite = procs::pids_with_env(
        "SEESAW_RUN_DIR",
        &lab.run_dir("lb3").expect("lb3").to_string_lossy(),
    );
    for p in &lb3_suite {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    run(&lab, "lb3", "nft", &["flush", "ruleset"]);
    let t_rebuilt = Instant::now();
    lab.spawn_suite("lb3").expect("restarting lb3's suite");
    let hashes = wait_hashes(&lab, &want);
    println!(
        "SCALE-OUT after removing be3 through the API: every node holds the derived table {hashes:?} \
         (a fresh build would be {:016x}), lb3 too after being rebuilt from nothing ({:?})",
        fresh.hash(),
        t_rebuilt.elapsed()
    );
    wait_until(Duration::from_secs(60), || {
        next_hops(&lab, LONG_VIP) == all_hops
    })
    .expect("lb3's path back on the router");

    // 2. Pools created through node 1's API serve through every node.
    let members: String = BACKENDS[..3]
        .iter()
        .map(|(n, ip)| format!("{{\"host\":\"{n}.lab.\",\"ip\":\"{ip}\"}}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut lat = Vec::new();
    let mut per_node: Vec<Vec<Duration>> = Vec::new();
    let mut pool_vips: Vec<SocketAddr> = Vec::new();
    for i in 0..EDITS {
        let body = format!(
            "{{\"name\":\"pool{i}@lab\",\"vip_pool\":\"anycast\",\"services\":[{{\"port\":80,\"scheduler\":\"rr\",\"mode\":\"dsr\"}}],\"members\":[{members}]}}"
        );
        let t0 = Instant::now();
        let (code, reply) = api(&lab, &cacert, "POST", "/v1/pools", &body);
        assert_eq!(code, 200, "create pool{i}: {reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).expect("json reply");
        let ip: IpAddr = v["vip"]
            .as_str()
            .and_then(|s| s.split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no vip in {reply}"));
        let vip = SocketAddr::new(ip, 80);
        pool_vips.push(vip);
        let served: Vec<Duration> = lab
            .run_in("probe", || {
                PROBES
                    .iter()
                    .map(|p| {
                        let src: Ipv4Addr = p.parse().expect("literal");
                        wait_until(Duration::from_secs(10), || {
                            get_from(src, vip, Duration::from_millis(100)).is_ok()
                        })
                        .map(|t| t - t0)
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .expect("probe ns")
            .unwrap_or_else(|| panic!("pool{i} ({vip}) not served through every node in 10 s"));
        per_node.push(served.clone());
        lat.extend(served);
    }
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    println!(
        "SCALE-OUT {EDITS} pools created through lb1's API (VIP drawn from the pool in etcd): serving through each of 3 nodes after p50 {p50:?}, p99 {p99:?}, max {:?}",
        lat.last().copied().unwrap_or_default()
    );
    let mut node_p50 = Vec::new();
    for n in 0..LBS.len() {
        let mut v: Vec<Duration> = per_node.iter().map(|x| x[n]).collect();
        node_p50.push(percentile(&mut v, 0.5));
    }
    println!("SCALE-OUT   p50 by node (probed in order lb1, lb2, lb3): {node_p50:?}");
    assert!(p99 <= Duration::from_secs(1), "p99 {p99:?} over 1 s");
    let mut uniq = pool_vips.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), EDITS, "two pools got one VIP: {pool_vips:?}");

    // 3. A backend on a lease: serves while renewed, takes no new flow once it stops.
    let leased = pool_vips[0];
    let register = || {
        api(
            &lab,
            &cacert,
            "PUT",
            "/v1/pools/pool0@lab/members/be4.lab.",
            &format!("{{\"ip\":\"{}\",\"ttl_s\":2}}", BACKENDS[3].1),
        )
    };
    let (code, reply) = register();
    assert_eq!(code, 200, "register be4: {reply}");
    let names_via = |lab: &Lab, n: usize| -> Vec<Vec<String>> {
        lab.run_in("probe", || {
            PROBES
                .iter()
                .map(|p| {
                    let src: Ipv4Addr = p.parse().expect("literal");
                    (0..n)
                        .filter_map(|_| get_from(src, leased, Duration::from_millis(300)).ok())
                        .collect()
                })
                .collect()
        })
        .expect("probe ns")
    };
    let t_reg = Instant::now();
    let mut renewals = 0;
    let seen = wait_until(Duration::from_secs(10), || {
        if t_reg.elapsed() > Duration::from_secs(renewals + 1) {
            renewals += 1;
            assert_eq!(register().0, 200, "renewal");
        }
        names_via(&lab, 8)
            .iter()
            .all(|v| v.iter().any(|n| n == "be4"))
    })
    .expect("the leased backend served through every node");
    println!(
        "SCALE-OUT be4 registered with a 2 s lease: new flows reach it through all 3 nodes {:?} after registering",
        seen - t_reg
    );
    // A flow on be4 through each node, open while the lease runs out (it should drain: finish,
    // not break).
    let mut on_be4: Vec<TcpStream> = lab
        .run_in("probe", || {
            PROBES
                .iter()
                .filter_map(|p| {
                    let src: Ipv4Addr = p.parse().expect("literal");
                    (0..40).find_map(|_| {
                        let mut s = connect_from(src, leased, Duration::from_millis(300)).ok()?;
                        (request(&mut s, leased).ok()? == "be4").then_some(s)
                    })
                })
                .collect()
        })
        .expect("probe ns");
    assert_eq!(on_be4.len(), 3, "a flow on be4 through every node");
    // The last renewal, then silence.
    assert_eq!(register().0, 200);
    let t_last = Instant::now();
    let gone = wait_until(Duration::from_secs(15), || {
        names_via(&lab, 8)
            .iter()
            .all(|v| v.len() == 8 && !v.iter().any(|n| n == "be4"))
    })
    .expect("be4 still took new flows 15 s after its last renewal");
    println!(
        "SCALE-OUT be4's lease expired: no node sends it a new flow {:?} after its last renewal (TTL 2 s)",
        gone - t_last
    );
    let drained: Vec<String> = on_be4
        .iter_mut()
        .map(|s| request(s, leased).unwrap_or_else(|e| format!("broken: {e}")))
        .collect();
    println!(
        "SCALE-OUT flows open on be4 when its lease expired, one per node, answer: {drained:?}"
    );
    assert!(
        drained.iter().all(|n| n == "be4"),
        "a flow open on the expired backend did not drain: {drained:?}"
    );

    // 4. Long-lived connections; then one whole node dies.
    let long: SocketAddr = format!("{LONG_VIP}:80").parse().expect("literal");
    let srcs: Vec<Ipv4Addr> = (0..=CLIENT_EXTRA)
        .map(|i| Ipv4Addr::new(192, 0, 2, 100 + i))
        .collect();
    let conns: Vec<TcpStream> = lab
        .run_in("client", || {
            (0..LONG_CONNS)
                .map(|i| {
                    let mut s = connect_from(srcs[i % srcs.len()], long, Duration::from_secs(2))
                        .unwrap_or_else(|e| panic!("long-lived connection {i}: {e}"));
                    request(&mut s, long).unwrap_or_else(|e| panic!("first request on {i}: {e}"));
                    s.set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    s
                })
                .collect()
        })
        .expect("client ns");
    let held: Arc<Mutex<Vec<Held>>> = Arc::new(Mutex::new(
        conns
            .iter()
            .map(|s| Held {
                local: s.local_addr().ok(),
                via: router_choice(&lab, s.local_addr().expect("local"), long).unwrap_or_default(),
                ..Held::default()
            })
            .collect(),
    ));
    let per_node: BTreeMap<String, usize> =
        held.lock()
            .expect("held")
            .iter()
            .fold(BTreeMap::new(), |mut m, h| {
                *m.entry(h.via.clone()).or_default() += 1;
                m
            });
    println!(
        "SCALE-OUT {LONG_CONNS} long-lived connections by node (router's ECMP choice): {per_node:?}"
    );
    assert_eq!(
        per_node.len(),
        3,
        "the router spread them over {per_node:?}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let (held, stop) = (Arc::clone(&held), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: at most 2 minutes of requests.
                for _ in 0..1200 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    let r = request(&mut s, long);
                    let mut h = held.lock().expect("held");
                    h[i].longest = h[i].longest.max(t.elapsed());
                    match r {
                        Ok(_) => {
                            h[i].ok += 1;
                            h[i].last_ok = Some(Instant::now());
                        }
                        Err(e) => {
                            h[i].error = Some(e.to_string());
                            break;
                        }
                    }
                    drop(h);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let (dead, dead_ip) = LBS[2];
    let suite = procs::pids_with_env("SEESAW_RUN_DIR", &run_dirs[2].to_string_lossy());
    assert!(suite.len() >= 6, "{dead}'s suite: {suite:?}");
    // The node is gone, not just its processes: its link goes first (so no FIN or RST tells
    // the router; BGP's hold timer must notice), then every process.
    let t_kill = Instant::now();
    run(&lab, dead, "ip", &["link", "set", "eth0", "down"]);
    for p in &suite {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    let survivors: Vec<String> = LBS[..2].iter().map(|(_, ip)| (*ip).to_owned()).collect();
    let withdrawn = wait_until(Duration::from_secs(15), || {
        next_hops(&lab, LONG_VIP) == survivors
    })
    .expect("the dead node's path left the router");
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let mut held = held.lock().expect("held").clone();
    for h in &mut held {
        if let Some(local) = h.local {
            h.via_after = router_choice(&lab, local, long).unwrap_or_default();
        }
    }
    let continued = |h: &Held| {
        h.error.is_none()
            && h.last_ok
                .is_some_and(|t| t > withdrawn + Duration::from_secs(6))
    };
    let moved: Vec<&Held> = held
        .iter()
        .filter(|h| h.via != dead_ip && h.via_after != h.via)
        .collect();
    let moved_kept = moved.iter().filter(|h| continued(h)).count();
    let on_survivors: Vec<&Held> = held.iter().filter(|h| h.via != dead_ip).collect();
    let on_dead: Vec<&Held> = held.iter().filter(|h| h.via == dead_ip).collect();
    let kept = on_survivors.iter().filter(|h| continued(h)).count();
    let dead_kept = on_dead.iter().filter(|h| continued(h)).count();
    let survivor_longest = on_survivors
        .iter()
        .map(|h| h.longest)
        .max()
        .unwrap_or_default();
    let dead_longest = on_dead.iter().map(|h| h.longest).max().unwrap_or_default();
    println!(
        "SCALE-OUT kill -9 of {dead} (its {} processes, link down): router withdrew its path after {:?}; \
         connections on the other two nodes: {kept} of {} continue (longest wait for one answer {survivor_longest:?}); \
         connections on {dead}: {dead_kept} of {} resumed through the survivors (longest wait {dead_longest:?}); \
         the router's rehash moved {} survivor connections to the other survivor: {moved_kept} of them continue (same backend: identical tables)",
        suite.len(),
        withdrawn - t_kill,
        on_survivors.len(),
        on_dead.len(),
        moved.len()
    );
    for h in on_survivors.iter().filter(|h| !continued(h)) {
        println!("SCALE-OUT   broken on a survivor: {h:?}");
    }
    assert!(
        !moved.is_empty(),
        "the router's rehash moved no connection between the survivors: nothing shows the \
         tables agree"
    );
    assert!(
        kept * 100 >= on_survivors.len() * 99,
        "only {kept} of {} long-lived connections on the surviving nodes continued",
        on_survivors.len()
    );

    let lab = Arc::new(lab);

    // 5. The etcd leader dies: writes resume after the election; traffic never stops.
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(&lab, vec![long, pool_vips[1]], Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(500));
    let leader = etcd_leader(&lab).expect("an etcd leader");
    let t_leader = Instant::now();
    sigkill(&lab, etcd_ids[leader]);
    let mut attempts = 0;
    let resumed = wait_until(Duration::from_secs(30), || {
        attempts += 1;
        let body = format!(
            "{{\"name\":\"after{attempts}@lab\",\"vip\":\"192.168.255.{}\",\"services\":[{{\"port\":80,\"scheduler\":\"rr\",\"mode\":\"dsr\"}}],\"members\":[{members}]}}",
            200 + attempts.min(50)
        );
        api(&lab, &cacert, "POST", "/v1/pools", &body).0 == 200
    })
    .expect("writes through lb1 never resumed after the etcd leader died");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (total, failed) = load.join().expect("load thread");
    println!(
        "SCALE-OUT etcd leader {} killed: a write through lb1 succeeded {:?} later ({attempts} attempts); {} of {total} requests through the nodes failed meanwhile",
        ETCDS[leader].0,
        resumed - t_leader,
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "requests failed: {:?}",
        &failed[..failed.len().min(5)]
    );

    // 6. All of etcd gone: every node keeps serving and says so.
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(&lab, vec![long, pool_vips[2]], Arc::clone(&stop));
    let t_stop = Instant::now();
    for (i, id) in etcd_ids.iter().enumerate() {
        if i != leader {
            sigkill(&lab, *id);
        }
    }
    let reported = wait_until(Duration::from_secs(20), || {
        LBS[..2]
            .iter()
            .all(|(n, _)| etcd_up(&lab, n).as_deref() == Some("0"))
    })
    .unwrap_or_else(|| {
        panic!(
            "a node did not report etcd gone: {:?}",
            LBS[..2]
                .iter()
                .map(|(n, _)| etcd_up(&lab, n))
                .collect::<Vec<_>>()
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let (total, failed) = load.join().expect("load thread");
    println!(
        "SCALE-OUT all etcd members stopped: both nodes report seesaw_config_etcd_up 0 after {:?}; {} of {total} requests failed; lab total {:?}",
        reported - t_stop,
        failed.len(),
        t_lab.elapsed()
    );
    assert!(
        failed.is_empty(),
        "requests failed: {:?}",
        &failed[..failed.len().min(5)]
    );
}
