//! Fuzzes what ncc reads from gobgpd: arbitrary bytes as `ListPeerResponse` and `ListPathResponse`
//! messages, through the same conversions the speaker uses. Nothing may panic; a converted
//! neighbour has a parsed address, and a read-back route is a host route of its family.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use seesaw_ncc::bgp::gobgp::{api, host_of, neighbor_from};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if let Ok(r) = api::ListPeerResponse::decode(data)
        && let Some(p) = r.peer
        && let Some(n) = neighbor_from(&p, now)
    {
        let src = p
            .conf
            .as_ref()
            .map(|c| c.neighbor_address.as_str())
            .filter(|a| !a.is_empty())
            .or_else(|| p.state.as_ref().map(|s| s.neighbor_address.as_str()));
        assert_eq!(src.and_then(|a| a.parse().ok()), Some(n.address));
        if n.state != seesaw_ncc::bgp::SessionState::Established {
            assert_eq!(n.uptime, Duration::ZERO);
        }
    }
    if let Ok(r) = api::ListPathResponse::decode(data)
        && let Some(d) = r.destination
        && let Some(ip) = host_of(&d.prefix)
    {
        let want = if ip.is_ipv4() { "/32" } else { "/128" };
        assert!(d.prefix.ends_with(want));
    }
});
