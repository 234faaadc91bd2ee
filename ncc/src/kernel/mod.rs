//! Everything ncc does to the kernel outside the data-plane tables: privilege detection,
//! Seesaw's sysctls ([`sysctl`]), VIPs and interfaces over rtnetlink ([`rtnl`], [`vips`]), the
//! LB interface with its HA role, policy routing, VMAC and VLANs ([`lb`]) and neighbour
//! announcements ([`garp`]). Each piece has a pure core and a narrow side-effecting
//! edge.

pub mod garp;
pub mod lb;
pub mod rtnl;
pub mod sysctl;
pub mod vips;

/// Whether this process may change the network: `CAP_NET_ADMIN` in the effective set (root has
/// it unless dropped), read from `/proc/self/status`.
pub fn privileged() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff(&s))
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// `CAP_NET_ADMIN`'s bit number (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;

/// The `CapEff:` mask of a `/proc/<pid>/status` text.
pub fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cap_eff_parses_the_mask() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(super::cap_eff(s), Some(0x1000));
        assert_eq!(super::cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(super::cap_eff(""), None);
    }
}
