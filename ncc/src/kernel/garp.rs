//! Neighbour announcements for a VIP just brought up: gratuitous ARP (IPv4) and unsolicited
//! neighbour advertisements (IPv6), sent as hand-built Ethernet frames over an `AF_PACKET`
//! socket, in a burst of `count` frames `interval` apart (seesaw.cfg `[interface]
//! garp_count`, `garp_interval_ms`). Frames are built by pure functions ([`garp_frame`],
//! [`unsolicited_na_frame`]); sending failures are logged, never fatal, and the burst runs
//! on its own thread so an apply never waits for it.
//!
//! While this node is the HA master, [`GarpTicker`] also announces a set of addresses every
//! `garp_interval_sec` (Seesaw's GARP loop: the cluster VIP, and without VMAC every
//! non-anycast IPv4 VIP on the LB or VLAN interface that holds it); its timing is the pure
//! [`Schedule`], its thread ends when the ticker is dropped.
//!
//! Frame layouts: Ethernet (dst, src, ethertype). ARP (RFC 826/5227 announcement): htype 1,
//! ptype 0x0800, hlen 6, plen 4, oper 1 (request), sender = our MAC and the VIP, target MAC
//! zero, target IP = the VIP, to the broadcast MAC. NA (RFC 4861 §4.4, §7.2.6): IPv6 from the
//! VIP to ff02::1 (MAC 33:33:00:00:00:01), hop limit 255, ICMPv6 type 136 with the Override
//! flag, target = the VIP, option 2 (target link-layer address) = our MAC.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::NccError;

/// A MAC address.
pub type Mac = [u8; 6];

/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// The gratuitous ARP announcing `ip` at `mac` (42 bytes).
pub fn garp_frame(mac: Mac, ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // f[32..38]: target MAC zero.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// The one's-complement checksum of `data` (RFC 1071), starting from `sum`.
fn csum(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]);
        sum = sum.wrapping_add(u32::from(w));
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    #[allow(clippy::cast_possible_truncation, reason = "folded to 16 bits above")]
    let s = sum as u16;
    !s
}

/// The unsolicited neighbour advertisement of `ip` at `mac` to all nodes (86 bytes).
pub fn unsolicited_na_frame(mac: Mac, ip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type, code, checksum
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // Override
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]); // target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&ip.octets());
    pseudo.extend_from_slice(&all_nodes.octets());
    pseudo.extend_from_slice(&32u32.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let c = fold(csum(csum(0, &pseudo), &icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());

    let mut f = Vec::with_capacity(86);
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no class/flow
    f.extend_from_slice(&32u16.to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&all_nodes.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The frame announcing `ip` (ARP or NA by family), its ethertype and destination MAC.
pub fn announcement(mac: Mac, ip: IpAddr) -> (Vec<u8>, u16, Mac) {
    match ip {
        IpAddr::V4(v) => (garp_frame(mac, v).to_vec(), ETH_P_ARP, [0xff; 6]),
        IpAddr::V6(v) => (
            unsolicited_na_frame(mac, v),
            ETH_P_IPV6,
            [0x33, 0x33, 0, 0, 0, 1],
        ),
    }
}

/// An interface's MAC address in the caller's network namespace (`SIOCGIFHWADDR`).
#[allow(unsafe_code)]
pub fn iface_mac(iface: &str) -> Result<Mac, NccError> {
    super::vips::check_ifname(iface)?;
    let err = |e: std::io::Error| NccError::Plane(format!("interface {iface}: {e}"));
    // SAFETY: plain socket(2); the result is checked and owned by `OwnedFd`.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(iface.bytes()) {
        *d = libc::c_char::from_ne_bytes([s]);
    }
    // SAFETY: SIOCGIFHWADDR reads `ifr_name` (NUL-terminated: at most 15 bytes were copied
    // into 16 zeroed ones) and writes `ifr_hwaddr` inside `req`, which outlives the call.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SIOCGIFHWADDR,
            std::ptr::from_mut(&mut req),
        )
    };
    if r < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: after a successful SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = b.to_ne_bytes()[0];
    }
    Ok(mac)
}

/// Sends one frame out of interface `index` to `dst` (an `AF_PACKET` socket per call).
#[allow(unsafe_code)]
pub fn send_frame(index: u32, ethertype: u16, dst: Mac, frame: &[u8]) -> std::io::Result<()> {
    let proto = i32::from(ethertype.to_be());
    // SAFETY: plain socket(2) call; the result is checked and owned by `OwnedFd` below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let ifindex =
        i32::try_from(index).map_err(|_| std::io::Error::other("interface index too large"))?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(17);
    sll.sll_protocol = u16::try_from(proto).unwrap_or(0);
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&dst);
    let len = u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(20);
    // SAFETY: `frame` is valid for `frame.len()` bytes, `sll` is a valid sockaddr_ll of `len`
    // bytes, and `fd` is open for the duration of the call.
    let n = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            std::ptr::from_ref(&sll).cast(),
            len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Burst settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// Frames per burst (0: announcements off).
    pub count: u32,
    /// Spacing between frames.
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        Self {
            count: 3,
            interval: Duration::from_millis(500),
        }
    }
}

