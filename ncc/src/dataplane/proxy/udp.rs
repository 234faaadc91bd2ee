//! UDP forwarding: one worker thread per core, each with its own `SO_REUSEPORT` socket on the
//! VIP:port (the kernel keeps a client's datagrams on one worker), an epoll set, and a flow table
//! owned by that thread alone (no locks on the packet path). Datagrams are received and sent in
//! batches with `recvmmsg` (the VIP socket asks for GRO, so a receive may hold several datagrams
//! of one client, split again here); a batch's datagrams of one flow leave as one UDP GSO message
//! (`UDP_SEGMENT`: the kernel splits it into the original datagrams) when they have the same
//! size, else with `sendmmsg` — also for good once the kernel refuses GSO.
//!
//! A flow is (client address, discriminator): the discriminator is 0 for client-keyed flows, the
//! hash of the payload key (e.g. KCP `conv` = bytes 0:4) for payload-keyed flows — so one client
//! port can carry several sessions, each pinned by the consistent hash of its key — or the
//! chosen destination in per-packet mode. Each flow owns a socket connected to its destination;
//! replies arriving there are relayed to the client from the VIP socket. Flows expire after the
//! idle timeout; the table is bounded (new flows beyond the bound are dropped and counted). A
//! removed destination's flows continue until idle or until its drain timeout passes.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::ServiceCounters;
use super::rules::Verdict;
use super::sys::{Batch, Epoll};
use super::table::{DestState, Table};
use crate::model::{ServiceKey, UdpMode};
use crate::sched::{hash_addr, hash_bytes};

/// Datagrams per receive or send batch.
const BATCH: usize = 32;
/// Largest datagram relayed (bigger ones are truncated by the kernel and dropped here).
const MAX_DATAGRAM: usize = 65_535;
/// Epoll wait, which bounds how late a stop or an idle sweep can be.
const TICK_MS: i32 = 50;
/// Token of the VIP socket in the epoll set.
const VIP_TOKEN: u64 = u64::MAX;

/// Binds one worker's VIP socket.
pub(super) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = super::sys::reuse_port_socket(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    // Best effort: datagrams of one client arriving together come up in one receive.
    if offload()
        && let Err(e) = super::sys::enable_gro(sock.as_fd())
    {
        tracing::debug!(error = %e, "UDP GRO not available");
    }
    Ok(sock.into())
}

/// Whether UDP GSO/GRO are used: yes unless `SEESAW_UDP_OFFLOAD=off` is set in the
/// environment (for measuring what they bring, or for a kernel or NIC that mishandles them).
fn offload() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SEESAW_UDP_OFFLOAD").map_or(true, |v| v != "off"))
}

struct Flow {
    key: (SocketAddr, u64),
    client: SocketAddr,
    dest: Arc<DestState>,
    sock: UdpSocket,
    last: Instant,
}

/// One worker's state.
struct Worker {
    key: ServiceKey,
    vip: UdpSocket,
    epoll: Epoll,
    table: Arc<ArcSwap<Table>>,
    counters: Arc<ServiceCounters>,
    flows: Vec<Option<Flow>>,
    free: Vec<usize>,
    by_key: HashMap<(SocketAddr, u64), usize>,
    rx: Batch,
    tx: Batch,
    /// Flow slot of each datagram queued in `tx` (sends are grouped by flow socket).
    tx_flow: Vec<usize>,
    /// Whether UDP GSO is used (on until the kernel refuses it once).
    gso: bool,
    now: Instant,
}

