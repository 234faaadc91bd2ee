//! Writers for the three configuration files the daemons read (`seesaw.cfg`, `cluster.pb`,
//! `watchdog.cfg`), in exactly the shape the shipped examples use, with the addresses and ports a
//! test picks.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::bins;
use crate::error::LabError;

/// `seesaw.cfg`: the node's own settings.
#[derive(Debug, Clone)]
pub struct SeesawCfg {
    /// `[cluster] name`.
    pub cluster: String,
    /// `[cluster] node_ipv4`.
    pub node_ipv4: Ipv4Addr,
    /// `[interface] node` and `lb`.
    pub iface: String,
    /// `[ecu] listen`.
    pub ecu_listen: SocketAddr,
}

impl SeesawCfg {
    /// The file's text. The data plane is always the userspace proxy: it is the one every
    /// environment has, and the one ncc can drive without kernel modules.
    pub fn render(&self) -> String {
        format!(
            "[cluster]\nname = {}\nnode_ipv4 = {}\nanycast_enabled = false\n\n\
             [interface]\nnode = {}\nlb = {}\n\n\
             [dataplane]\nkind = proxy\n\n\
             [ecu]\nlisten = {}\n",
            self.cluster, self.node_ipv4, self.iface, self.iface, self.ecu_listen
        )
    }
}

/// A host entry (`fqdn`, `ipv4` in CIDR form), always `status: PRODUCTION`.
#[derive(Debug, Clone)]
pub struct Host {
    /// Fully qualified name with the trailing dot.
    pub fqdn: String,
    /// Address in CIDR form, e.g. `203.0.113.11/24`.
    pub ipv4: String,
}

impl Host {
    /// A host entry.
    pub fn new(fqdn: &str, ipv4: &str) -> Self {
        Self {
            fqdn: fqdn.to_owned(),
            ipv4: ipv4.to_owned(),
        }
    }

    fn render(&self) -> String {
        format!(
            "< fqdn: \"{}\" ipv4: \"{}\" status: PRODUCTION >",
            self.fqdn, self.ipv4
        )
    }
}

/// The HTTP health check of the vserver entry.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Seconds between probes.
    pub interval: u32,
    /// Seconds before a probe fails.
    pub timeout: u32,
    /// Consecutive failures tolerated; `None` leaves the field out.
    pub retries: Option<u32>,
    /// The request path (`send`).
    pub send: String,
    /// Expected status.
    pub code: u16,
}

/// `cluster.pb` with one TCP vserver.
#[derive(Debug, Clone)]
pub struct ClusterPb {
    /// `seesaw_vip`.
    pub seesaw_vip: Host,
    /// The one `node`.
    pub node: Host,
    /// Vserver name, e.g. `web@lab`.
    pub vserver: String,
    /// The vserver's entry address (the VIP), CIDR form.
    pub entry: Host,
    /// Vserver entry port.
    pub port: u16,
    /// Scheduler enum name (`RR`, `WRR`, ...).
    pub scheduler: String,
    /// The health check.
    pub check: HttpCheck,
    /// Backends and their weights.
    pub backends: Vec<(Host, u32)>,
}

impl ClusterPb {
    /// The file's text (protobuf text format).
    pub fn render(&self) -> String {
        let c = &self.check;
        let retries = c
            .retries
            .map(|r| format!(" retries: {r}"))
            .unwrap_or_default();
        let mut s = format!(
            "seesaw_vip: {}\nnode: {}\nvserver: <\n  name: \"{}\"\n  entry_address: {}\n  rp: \"lab@example.com\"\n  \
             vserver_entry: <\n    protocol: TCP\n    port: {}\n    scheduler: {}\n    mode: NAT\n    \
             healthcheck: < type: HTTP interval: {} timeout: {}{retries} send: \"{}\" code: {} >\n  >\n",
            self.seesaw_vip.render(),
            self.node.render(),
            self.vserver,
            self.entry.render(),
            self.port,
            self.scheduler,
            c.interval,
            c.timeout,
            c.send,
            c.code,
        );
        for (host, weight) in &self.backends {
            let _ = writeln!(s, "  backend: < host: {} weight: {weight} >", host.render());
        }
        s.push_str(">\n");
        s
    }
}

