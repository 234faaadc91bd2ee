//! Neighbour announcements in the namespace lab (root only; skips otherwise): ncc's VIP
//! manager brings an IPv4 and an IPv6 unicast VIP up on `lb1`'s LB interface, and the client,
//! listening with an `AF_PACKET` socket on its side of the bridge, must see the burst:
//! gratuitous ARPs whose sender MAC is `lb1`'s and whose sender and target IP are the VIP, and
//! unsolicited neighbour advertisements for the IPv6 VIP with `lb1`'s MAC as the target
//! link-layer address — as many as configured, spaced as configured.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use seesaw_lab::Lab;
use seesaw_lab::capture::{self, Announcement};
use seesaw_ncc::kernel::garp::{Garp, GarpConfig, iface_mac};
use seesaw_ncc::kernel::vips::{KernelAddrs, Vip, VipKind, Vips};

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const VIP6: &str = "2001:db8:5ee::7";
const COUNT: u32 = 3;
const SPACING: Duration = Duration::from_millis(150);

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
    let sock = capture::open(&lab, "client").expect("capture socket");

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

    // Listen for the bursts: bounded in time (and in frames read).
    let heard = capture::listen(&sock, SPACING * COUNT + Duration::from_secs(3)).expect("capture");

    for vip in [IpAddr::V4(VIP4), VIP6.parse().expect("literal")] {
        let got: Vec<&Announcement> = heard.iter().filter(|h| h.ip == vip).collect();
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
