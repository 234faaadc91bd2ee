//! Domain types of a check and of what is reported about it. The engine's protobuf messages are
//! converted into these at the edge (`engine_link`), so the scheduler and the probers never see
//! proto types.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use hyper::{Method, Uri};

use crate::state::Thresholds;

/// Probe interval when the engine sends 0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Probe timeout when the engine sends 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's id, stable across engine restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId(pub u64);

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything needed to run one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Stable id.
    pub id: CheckId,
    /// Time between two probe starts (never zero).
    pub interval: Duration,
    /// Bound on one probe (never zero).
    pub timeout: Duration,
    /// Rise and retries.
    pub thresholds: Thresholds,
    /// Human-readable, for logs.
    pub description: String,
    /// What one probe does.
    pub probe: ProbeSpec,
}

/// What one probe does.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// One ICMP or ICMPv6 echo.
    Icmp(IcmpProbe),
    /// Connect (optionally TLS), optionally send and expect a prefix.
    Tcp(TcpProbe),
    /// Send a datagram and expect a reply prefix.
    Udp(UdpProbe),
    /// One HTTP/1.1 request on a fresh connection (optionally over TLS).
    Http(HttpProbe),
    /// One DNS query over UDP.
    Dns(DnsProbe),
    /// One RADIUS Access-Request.
    Radius(RadiusProbe),
    /// Read the MySQL/MariaDB server greeting.
    Mysql(MysqlProbe),
    /// The engine sent something unusable (bad address, port, method, mode...): always unhealthy.
    Invalid {
        /// Why, for the result message.
        reason: String,
    },
}

/// Where a probe's packets go. In PLAIN mode that is the backend itself; in DSR and TUN mode it is
/// the VIP, with a firewall mark that makes the data plane forward the probe to the one backend
/// (Seesaw's per-backend fwmark service), proving the backend answers traffic for the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial {
    /// Destination of the connection or datagrams: the backend, or the VIP.
    pub addr: SocketAddr,
    /// DSR/TUN: how the probe to the VIP reaches its backend.
    pub through_vip: Option<ThroughVip>,
}

/// A DSR/TUN probe's socket setup: `SO_MARK` = `mark` (needs CAP_NET_ADMIN), and the source
/// address bound to the one the kernel would use to reach `backend`. Without that binding the
/// source of a connection to a local VIP would be the VIP itself, and the backend, which holds
/// the VIP too, would drop the probe as coming from its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughVip {
    /// The firewall mark of the backend's probe service.
    pub mark: u32,
    /// The backend the data plane forwards the marked probe to.
    pub backend: IpAddr,
}

/// TLS on top of a TCP probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// Verify the server's chain against the trusted roots and its name against `server`.
    pub verify: bool,
    /// The name sent as SNI and that the certificate must carry: the host of an HTTPS check's
    /// URL, else the address dialled (an IP literal, which sends no SNI).
    pub server: String,
}

/// An ICMP echo check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpProbe {
    /// The address pinged.
    pub ip: IpAddr,
}

/// A TCP or TCP+TLS check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe {
    /// Where to connect.
    pub dial: Dial,
    /// TLS handshake after connecting, if set.
    pub tls: Option<TlsSpec>,
    /// Written after connecting, if not empty.
    pub send: Vec<u8>,
    /// If not empty, the first `receive.len()` bytes read must equal it.
    pub receive: Vec<u8>,
}

/// A UDP check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpProbe {
    /// Where to send.
    pub dial: Dial,
    /// The datagram sent (may be empty).
    pub send: Vec<u8>,
    /// The reply must start with it (any reply passes when empty).
    pub receive: Vec<u8>,
}

/// An HTTP or HTTPS check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    /// Where to connect.
    pub dial: Dial,
    /// TLS (HTTPS), if set.
    pub tls: Option<TlsSpec>,
    /// Request method.
    pub method: Method,
    /// Request target: origin form (`/path`), or absolute form for HTTP in proxy mode.
    pub uri: Uri,
    /// HTTPS in proxy mode, as Seesaw's Go transport does it: after the TLS handshake with the
    /// proxy (the backend), `CONNECT` to this authority, then TLS again inside the tunnel.
    pub tunnel: Option<String>,
    /// `Host` header.
    pub host: String,
    /// Expected status code (redirects are not followed: a 3xx is judged against it).
    pub code: u16,
    /// If not empty, the body must start with it.
    pub receive: Vec<u8>,
}

/// A DNS check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsProbe {
    /// Where to send the query.
    pub dial: Dial,
    /// The name queried, fully qualified.
    pub name: Name,
    /// The record type queried.
    pub qtype: RecordType,
    /// What one answer of that type must equal; `None` accepts any answer of that type.
    pub expect: Option<DnsExpect>,
}

/// The expected answer of a DNS check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsExpect {
    /// An A or AAAA record with this address.
    Addr(IpAddr),
    /// A CNAME, NS or PTR record pointing at this name (compared case-insensitively).
    Name(Name),
    /// Any other type: the record's presentation form (TXT: its strings concatenated).
    Text(String),
}

/// A RADIUS check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusProbe {
    /// Where to send the request.
    pub dial: Dial,
    /// User-Name.
    pub user: String,
    /// User-Password (hidden with the secret, RFC 2865 §5.2).
    pub password: String,
    /// The shared secret.
    pub secret: String,
    /// Which response code passes.
    pub expect: RadiusExpect,
}

/// Which RADIUS response passes a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusExpect {
    /// Access-Accept (the default).
    Accept,
    /// Access-Challenge.
    Challenge,
    /// Access-Reject.
    Reject,
    /// Any authenticated response.
    Any,
}

