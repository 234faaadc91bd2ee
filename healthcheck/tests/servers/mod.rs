//! Test harness for real servers from Debian packages (nginx, dnsmasq, mariadb, freeradius): each
//! is started by the test in a temporary directory, bound to 127.0.0.1 on a free high port, and
//! killed (with its directory removed) when its handle drops. A missing binary makes the caller
//! skip with a message naming the package.

#![allow(
    clippy::print_stderr,
    dead_code,
    unreachable_pub,
    reason = "test harness: skip messages go to stderr; not every test binary uses every item; `pub` marks the harness API"
)]

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server; killed on drop.
pub struct Server {
    name: &'static str,
    child: Child,
    /// Where the server's files live (removed on drop).
    pub dir: tempfile::TempDir,
    /// Its main address.
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Kills the server now (the "backend died" case); the handle keeps the directory.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's own log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// The path of `bin` if installed (PATH, then the sbin directories), else prints why the test is
/// skipped and returns `None`.
pub fn find(bin: &str, package: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "skipping {test}: {bin} is not installed (apt-get install {package}; .ci/run installs it)"
        );
    }
    found
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// A free TCP port on 127.0.0.1 (ephemeral range, so high).
pub fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A free UDP port on 127.0.0.1 whose successor is free too (for servers that also bind port+1).
pub fn free_udp_port_pair() -> u16 {
    for _ in 0..100 {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = a.local_addr().expect("local addr").port();
        if port < u16::MAX && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free pair of udp ports on 127.0.0.1");
}

fn spawn(
    name: &'static str,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    cmd: &mut Command,
) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).expect("create server.log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Server {
        name,
        child,
        dir,
        addr,
    }
}

/// Waits until `ready` holds or the server exits or [`START_TIMEOUT`] passes (then panics with
/// the server's log).
fn wait_ready(s: &mut Server, mut ready: impl FnMut(&Server) -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if ready(s) {
            return;
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!(
                "{} exited with {status} before it was ready:\n{}",
                s.name,
                s.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} not ready after {START_TIMEOUT:?}:\n{}", s.name, s.log());
}

fn tcp_ready(s: &Server) -> bool {
    TcpStream::connect_timeout(&s.addr, Duration::from_millis(200)).is_ok()
}

/// Whether a UDP socket is bound to 127.0.0.1:`port` (from /proc/net/udp).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// TLS material made for the test: a CA and a leaf for 127.0.0.1 signed by it.
pub struct TestPki {
    /// The CA certificate (DER), to trust in verifying probes.
    pub ca_der: Vec<u8>,
    /// The leaf certificate (PEM).
    pub cert_pem: String,
    /// The leaf key (PEM).
    pub key_pem: String,
}

/// Makes a CA and a certificate for the IP address 127.0.0.1.
pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "seesaw healthcheck test ca");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
    let cert = params.signed_by(&key, &issuer).expect("leaf cert");
    TestPki {
        ca_der: ca.der().to_vec(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// nginx with a plain HTTP port (`addr`) and an HTTPS port (returned beside it), serving:
/// `/healthz` 200 "serving", `/down` 503, `/moved` 302; and a virtual host `www.example.test`
/// answering "vhost www.example.test" (for Host and proxy-mode absolute URIs).
pub fn nginx(test: &str, pki: &TestPki) -> Option<(Server, SocketAddr)> {
    let bin = find("nginx", "nginx-light", test)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("cert.pem"), &pki.cert_pem).expect("write cert");
    std::fs::write(d.join("key.pem"), &pki.key_pem).expect("write key");
    let http = free_tcp_port();
    let https = free_tcp_port();
    let locations = r#"
        location = /healthz { return 200 "serving\n"; }
        location = /down { return 503 "down\n"; }
        location = /moved { return 302 /healthz; }
        location / { return 404; }
    "#;
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/server.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{http} default_server;
        listen 127.0.0.1:{https} ssl default_server;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        server_name _;
        {locations}
    }}
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        server_name www.example.test;
        location / {{ return 200 "vhost www.example.test\n"; }}
    }}
}}
"#,
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).expect("write nginx.conf");
    let addr: SocketAddr = ([127, 0, 0, 1], http).into();
    let mut cmd = Command::new(bin);
    cmd.arg("-p").arg(d).arg("-c").arg(d.join("nginx.conf"));
    let mut s = spawn("nginx", dir, addr, &mut cmd);
    wait_ready(&mut s, tcp_ready);
    let tls_addr: SocketAddr = ([127, 0, 0, 1], https).into();
    wait_ready(&mut s, |_| {
        TcpStream::connect_timeout(&tls_addr, Duration::from_millis(200)).is_ok()
    });
    Some((s, tls_addr))
}

