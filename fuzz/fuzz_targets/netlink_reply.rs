//! Fuzzes ncc's decoders of kernel netlink replies (the IPVS generic-netlink family; the
//! rtnetlink address, link, route and rule dumps): any datagram must decode to replies or an error, never a
//! panic. The first byte picks the family id the IPVS decoder expects, so both the IPVS and
//! the controller/error/done paths are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::ipvs::codec;
use seesaw_ncc::kernel::rtnl;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let _ = codec::decode(rest, 0x10 + u16::from(*first % 4) * 0xc);
    let _ = rtnl::decode(rest);
});
