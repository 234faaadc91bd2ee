//! The BGP neighbour list the shell's tests show (the unit tests' fake engine and the
//! integration tests' gRPC engine answer it): one established neighbour and one announced route.

use seesaw_proto::ncc::{BgpNeighbor, BgpNeighborList};

/// One neighbour, 192.0.2.254 in AS 64512, up for 3725 s, and the route 192.168.255.1/32.
pub(crate) fn neighbors() -> BgpNeighborList {
    BgpNeighborList {
        neighbors: vec![BgpNeighbor {
            address: "192.0.2.254".into(),
            peer_asn: 64512,
            router_id: "192.0.2.254".into(),
            state: "ESTABLISHED".into(),
            uptime_s: 3725,
            messages_received: 12,
            messages_sent: 14,
            updates_received: 0,
            updates_sent: 3,
        }],
        announced: vec!["192.168.255.1/32".into()],
    }
}
