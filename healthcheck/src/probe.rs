//! Probers: the [`Prober`] trait the scheduler drives, and [`NetProber`], which runs every check
//! kind over real sockets. Time bounds are not applied here: the scheduler wraps every probe in the
//! check's timeout, so a prober may simply await the network. Every judgement of what a backend
//! sent is made by the pure functions of [`crate::codec`]; this module only moves bytes.
//!
//! DSR and TUN probes set `SO_MARK` on their socket before connecting ([`net`]).

pub mod http;
pub mod icmp;
pub mod net;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::check::{
    DnsProbe, MysqlProbe, ProbeOutcome, ProbeSpec, RadiusExpect, RadiusProbe, TcpProbe, UdpProbe,
};
use crate::codec::{dns, mysql, radius};
pub use tls::TlsClients;

/// The largest datagram a UDP, DNS or RADIUS probe reads.
pub const MAX_DATAGRAM: usize = 65_535;
/// Datagrams that are not the answer (stale replies, other ids) a probe skips before giving up.
pub const MAX_STRAY_DATAGRAMS: usize = 64;

/// Runs one probe. Implementations must not panic on anything the network says.
pub trait Prober: Send + Sync + 'static {
    /// Runs `spec` once and says whether it passed.
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send;
}

/// Probes over the network. With `dry_run`, every probe passes without touching the network
/// (Seesaw's `-dry_run`).
#[derive(Debug, Clone)]
pub struct NetProber {
    dry_run: bool,
    tls: TlsClients,
    /// RADIUS NAS-Identifier (the host name, like Seesaw).
    nas_identifier: Arc<str>,
}

// === impl NetProber ===

impl NetProber {
    /// A prober trusting the system's TLS roots; `dry_run` makes every probe pass.
    pub fn new(dry_run: bool) -> Self {
        Self::with_tls(dry_run, TlsClients::system())
    }

    /// A prober with the given TLS configurations (tests trust their own CA).
    pub fn with_tls(dry_run: bool, tls: TlsClients) -> Self {
        let host = hostname().unwrap_or_else(|| "seesaw".to_owned());
        Self {
            dry_run,
            tls,
            nas_identifier: host.into(),
        }
    }
}

impl Prober for NetProber {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeOutcome {
        if self.dry_run {
            return ProbeOutcome::pass("dry run");
        }
        // Only the plain TCP probe runs inline: the others' futures (TLS, hyper, buffers) are
        // boxed so the task spawned for every probe stays small (moving a multi-kilobyte future
        // into each of 20 000 tasks a second showed up as the largest user-space cost).
        match spec {
            ProbeSpec::Tcp(p) if p.tls.is_none() => tcp(p, &self.tls).await,
            ProbeSpec::Tcp(p) => Box::pin(tcp(p, &self.tls)).await,
            ProbeSpec::Icmp(p) => Box::pin(icmp::ping(p)).await,
            ProbeSpec::Udp(p) => Box::pin(udp(p)).await,
            ProbeSpec::Http(p) => Box::pin(http::http(p, &self.tls)).await,
            ProbeSpec::Dns(p) => Box::pin(dns(p)).await,
            ProbeSpec::Radius(p) => Box::pin(radius(p, &self.nas_identifier)).await,
            ProbeSpec::Mysql(p) => Box::pin(mysql(p)).await,
            ProbeSpec::Invalid { reason } => ProbeOutcome::fail(reason.clone()),
        }
    }
}

