//! Where each process's socket lives under the run directory (`<run>/<component>/<component>.sock`).

use std::path::{Path, PathBuf};

/// The engine's API socket.
pub fn engine_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("engine").join("engine.sock")
}

/// The ncc's API socket.
pub fn ncc_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("ncc").join("ncc.sock")
}

/// ncc's lease socket (Unix datagrams from ha: the fence's renewals).
pub fn ncc_lease_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("ncc").join("lease.sock")
}

/// The proxy relay's socket (`seesaw_proxy`, the userspace data plane ncc programs).
pub fn proxy_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("proxy").join("proxy.sock")
}