/// Runs one worker until `stop` is set.
pub(super) fn run(
    key: ServiceKey,
    vip: UdpSocket,
    table: Arc<ArcSwap<Table>>,
    counters: Arc<ServiceCounters>,
    stop: Arc<AtomicBool>,
) {
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(service = %key, error = %e, "cannot create epoll");
            return;
        }
    };
    if let Err(e) = epoll.add(vip.as_raw_fd(), VIP_TOKEN) {
        tracing::error!(service = %key, error = %e, "cannot watch the VIP socket");
        return;
    }
    let mut w = Worker {
        key,
        vip,
        epoll,
        table,
        counters,
        flows: Vec::new(),
        free: Vec::new(),
        by_key: HashMap::new(),
        rx: Batch::new(BATCH, MAX_DATAGRAM),
        tx: Batch::new(BATCH, MAX_DATAGRAM),
        tx_flow: Vec::with_capacity(BATCH),
        gso: offload(),
        now: Instant::now(),
    };
    let mut ready = Vec::new();
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = w.epoll.wait(&mut ready, TICK_MS) {
            tracing::error!(service = %w.key, error = %e, "epoll failed");
            return;
        }
        w.now = Instant::now();
        for &t in &ready {
            if t == VIP_TOKEN {
                w.relay_client_datagrams();
            } else {
                w.relay_backend_replies(t as usize);
            }
        }
        if w.now.duration_since(last_sweep) >= Duration::from_millis(250) {
            last_sweep = w.now;
            w.sweep();
        }
    }
    // Dropping the worker closes every flow socket.
    for f in w.flows.iter().flatten() {
        f.dest.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// Receives client datagrams (a few batches at most per wakeup, so replies keep flowing).
    fn relay_client_datagrams(&mut self) {
        for _ in 0..8 {
            let n = match self.rx.recv(self.vip.as_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(service = %self.key, error = %e, "receive failed");
                    return;
                }
            };
            let table = self.table.load_full();
            self.tx.len = 0;
            self.tx_flow.clear();
            for i in 0..n {
                let Some(client) = self.rx.addr(i) else {
                    continue;
                };
                // A slot holds one datagram, or several of one client coalesced by GRO: each
                // is routed (and may go to another flow) on its own.
                let (len, seg) = (self.rx.payload(i).len(), self.rx.segment(i));
                let mut at = 0;
                loop {
                    let end = (at + seg).min(len);
                    if let Some(slot) = self.flow_for(&table, i, at..end, client) {
                        if self.tx.len >= self.tx.capacity() {
                            self.flush_to_backends();
                        }
                        let payload = &self.rx.payload(i)[at..end];
                        if self.tx.push(payload, None) {
                            self.tx_flow.push(slot);
                            if let Some(f) = self.flows[slot].as_mut() {
                                f.last = self.now;
                                f.dest
                                    .counters
                                    .shard()
                                    .bytes_in
                                    .fetch_add((end - at) as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    at = end;
                    if at >= len {
                        break;
                    }
                }
            }
            self.flush_to_backends();
            if n < BATCH {
                return;
            }
        }
    }

    /// Sends the queued datagrams, each run of datagrams of one flow together (GSO or
    /// `sendmmsg`), and empties the queue.
    fn flush_to_backends(&mut self) {
        let mut start = 0;
        let total = self.tx.len;
        while start < total {
            let slot = self.tx_flow[start];
            let mut end = start + 1;
            while end < total && self.tx_flow[end] == slot {
                end += 1;
            }
            if let Some(f) = self.flows[slot].as_ref() {
                let dropped = send_run(
                    &mut self.tx,
                    f.sock.as_fd(),
                    start,
                    end,
                    None,
                    &mut self.gso,
                );
                self.counters
                    .send_errors
                    .fetch_add(dropped, Ordering::Relaxed);
            }
            start = end;
        }
        self.tx.len = 0;
        self.tx_flow.clear();
    }

    /// The flow slot for datagram `i` of the receive batch, creating the flow if needed; `None`
    /// when the datagram is denied or cannot be forwarded (counted).
    fn flow_for(
        &mut self,
        table: &Table,
        i: usize,
        range: std::ops::Range<usize>,
        client: SocketAddr,
    ) -> Option<usize> {
        let opts = &table.spec.opts;
        let rules = &table.rules;
        let disc = rules
            .hash_key(&self.rx.payload(i)[range.clone()])
            .map_or(0, hash_bytes);
        let per_packet = opts.udp_mode == UdpMode::PerPacket || opts.kernel.one_packet;
        if !per_packet && let Some(&slot) = self.by_key.get(&(client, disc)) {
            let live = self.flows[slot]
                .as_ref()
                .is_some_and(|f| !f.dest.is_evicted());
            if live {
                return Some(slot);
            }
            self.remove(slot);
        }
        let payload = &self.rx.payload(i)[range];
        let group = match rules.route(payload, None) {
            Verdict::Deny => {
                self.counters.denied.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Verdict::Group(g) => g,
        };
        let src = rules
            .hash_key(payload)
            .map_or_else(|| hash_addr(client), hash_bytes);
        let Some(dest) = table.pick(group, src, &[]).cloned() else {
            self.counters.no_backend.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let fkey = if per_packet {
            (client, hash_addr(dest.addr))
        } else {
            (client, disc)
        };
        if let Some(&slot) = self.by_key.get(&fkey) {
            return Some(slot);
        }
        if self.by_key.len() >= opts.udp_max_flows as usize {
            self.sweep();
            if self.by_key.len() >= opts.udp_max_flows as usize {
                self.counters.table_full.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let sock = match upstream(dest.addr) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(service = %self.key, dest = %dest.addr, error = %e, "cannot open a flow socket");
                self.counters.no_backend.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.flows.push(None);
            self.flows.len() - 1
        });
        if let Err(e) = self.epoll.add(sock.as_raw_fd(), slot as u64) {
            tracing::debug!(service = %self.key, error = %e, "cannot watch a flow socket");
            self.free.push(slot);
            return None;
        }
        dest.counters.active.fetch_add(1, Ordering::Relaxed);
        dest.counters.total.fetch_add(1, Ordering::Relaxed);
        self.flows[slot] = Some(Flow {
            key: fkey,
            client,
            dest,
            sock,
            last: self.now,
        });
        self.by_key.insert(fkey, slot);
        Some(slot)
    }

    /// Relays replies of flow `slot` to its client.
    fn relay_backend_replies(&mut self, slot: usize) {
        for _ in 0..8 {
            let Some(f) = self.flows.get(slot).and_then(Option::as_ref) else {
                return;
            };
            let n = match self.rx.recv(f.sock.as_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // ECONNREFUSED (the destination's port is closed): keep the flow, it may
                    // come back; it expires when idle.
                    return;
                }
            };
            let client = f.client;
            let dest = f.dest.clone();
            let (vip, errors) = (self.vip.as_fd(), &self.counters.send_errors);
            self.tx.len = 0;
            let mut bytes = 0u64;
            for i in 0..n {
                let p = self.rx.payload(i);
                bytes += p.len() as u64;
                // One datagram, or several coalesced by GRO: relayed one by one.
                let seg = self.rx.segment(i);
                let mut chunks = p.chunks(seg);
                let first = chunks.next().unwrap_or_default();
                for d in std::iter::once(first).chain(chunks) {
                    if self.tx.len >= self.tx.capacity() {
                        send_replies(&mut self.tx, vip, client, &mut self.gso, errors);
                    }
                    self.tx.push(d, Some(client));
                }
            }
            dest.counters
                .shard()
                .bytes_out
                .fetch_add(bytes, Ordering::Relaxed);
            if let Some(f) = self.flows[slot].as_mut() {
                f.last = self.now;
            }
            send_replies(&mut self.tx, vip, client, &mut self.gso, errors);
            if n < BATCH {
                return;
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(f) = self.flows.get_mut(slot).and_then(Option::take) {
            self.by_key.remove(&f.key);
            f.dest.counters.active.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
            // Closing the socket removes it from the epoll set.
        }
    }

    /// Forgets idle flows and flows of destinations whose drain has ended.
    fn sweep(&mut self) {
        let idle = Duration::from_millis(u64::from(
            self.table.load().spec.opts.udp_idle_timeout_ms.max(1),
        ));
        let now = self.now;
        let dead: Vec<usize> = self
            .flows
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let f = f.as_ref()?;
                (now.duration_since(f.last) >= idle || f.dest.is_evicted()).then_some(i)
            })
            .collect();
        for i in dead {
            self.remove(i);
        }
    }
}

/// Most datagrams in one GSO send (older kernels' `UDP_MAX_SEGMENTS`).
const GSO_MAX_SEGS: usize = 64;
/// Most payload bytes in one GSO send (an IP packet's 64 KB less headers).
const GSO_MAX_BYTES: usize = 65_000;

/// Sends every queued datagram of `tx` to `client` on the VIP socket `vip` (see [`send_run`]),
/// counts the dropped ones in `errors`, and empties the queue.
fn send_replies(
    tx: &mut Batch,
    vip: BorrowedFd<'_>,
    client: SocketAddr,
    gso: &mut bool,
    errors: &AtomicU64,
) {
    let total = tx.len;
    let dropped = send_run(tx, vip, 0, total, Some(client), gso);
    errors.fetch_add(dropped, Ordering::Relaxed);
    tx.len = 0;
}

/// Sends the queued datagrams `from..end` of `tx` on `fd` (to `dest`, or the connected peer):
/// with `gso`, each run of equal-sized datagrams (the last of a run may be shorter) as one UDP
/// GSO message; single datagrams, and everything once the kernel has refused GSO (`gso` is
/// then cleared for good), with `sendmmsg`. Returns how many datagrams were dropped (socket
/// buffer full, or an earlier ICMP error reported on a connected socket).
fn send_run(
    tx: &mut Batch,
    fd: BorrowedFd<'_>,
    from: usize,
    end: usize,
    dest: Option<SocketAddr>,
    gso: &mut bool,
) -> u64 {
    let mut dropped = 0u64;
    let mut i = from;
    while i < end {
        let mut j = i + 1;
        if *gso {
            let seg = tx.slot_len(i);
            let mut bytes = seg;
            while j < end && j - i < GSO_MAX_SEGS {
                let l = tx.slot_len(j);
                if l > seg || bytes + l > GSO_MAX_BYTES {
                    break;
                }
                bytes += l;
                j += 1;
                if l < seg {
                    break;
                }
            }
            if j - i >= 2
                && let Ok(seg) = u16::try_from(seg)
                && seg > 0
            {
                match tx.send_gso(fd, i, j, seg, dest) {
                    Ok(()) => {
                        i = j;
                        continue;
                    }
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EIO)
                        ) =>
                    {
                        // No GSO here: send this run and everything after with sendmmsg.
                        tracing::debug!(error = %e, "UDP GSO refused, using sendmmsg");
                        *gso = false;
                        j = end;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dropped += (j - i) as u64;
                        i = j;
                        continue;
                    }
                }
            }
        } else {
            j = end;
        }
        dropped += send_mmsg(tx, fd, i, j);
        i = j;
    }
    dropped
}

/// Sends slots `from..end` with `sendmmsg` (each slot to its own address, or the connected
/// peer); returns how many were dropped.
fn send_mmsg(tx: &mut Batch, fd: BorrowedFd<'_>, from: usize, end: usize) -> u64 {
    let keep = tx.len;
    tx.len = end;
    let mut at = from;
    let mut dropped = 0;
    while at < end {
        match tx.send(fd, at) {
            Ok(0) => {
                dropped = (end - at) as u64;
                break;
            }
            Ok(k) => at += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                dropped = (end - at) as u64;
                break;
            }
        }
    }
    tx.len = keep;
    dropped
}

/// A non-blocking socket connected to a destination, for one flow.
fn upstream(dest: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = if dest.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(dest)?;
    s.set_nonblocking(true)?;
    Ok(s)
}
