//! What ncc's unit tests share: golden bytes written as hex, running a test in a private
//! network namespace (root only), a recording neighbour announcer, and a seeded generator.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::kernel::vips::Announce;

/// Bytes from hex with any whitespace and `|` separators (one group per field).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// A seeded xorshift generator: each call gives a number below its argument, the same sequence
/// for the same seed (the randomised tests are reproducible).
pub(crate) fn seeded(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

/// Runs `f` on a thread of its own in a new network namespace and waits for it (a panic in `f`
/// fails the test). Not root: says that `what` is skipped and runs nothing.
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
pub(crate) fn in_private_netns(what: &str, f: impl FnOnce() + Send + 'static) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: {what} needs root (private network namespace)");
        return;
    }
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f();
    })
    .join()
    .expect("netns thread");
}

/// An [`Announce`] that records each (interface, address) it is asked to announce.
#[derive(Debug, Clone, Default)]
pub(crate) struct Heard(pub(crate) Arc<Mutex<Vec<(String, IpAddr)>>>);

impl Announce for Heard {
    fn announce(&self, iface: &str, addr: IpAddr) {
        self.0.lock().unwrap().push((iface.to_owned(), addr));
    }
}
