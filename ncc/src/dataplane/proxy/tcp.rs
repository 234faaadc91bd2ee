//! TCP forwarding: one `SO_REUSEPORT` listener per worker thread (the kernel spreads new
//! connections across them), and per connection: optionally read the first bytes (bounded in
//! size and time) to route on payload rules or the TLS server name, pick a destination of the
//! group, connect with a timeout and retry the next destination, send an optional PROXY header
//! and the bytes already read, then relay both directions with `splice` (a plain copy when pipes
//! are unavailable), counting bytes as they pass and closing each direction on its own
//! (half-close). Each direction copies through a small buffer until a read fills it, then
//! switches to splice: small request/response messages cost fewest syscalls copied, bulk
//! streams least CPU spliced. A removed destination's connections end when its drain timeout passes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::ServiceCounters;
use super::rules::Verdict;
use super::table::{DestState, Table};
use super::{sys, tls};
use crate::model::{ProxyProtocol, ServiceKey};
use crate::sched::{hash_bytes, hash_ip};

/// How long a backend connect may take before the next destination is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many destinations are tried per client connection.
const MAX_TRIES: usize = 3;
/// Bytes moved per splice call when the pipe cannot be grown.
const SPLICE_LEN: usize = 1 << 16;
/// Pipe size asked for a spliced (bulk) direction.
const PIPE_SIZE: usize = 1 << 20;
/// Copy buffer per direction; a read that fills it switches the direction to splice.
const COPY_BUF: usize = 16 * 1024;

/// Binds one listener of a service (every worker binds its own with `SO_REUSEPORT`).
pub(super) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = sys::reuse_port_socket(addr, socket2::Type::STREAM, socket2::Protocol::TCP)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// The TCP worker threads as the accept loops see them: each worker's runtime and its number of
/// open connections.
#[derive(Debug)]
pub(super) struct Pool {
    handles: Vec<tokio::runtime::Handle>,
    open: Box<[AtomicUsize]>,
}

impl Pool {
    pub(super) fn new(handles: Vec<tokio::runtime::Handle>) -> Self {
        let open = handles.iter().map(|_| AtomicUsize::new(0)).collect();
        Self { handles, open }
    }

    pub(super) fn len(&self) -> usize {
        self.handles.len()
    }

    pub(super) fn spawn(&self, worker: usize, f: impl Future<Output = ()> + Send + 'static) {
        self.handles[worker].spawn(f);
    }

