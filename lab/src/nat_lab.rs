//! The namespace scene every whole-suite kernel-plane test starts from: `client`
//! (192.0.2.100) → `lb1` (192.0.2.10, the whole suite under its watchdog) → two backends
//! (`be1`, `be2` on 203.0.113.0/24, `seesaw demo-backend` on port 80) behind the NAT VIP
//! 198.51.100.1:80 (vserver `web@lab`, round robin, HTTP checks every second).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{ClusterPb, Host, HttpCheck, watchdog_cfg, write_atomic};
use crate::error::LabError;
use crate::netns::{Lab, LabBuilder};
use crate::procs::ProcId;
use crate::{http, wait_for};

/// The NAT VIP.
pub const NAT_VIP: &str = "198.51.100.1";
/// The backends: name and address.
pub const BACKENDS: [(&str, &str); 2] = [("be1", "203.0.113.11"), ("be2", "203.0.113.12")];

/// The scene, running.
#[derive(Debug)]
pub struct NatLab {
    /// The namespaces and every process in them.
    pub lab: Lab,
    /// The watchdog in `lb1`.
    pub watchdog: ProcId,
}

/// `web@lab` as cluster.pb.
pub fn cluster_pb() -> ClusterPb {
    ClusterPb {
        seesaw_vip: Host::new("seesaw-vip.lab.", "192.0.2.1/24"),
        node: Host::new("lb1.lab.", "192.0.2.10/24"),
        vserver: "web@lab".to_owned(),
        entry: Host::new("web.lab.", &format!("{NAT_VIP}/32")),
        port: 80,
        scheduler: "RR".to_owned(),
        check: HttpCheck {
            interval: 1,
            timeout: 1,
            retries: None,
            send: "/".to_owned(),
            code: 200,
        },
        backends: BACKENDS
            .iter()
            .map(|(name, ip)| (Host::new(&format!("{name}.lab."), &format!("{ip}/24")), 1))
            .collect(),
    }
}

/// The front of every scene here: `client` (with `client_addrs`, routed to 198.51.100.0/24
/// through lb1) and `lb1` (192.0.2.10 on the client side, 203.0.113.1 on the backends').
pub fn client_and_lb1(client_addrs: &[&str]) -> LabBuilder {
    Lab::builder()
        .node("client", client_addrs)
        .route("client", "198.51.100.0/24", "192.0.2.10")
        .node("lb1", &["192.0.2.10/24", "203.0.113.1/24"])
}

/// `b` with backend `name` at `ip` (/24), replying to the client net through lb1.
pub fn backend_via_lb1(b: LabBuilder, name: &str, ip: &str) -> LabBuilder {
    b.node(name, &[&format!("{ip}/24")])
        .route(name, "192.0.2.0/24", "203.0.113.1")
}

/// The VIP as a socket address.
pub fn vip() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1], 80))
}

impl NatLab {
    /// Builds the namespaces, starts the backends and the suite with `[dataplane] kind = plane`,
    /// and waits (at most 60 s) until both backends answer through the VIP from the client;
    /// when they do not, prints lb1's addresses, routes and data plane and every daemon's log.
    #[allow(
        clippy::print_stderr,
        reason = "the diagnosis of a lab that did not come up is for the person running the test"
    )]
    pub fn start(plane: &str) -> Result<Self, LabError> {
        let mut lab = client_and_lb1(&["192.0.2.100/24"])
            .hosts(&BACKENDS)
            .build()?;
        let config = lab.config_dir("lb1")?;
        let cfg = format!(
            "[cluster]\nname = lab\nnode_ipv4 = 192.0.2.10\nanycast_enabled = false\n\n\
             [interface]\nnode = eth0\nlb = eth0\n\n[dataplane]\nkind = {plane}\n\n\
             [ecu]\nlisten = 127.0.0.1:10257\n"
        );
        write_atomic(&config, "seesaw.cfg", &cfg)?;
        write_atomic(&config, "cluster.pb", &cluster_pb().render())?;
        write_atomic(&config, "watchdog.cfg", &watchdog_cfg()?)?;
        for (name, ip) in &BACKENDS {
            let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| LabError::BadAddress {
                addr: (*ip).to_owned(),
                reason: "not an IPv4 address".to_owned(),
            })?;
            lab.start_demo_backend(name, SocketAddr::from((ip, 80)), name)?;
        }
        let watchdog = lab.spawn_suite("lb1")?;
        let vip = vip();
        let up = lab.run_in("client", || {
            wait_for(
                "both backends answer through the VIP",
                Duration::from_secs(60),
                || {
                    let seen: BTreeSet<String> = (0..10)
                        .filter_map(|_| http::get(vip, "/", Duration::from_secs(1)).ok())
                        .map(|r| r.text())
                        .collect();
                    (seen.len() == 2).then_some(())
                },
            )
        })?;
        if let Err(e) = up {
            // What lb1 looks like, then every daemon's log: why the VIP does not answer.
            let state = lab.exec(
                "lb1",
                "sh",
                &[
                    "-c",
                    "ip addr; ip route; (ipvsadm -Ln || true); nft list ruleset",
                ],
                &[],
                Duration::from_secs(20),
            );
            eprintln!(
                "--- lb1 ---\n{}",
                state.map_or_else(|e| e.to_string(), |o| o.combined())
            );
            lab.dump_logs();
            return Err(e);
        }
        Ok(Self { lab, watchdog })
    }
}
