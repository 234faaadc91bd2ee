//! Fuzzes what the engine reads from etcd: a registered member's value (`etcd::parse_member`)
//! and merging members into a cluster.pb (`core::merge_members`). Values in etcd are written
//! by any node or by hand; any panic is a bug.
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
});
