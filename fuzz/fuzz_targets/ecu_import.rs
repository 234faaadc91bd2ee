//! Fuzzes the ECU's untrusted-input parsers with one byte string: the YAML import (Parasaus
//! `Service` + `Endpoints` and `kind: Pool` documents), the pool and member bodies of the REST
//! API (as JSON), and `ecu.cfg`. None may panic; an accepted import or pool must render to
//! cluster.pb text that parses back to the same vservers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ecu::{api_config, cluster_edit, import, spec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vip = Some(std::net::IpAddr::from([127, 0, 0, 254]));
    if let Ok(vservers) = import::import(text, vip) {
        let cluster = seesaw_proto::config::Cluster {
            vserver: vservers.clone(),
            ..Default::default()
        };
        let again = cluster_edit::parse(&cluster.to_text()).expect("own text parses");
        assert_eq!(again.vserver, vservers);
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = spec::pool_from_value(&v);
        let _ = spec::member_from_value(&v);
    }
    let _ = api_config::ApiConfig::parse(text, std::path::Path::new("/etc/seesaw"), true);
});
