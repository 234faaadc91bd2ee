//! What ncc's unit tests share: golden bytes written as hex, and running a test in a private
//! network namespace (root only).

/// Bytes from hex with any whitespace and `|` separators (one group per field).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
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