/// Connects (and runs the TLS handshake); writes `send` if set; if `receive` is set, reads until
/// that many bytes arrived and requires them to equal it (failing as soon as a byte differs).
pub async fn tcp(p: &TcpProbe, tls: &TlsClients) -> ProbeOutcome {
    let start = Instant::now();
    let kind = if p.tls.is_some() { "tcp_tls" } else { "tcp" };
    // A connect-only probe skips the extra setsockopt (it is most of the probes at scale).
    let connected = if p.send.is_empty() && p.tls.is_none() {
        net::tcp_connect(&p.dial).await
    } else {
        net::tcp_connect_nodelay(&p.dial).await
    };
    let stream = match connected {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("{kind} connect {}: {}", p.dial, io_msg(&e))),
    };
    // Close with a reset, not a FIN: at thousands of probes a second, a FIN close would leave a
    // TIME_WAIT socket on the load balancer for every probe (HAProxy's checks do the same). A
    // send-only probe closes normally so a reset cannot discard what it sent.
    if p.send.is_empty() || !p.receive.is_empty() {
        let _ = stream.set_zero_linger();
    }
    let result = match &p.tls {
        None => exchange(stream, &p.send, &p.receive).await,
        Some(t) => {
            Box::pin(async {
                match tls.connect(stream, &t.server, t.verify).await {
                    Ok(s) => exchange(s, &p.send, &p.receive).await,
                    Err(e) => Err(format!("tls handshake: {}", io_msg(&e))),
                }
            })
            .await
        }
    };
    match result {
        Ok(()) => ProbeOutcome::pass(format!(
            "{kind} {} in {} ms",
            p.dial,
            start.elapsed().as_millis()
        )),
        Err(e) => ProbeOutcome::fail(format!("{kind} {}: {e}", p.dial)),
    }
}

async fn exchange<S>(mut s: S, send: &[u8], receive: &[u8]) -> Result<(), String>
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if !send.is_empty() {
        s.write_all(send)
            .await
            .map_err(|e| format!("send: {}", io_msg(&e)))?;
        s.flush()
            .await
            .map_err(|e| format!("send: {}", io_msg(&e)))?;
    }
    if receive.is_empty() {
        return Ok(());
    }
    let mut buf = vec![0u8; receive.len()];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("read: {}", io_msg(&e))),
        }
        if buf[..n] != receive[..n] {
            break;
        }
    }
    if buf[..n] != receive[..] {
        return Err(format!(
            "got \"{}\", want \"{}\"",
            escape(&buf[..n]),
            escape(receive)
        ));
    }
    Ok(())
}

/// Sends `send` and waits for a datagram starting with `receive`. A refused port (ICMP port
/// unreachable on the connected socket) fails at once.
pub async fn udp(p: &UdpProbe) -> ProbeOutcome {
    let start = Instant::now();
    let sock = match net::udp_connect(&p.dial).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("udp {}: {}", p.dial, io_msg(&e))),
    };
    if let Err(e) = sock.send(&p.send).await {
        return ProbeOutcome::fail(format!("udp send to {}: {}", p.dial, io_msg(&e)));
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    match sock.recv(&mut buf).await {
        Ok(n) if buf[..n].starts_with(&p.receive) => ProbeOutcome::pass(format!(
            "udp {} in {} ms",
            p.dial,
            start.elapsed().as_millis()
        )),
        Ok(n) => ProbeOutcome::fail(format!(
            "udp {}: got \"{}\", want \"{}\"",
            p.dial,
            escape(&buf[..n]),
            escape(&p.receive)
        )),
        Err(e) => ProbeOutcome::fail(format!("udp recv from {}: {}", p.dial, io_msg(&e))),
    }
}

/// One query over UDP; the answer is judged by [`dns::check_response`].
pub async fn dns(p: &DnsProbe) -> ProbeOutcome {
    let start = Instant::now();
    let id = u16::from_be_bytes(net::random());
    let query = match dns::encode_query(id, &p.name, p.qtype) {
        Ok(q) => q,
        Err(e) => return ProbeOutcome::fail(format!("dns {}: {e}", p.dial)),
    };
    let sock = match net::udp_connect(&p.dial).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("dns {}: {}", p.dial, io_msg(&e))),
    };
    if let Err(e) = sock.send(&query).await {
        return ProbeOutcome::fail(format!("dns send to {}: {}", p.dial, io_msg(&e)));
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last = String::new();
    for _ in 0..MAX_STRAY_DATAGRAMS {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                return ProbeOutcome::fail(format!("dns recv from {}: {}", p.dial, io_msg(&e)));
            }
        };
        match dns::check_response(&buf[..n], id, &p.name, p.qtype, p.expect.as_ref()) {
            Ok(answer) => {
                return ProbeOutcome::pass(format!(
                    "dns {} {} {answer} in {} ms",
                    p.name,
                    p.qtype,
                    start.elapsed().as_millis()
                ));
            }
            // A stale or spoofed datagram: keep waiting for ours.
            Err(dns::DnsCheckError::NotOurResponse | dns::DnsCheckError::Malformed(_)) => {
                last = "no response to our query".to_owned();
            }
            Err(e) => {
                return ProbeOutcome::fail(format!(
                    "dns {} {} from {}: {e}",
                    p.name, p.qtype, p.dial
                ));
            }
        }
    }
    ProbeOutcome::fail(format!("dns {}: {last}", p.dial))
}