/// dnsmasq answering only from its own records: `www.example.test` A 127.0.0.5,
/// `alias.example.test` CNAME www, `txt.example.test` TXT "v=ok". Nothing is forwarded.
pub fn dnsmasq(test: &str) -> Option<Server> {
    let bin = find("dnsmasq", "dnsmasq-base", test)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port_pair();
    let d = dir.path();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--host-record=www.example.test,127.0.0.5",
        "--cname=alias.example.test,www.example.test",
        "--txt-record=txt.example.test,v=ok",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--pid-file={}", d.join("dnsmasq.pid").display()))
    .arg(format!(
        "--log-facility={}",
        d.join("dnsmasq.log").display()
    ));
    if is_root() {
        // Stay root so the temp directory stays readable; it binds nothing privileged anyway.
        cmd.arg("--user=root");
    }
    let mut s = spawn("dnsmasq", dir, addr, &mut cmd);
    wait_ready(&mut s, |_| udp_bound(port));
    Some(s)
}

/// MariaDB on an empty data directory (no grant tables needed: the probe never logs in).
pub fn mariadb(test: &str) -> Option<Server> {
    let bin = find("mariadbd", "mariadb-server", test)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    std::fs::create_dir(d.join("data")).expect("mkdir data");
    let port = free_tcp_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(bin);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg(format!("--socket={}", d.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", d.join("server.log").display()))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=8M",
        ]);
    if is_root() {
        cmd.arg("--user=root");
    }
    let mut s = spawn("mariadbd", dir, addr, &mut cmd);
    wait_ready(&mut s, tcp_ready);
    Some(s)
}

/// FreeRADIUS with Debian's configuration, one client (127.0.0.1, `secret`) and one user
/// (`bob` / `hello`).
pub fn freeradius(test: &str, secret: &str) -> Option<Server> {
    let bin = find("freeradius", "freeradius", test)?;
    let conf = Path::new("/etc/freeradius/3.0");
    if !conf.join("radiusd.conf").is_file() {
        eprintln!("skipping {test}: /etc/freeradius/3.0 is missing (apt-get install freeradius)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let raddb = dir.path().join("raddb");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(conf)
        .arg(&raddb)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot copy {}", conf.display());
    // Run as whoever runs the test: the copy belongs to us, not to freerad.
    let main = std::fs::read_to_string(raddb.join("radiusd.conf")).expect("read radiusd.conf");
    let main: String = main
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("user =") || t.starts_with("group =") {
                format!("#{l}\n")
            } else if t.starts_with("reject_delay =") {
                // Rejections are what half the test waits for.
                "\treject_delay = 0\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(raddb.join("radiusd.conf"), main).expect("write radiusd.conf");
    std::fs::write(
        raddb.join("clients.conf"),
        format!("client seesaw_test {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n}}\n"),
    )
    .expect("write clients.conf");
    let users = raddb.join("mods-config/files/authorize");
    let _ = std::fs::remove_file(&users);
    std::fs::write(&users, "bob Cleartext-Password := \"hello\"\n").expect("write users");
    // One virtual server of our own on 127.0.0.1:port, authenticating with `files` + PAP; the
    // stock sites (which listen on every address) and EAP (which needs them) are removed.
    let port = free_udp_port_pair();
    for e in std::fs::read_dir(raddb.join("sites-enabled"))
        .expect("read sites-enabled")
        .flatten()
    {
        let _ = std::fs::remove_file(e.path());
    }
    let _ = std::fs::remove_file(raddb.join("mods-enabled/eap"));
    std::fs::write(
        raddb.join("sites-enabled/seesaw"),
        format!(
            "server seesaw {{\n\tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {port}\n\t}}\n\
             \tauthorize {{\n\t\tfiles\n\t\tpap\n\t}}\n\
             \tauthenticate {{\n\t\tAuth-Type PAP {{\n\t\t\tpap\n\t\t}}\n\t}}\n}}\n"
        ),
    )
    .expect("write the test site");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(bin);
    cmd.arg("-f").arg("-d").arg(&raddb).args(["-l", "stdout"]);
    let mut s = spawn("freeradius", dir, addr, &mut cmd);
    wait_ready(&mut s, |_| udp_bound(port));
    Some(s)
}
