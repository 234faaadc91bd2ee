//! The advert transport: a narrow port ([`Opener`] / [`Transport`]) with the raw-socket adapter
//! ([`RawOpener`]) and, for tests, an in-memory network (`fake`).
//!
//! The raw adapter is a protocol-112 IPv4 socket bound to the node address, sending to the peer
//! (unicast, or the VRRP group when the peer address is 224.0.0.18) with TTL 255. It is made with
//! socket2 and driven through tokio's datagram socket type (the `recv`/`sendto` calls are the same
//! for a raw socket, and this keeps the crate free of `unsafe`: `AsyncFd` registration is unsafe
//! since tokio 1.54). Every datagram read goes through [`crate::advert::parse_ipv4`]; what fails a
//! check is counted per reason and dropped. ICMP "protocol unreachable" errors that a raw socket
//! may surface while the peer's ha is down are ignored, as in Seesaw. Needs CAP_NET_RAW.
//!
//! Both adapters share [`Wire`]: signing (with `[ha] auth_key_file`), parsing, verification,
//! the rejection counts, and the loud-but-bounded log of authentication failures (an error line
//! for the first of each kind, then a warning summary at most every [`AUTH_SUMMARY_EVERY`]; a
//! flood of forged adverts never floods the log).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::advert::{self, Advert, AdvertError, Expect, Received, Rejections};
use crate::auth::{Signer, Verifier};
use crate::node::Peering;

