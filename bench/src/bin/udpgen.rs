//! udpgen: a bounded loopback UDP load generator and sink for the data-plane benchmark.
//!
//! `udpgen send TARGET SECS [SIZE [gso]]` sends SIZE-byte datagrams (default 64) in batches of 64
//! with `sendmmsg` (with `gso`: as one UDP GSO message of 64 datagrams per `sendmsg`) to TARGET
//! for SECS seconds (at most 60) and prints the number sent.
//! `udpgen sink LISTEN SECS` counts datagrams for SECS seconds (at most 120) and prints
//! `received N rate R/s` over the time between the first and the last datagram.
//! Only loopback targets are accepted.
#![allow(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reporting its result"
)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!("usage: udpgen send TARGET SECS [SIZE] | udpgen sink LISTEN SECS");
    std::process::exit(64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = |s: &str| seesaw_bench::loopback_addr("udpgen", s, usage);
    match args.get(1).map(String::as_str) {
        Some("send") if args.len() >= 4 => {
            let to = addr(&args[2]);
            let secs: u64 = args[3].parse().unwrap_or_else(|_| usage());
            let size: usize = args
                .get(4)
                .map_or(64, |s| s.parse().unwrap_or_else(|_| usage()));
            let gso = args.get(5).is_some_and(|m| m == "gso");
            let dur = Duration::from_secs(secs.min(60));
            let size = size.clamp(1, 1472);
            let sent = if gso {
                send_gso(to, dur, size)
            } else {
                send(to, dur, size)
            };
            println!("sent {sent}");
        }
        Some("sink") if args.len() >= 4 => {
            let at = addr(&args[2]);
            let secs: u64 = args[3].parse().unwrap_or_else(|_| usage());
            let (n, rate) = sink(at, Duration::from_secs(secs.min(120)));
            println!("received {n} rate {rate:.0}/s");
        }
        _ => usage(),
    }
}

fn send(to: SocketAddr, dur: Duration, size: usize) -> u64 {
    let sock = connected(to);
    const N: usize = 64;
    let mut bufs = vec![vec![0u8; size]; N];
    for (i, b) in bufs.iter_mut().enumerate() {
        b[0] = i as u8;
    }
    let mut iovs = iovecs(&mut bufs);
    let mut hdrs = mmsghdrs(&mut iovs);
    let end = Instant::now() + dur;
    let mut sent = 0u64;
    while Instant::now() < end {
        // SAFETY: `hdrs` holds N headers pointing at live buffers; the socket is open.
        let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), N as u32, 0) };
        if r > 0 {
            sent += r as u64;
        }
    }
    sent
}

/// Like `send`, but 64 datagrams per `sendmsg` as one UDP GSO message (`UDP_SEGMENT`): the
/// kernel cuts it into 64 separate SIZE-byte datagrams, so the generator costs far less CPU per
/// datagram and the path under test, not the generator, is what limits the rate. Falls back to
/// `send` when the kernel refuses GSO.
fn send_gso(to: SocketAddr, dur: Duration, size: usize) -> u64 {
    let sock = connected(to);
    const N: usize = 64;
    let mut buf = vec![0u8; size * N];
    for i in 0..N {
        buf[i * size] = i as u8;
    }
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    // SAFETY: the control buffer (32 bytes, 8-aligned) holds one header and a u16.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size as u16);
    }
    let end = Instant::now() + dur;
    let mut sent = 0u64;
    while Instant::now() < end {
        // SAFETY: `msg` points at live buffers (payload, control) for the call.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &raw const msg, 0) };
        if r > 0 {
            sent += N as u64;
        } else if sent == 0 {
            eprintln!(
                "udpgen: GSO refused ({}), sending without",
                std::io::Error::last_os_error()
            );
            return send(to, dur, size);
        }
    }
    sent
}

/// A loopback UDP socket on an ephemeral port, connected to `to`.
fn connected(to: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind(if to.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .unwrap_or_else(|e| panic!("bind: {e}"));
    sock.connect(to).unwrap_or_else(|e| panic!("connect: {e}"));
    sock
}

/// One iovec per buffer, pointing at it.
fn iovecs<B: AsMut<[u8]>>(bufs: &mut [B]) -> Vec<libc::iovec> {
    bufs.iter_mut()
        .map(|b| {
            let b = b.as_mut();
            libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            }
        })
        .collect()
}

/// One `sendmmsg`/`recvmmsg` header per iovec, each pointing at its one iovec; `iovs` must
/// outlive the headers.
fn mmsghdrs(iovs: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iovs.iter_mut()
        .map(|iov| {
            // SAFETY: an all-zero msghdr is valid; the iovec is set below.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect()
}

fn sink(at: SocketAddr, dur: Duration) -> (u64, f64) {
    let sock = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::DGRAM, None)
        .unwrap_or_else(|e| panic!("socket: {e}"));
    let _ = sock.set_recv_buffer_size(8 << 20);
    sock.bind(&at.into())
        .unwrap_or_else(|e| panic!("bind {at}: {e}"));
    let sock: UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    // Counts with recvmmsg, 64 datagrams per call, so the sink is not the bottleneck.
    const N: usize = 64;
    let mut bufs = vec![[0u8; 2048]; N];
    let mut iovs = iovecs(&mut bufs);
    let mut hdrs = mmsghdrs(&mut iovs);
    let end = Instant::now() + dur;
    let (mut n, mut first, mut last) = (0u64, None, Instant::now());
    while Instant::now() < end {
        // SAFETY: `hdrs` holds N headers pointing at live buffers; the socket is open. The
        // socket's read timeout bounds the wait (MSG_WAITFORONE: return once one arrived).
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                N as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r > 0 {
            n += r as u64;
            last = Instant::now();
            first.get_or_insert(last);
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    (n, if secs > 0.0 { n as f64 / secs } else { 0.0 })
}
