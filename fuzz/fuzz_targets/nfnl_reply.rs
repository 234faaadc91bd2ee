//! Fuzzes ncc's counters of netfilter netlink dumps (ctnetlink conntrack entries and nf_tables
//! set elements, read for the nftables plane's lc/wlc re-weighting; the conntrack lookup of
//! `seesaw trace`; the acks of a batch the plane wrote itself): any datagram must count, find or
//! fail with an error, never panic. The first byte picks the decoder.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::nftables::nfnl;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let mut out = HashMap::new();
    match first % 4 {
        0 => {
            let _ = nfnl::count_conntrack(rest, 0x5ee0_0000, 0xfff0_0000, &mut out);
        }
        1 => {
            let _ = nfnl::count_setelems(rest, &mut out);
        }
        2 => {
            let _ = nfnl::read_acks(rest, 7);
        }
        _ => {
            let want = nfnl::Tuple {
                proto: 6,
                src: std::net::SocketAddr::from(([192, 0, 2, 101], 40000)),
                dst: std::net::SocketAddr::from(([198, 51, 100, 1], 80)),
            };
            let _ = nfnl::find_flow(rest, &want, &mut None);
        }
    }
});
