//! The anycast labs' router side (`tests/bgp.rs`, `tests/scale_out.rs`): bird2 speaking eBGP to
//! the load balancers and merging their paths into ECMP routes in its kernel table, what that
//! table holds for a VIP, and sysctls written inside a node.

use std::time::Duration;

use crate::{Lab, LabError};

/// bird2's config for a router at `router` (AS 64512) with eBGP sessions to `peers` (name,
/// address; AS 64513), everything imported and merged into ECMP routes in the kernel table;
/// fast timers (hold 3 s) so a lost session is noticed quickly.
pub fn bird_ecmp_conf(router: &str, peers: &[(&str, &str)]) -> String {
    let mut s = format!(
        "router id {router};\nlog stderr all;\n\
         protocol device {{ scan time 1; }}\n\
         protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; learn off; }}\n"
    );
    for (name, ip) in peers {
        s.push_str(&format!(
            "protocol bgp {name} {{\n  local {router} as 64512;\n  neighbor {ip} as 64513;\n  \
             hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;\n  \
             ipv4 {{ import all; export none; }};\n}}\n"
        ));
    }
    s
}

/// The next hops `node`'s kernel table holds for `vip`, sorted (empty: no route).
pub fn next_hops(lab: &Lab, node: &str, vip: &str) -> Vec<String> {
    let out = lab
        .exec(
            node,
            "ip",
            &["-4", "route", "show", vip],
            &[],
            Duration::from_secs(5),
        )
        .map(|o| o.stdout)
        .unwrap_or_default();
    let mut hops: Vec<String> = out
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
        .collect();
    hops.sort();
    hops
}

impl Lab {
    /// Writes sysctl `key=value` inside `node` (through `/proc/sys`, which inside the node's
    /// namespace is that namespace's network settings; no procps needed).
    pub fn sysctl(&self, node: &str, kv: &str) -> Result<(), LabError> {
        let (key, value) = kv.split_once('=').ok_or_else(|| LabError::Command {
            cmd: format!("sysctl {kv}"),
            detail: "not key=value".into(),
        })?;
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let out = self.exec(
            node,
            "sh",
            &["-c", &format!("echo {value} > {path}")],
            &[],
            Duration::from_secs(5),
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LabError::Command {
                cmd: format!("sysctl {kv} in {node}"),
                detail: out.combined(),
            })
        }
    }
}
