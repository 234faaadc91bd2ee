//! What Seesaw does with iptables around IPVS, as one nftables table ncc owns, `inet
//! seesaw_ipvs`, rewritten whole in one `nft -f -` transaction whenever the services change
//! (reference: `../shared/reference/seesaw.md` §5.6):
//!
//! - **per-VIP filter** (`in`, hook input, before IPVS's own input hook): traffic to a VIP is
//!   accepted on the VIP's service ports (and the ports marked into a firewall-mark service)
//!   and for ICMP/ICMPv6; everything else aimed at the VIP is rejected;
//! - **firewall marks** (`pre`, hook prerouting, mangle priority): each `use_fwm` tuple
//!   VIP . protocol . port gets its service's mark, so IPVS's firewall-mark service takes it;
//! - **NAT source rules** (`post`, hook postrouting, srcnat): connections IPVS forwards in NAT
//!   mode leave with this node's address (masquerade), so backends need no route back through
//!   the load balancer — Seesaw's two-armed NAT (it SNATs to the cluster VIP). This needs
//!   `net.ipv4.vs.conntrack = 1`, which ncc sets.
//!
//! [`script`] is pure; the plane runs it only when its text changed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{ForwardMode, Protocol, Service, ServiceKey};

/// The table's name.
pub const TABLE: &str = "inet seesaw_ipvs";

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn fam(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

/// The whole `nft -f` script that makes the table hold `services`' rules (it creates the table,
/// deletes it and defines it again: one atomic transaction).
pub fn script(services: &[Service]) -> String {
    // The VIP:port tuples each VIP accepts, and the marks.
    let mut ports: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut marks: Vec<(ServiceKey, u32)> = Vec::new();
    let mut nat: BTreeSet<ServiceKey> = BTreeSet::new();
    for s in services {
        if s.key.is_fwmark() {
            for m in &s.marks {
                ports.insert(*m);
                marks.push((*m, s.key.fwmark));
                if s.mode == ForwardMode::Nat {
                    nat.insert(*m);
                }
            }
        } else {
            ports.insert(s.key);
            if s.mode == ForwardMode::Nat {
                nat.insert(s.key);
            }
        }
    }
    let vips: BTreeSet<IpAddr> = ports.iter().map(|k| k.vip).collect();
    let mut t = format!("table {TABLE} {{}}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    t.push_str("  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n");
    for (k, mark) in &marks {
        let _ = writeln!(
            t,
            "    {} daddr {} {} dport {} meta mark set {mark:#x}",
            fam(k.vip),
            k.vip,
            proto(k.proto),
            k.port
        );
    }
    t.push_str("  }\n  chain in {\n    type filter hook input priority filter; policy accept;\n");
    for vip in &vips {
        let f = fam(*vip);
        for k in ports.iter().filter(|k| k.vip == *vip) {
            let _ = writeln!(
                t,
                "    {f} daddr {vip} {} dport {} accept",
                proto(k.proto),
                k.port
            );
        }
        let icmp = if vip.is_ipv4() { "icmp" } else { "ipv6-icmp" };
        let _ = writeln!(t, "    {f} daddr {vip} meta l4proto {icmp} accept");
        let _ = writeln!(t, "    {f} daddr {vip} reject");
    }
    t.push_str(
        "  }\n  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for k in &nat {
        let _ = writeln!(
            t,
            "    meta l4proto {} ct direction original ct original {} daddr {} ct original proto-dst {} masquerade",
            proto(k.proto),
            fam(k.vip),
            k.vip,
            k.port,
        );
    }
    t.push_str("  }\n}\n");
    t
}

/// The marks a listing of the table (`nft list table inet seesaw_ipvs`) sets: each marked
/// VIP . protocol . port tuple with its mark, read back when a new ncc adopts the table (IPVS
/// holds the firewall-mark services, not which tuples feed them). Lines other than the mark
/// rules [`script`] writes are ignored; a malformed one is skipped, never a panic.
pub fn marks_in_listing(listing: &str) -> Vec<(ServiceKey, u32)> {
    let mut out = Vec::new();
    for line in listing.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // `ip daddr 198.51.100.1 tcp dport 80 meta mark set 0x00000010`
        let [
            fam,
            "daddr",
            vip,
            proto,
            "dport",
            port,
            "meta",
            "mark",
            "set",
            mark,
        ] = t[..]
        else {
            continue;
        };
        let Ok(vip) = vip.parse::<IpAddr>() else {
            continue;
        };
        if fam != self::fam(vip) {
            continue;
        }
        let proto = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => continue,
        };
        let (Ok(port), Some(Ok(mark))) = (
            port.parse::<u16>(),
            mark.strip_prefix("0x").map(|m| u32::from_str_radix(m, 16)),
        ) else {
            continue;
        };
        if mark != 0 {
            out.push((ServiceKey::new(vip, proto, port), mark));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dest, Scheduler};

    fn svc(key: ServiceKey, mode: ForwardMode, marks: Vec<ServiceKey>) -> Service {
        let dests = vec![Dest::new("203.0.113.11:0".parse().unwrap(), 1)];
        Service {
            marks,
            ..Service::new(key, Scheduler::Wlc, mode, dests)
        }
    }

    #[test]
    fn filter_marks_and_nat_rules_follow_the_services() {
        let vip: IpAddr = "198.51.100.1".parse().unwrap();
        let web = svc(
            ServiceKey::new(vip, Protocol::Tcp, 80),
            ForwardMode::Nat,
            vec![],
        );
        let dns = svc(
            ServiceKey::new(vip, Protocol::Udp, 53),
            ForwardMode::Dsr,
            vec![],
        );
        let fwm = svc(
            ServiceKey::fwmark(false, 0x100),
            ForwardMode::Dsr,
            vec![ServiceKey::new(
                "198.51.100.2".parse().unwrap(),
                Protocol::Tcp,
                443,
            )],
        );
        let t = script(&[web, dns, fwm]);
        for line in [
            "ip daddr 198.51.100.1 tcp dport 80 accept",
            "ip daddr 198.51.100.1 udp dport 53 accept",
            "ip daddr 198.51.100.1 meta l4proto icmp accept",
            "ip daddr 198.51.100.1 reject",
            "ip daddr 198.51.100.2 tcp dport 443 accept",
            "ip daddr 198.51.100.2 tcp dport 443 meta mark set 0x100",
            // nft types `proto-dst` from the protocol matched before it.
            "meta l4proto tcp ct direction original ct original ip daddr 198.51.100.1 ct original proto-dst 80 masquerade",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert_eq!(
            t.matches("masquerade").count(),
            1,
            "only NAT is masqueraded:\n{t}"
        );
        // The VIP's accepts come before its reject.
        assert!(t.find("dport 53 accept") < t.find("198.51.100.1 reject"));
        // Nothing: an empty table, still one transaction.
        let empty = script(&[]);
        assert!(empty.starts_with("table inet seesaw_ipvs {}\ndelete table inet seesaw_ipvs\n"));
        assert!(!empty.contains("reject"));
    }

    #[test]
    fn marks_are_read_back_from_a_listing() {
        let listing = "table inet seesaw_ipvs {
\tchain pre {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tip daddr 198.51.100.2 tcp dport 443 meta mark set 0x00000100
\t\tip6 daddr 2001:db8::1 udp dport 53 meta mark set 0x00000007
\t}
\tchain in {
\t\tip daddr 198.51.100.2 tcp dport 443 accept
\t}
}";
        assert_eq!(
            marks_in_listing(listing),
            [
                (
                    ServiceKey::new("198.51.100.2".parse().unwrap(), Protocol::Tcp, 443),
                    0x100
                ),
                (
                    ServiceKey::new("2001:db8::1".parse().unwrap(), Protocol::Udp, 53),
                    7
                ),
            ]
        );
        // What script() writes reads back as it was given.
        let fwm = svc(
            ServiceKey::fwmark(false, 0x10),
            ForwardMode::Nat,
            vec![ServiceKey::new(
                "198.51.100.1".parse().unwrap(),
                Protocol::Tcp,
                80,
            )],
        );
        assert_eq!(
            marks_in_listing(&script(&[fwm])),
            [(
                ServiceKey::new("198.51.100.1".parse().unwrap(), Protocol::Tcp, 80),
                0x10
            )]
        );
    }

    #[test]
    fn hostile_listings_are_skipped() {
        for bad in [
            "",
            "ip daddr 198.51.100.1 tcp dport 80 meta mark set",
            "ip daddr 198.51.100.1 tcp dport 99999 meta mark set 0x10",
            "ip daddr 198.51.100.1 sctp dport 80 meta mark set 0x10",
            "ip6 daddr 198.51.100.1 tcp dport 80 meta mark set 0x10",
            "ip daddr not-an-ip tcp dport 80 meta mark set 0x10",
            "ip daddr 198.51.100.1 tcp dport 80 meta mark set 0xfffffffffff",
            "ip daddr 198.51.100.1 tcp dport 80 meta mark set 16",
            "ip daddr 198.51.100.1 tcp dport 80 meta mark set 0x0",
            "\u{0}\u{ffff} daddr",
        ] {
            assert_eq!(marks_in_listing(bad), [], "{bad:?}");
        }
    }

    /// `nft` itself checks the script (`nft -c`: parsed and validated by the kernel, nothing
    /// committed), for IPv4 and IPv6, NAT, DSR and firewall marks.
    #[test]
    #[allow(clippy::print_stderr, reason = "a skipped test says why")]
    fn nft_accepts_the_script() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: nft -c needs root");
            return;
        }
        let Ok(mut child) = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("skipping: nft is not installed");
            return;
        };
        let v4: IpAddr = "198.51.100.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let t = script(&[
            svc(
                ServiceKey::new(v4, Protocol::Tcp, 80),
                ForwardMode::Nat,
                vec![],
            ),
            svc(
                ServiceKey::new(v6, Protocol::Udp, 53),
                ForwardMode::Nat,
                vec![],
            ),
            svc(
                ServiceKey::new(v4, Protocol::Udp, 53),
                ForwardMode::Dsr,
                vec![],
            ),
            svc(
                ServiceKey::fwmark(false, 7),
                ForwardMode::Nat,
                vec![ServiceKey::new(v4, Protocol::Tcp, 443)],
            ),
        ]);
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), t.as_bytes()).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -c refused:\n{}\n{t}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