/// One Access-Request; passes iff an authenticated response has the expected code.
pub async fn radius(p: &RadiusProbe, nas_identifier: &str) -> ProbeOutcome {
    let id = net::random::<1>()[0];
    let authenticator: [u8; 16] = net::random();
    let sock = match net::udp_connect(&p.dial).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("radius {}: {}", p.dial, io_msg(&e))),
    };
    let nas_ip = match sock.local_addr() {
        Ok(a) => match a.ip() {
            IpAddr::V4(v4) => Some(v4.octets()),
            IpAddr::V6(_) => None,
        },
        Err(_) => None,
    };
    let req = radius::AccessRequest {
        id,
        authenticator,
        user: &p.user,
        password: &p.password,
        secret: p.secret.as_bytes(),
        nas_identifier,
        nas_ip,
    };
    let packet = match radius::encode_access_request(&req) {
        Ok(b) => b,
        Err(e) => return ProbeOutcome::fail(format!("radius {}: {e}", p.dial)),
    };
    if let Err(e) = sock.send(&packet).await {
        return ProbeOutcome::fail(format!("radius send to {}: {}", p.dial, io_msg(&e)));
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last = String::from("no response");
    for _ in 0..MAX_STRAY_DATAGRAMS {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                return ProbeOutcome::fail(format!("radius recv from {}: {}", p.dial, io_msg(&e)));
            }
        };
        match radius::check_response(&buf[..n], id, &authenticator, p.secret.as_bytes()) {
            Ok(code) => {
                let name = radius::code_name(code);
                let ok = match p.expect {
                    RadiusExpect::Any => true,
                    RadiusExpect::Accept => code == radius::ACCESS_ACCEPT,
                    RadiusExpect::Reject => code == radius::ACCESS_REJECT,
                    RadiusExpect::Challenge => code == radius::ACCESS_CHALLENGE,
                };
                let msg = format!("radius {}: {name}", p.dial);
                return if ok {
                    ProbeOutcome::pass(msg)
                } else {
                    ProbeOutcome::fail(format!("{msg}, want {}", expect_name(p.expect)))
                };
            }
            // Another request's answer: keep waiting for ours.
            Err(radius::RadiusCodecError::WrongIdentifier { .. }) => {}
            Err(e) => last = e.to_string(),
        }
    }
    ProbeOutcome::fail(format!("radius {}: {last}", p.dial))
}

fn expect_name(e: RadiusExpect) -> &'static str {
    match e {
        RadiusExpect::Accept => "accept",
        RadiusExpect::Challenge => "challenge",
        RadiusExpect::Reject => "reject",
        RadiusExpect::Any => "any",
    }
}

/// Reads the server greeting; passes iff it is a protocol-10 handshake. Closes without logging in
/// (the server counts an aborted connection; no credentials are needed).
pub async fn mysql(p: &MysqlProbe) -> ProbeOutcome {
    let start = Instant::now();
    let mut s = match net::tcp_connect(&p.dial).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("mysql connect {}: {}", p.dial, io_msg(&e))),
    };
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(total) = mysql::needed(&buf)
            && (buf.len() >= total || total > mysql::MAX_GREETING)
        {
            break;
        }
        if buf.len() >= mysql::MAX_GREETING {
            break;
        }
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                return ProbeOutcome::fail(format!("mysql read from {}: {}", p.dial, io_msg(&e)));
            }
        }
    }
    match mysql::parse_greeting(&buf) {
        Ok(g) => ProbeOutcome::pass(format!(
            "mysql {} {} in {} ms",
            p.dial,
            g.server_version,
            start.elapsed().as_millis()
        )),
        Err(e) => ProbeOutcome::fail(format!("mysql {}: {e}", p.dial)),
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `Connection refused (os error 111)` → `connection refused`: the message stays readable in
/// `show healthchecks` and the errno adds nothing there.
pub(crate) fn io_msg(e: &io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Bytes as printable text for messages (at most 64 characters).
pub(crate) fn escape(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).escape_debug().collect();
    if s.chars().count() > 64 {
        let cut: String = s.chars().take(64).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod url_tests;
