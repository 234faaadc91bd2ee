//! Fuzzes what the engine reads from etcd: a registered member's value (`etcd::parse_member`),
//! merging members into a cluster.pb (`core::merge_members`) and a stored Maglev anchor
//! (`Anchor::from_bytes`, which must round-trip what it accepts). Values in etcd are written by
//! any node or by hand; any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seesaw_engine::etcd::parse_member(data);
    let mut members = std::collections::BTreeMap::new();
    members.insert("/seesaw/t/members/web/b1.".to_owned(), data.to_vec());
    let _ = seesaw_engine::core::merge_members(
        br#"vserver < name: "web" entry_address < fqdn: "w." ipv4: "10.0.0.1/32" > >"#,
        &members,
    );
    if let Ok(a) = seesaw_ncc::sched::maglev::Anchor::from_bytes(data) {
        let again = seesaw_ncc::sched::maglev::Anchor::from_bytes(&a.to_bytes()).expect("own bytes");
        assert_eq!(again, a);
    }
});
