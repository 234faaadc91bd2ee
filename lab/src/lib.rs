//! The end-to-end test harness: everything a test needs to run the real Seesaw binaries as
//! separate processes and talk to them over real sockets. Layout:
//!
//! - [`netns`]: the root-only lab of network namespaces on a private bridge ([`Lab`]);
//! - [`loopback`]: the unprivileged suite on 127.0.0.0/8 ([`LoopbackSuite`]);
//! - [`ha_pair`]: the HA pair scene of `tests/ha.rs` (config, prober, who serves);
//! - [`nat_lab`]: the namespace scene of whole-suite kernel-plane tests ([`nat_lab::NatLab`]);
//! - [`procs`]: spawned processes, teardown (SIGTERM, then SIGKILL), `/proc` lookups, log dumps;
//! - [`cmd`]: running `ip` and one-shot tools to completion;
//! - [`capture`]: gratuitous ARP / unsolicited NA capture inside a node;
//! - [`config`]: writers for `seesaw.cfg`, `cluster.pb` and `watchdog.cfg`;
//! - [`shell_view`]: parsing the shell's destination table;
//! - [`http`]: a hand-written HTTP/1.0 and keep-alive client over std sockets;
//! - [`wait`]: bounded waits;
//! - [`bins`]: locating the workspace's debug binaries;
//! - [`anycast`]: the anycast labs' bird2 router (ECMP), its routes, sysctls in a node;
//! - [`vm`]: the kernel lab, Debian's kernel (IPVS) under QEMU running a script.
//!
//! The tests themselves live in `tests/`: `smoke.rs` (the lab, root only) and `loopback_e2e.rs`
//! (runs everywhere).
#![forbid(unsafe_code)]

pub mod anycast;
pub mod bins;
pub mod capture;
pub mod cmd;
pub mod config;
pub mod error;
pub mod ha_pair;
pub mod http;
pub mod loopback;
pub mod nat_lab;
pub mod netns;
pub mod procs;
pub mod shell_view;
pub mod vm;
pub mod wait;

pub use error::LabError;
pub use loopback::LoopbackSuite;
pub use netns::{Lab, LabBuilder};
pub use procs::ProcId;
pub use wait::{wait_for, wait_until};

/// Whether lab tests can run here: true as root with iproute2 installed. Otherwise prints why
/// the test is skipped and returns false.
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
pub fn require_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: lab tests need root (network namespaces)");
        return false;
    }
    if !cmd::ip_available() {
        eprintln!("skipping: lab tests need iproute2 (`ip` not found or not runnable)");
        return false;
    }
    true
}

/// Whether an nftables lab test can run here: [`require_root`], and `nft` runs. Otherwise prints
/// why `what` is skipped and returns false.
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
pub fn require_nft(what: &str) -> bool {
    if !require_root() {
        return false;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: {what} needs nft (apt-get install nftables)");
        return false;
    }
    true
}