/// Upper bounds on a burst, whatever the configuration says.
const MAX_COUNT: u32 = 100;
const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Sends bursts on a thread per announcement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Garp(pub GarpConfig);

impl Garp {
    /// Sends the burst now, on the caller's thread; returns how many frames went out. Each
    /// failure is logged.
    pub fn burst(&self, iface: &str, ip: IpAddr) -> u32 {
        let (mac, index) = match (iface_mac(iface), super::vips::ifindex(iface)) {
            (Ok(m), Ok(i)) => (m, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("not announcing {ip} on {iface}: {e}");
                return 0;
            }
        };
        let (frame, ethertype, dst) = announcement(mac, ip);
        let count = self.0.count.min(MAX_COUNT);
        let mut sent = 0;
        for i in 0..count {
            if i > 0 {
                std::thread::sleep(self.0.interval.min(MAX_INTERVAL));
            }
            match send_frame(index, ethertype, dst, &frame) {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!("announcing {ip} on {iface}: {e}"),
            }
        }
        sent
    }
}

impl super::vips::Announce for Garp {
    fn announce(&self, iface: &str, addr: IpAddr) {
        let (g, iface) = (*self, iface.to_owned());
        let spawned = std::thread::Builder::new()
            .name("garp".into())
            .spawn(move || {
                let n = g.burst(&iface, addr);
                tracing::info!("announced {addr} on {iface} ({n} frames)");
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the announcement of {addr}: {e}");
        }
    }
}

/// When the periodic announcement is due (sans-io: the caller passes the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    next: Option<std::time::Instant>,
}

impl Schedule {
    /// Turns the schedule on (first round one `interval` from `now`) or off (`interval` zero
    /// or not `active`). Re-setting the same interval keeps the rhythm.
    pub fn set(&mut self, interval: Duration, active: bool, now: std::time::Instant) {
        if !active || interval.is_zero() {
            self.next = None;
        } else if self.next.is_none() || interval != self.interval {
            self.next = Some(now + interval);
        }
        self.interval = interval;
    }

    /// How long until the next round (`None`: off).
    pub fn wait(&self, now: std::time::Instant) -> Option<Duration> {
        self.next.map(|n| n.saturating_duration_since(now))
    }

    /// Whether a round is due at `now`; if so the next one is scheduled (one interval later, or
    /// one interval from `now` after a stall, never a catch-up burst).
    pub fn fire(&mut self, now: std::time::Instant) -> bool {
        match self.next {
            Some(n) if n <= now => {
                let next = n + self.interval;
                self.next = Some(if next <= now {
                    now + self.interval
                } else {
                    next
                });
                true
            }
            _ => false,
        }
    }
}

/// Sends one announcement of `ip` on `iface`; returns whether a frame went out.
pub trait SendOne: Send + 'static {
    /// Sends it (failures are logged by the implementation).
    fn send_one(&self, iface: &str, ip: IpAddr) -> bool;
}

/// The real sender: one frame over `AF_PACKET`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawSender;

impl SendOne for RawSender {
    fn send_one(&self, iface: &str, ip: IpAddr) -> bool {
        Garp(GarpConfig {
            count: 1,
            interval: Duration::ZERO,
        })
        .burst(iface, ip)
            == 1
    }
}

/// The periodic announcements as the LB manager sees them.
pub trait Periodic: Send + 'static {
    /// Announces `targets` (interface, address) every `interval` from now on; an empty set or
    /// a zero interval stops.
    fn set(&self, targets: Vec<(String, IpAddr)>, interval: Duration);
}

type TickerUpdate = (Vec<(String, IpAddr)>, Duration);

/// Periodic gratuitous ARP on its own thread; dropping the ticker stops the thread.
#[derive(Debug)]
pub struct GarpTicker {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<TickerUpdate>>,
}

impl GarpTicker {
    /// Starts the thread (idle until [`Periodic::set`]).
    pub fn spawn(sender: impl SendOne) -> Result<Self, NccError> {
        let (tx, rx) = std::sync::mpsc::channel::<TickerUpdate>();
        std::thread::Builder::new()
            .name("garp-periodic".into())
            .spawn(move || ticker_loop(&rx, &sender))
            .map_err(|e| NccError::Plane(format!("cannot start the periodic GARP thread: {e}")))?;
        Ok(Self {
            tx: std::sync::Mutex::new(tx),
        })
    }
}