    /// The worker a connection accepted by worker `me` should run on, counted as open there:
    /// `me` unless another worker has at least two fewer open connections (ties stay put, so a
    /// balanced pool hands nothing over).
    fn place(&self, me: usize) -> usize {
        let mine = self.open[me].load(Ordering::Relaxed);
        let (best, least) = self
            .open
            .iter()
            .map(|o| o.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        let to = if least + 2 <= mine { best } else { me };
        self.open[to].fetch_add(1, Ordering::Relaxed);
        to
    }
}

/// One open connection on a worker, counted in [`Pool::place`]; uncounted when it ends.
struct Placed(Arc<Pool>, usize);

impl Drop for Placed {
    fn drop(&mut self) {
        self.0.open[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `stop` is cancelled; connections already relaying are not affected.
/// A connection runs on the worker [`Pool::place`] chooses.
pub(super) async fn accept_loop(
    listener: std::net::TcpListener,
    key: ServiceKey,
    table: Arc<ArcSwap<Table>>,
    counters: Arc<ServiceCounters>,
    stop: CancellationToken,
    pool: Arc<Pool>,
    me: usize,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(service = %key, error = %e, "cannot register listener");
            return;
        }
    };
    loop {
        // Biased: once the service is deleted no connection is served any more, even one the
        // kernel queued before the listener closes (an HA handover must not leave the old master
        // answering after the new one started).
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                let table = table.load_full();
                let counters = counters.clone();
                let to = pool.place(me);
                let placed = Placed(pool.clone(), to);
                let serve = async move |client: TcpStream| {
                    let _placed = placed;
                    if let Err(e) = handle(client, peer, &table, &counters).await {
                        tracing::debug!(service = %key, client = %peer, error = %e, "connection ended with an error");
                    }
                };
                if to == me {
                    tokio::spawn(serve(client));
                    continue;
                }
                // Another worker: move the socket to its runtime (its epoll set).
                match client.into_std() {
                    Ok(std) => pool.spawn(to, async move {
                        match TcpStream::from_std(std) {
                            Ok(client) => serve(client).await,
                            Err(e) => tracing::warn!(service = %key, client = %peer, error = %e, "cannot hand a connection to another worker"),
                        }
                    }),
                    Err(e) => tracing::warn!(service = %key, client = %peer, error = %e, "cannot hand a connection to another worker"),
                }
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(service = %key, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads the first bytes: until the rules can decide (`need` bytes, or a complete ClientHello
/// when SNI matters), `max` bytes, EOF, or `wait`.
async fn first_bytes(
    client: &mut TcpStream,
    need: usize,
    want_sni: bool,
    max: usize,
    wait: Duration,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(16_384));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let enough_bytes = buf.len() >= need.min(max);
        let sni_done = !want_sni || tls::parse(&buf) != tls::Sni::NeedMore;
        if (enough_bytes && sni_done) || buf.len() >= max {
            break;
        }
        let mut chunk = [0u8; 4096];
        let room = (max - buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, client.read(&mut chunk[..room])).await {
            Err(_) | Ok(Ok(0)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(buf)
}

/// Decrements a destination's active count when the connection ends, however it ends.
struct Active<'a>(&'a AtomicU64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(
    mut client: TcpStream,
    peer: SocketAddr,
    table: &Table,
    counters: &ServiceCounters,
) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let opts = &table.spec.opts;
    let rules = &table.rules;
    let mut head = Vec::new();
    let mut group = 0;
    let mut src = hash_ip(peer.ip());
    if !rules.is_trivial() {
        let max = if opts.first_bytes > 0 {
            opts.first_bytes as usize
        } else {
            rules.bytes_needed().max(1)
        };
        let want_sni = rules.needs_sni();
        let max = if want_sni { max.max(16_384) } else { max };
        let wait = Duration::from_millis(u64::from(opts.first_bytes_wait_ms.max(1)));
        head = first_bytes(&mut client, rules.bytes_needed(), want_sni, max, wait).await?;
        let sni_lower;
        let sni = if want_sni {
            match tls::parse(&head) {
                tls::Sni::Name(n) => {
                    sni_lower = n.to_ascii_lowercase();
                    Some(sni_lower.as_slice())
                }
                _ => None,
            }
        } else {
            None
        };
        match rules.route(&head, sni) {
            Verdict::Deny => {
                counters.denied.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Verdict::Group(g) => group = g,
        }
        if let Some(k) = rules.hash_key(&head) {
            src = hash_bytes(k);
        }
    }
    let mut tried: Vec<SocketAddr> = Vec::new();
    let tries = MAX_TRIES.min(table.group_len(group)).max(1);
    let (dest, mut backend): (&Arc<DestState>, TcpStream) = loop {
        let Some(d) = table.pick(group, src, &tried) else {
            counters.no_backend.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::other("no destination available"));
        };
        tried.push(d.addr);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(d.addr)).await {
            Ok(Ok(s)) => break (d, s),
            Ok(Err(e)) => {
                tracing::debug!(dest = %d.addr, error = %e, "connect failed, trying the next")
            }
            Err(_) => tracing::debug!(dest = %d.addr, "connect timed out, trying the next"),
        }
        if tried.len() >= tries {
            counters.no_backend.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::other("every destination tried failed"));
        }
    };
    let _ = backend.set_nodelay(true);
    let c = &dest.counters;
    c.active.fetch_add(1, Ordering::Relaxed);
    c.total.fetch_add(1, Ordering::Relaxed);
    let _active = Active(&c.active);
    let _flow = counters.flows.open(peer, dest.addr);
    let mut pre = Vec::new();
    match opts.proxy_protocol {
        ProxyProtocol::Off => {}
        ProxyProtocol::V1 => pre = proxy_v1(peer, client.local_addr()?),
        ProxyProtocol::V2 => pre = proxy_v2(peer, client.local_addr()?),
    }
    if !pre.is_empty() {
        backend.write_all(&pre).await?;
    }
    let bytes = c.shard();
    if !head.is_empty() {
        backend.write_all(&head).await?;
        bytes
            .bytes_in
            .fetch_add(head.len() as u64, Ordering::Relaxed);
    }
    tokio::select! {
        r = relay(&client, &backend, &bytes.bytes_in, &bytes.bytes_out) => r,
        () = Evicted::new(dest) => Ok(()),
    }
}

/// Resolves when a destination is evicted. Unlike polling `cancelled()` directly, it registers
/// with the token once per waker and otherwise only reads the destination's flag: the token is
/// shared by every connection of the destination on every worker, and each poll of a registered
/// `cancelled()` (like the token's own `is_cancelled`) takes the token's lock — a lock every core
/// would take on every message.
struct Evicted<'a> {
    dest: &'a DestState,
    wait: Pin<Box<WaitForCancellationFuture<'a>>>,
    registered: Option<Waker>,
}

impl<'a> Evicted<'a> {
    fn new(dest: &'a DestState) -> Self {
        Self {
            dest,
            wait: Box::pin(dest.evict.cancelled()),
            registered: None,
        }
    }
}

impl Future for Evicted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.dest.is_evicted() {
            return Poll::Ready(());
        }
        // Registered with this task's waker already: a cancellation wakes it.
        if this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let r = this.wait.as_mut().poll(cx);
        if r.is_pending() {
            this.registered = Some(cx.waker().clone());
        }
        r
    }
}

/// Relays both directions until both have ended; either direction's error ends both.
pub(super) async fn relay(
    client: &TcpStream,
    backend: &TcpStream,
    up: &AtomicU64,
    down: &AtomicU64,
) -> io::Result<()> {
    tokio::try_join!(pump(client, backend, up), pump(backend, client, down))?;
    Ok(())
}

/// Runs the non-blocking transfer `op` once `s` is ready for `interest`, retrying on
/// `WouldBlock`. With `drained_below` > 0, a transfer of fewer bytes than that means the kernel
/// had no more to read (or no more room to write): readiness is edge-triggered and tokio only
/// clears the readiness it observed before the call, so clearing it now is safe and saves the
/// syscall that would only return `EAGAIN` — one of three per message on a keep-alive stream.
async fn transfer(
    s: &TcpStream,
    interest: Interest,
    drained_below: usize,
    mut op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    loop {
        s.ready(interest).await?;
        let mut done = None;
        let r = s.try_io(interest, || {
            let n = op()?;
            if n > 0 && n < drained_below {
                done = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match r {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(n) = done {
                    return Ok(n);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Moves `from` → `to` until EOF, then shuts `to` down for writing. Starts by copying through a
/// small buffer (cheapest for request/response traffic); once a read fills the buffer the
/// stream is bulk, and the rest moves with `splice` through a pipe (when one can be had).
async fn pump(from: &TcpStream, to: &TcpStream, count: &AtomicU64) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = transfer(from, Interest::READABLE, COPY_BUF, || {
            sys::recv(from.as_fd(), &mut buf)
        })
        .await?;
        if n == 0 {
            shutdown_write(to);
            return Ok(());
        }
        let mut off = 0;
        while off < n {
            let m = transfer(to, Interest::WRITABLE, n - off, || {
                sys::send(to.as_fd(), &buf[off..n])
            })
            .await?;
            off += m;
            count.fetch_add(m as u64, Ordering::Relaxed);
        }
        if n == COPY_BUF
            && let Ok(pipe) = sys::pipe()
        {
            drop(buf);
            return pump_splice(from, to, pipe, count).await;
        }
    }
}

/// Moves `from` → `to` through a pipe with splice until EOF, then shuts `to` down for writing.
/// Both ends move at once: the pipe is refilled while it still holds bytes, so the peer's socket
/// never waits for the pipe to be emptied and the client's never waits for the peer's.
///
/// Readiness is edge-triggered, so it may only be cleared when the kernel has nothing more: a
/// splice into a pipe that still holds bytes can fail with `EAGAIN` because the *pipe* is full
/// (it fills by pages as well as by bytes), so then the read side waits for the write side to make
/// progress instead, and only an `EAGAIN` into an empty pipe proves the socket drained.
async fn pump_splice(
    from: &TcpStream,
    to: &TcpStream,
    (pr, pw): (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    count: &AtomicU64,
) -> io::Result<()> {
    let cap = sys::set_pipe_size(pw.as_fd(), PIPE_SIZE).unwrap_or(SPLICE_LEN);
    let mut held = 0usize;
    let mut eof = false;
    // The last splice in failed with bytes in the pipe: retry once the write side moved some.
    let mut in_blocked = false;
    loop {
        if eof && held == 0 {
            shutdown_write(to);
            return Ok(());
        }
        let want_in = !eof && !in_blocked && held < cap;
        let want_out = held > 0;
        tokio::select! {
            biased;
            r = to.ready(Interest::WRITABLE), if want_out => { r?; }
            r = from.ready(Interest::READABLE), if want_in => { r?; }
        }
        if want_out {
            match to.try_io(Interest::WRITABLE, || {
                sys::splice(pr.as_fd(), to.as_fd(), held)
            }) {
                Ok(0) => return Err(io::Error::other("splice to the peer made no progress")),
                Ok(m) => {
                    held -= m;
                    in_blocked = false;
                    count.fetch_add(m as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if !eof && !in_blocked && held < cap {
            let mut pipe_maybe_full = false;
            let r = from.try_io(Interest::READABLE, || {
                match sys::splice(from.as_fd(), pw.as_fd(), cap - held) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && held > 0 => {
                        // Keep the readiness: the socket may still hold bytes.
                        pipe_maybe_full = true;
                        Ok(0)
                    }
                    r => r,
                }
            });
            match r {
                Ok(_) if pipe_maybe_full => in_blocked = true,
                Ok(0) => eof = true,
                Ok(n) => held += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn shutdown_write(s: &TcpStream) {
    let sock = socket2::SockRef::from(s);
    let _ = sock.shutdown(std::net::Shutdown::Write);
}

/// PROXY protocol v1 header.
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let fam = if src.is_ipv4() && dst.is_ipv4() {
        "TCP4"
    } else {
        "TCP6"
    };
    let ip = |a: SocketAddr| match (fam, a.ip()) {
        ("TCP6", std::net::IpAddr::V4(v4)) => v4.to_ipv6_mapped().to_string(),
        (_, ip) => ip.to_string(),
    };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        ip(src),
        ip(dst),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// PROXY protocol v2 header (PROXY command, TCP over IPv4 or IPv6).
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21);
    let v6 = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    match (src.ip(), dst.ip()) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        _ => {
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(src));
            h.extend_from_slice(&v6(dst));
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    fn pool(n: usize) -> (Vec<tokio::runtime::Runtime>, Arc<Pool>) {
        let rts: Vec<_> = (0..n)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime")
            })
            .collect();
        let pool = Arc::new(Pool::new(rts.iter().map(|r| r.handle().clone()).collect()));
        (rts, pool)
    }

    fn open(p: &Pool) -> Vec<usize> {
        p.open.iter().map(|o| o.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn a_worker_that_accepts_everything_keeps_the_pool_within_two_connections() {
        let (_rts, p) = pool(3);
        let mut placed = Vec::new();
        for _ in 0..300 {
            let to = p.place(0);
            placed.push(Placed(p.clone(), to));
        }
        let o = open(&p);
        assert_eq!(o.iter().sum::<usize>(), 300);
        let (min, max) = (o.iter().min().copied(), o.iter().max().copied());
        assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 2), "{o:?}");
        // Ending connections uncounts them where they ran.
        placed.truncate(10);
        assert_eq!(open(&p).iter().sum::<usize>(), 10);
        drop(placed);
        assert_eq!(open(&p), vec![0, 0, 0]);
    }

    #[test]
    fn a_balanced_pool_hands_nothing_over() {
        let (_rts, p) = pool(2);
        let mut placed = Vec::new();
        for i in 0..100 {
            let me = i % 2;
            let to = p.place(me);
            assert_eq!(to, me, "connection {i} moved");
            placed.push(Placed(p.clone(), to));
        }
        assert_eq!(open(&p), vec![50, 50]);
    }
}