/// A MySQL/MariaDB check: the server greeting must be protocol version 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlProbe {
    /// Where to connect.
    pub dial: Dial,
}

/// One probe's verdict, before thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether this probe passed.
    pub success: bool,
    /// What happened, e.g. `tcp connect 127.0.0.2:8080: connection refused`.
    pub message: String,
}

impl ProbeOutcome {
    /// A passing probe.
    pub fn pass(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
        }
    }

    /// A failing probe.
    pub fn fail(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
        }
    }
}

/// A check's state as reported to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Which check.
    pub id: CheckId,
    /// Healthy or Unhealthy (Unknown is never reported).
    pub healthy: bool,
    /// The message of the probe that decided it.
    pub message: String,
    /// When that probe finished, UNIX milliseconds.
    pub checked_at_ms: i64,
    /// The check's cumulative probe statistics when the result was taken.
    pub stats: ProbeStats,
}

/// Upper bounds of the probe latency histogram, microseconds (0.5 ms .. 5 s); a last, implicit
/// bucket counts slower probes. Fixed, so every check's histogram has the same shape and the
/// statistics stay a few words per check.
pub const LATENCY_BOUNDS_US: [u64; 13] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Cumulative statistics of one check's probes since this process started running it. They are
/// cheap to keep (a fixed array) and travel to the engine with every reported result, so the
/// engine's view is at most one full-resync interval old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeStats {
    /// Probes that passed.
    pub successes: u64,
    /// Probes that failed (timeouts included).
    pub failures: u64,
    /// Duration of the latest probe, microseconds.
    pub last_latency_us: u64,
    /// Sum of every probe's duration, microseconds.
    pub latency_sum_us: u64,
    /// Probes per latency bucket (see [`LATENCY_BOUNDS_US`]; the last entry is +Inf).
    pub latency_counts: [u64; LATENCY_BOUNDS_US.len() + 1],
}

// === impl ProbeStats ===

impl ProbeStats {
    /// Counts one probe that took `latency`.
    pub fn observe(&mut self, success: bool, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if success {
            self.successes = self.successes.saturating_add(1);
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        self.last_latency_us = us;
        self.latency_sum_us = self.latency_sum_us.saturating_add(us);
        let bucket = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.latency_counts[bucket] = self.latency_counts[bucket].saturating_add(1);
    }

    /// Probes counted.
    pub fn probes(&self) -> u64 {
        self.successes.saturating_add(self.failures)
    }
}

/// One report to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The results, at most one per id.
    pub results: Vec<CheckResult>,
    /// True when `results` is the state of every check that has one (a resync).
    pub full: bool,
}

// === impl ProbeSpec ===

impl ProbeSpec {
    /// Names the probe in messages, e.g. `tcp 127.0.0.1:80`.
    pub fn label(&self) -> String {
        match self {
            Self::Icmp(p) => format!("icmp {}", p.ip),
            Self::Tcp(p) if p.tls.is_some() => format!("tcp_tls {}", p.dial),
            Self::Tcp(p) => format!("tcp {}", p.dial),
            Self::Udp(p) => format!("udp {}", p.dial),
            Self::Http(p) if p.tls.is_some() => format!("https {}", p.dial),
            Self::Http(p) => format!("http {}", p.dial),
            Self::Dns(p) => format!("dns {}", p.dial),
            Self::Radius(p) => format!("radius {}", p.dial),
            Self::Mysql(p) => format!("mysql {}", p.dial),
            Self::Invalid { .. } => "invalid check".to_owned(),
        }
    }
}

// === impl Dial ===

impl Dial {
    /// Straight to `addr`, no mark.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            through_vip: None,
        }
    }

    /// To `vip` with `mark`, forwarded by the data plane to `backend`.
    pub fn through_vip(vip: SocketAddr, mark: u32, backend: IpAddr) -> Self {
        Self {
            addr: vip,
            through_vip: Some(ThroughVip { mark, backend }),
        }
    }
}

impl fmt::Display for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.through_vip {
            Some(t) => write!(f, "{} (mark {:#x} to {})", self.addr, t.mark, t.backend),
            None => self.addr.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_stats_bucket_by_upper_bound_inclusive() {
        let mut s = ProbeStats::default();
        s.observe(true, Duration::from_micros(500));
        s.observe(true, Duration::from_micros(501));
        s.observe(false, Duration::from_secs(5));
        s.observe(false, Duration::from_secs(6));
        s.observe(true, Duration::ZERO);
        assert_eq!((s.successes, s.failures, s.probes()), (3, 2, 5));
        assert_eq!(s.last_latency_us, 0);
        assert_eq!(s.latency_sum_us, 500 + 501 + 5_000_000 + 6_000_000);
        let mut want = [0u64; LATENCY_BOUNDS_US.len() + 1];
        want[0] = 2; // 0 and 500 µs (le 0.5 ms)
        want[1] = 1; // 501 µs (le 1 ms)
        want[12] = 1; // 5 s (le 5 s)
        want[13] = 1; // 6 s (+Inf)
        assert_eq!(s.latency_counts, want);
    }

    #[test]
    fn probe_stats_saturate_instead_of_wrapping() {
        let mut s = ProbeStats {
            successes: u64::MAX,
            latency_sum_us: u64::MAX - 1,
            ..ProbeStats::default()
        };
        s.observe(true, Duration::MAX);
        assert_eq!(s.successes, u64::MAX);
        assert_eq!(s.latency_sum_us, u64::MAX);
        assert_eq!(s.last_latency_us, u64::MAX);
        assert_eq!(s.latency_counts[LATENCY_BOUNDS_US.len()], 1);
    }
}