/// `watchdog.cfg` starting every daemon from the workspace's debug build, in Seesaw's order
/// (the proxy relay and ncc → engine → {ha, healthcheck, ecu}). `term_timeout` is short so teardown finishes inside
/// the harness's own grace period; priority 0 so it works unprivileged.
pub fn watchdog_cfg() -> Result<String, LabError> {
    watchdog_cfg_with(false)
}

/// [`watchdog_cfg`] with the shipped `etc/watchdog.cfg` nice values (ncc and engine −10, ha −15,
/// Seesaw's): what a production node runs, so time-critical labs (HA failover) measure the
/// product as deployed rather than daemons competing with the build at nice 0. Needs root.
pub fn watchdog_cfg_shipped_priorities() -> Result<String, LabError> {
    watchdog_cfg_with(true)
}

fn watchdog_cfg_with(shipped_priorities: bool) -> Result<String, LabError> {
    let mut s = String::new();
    for (service, dependency, nice) in [
        ("proxy", None, -10),
        ("ncc", None, -10),
        ("engine", Some("ncc"), -10),
        ("ha", Some("engine"), -15),
        ("healthcheck", Some("engine"), 0),
        ("ecu", Some("engine"), 0),
    ] {
        let binary = bins::binary(&format!("seesaw_{service}"))?;
        let _ = writeln!(s, "[{service}]\nbinary = {}", binary.display());
        if let Some(dep) = dependency {
            let _ = writeln!(s, "dependency = {dep}");
        }
        let priority = if shipped_priorities { nice } else { 0 };
        let _ = writeln!(s, "priority = {priority}\nterm_timeout = 2s\n");
    }
    Ok(s)
}

/// Writes `name` under `dir`, replacing it atomically (write a sibling, then rename), so a daemon
/// watching the file never reads half of it.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), LabError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    std::fs::write(&tmp, text).map_err(LabError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(LabError::io(format!("renaming to {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_pb_has_the_documented_shape() {
        let pb = ClusterPb {
            seesaw_vip: Host::new("seesaw-vip.lab.", "192.0.2.1/24"),
            node: Host::new("lb1.lab.", "192.0.2.10/24"),
            vserver: "web@lab".into(),
            entry: Host::new("web.lab.", "198.51.100.1/32"),
            port: 80,
            scheduler: "RR".into(),
            check: HttpCheck {
                interval: 1,
                timeout: 1,
                retries: None,
                send: "/".into(),
                code: 200,
            },
            backends: vec![(Host::new("be1.lab.", "203.0.113.11/24"), 1)],
        };
        let text = pb.render();
        assert!(text.starts_with(
            "seesaw_vip: < fqdn: \"seesaw-vip.lab.\" ipv4: \"192.0.2.1/24\" status: PRODUCTION >\n"
        ));
        assert!(text.contains(
            "    healthcheck: < type: HTTP interval: 1 timeout: 1 send: \"/\" code: 200 >\n"
        ));
        assert!(text.contains(
            "  backend: < host: < fqdn: \"be1.lab.\" ipv4: \"203.0.113.11/24\" status: PRODUCTION > weight: 1 >\n"
        ));
        assert!(text.ends_with(">\n>\n"));
    }

    #[test]
    fn seesaw_cfg_names_the_proxy_plane() {
        let cfg = SeesawCfg {
            cluster: "lab".into(),
            node_ipv4: Ipv4Addr::new(192, 0, 2, 10),
            iface: "eth0".into(),
            ecu_listen: "127.0.0.1:10257".parse().expect("literal"),
        };
        let text = cfg.render();
        assert!(text.contains("[dataplane]\nkind = proxy\n"));
        assert!(text.contains("node_ipv4 = 192.0.2.10\n"));
        assert!(text.contains("[ecu]\nlisten = 127.0.0.1:10257\n"));
    }
}
