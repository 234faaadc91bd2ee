//! Which data plane `[dataplane] kind = auto` means on this host, decided the same way wherever
//! it is asked: by ncc at its start (for itself), and by the engine's `--validate` (for the ncc
//! the watchdog would start here, which runs privileged). IPVS where the kernel has it, else
//! nftables where `nft` works, else the userspace proxy; a process without CAP_NET_ADMIN can
//! drive only the proxy.

use std::path::Path;

/// `CAP_NET_ADMIN`'s bit number (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;

/// Whether this process may change the network: `CAP_NET_ADMIN` in the effective set (root has
/// it unless dropped), read from `/proc/self/status`.
pub fn privileged() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff(&s))
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text.
pub fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Whether the kernel has IPVS (`/proc/net/ip_vs`).
pub fn ipvs_kernel() -> bool {
    Path::new("/proc/net/ip_vs").exists()
}

/// `auto` for a process that is `privileged` (with CAP_NET_ADMIN) or not, where `nft_works`
/// says whether `nft` runs for it: `ipvs`, `nftables` or `proxy`.
pub fn auto(privileged: bool, ipvs_kernel: bool, nft_works: bool) -> &'static str {
    match (privileged, ipvs_kernel, nft_works) {
        (false, _, _) => "proxy",
        (true, true, _) => "ipvs",
        (true, false, true) => "nftables",
        (true, false, false) => "proxy",
    }
}

/// `auto` for the ncc the watchdog would start on this host (privileged, as installed), asked
/// by anyone (the engine's `--validate` need not be root): an `nft` executable on `PATH` (or in
/// /usr/sbin, /sbin) stands in for a working `nft`. Nothing is run.
pub fn auto_for_installed_ncc() -> &'static str {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(
        ["/usr/sbin", "/sbin"]
            .into_iter()
            .map(std::path::PathBuf::from),
    );
    let nft = dirs.into_iter().any(|d| is_executable(&d.join("nft")));
    auto(true, ipvs_kernel(), nft)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_parses_the_mask() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(cap_eff(s), Some(0x1000));
        assert_eq!(cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(cap_eff(""), None);
    }

    #[test]
    fn auto_prefers_ipvs_then_nftables_and_needs_privilege() {
        assert_eq!(auto(false, true, true), "proxy");
        assert_eq!(auto(true, true, true), "ipvs");
        assert_eq!(auto(true, true, false), "ipvs");
        assert_eq!(auto(true, false, true), "nftables");
        assert_eq!(auto(true, false, false), "proxy");
    }
}
