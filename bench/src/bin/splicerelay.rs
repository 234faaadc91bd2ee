//! splicerelay: the simplest TCP relay there is, as a floor for the bulk benchmark: blocking
//! sockets, one thread per direction, `splice` through a 1 MB pipe, no event loop, no
//! scheduling, no counters. Whatever it loses against the direct path is the cost of the second
//! TCP connection itself, which every relaying proxy pays.
//!
//! `splicerelay LISTEN BACKEND`: accepts on LISTEN and relays every connection to BACKEND until
//! it is killed. Both addresses must be loopback addresses.
#![allow(
    clippy::print_stderr,
    reason = "a command-line tool reporting its errors"
)]

use std::net::{Shutdown, TcpListener, TcpStream};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};

const CHUNK: usize = 1 << 20;

fn usage() -> ! {
    eprintln!("usage: splicerelay LISTEN BACKEND   (loopback addresses only)");
    std::process::exit(64);
}

/// Moves bytes from `src` to `dst` until `src` ends, then half-closes `dst`.
fn pump(src: &TcpStream, dst: &TcpStream) -> nix::Result<()> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // Best effort, as in the proxy: the kernel may cap the size.
    let _ = fcntl(&w, FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    loop {
        let n = splice(src, None, &w, None, CHUNK, SpliceFFlags::SPLICE_F_MOVE)?;
        if n == 0 {
            let _ = dst.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            left -= splice(&r, None, dst, None, left, SpliceFFlags::SPLICE_F_MOVE)?;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = |s: &str| seesaw_bench::loopback_addr("splicerelay", s, usage);
    if args.len() != 3 {
        usage();
    }
    let (listen, backend) = (addr(&args[1]), addr(&args[2]));
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| {
        eprintln!("splicerelay: bind {listen}: {e}");
        std::process::exit(70);
    });
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let server = match TcpStream::connect(backend) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("splicerelay: connect {backend}: {e}");
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        for (src, dst) in [(&client, &server), (&server, &client)] {
            let (Ok(src), Ok(dst)) = (src.try_clone(), dst.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || {
                if let Err(e) = pump(&src, &dst) {
                    eprintln!("splicerelay: {e}");
                    let _ = dst.shutdown(Shutdown::Both);
                }
            });
        }
    }
}
