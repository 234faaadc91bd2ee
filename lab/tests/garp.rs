//! Neighbour announcements in the namespace lab (root only; skips otherwise): ncc's VIP
//! manager brings an IPv4 and an IPv6 unicast VIP up on `lb1`'s LB interface, and the client,
//! listening with an `AF_PACKET` socket on its side of the bridge, must see the burst:
//! gratuitous ARPs whose sender MAC is `lb1`'s and whose sender and target IP are the VIP, and
//! unsolicited neighbour advertisements for the IPv6 VIP with `lb1`'s MAC as the target
//! link-layer address — as many as configured, spaced as configured.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockProtocol, SockType, recv, setsockopt, socket, sockopt,
};
use seesaw_lab::Lab;
use seesaw_ncc::kernel::garp::{Garp, GarpConfig, iface_mac};
use seesaw_ncc::kernel::vips::{KernelAddrs, Vip, VipKind, Vips};

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const VIP6: &str = "2001:db8:5ee::7";
const COUNT: u32 = 3;
const SPACING: Duration = Duration::from_millis(150);

/// One captured announcement: when, Ethernet source, and the announced (IP, MAC).
#[derive(Debug)]
struct Heard {
    at: Instant,
    eth_src: [u8; 6],
    ip: IpAddr,
    mac: [u8; 6],
}

fn mac_at(f: &[u8], i: usize) -> Option<[u8; 6]> {
    f.get(i..i + 6)?.try_into().ok()
}

/// Decodes a gratuitous ARP (sender IP = target IP) or an unsolicited NA with a target
/// link-layer address option; anything else is `None`.
fn parse(f: &[u8], at: Instant) -> Option<Heard> {
    let eth_src = mac_at(f, 6)?;
    match f.get(12..14)? {
        [0x08, 0x06] => {
            let spa: [u8; 4] = f.get(28..32)?.try_into().ok()?;
            let tpa: [u8; 4] = f.get(38..42)?.try_into().ok()?;
            (f.get(20..22)? == [0, 1] && spa == tpa).then(|| Heard {
                at,
                eth_src,
                ip: IpAddr::V4(Ipv4Addr::from(spa)),
                mac: mac_at(f, 22).unwrap_or_default(),
            })
        }
        [0x86, 0xdd] => {
            let icmp = f.get(54..)?;
            if f.get(20)? != &58 || icmp.first()? != &136 || icmp.get(24..26)? != [2, 1] {
                return None;
            }
            let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
            Some(Heard {
                at,
                eth_src,
                ip: IpAddr::V6(Ipv6Addr::from(target)),
                mac: mac_at(icmp, 26)?,
            })
        }
        _ => None,
    }
}

#[test]
fn adding_a_vip_sends_garp_and_na_bursts_the_client_sees() {
    if !seesaw_lab::require_root() {
        return;
    }
    let lab = Lab::builder()
        .node("client", &["192.0.2.100/24"])
        .node("lb1", &["192.0.2.10/24"])
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));

    // The capture socket lives in the client's namespace (a socket keeps its namespace).
    let sock: OwnedFd = lab
        .run_in("client", || {
            let s = socket(
                AddressFamily::Packet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::EthAll,
            )
            .expect("AF_PACKET socket");
            setsockopt(
                &s,
                sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 200_000),
            )
            .expect("receive timeout");
            s
        })
        .expect("entering client");

    let lb_mac = lab
        .run_in("lb1", || {
            let mac = iface_mac("eth0").expect("lb1 eth0 MAC");
            let garp = Garp(GarpConfig {
                count: COUNT,
                interval: SPACING,
            });
            let mut vips = Vips::new(
                Box::new(KernelAddrs::open().expect("rtnetlink")),
                Some("eth0".into()),
                "lo".into(),
                Some(Box::new(garp)),
            );
            let changes = vips
                .apply(&[
                    Vip {
                        addr: IpAddr::V4(VIP4),
                        kind: VipKind::Unicast,
                    },
                    Vip {
                        addr: VIP6.parse().expect("literal"),
                        kind: VipKind::Unicast,
                    },
                ])
                .expect("apply VIPs");
            assert_eq!(changes.len(), 2, "{changes:?}");
            mac
        })
        .expect("entering lb1");

    // Listen for the bursts: bounded by count and by time.
    let deadline = Instant::now() + SPACING * COUNT + Duration::from_secs(3);
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..10_000 {
        if Instant::now() > deadline {
            break;
        }
        match recv(
            sock.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        ) {
            Ok(n) => heard.extend(parse(&buf[..n], Instant::now())),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("capture: {e}"),
        }
    }

    for vip in [IpAddr::V4(VIP4), VIP6.parse().expect("literal")] {
        let got: Vec<&Heard> = heard.iter().filter(|h| h.ip == vip).collect();
        assert_eq!(
            got.len(),
            COUNT as usize,
            "{vip}: announcements heard: {heard:?}"
        );
        for h in &got {
            assert_eq!(h.eth_src, lb_mac, "{vip}: Ethernet source is lb1");
            assert_eq!(h.mac, lb_mac, "{vip}: announced MAC is lb1's");
        }
        for w in got.windows(2) {
            let gap = w[1].at - w[0].at;
            assert!(
                gap >= SPACING.mul_f32(0.7),
                "{vip}: announcements {gap:?} apart, configured {SPACING:?}"
            );
        }
    }
}
