//! Seesaw's sysctls (reference §5.7), applied idempotently: a value already right is not
//! written, a key this kernel lacks (e.g. `net.ipv4.vs.*` without IPVS) is skipped and logged,
//! and failures are reported per key rather than aborting the rest.

use std::path::{Path, PathBuf};

/// The system-wide settings.
pub const SYSTEM: &[(&str, &str)] = &[
    ("net/ipv4/neigh/default/gc_thresh1", "1024"),
    ("net/ipv4/neigh/default/gc_thresh2", "2048"),
    ("net/ipv4/neigh/default/gc_thresh3", "4096"),
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv4/vs/conntrack", "1"),
    ("net/netfilter/nf_conntrack_tcp_timeout_established", "900"),
    ("net/ipv4/vs/expire_nodest_conn", "1"),
];

/// The per-interface IPv4 settings (`<if>` is replaced by `all`, `default` and each interface).
pub const PER_IF_V4: &[(&str, &str)] = &[
    ("accept_local", "1"),
    ("arp_filter", "1"),
    ("arp_ignore", "1"),
    ("arp_announce", "2"),
    ("arp_notify", "1"),
    ("rp_filter", "2"),
    ("send_redirects", "0"),
];

/// The per-interface IPv6 settings.
pub const PER_IF_V6: &[(&str, &str)] = &[
    ("autoconf", "0"),
    ("accept_dad", "0"),
    ("dad_transmits", "0"),
];

/// Every (path relative to `/proc/sys`, value) Seesaw sets for `interfaces`.
pub fn wanted(interfaces: &[&str]) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> =
        SYSTEM.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    for i in ["all", "default"].iter().chain(interfaces) {
        for (k, v) in PER_IF_V4 {
            out.push((format!("net/ipv4/conf/{i}/{k}"), v));
        }
        for (k, v) in PER_IF_V6 {
            out.push((format!("net/ipv6/conf/{i}/{k}"), v));
        }
    }
    out
}

/// The per-interface settings only, for interfaces created later (VLAN sub-interfaces).
pub fn per_interface(interfaces: &[&str]) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for i in interfaces {
        for (k, v) in PER_IF_V4 {
            out.push((format!("net/ipv4/conf/{i}/{k}"), *v));
        }
        for (k, v) in PER_IF_V6 {
            out.push((format!("net/ipv6/conf/{i}/{k}"), *v));
        }
    }
    out
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already had the value.
    Unchanged,
    /// Written.
    Set,
    /// The kernel has no such key.
    Missing,
    /// Writing failed.
    Failed(String),
}

/// Applies `wanted` under `root` (normally `/proc/sys`).
pub fn apply(root: &Path, wanted: &[(String, &str)]) -> Vec<(String, Outcome)> {
    wanted
        .iter()
        .map(|(k, v)| {
            let path: PathBuf = root.join(k);
            let o = match std::fs::read_to_string(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Missing,
                Ok(cur) if cur.trim() == *v => Outcome::Unchanged,
                _ => match std::fs::write(&path, v) {
                    Ok(()) => Outcome::Set,
                    Err(e) => Outcome::Failed(e.to_string()),
                },
            };
            match &o {
                Outcome::Set => tracing::info!("sysctl {k} = {v}"),
                Outcome::Failed(e) => tracing::warn!("sysctl {k} = {v}: {e}"),
                Outcome::Missing => tracing::debug!("sysctl {k}: not in this kernel"),
                Outcome::Unchanged => {}
            }
            (k.clone(), o)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_idempotently_and_skips_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("net/ipv4")).unwrap();
        std::fs::write(root.join("net/ipv4/ip_forward"), "0\n").unwrap();
        let want = vec![
            ("net/ipv4/ip_forward".to_owned(), "1"),
            ("net/ipv4/vs/conntrack".to_owned(), "1"),
        ];
        let first = apply(root, &want);
        assert_eq!(first[0].1, Outcome::Set);
        assert_eq!(first[1].1, Outcome::Missing);
        assert_eq!(
            std::fs::read_to_string(root.join("net/ipv4/ip_forward")).unwrap(),
            "1"
        );
        assert_eq!(apply(root, &want)[0].1, Outcome::Unchanged, "idempotent");
    }

    #[test]
    fn wanted_covers_all_default_and_each_interface() {
        let w = wanted(&["eth1"]);
        assert!(w.contains(&("net/ipv4/conf/eth1/arp_ignore".to_owned(), "1")));
        assert!(w.contains(&("net/ipv6/conf/default/accept_dad".to_owned(), "0")));
        assert!(w.contains(&("net/ipv4/ip_forward".to_owned(), "1")));
        let p = per_interface(&["eth1.10"]);
        assert_eq!(p.len(), PER_IF_V4.len() + PER_IF_V6.len());
        assert!(p.contains(&("net/ipv4/conf/eth1.10/arp_notify".to_owned(), "1")));
    }
}