#[cfg(any(test, feature = "testing"))]
pub mod fake;

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Creating or configuring the socket failed (no CAP_NET_RAW, address not local, ...).
    #[error("cannot open the advert socket: {0}")]
    Open(#[source] io::Error),
    /// Sending failed.
    #[error("cannot send an advert: {0}")]
    Send(#[source] io::Error),
    /// Receiving failed.
    #[error("cannot receive adverts: {0}")]
    Recv(#[source] io::Error),
}

/// An open advert channel to the peer.
pub trait Transport: Send {
    /// Sends one advert now (never blocks).
    fn send(&mut self, advert: &Advert) -> Result<(), TransportError>;
    /// The next advert that passes every receive check. Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = Result<Received, TransportError>> + Send;
    /// How long before [`Transport::recv`] returned the kernel had the last advert: the node
    /// times the master-down interval from the advert's arrival, not from when a loaded process
    /// got round to reading it. Zero when unknown.
    fn last_age(&self) -> Duration {
        Duration::ZERO
    }
    /// Datagrams dropped so far, by reason.
    fn rejected(&self) -> Rejections {
        Rejections::default()
    }
}

/// Opens transports for a peering.
pub trait Opener: Send {
    /// The transport type.
    type Transport: Transport;
    /// Opens a transport for `peering`.
    fn open(&mut self, peering: &Peering) -> Result<Self::Transport, TransportError>;
}

/// Opens [`RawTransport`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawOpener;

impl Opener for RawOpener {
    type Transport = RawTransport;

    fn open(&mut self, peering: &Peering) -> Result<RawTransport, TransportError> {
        RawTransport::open(peering)
    }
}

/// The raw-socket transport.
#[derive(Debug)]
pub struct RawTransport {
    sock: UdpSocket,
    dst_addr: SocketAddr,
    wire: Wire,
    /// Age of the last advert at the moment it was read (from its kernel receive timestamp).
    age: Duration,
}

/// How often at most the warning that sums up continuing authentication failures is logged.
pub const AUTH_SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// One peering's advert codec, shared by the raw and the fake transport: encodes (and signs)
/// what we send, parses (and verifies) what arrives, counts and logs what is dropped.
#[derive(Debug)]
struct Wire {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    expect: Expect,
    /// Signs our adverts when the peering has a key.
    signer: Option<Signer>,
    /// Checks the peer's adverts (and holds the replay window) when the peering has a key.
    verifier: Option<Verifier>,
    drops: HashMap<AdvertError, u64>,
    rejected: Rejections,
    alarm: AuthAlarm,
}

/// What to log about an authentication failure: decides, the caller logs.
#[derive(Debug, Default)]
struct AuthAlarm {
    /// Reasons already announced at error level.
    announced: Vec<&'static str>,
    /// When the last line about authentication failures was logged.
    last_line: Option<Instant>,
    /// Failures since that line.
    since_line: Rejections,
}

/// The line [`AuthAlarm::note`] asks for.
#[derive(Debug, PartialEq, Eq)]
enum Loud {
    /// The first failure of its kind: an error line with the likely cause.
    First,
    /// Failures continue: a warning with the counts since the last line.
    Summary(Rejections),
    /// Counted only.
    Quiet,
}

// === impl Wire ===

impl Wire {
    fn new(p: &Peering) -> Self {
        Self {
            src: p.local,
            dst: p.peer,
            expect: Expect {
                local: p.local,
                peer: p.peer,
                vrid: p.vrid,
            },
            signer: p.auth.map(|k| Signer::new(k.send)),
            verifier: p.auth.map(Verifier::new),
            drops: HashMap::new(),
            rejected: Rejections::default(),
            alarm: AuthAlarm::default(),
        }
    }

    /// The payload of `advert`: 8 bytes, or signed with the wall clock as the counter's floor.
    fn encode(&mut self, advert: &Advert) -> Vec<u8> {
        match self.signer.as_mut() {
            Some(s) => {
                let counter = s.next_counter(crate::auth::now_us());
                advert
                    .encode_signed(self.src, self.dst, s.key(), counter)
                    .to_vec()
            }
            None => advert
                .encode(IpAddr::V4(self.src), IpAddr::V4(self.dst))
                .to_vec(),
        }
    }

    /// The advert in a raw IPv4 datagram, or `None` (counted, and logged within bounds).
    fn decode(&mut self, datagram: &[u8]) -> Option<Received> {
        match advert::parse_ipv4(datagram, &self.expect, self.verifier.as_mut()) {
            Ok(r) => Some(r),
            Err(why) => {
                self.reject(why, Instant::now());
                None
            }
        }
    }

    fn reject(&mut self, why: AdvertError, now: Instant) {
        self.rejected.add(&why);
        let count = self.drops.entry(why).or_insert(0);
        *count += 1;
        if !why.is_auth() {
            // The first drop of each kind is worth a line; the rest are counted.
            if *count == 1 {
                tracing::warn!(reason = %why, "dropping an invalid advert");
            } else {
                tracing::debug!(reason = %why, count = *count, "dropping an invalid advert");
            }
            return;
        }
        match self.alarm.note(&why, now) {
            Loud::First => tracing::error!(
                reason = why.reason(),
                peer = %self.dst,
                "dropping an advert that fails authentication: {}",
                likely_cause(&why)
            ),
            Loud::Summary(since) => tracing::warn!(
                peer = %self.dst,
                "adverts failing authentication continue: {} since the last report; totals: {}",
                list(&since),
                list(&self.rejected.auth_failures())
            ),
            Loud::Quiet => {}
        }
    }
}

/// What an authentication failure most likely means, for the operator reading the log.
fn likely_cause(why: &AdvertError) -> &'static str {
    match why {
        AdvertError::BadMac => {
            "the peer's advert does not verify with our keys: the two nodes' [ha] auth keys differ \
             (or someone on the segment forges adverts)"
        }
        AdvertError::Unauthenticated => {
            "the peer sends unsigned adverts: it has no [ha] auth_key_file \
             (or someone on the segment forges adverts)"
        }
        AdvertError::UnexpectedAuth => {
            "the peer signs its adverts but this node has no [ha] auth_key_file"
        }
        AdvertError::Replay => {
            "an advert's counter is not above the last one accepted: a replayed advert \
             (or the peer's clock was set back while its ha restarted)"
        }
        _ => "not an authentication failure",
    }
}

/// `bad_mac 12, replay 3`.
fn list(r: &Rejections) -> String {
    r.nonzero()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// === impl AuthAlarm ===

impl AuthAlarm {
    /// Notes one authentication failure at `now` and says what to log.
    fn note(&mut self, why: &AdvertError, now: Instant) -> Loud {
        let reason = why.reason();
        if !self.announced.contains(&reason) {
            self.announced.push(reason);
            self.last_line = Some(now);
            return Loud::First;
        }
        self.since_line.add(why);
        match self.last_line {
            Some(at) if now.saturating_duration_since(at) < AUTH_SUMMARY_EVERY => Loud::Quiet,
            _ => {
                self.last_line = Some(now);
                Loud::Summary(std::mem::take(&mut self.since_line))
            }
        }
    }
}

/// The interface that holds `local`, if one does.
fn node_interface(local: Ipv4Addr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let a = ifa.address.as_ref()?.as_sockaddr_in()?;
        (a.ip() == local).then_some(ifa.interface_name)
    })
}

