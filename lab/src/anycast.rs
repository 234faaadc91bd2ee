//! The anycast labs' router side (`tests/bgp.rs`, `tests/scale_out.rs`): bird2 speaking eBGP to
//! the load balancers and merging their paths into ECMP routes in its kernel table, what that
//! table holds for a VIP, the router's forwarding settings, and sysctls written inside a node.

use std::time::Duration;

use crate::config::{watchdog_cfg_shipped_priorities, write_atomic};
use crate::{Lab, LabError, ProcId};

/// bird2's daemon.
pub const BIRD: &str = "/usr/sbin/bird";
/// GoBGP's daemon.
pub const GOBGPD: &str = "/usr/bin/gobgpd";

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

/// Writes a load balancer's suite into `node`'s config dir (`seesaw_cfg`, `cluster_pb`, and the
/// shipped watchdog config plus GoBGP, supervised by the same watchdog so that it dies with it)
/// and starts its watchdog.
pub fn start_bgp_suite(
    lab: &mut Lab,
    node: &str,
    seesaw_cfg: &str,
    cluster_pb: &str,
) -> Result<ProcId, LabError> {
    let config = lab.config_dir(node)?;
    write_atomic(&config, "seesaw.cfg", seesaw_cfg)?;
    write_atomic(&config, "cluster.pb", cluster_pb)?;
    let watchdog = format!(
        "{}[gobgpd]\nbinary = {GOBGPD}\nargs = --api-hosts=127.0.0.1:50051 --pprof-disable --log-plain --sdnotify\nterm_timeout = 2s\n",
        watchdog_cfg_shipped_priorities()?
    );
    write_atomic(&config, "watchdog.cfg", &watchdog)?;
    lab.spawn_suite(node)
}

/// Starts bird2 in node `router`, whose address is `router_ip`, with [`bird_ecmp_conf`] for
/// `peers`; its config and control socket are in the lab's directory.
pub fn start_bird(
    lab: &mut Lab,
    router: &str,
    router_ip: &str,
    peers: &[(&str, &str)],
) -> Result<ProcId, LabError> {
    let dir = lab.dir().to_owned();
    write_atomic(&dir, "bird.conf", &bird_ecmp_conf(router_ip, peers))?;
    let (conf, ctl) = (dir.join("bird.conf"), dir.join("bird.ctl"));
    lab.spawn(
        router,
        BIRD,
        &[
            "-f",
            "-c",
            &conf.to_string_lossy(),
            "-s",
            &ctl.to_string_lossy(),
        ],
        &[],
    )
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

/// Makes node `router` forward for node `client` over ECMP routes: forwarding on, then `hash`
/// (the multipath hash sysctls: how flows, not hosts, spread over the next hops), and no
/// redirects sent by the router or accepted by the client (the client must keep going through
/// the router, not straight to one LB).
pub fn ecmp_router(lab: &Lab, hash: &[&str]) -> Result<(), LabError> {
    lab.sysctl("router", "net.ipv4.ip_forward=1")?;
    for kv in hash {
        lab.sysctl("router", kv)?;
    }
    for kv in [
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        lab.sysctl("router", kv)?;
    }
    lab.sysctl("client", "net.ipv4.conf.all.accept_redirects=0")
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