fn ticker_loop(rx: &std::sync::mpsc::Receiver<TickerUpdate>, sender: &impl SendOne) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut schedule = Schedule::default();
    let mut targets: Vec<(String, IpAddr)> = Vec::new();
    loop {
        let now = std::time::Instant::now();
        let update = match schedule.wait(now) {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(w) => rx.recv_timeout(w),
        };
        match update {
            Ok((t, interval)) => {
                schedule.set(interval, !t.is_empty(), std::time::Instant::now());
                targets = t;
            }
            Err(RecvTimeoutError::Timeout) => {
                if schedule.fire(std::time::Instant::now()) {
                    let sent = targets
                        .iter()
                        .filter(|(i, ip)| sender.send_one(i, *ip))
                        .count();
                    tracing::debug!(sent, of = targets.len(), "periodic gratuitous ARP");
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Periodic for GarpTicker {
    fn set(&self, targets: Vec<(String, IpAddr)>, interval: Duration) {
        let sent = self
            .tx
            .lock()
            .map_err(|_| ())
            .and_then(|tx| tx.send((targets, interval)).map_err(|_| ()));
        if sent.is_err() {
            tracing::warn!("the periodic GARP thread is gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_keeps_its_rhythm_and_never_bursts_to_catch_up() {
        let t0 = std::time::Instant::now();
        let s10 = Duration::from_secs(10);
        let mut s = Schedule::default();
        assert_eq!(s.wait(t0), None, "off until set");
        s.set(s10, true, t0);
        assert_eq!(s.wait(t0), Some(s10));
        assert!(!s.fire(t0 + Duration::from_secs(9)));
        assert!(s.fire(t0 + s10));
        assert!(!s.fire(t0 + s10), "once per round");
        // Re-set with the same interval (every apply does): the rhythm stays.
        s.set(s10, true, t0 + Duration::from_secs(15));
        assert_eq!(
            s.wait(t0 + Duration::from_secs(15)),
            Some(Duration::from_secs(5))
        );
        // A stall of three rounds gives one round, then the next a full interval later.
        assert!(s.fire(t0 + Duration::from_secs(55)));
        assert!(!s.fire(t0 + Duration::from_secs(56)));
        assert_eq!(s.wait(t0 + Duration::from_secs(55)), Some(s10));
        // A new interval restarts from now; off stops.
        s.set(Duration::from_secs(1), true, t0 + Duration::from_secs(60));
        assert_eq!(
            s.wait(t0 + Duration::from_secs(60)),
            Some(Duration::from_secs(1))
        );
        s.set(Duration::from_secs(1), false, t0 + Duration::from_secs(60));
        assert_eq!(s.wait(t0), None);
        s.set(Duration::ZERO, true, t0);
        assert_eq!(s.wait(t0), None, "zero interval is off");
    }

    #[derive(Clone, Default)]
    struct Count(std::sync::Arc<std::sync::Mutex<Vec<(String, IpAddr)>>>);

    impl SendOne for Count {
        fn send_one(&self, iface: &str, ip: IpAddr) -> bool {
            self.0.lock().unwrap().push((iface.to_owned(), ip));
            true
        }
    }

    #[test]
    fn the_ticker_announces_every_interval_until_stopped() {
        let heard = Count::default();
        let t = GarpTicker::spawn(heard.clone()).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        t.set(vec![("eth1".into(), ip)], Duration::from_millis(40));
        std::thread::sleep(Duration::from_millis(430));
        t.set(Vec::new(), Duration::from_millis(40));
        let n = heard.0.lock().unwrap().len();
        // ≈ 430 / 40 = 10 rounds; a loaded machine may lose some, never gain.
        assert!((5..=11).contains(&n), "{n} rounds");
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(heard.0.lock().unwrap().len(), n, "stopped");
        assert!(
            heard
                .0
                .lock()
                .unwrap()
                .iter()
                .all(|(i, a)| i == "eth1" && *a == ip)
        );
    }

    const MAC: Mac = [0x02, 0x5e, 0, 0, 0, 1];

    #[test]
    fn garp_has_the_vip_as_sender_and_target() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &MAC, "sender MAC");
        assert_eq!(&f[28..32], &[192, 0, 2, 1], "sender IP");
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &[192, 0, 2, 1], "target IP");
    }

    #[test]
    fn unsolicited_na_checksums_to_zero() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let f = unsolicited_na_frame(MAC, ip);
        assert_eq!(f.len(), 86);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[20], 58, "next header ICMPv6");
        assert_eq!(f[21], 255, "hop limit");
        assert_eq!(&f[22..38], &ip.octets(), "source is the VIP");
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20, "Override, not Solicited");
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0x5e, 0, 0, 0, 1]);
        // Verify: pseudo-header + ICMPv6 with its checksum sums to 0xffff.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[22..54]);
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(fold(csum(csum(0, &pseudo), icmp)), 0);
    }

    #[test]
    fn a_missing_interface_is_logged_not_fatal() {
        let g = Garp(GarpConfig {
            count: 2,
            interval: Duration::from_millis(1),
        });
        assert_eq!(g.burst("nosuchif0", "192.0.2.1".parse().unwrap()), 0);
    }
}