impl RawTransport {
    /// Opens the socket for `p`. Must be called inside a tokio runtime.
    pub fn open(p: &Peering) -> Result<Self, TransportError> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(advert::PROTOCOL))),
        )
        .map_err(TransportError::Open)?;
        let setup = || -> io::Result<()> {
            sock.set_nonblocking(true)?;
            sock.set_ttl_v4(u32::from(advert::TTL))?;
            sock.set_multicast_ttl_v4(u32::from(advert::TTL))?;
            sock.set_multicast_loop_v4(false)?;
            if p.peer.is_multicast() {
                sock.set_multicast_if_v4(&p.local)?;
                sock.join_multicast_v4(&p.peer, &p.local)?;
            } else {
                // Bound to the node address: the source of our adverts, and only datagrams to it
                // are read.
                sock.bind(&SockAddr::from(SocketAddrV4::new(p.local, 0)))?;
            }
            Ok(())
        };
        setup().map_err(TransportError::Open)?;
        // Adverts leave, and are read, only on the interface that holds the node address: an LB
        // interface holding the cluster VIP in the node's subnet (Seesaw's layout) could
        // otherwise win the route to the peer, and it is down on the backup, which would then
        // hear nothing and take over.
        match node_interface(p.local) {
            Some(name) => sock
                .bind_device(Some(name.as_bytes()))
                .map_err(TransportError::Open)?,
            None => tracing::warn!(
                local = %p.local,
                "no interface holds the node address; adverts follow the routing table"
            ),
        }
        // Kernel receive timestamps (SO_TIMESTAMPNS) on every datagram; without them adverts are
        // timed when read, which still works.
        if let Err(e) = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        ) {
            tracing::warn!(error = %e, "no kernel receive timestamps; adverts are timed when read");
        }
        let sock =
            UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(TransportError::Open)?;
        Ok(Self {
            sock,
            dst_addr: SocketAddr::V4(SocketAddrV4::new(p.peer, 0)),
            wire: Wire::new(p),
            age: Duration::ZERO,
        })
    }

    /// Dropped datagrams so far, per reason.
    pub fn drops(&self) -> &HashMap<AdvertError, u64> {
        &self.wire.drops
    }
}

/// Errors a raw socket reports for ICMP errors about earlier sends (the peer's ha is down).
/// One datagram and its kernel receive time (`SO_TIMESTAMPNS`), if the kernel attached one.
fn recv_stamped(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut stamp = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
                let nanos = u32::try_from(ts.tv_nsec()).unwrap_or(0);
                stamp = Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos));
            }
        }
    }
    Ok((msg.bytes, stamp))
}

/// How old a datagram received at `stamp` is now; zero when the wall clock disagrees (a step, or
/// an age beyond any plausible scheduling delay).
fn age_of(stamp: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(stamp)
        .ok()
        .filter(|a| *a <= MAX_AGE)
        .unwrap_or(Duration::ZERO)
}

/// Ages above this are treated as clock steps, not delays.
const MAX_AGE: Duration = Duration::from_secs(1);

fn is_icmp_echo(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc_errno::ENOPROTOOPT
                | libc_errno::EPROTO
                | libc_errno::ECONNREFUSED
                | libc_errno::EHOSTUNREACH
        )
    )
}

/// The errno values [`is_icmp_echo`] ignores (Linux numbering).
mod libc_errno {
    pub(super) const ENOPROTOOPT: i32 = 92;
    pub(super) const EPROTO: i32 = 71;
    pub(super) const ECONNREFUSED: i32 = 111;
    pub(super) const EHOSTUNREACH: i32 = 113;
}

impl Transport for RawTransport {
    fn send(&mut self, advert: &Advert) -> Result<(), TransportError> {
        let bytes = self.wire.encode(advert);
        // Straight to the socket: tokio's `try_send_to` reports WouldBlock until the reactor has
        // seen the socket writable once, and an advert must not wait for that.
        match socket2::SockRef::from(&self.sock).send_to(&bytes, &SockAddr::from(self.dst_addr)) {
            Ok(_) => Ok(()),
            Err(e) if is_icmp_echo(&e) => {
                tracing::debug!(error = %e, "ignoring an icmp error about an earlier advert");
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A full send buffer drops this advert; the next one follows within an interval.
                tracing::debug!("advert send buffer full; advert dropped");
                Ok(())
            }
            Err(e) => Err(TransportError::Send(e)),
        }
    }

    fn last_age(&self) -> Duration {
        self.age
    }

    fn rejected(&self) -> Rejections {
        self.wire.rejected
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, stamp) = match self
                .sock
                .async_io(tokio::io::Interest::READABLE, || {
                    recv_stamped(self.sock.as_raw_fd(), &mut buf)
                })
                .await
            {
                Ok(r) => r,
                Err(e) if is_icmp_echo(&e) => continue,
                Err(e) => return Err(TransportError::Recv(e)),
            };
            if let Some(r) = self.wire.decode(&buf[..n]) {
                self.age = stamp.map_or(Duration::ZERO, age_of);
                return Ok(r);
            }
        }
    }
}

#[cfg(test)]
mod tests;
