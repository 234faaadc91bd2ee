//! The LB interface (Seesaw's `LBInterfaceInit`, `LBInterfaceUp`/`Down`, VLANs and the GARP
//! loop; reference §3.5, §5.2–5.5), declarative: the engine sends the whole wanted state with
//! every apply ([`LbWant`]: the HA role, cluster VIP, routing table, VMAC, GARP period,
//! VLANs) and [`Lb::apply`] reconciles the kernel to it, so a restarted ncc converges on the
//! next request and re-applying changes nothing.
//!
//! - **Link.** Up while master, down while backup; going down keeps the interfaces' IPv6
//!   addresses (the kernel drops them on link down; they are put back as they were, as
//!   Seesaw does). VLAN sub-interfaces follow their parent. When the LB interface is the node
//!   interface (`[interface] lb` = `node`, a single-NIC node) it is never taken down — the
//!   HA adverts and the node's own traffic use it — and no VMAC is put on it; the warning is
//!   logged once. Refusing that configuration would break single-NIC nodes, which still fail
//!   over correctly because the engine removes the VIPs and the cluster VIP on the backup.
//! - **VMAC** (`use_vmac`): `00:00:5e:00:01:<vrid>` on the LB interface, set with the link
//!   down; without it, a VMAC left by an earlier run is replaced by the permanent MAC.
//! - **Cluster VIP**: on the LB interface with the prefix of the node interface's network that
//!   contains it (Seesaw requires that network; without it the cluster VIP, its rules and the
//!   routes are skipped with a warning), on both nodes (only the master's link is up), or only
//!   on the master when the LB interface is the node interface.
//! - **Policy routing** (IPv4 only, like Seesaw): rules `to <cluster VIP>` and `from <cluster
//!   VIP>`, and `from <VIP>` for each unicast VIP on the LB interface itself, looking up
//!   `routing_table_id`; while master the table holds the node network on the LB interface
//!   and the main table's IPv4 default gateway via the LB interface. Rules and routes carry
//!   `SEESAW_PROTO`: ncc adopts its own at start and never touches anyone else's.
//! - **VLANs**: `<lb>.<id>` for each cluster.pb VLAN, with the VLAN host addresses; VLANs no
//!   longer configured are deleted. A kernel without 802.1q refuses with `EOPNOTSUPP`: logged
//!   once, the rest still applies.
//! - **GARP**: a burst (`garp_count`, `garp_interval_ms`) for the cluster VIP on becoming
//!   master, then one round every `garp_interval_sec` while master ([`super::garp::Periodic`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::garp::{Mac, Periodic};
use super::lb_sync::sync;
use super::rtnl::{self, HeldAddr, LinkInfo, RouteInfo, Rtnl, RtnlError, RuleInfo, SEESAW_PROTO};
use super::vips::{Announce, Vip, VipKind};
use crate::NccError;
use crate::kernel::uapi::{
    FR_ACT_TO_TBL, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTN_UNICAST,
};

/// One VLAN sub-interface as the engine wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VlanWant {
    /// 802.1q id (1..=4094).
    pub id: u16,
    /// IPv4 host address and prefix.
    pub v4: Option<(Ipv4Addr, u8)>,
    /// IPv6 host address and prefix.
    pub v6: Option<(Ipv6Addr, u8)>,
}

/// The LB interface as the engine wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbWant {
    /// Master: link up, routes, GARP.
    pub up: bool,
    /// IPv4 cluster VIP.
    pub cluster_v4: Option<Ipv4Addr>,
    /// IPv6 cluster VIP.
    pub cluster_v6: Option<Ipv6Addr>,
    /// Policy-routing table (1..=250).
    pub table: u32,
    /// The VMAC to hold (`use_vmac`).
    pub vmac: Option<Mac>,
    /// Periodic GARP (zero: off).
    pub garp_interval: Duration,
    /// VLAN sub-interfaces, sorted by id.
    pub vlans: Vec<VlanWant>,
}

/// The VRRP virtual MAC of `vrid` (RFC 5798 §7.3).
pub fn vmac(vrid: u8) -> Mac {
    [0, 0, 0x5e, 0, 1, vrid]
}

/// How long a link brought up may take to become operational before ncc goes on regardless.
const RUNNING_WAIT: Duration = Duration::from_millis(300);

/// The kernel side: rtnetlink in production, a stateful fake in tests.
pub trait LbKernel: Send + 'static {
    /// Every interface.
    fn links(&mut self) -> Result<Vec<LinkInfo>, NccError>;
    /// Every address.
    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError>;
    /// Every IPv4 route of every table.
    fn routes(&mut self) -> Result<Vec<RouteInfo>, NccError>;
    /// Every IPv4 rule.
    fn rules(&mut self) -> Result<Vec<RuleInfo>, NccError>;
    /// Link up or down.
    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError>;
    /// Whether link `name` is operational (`IFF_RUNNING`: carrier, and the kernel has attached
    /// its transmit queue; until then what is sent on it is dropped). Fakes are at once.
    fn running(&mut self, _name: &str) -> bool {
        true
    }
    /// Sets a link's MAC.
    fn set_mac(&mut self, index: u32, mac: Mac) -> Result<(), NccError>;
    /// Creates VLAN `name` with `id` on `parent` (`NccError::Unsupported` without 802.1q).
    fn add_vlan(&mut self, parent: u32, name: &str, id: u16) -> Result<(), NccError>;
    /// Deletes a link.
    fn del_link(&mut self, index: u32) -> Result<(), NccError>;
    /// Adds or deletes an address with its originator (`a.proto`).
    fn addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError>;
    /// Adds or deletes a route.
    fn route(&mut self, add: bool, r: &RouteInfo) -> Result<(), NccError>;
    /// Adds or deletes a rule.
    fn rule(&mut self, add: bool, r: &RuleInfo) -> Result<(), NccError>;
}

/// What an apply decided besides its changes: the addresses the VIP manager must leave alone
/// and the VLAN subnets unicast VIPs are placed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbPlan {
    /// Changes made, in order.
    pub changes: Vec<String>,
    /// (interface index, address) this manager owns.
    pub keep: Vec<(u32, IpAddr)>,
    /// (VLAN interface, its network and prefix) for VIP placement.
    pub vlan_nets: Vec<(String, IpAddr, u8)>,
}

/// Whether `ip` lies in `net/prefix`.
pub fn in_net(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask))
        }
        IpAddr::V6(v) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask))
        }
    }
}

/// The interface a unicast VIP goes on: the first VLAN whose subnet holds it, else `lb`.
pub fn place<'a>(vip: IpAddr, lb: &'a str, vlan_nets: &'a [(String, IpAddr, u8)]) -> &'a str {
    vlan_nets
        .iter()
        .find(|(_, n, p)| in_net(*n, *p, vip))
        .map_or(lb, |(name, _, _)| name.as_str())
}

/// The LB interface manager.
pub struct Lb {
    kernel: Box<dyn LbKernel>,
    lb: String,
    node: String,
    announce: Option<Box<dyn Announce>>,
    periodic: Option<Box<dyn Periodic>>,
    sysctl_root: Option<std::path::PathBuf>,
    warned: BTreeSet<String>,
}

impl std::fmt::Debug for Lb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lb")
            .field("lb", &self.lb)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

impl Lb {
    /// A manager of interface `lb` (`node` is the node interface) over `kernel`. `announce`
    /// sends the burst on becoming master, `periodic` the GARP loop; `sysctl_root` (normally
    /// `/proc/sys`) gets Seesaw's per-interface sysctls for each VLAN created.
    pub fn new(
        kernel: Box<dyn LbKernel>,
        lb: String,
        node: String,
        announce: Option<Box<dyn Announce>>,
        periodic: Option<Box<dyn Periodic>>,
        sysctl_root: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            kernel,
            lb,
            node,
            announce,
            periodic,
            sysctl_root,
            warned: BTreeSet::new(),
        }
    }

    /// The LB interface's name.
    pub fn interface(&self) -> &str {
        &self.lb
    }

    fn warn_once(&mut self, msg: String) {
        if self.warned.insert(msg.clone()) {
            tracing::warn!("{msg}");
        }
    }

    /// Takes `links` down in order, putting back the global IPv6 addresses the kernel drops
    /// on link down (Seesaw's `LBInterfaceDown`), each with its original originator.
    /// Waits (at most [`RUNNING_WAIT`]) for a link just brought up to become operational, so
    /// the routes, VIPs and announcements that follow are usable at once: a SYN-ACK sent on a
    /// link whose queue the kernel has not attached yet is dropped, and costs that client a
    /// one-second retransmission.
    fn await_running(&mut self, name: &str) {
        let deadline = std::time::Instant::now() + RUNNING_WAIT;
        while !self.kernel.running(name) {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(link = name, wait = ?RUNNING_WAIT, "link up but not yet operational; going on");
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn down_keeping_ipv6(
        &mut self,
        links: &[(u32, String)],
        changes: &mut Vec<String>,
    ) -> Result<(), NccError> {
        if links.is_empty() {
            return Ok(());
        }
        let before: Vec<HeldAddr> = self
            .kernel
            .addrs()?
            .into_iter()
            .filter(|a| {
                links.iter().any(|(i, _)| *i == a.index) && a.addr.is_ipv6() && !link_local(a.addr)
            })
            .collect();
        for (index, name) in links {
            self.kernel.set_up(*index, false)?;
            changes.push(format!("{name} down"));
        }
        let after = self.kernel.addrs()?;
        for a in before {
            if !after.iter().any(|h| h.index == a.index && h.addr == a.addr) {
                self.kernel.addr(true, &a)?;
            }
        }
        Ok(())
    }

    /// Makes the kernel hold `want`; `vips` are the VIPs the engine wants up (for the
    /// `from VIP` rules and the GARP loop).
    #[allow(
        clippy::too_many_lines,
        reason = "one reconcile pass, in Seesaw's order"
    )]
    pub fn apply(&mut self, want: &LbWant, vips: &[Vip]) -> Result<LbPlan, NccError> {
        if !(1..=250).contains(&want.table) {
            return Err(NccError::Invalid(vec![format!(
                "routing table {} is outside 1..250",
                want.table
            )]));
        }
        let mut plan = LbPlan::default();
        let distinct = self.lb != self.node;
        let link_up = want.up || !distinct;
        if !distinct {
            self.warn_once(format!(
                "LB interface {} is also the node interface: it stays up on the backup and \
                 carries no VMAC; only the VIPs and the cluster VIP leave with mastership",
                self.lb
            ));
        }
        let mut links = self.kernel.links()?;
        let lb_link = links
            .iter()
            .find(|l| l.name == self.lb)
            .cloned()
            .ok_or_else(|| NccError::Plane(format!("LB interface {}: no such device", self.lb)))?;
        let lb_index = lb_link.index;

        // VMAC (link down first), or back to the permanent MAC.
        let mut lb_up_now = lb_link.up;
        let target_mac = match want.vmac {
            Some(m) if distinct => Some(m),
            Some(_) => {
                self.warn_once(format!(
                    "use_vmac: not putting the VMAC on {}, the node interface",
                    self.lb
                ));
                None
            }
            None => lb_link
                .mac
                .filter(|m| m[..5] == [0, 0, 0x5e, 0, 1])
                .and(lb_link.perm_mac)
                .filter(|p| *p != [0; 6]),
        };
        if let Some(m) = target_mac
            && lb_link.mac != Some(m)
        {
            if lb_up_now {
                self.down_keeping_ipv6(&[(lb_index, self.lb.clone())], &mut plan.changes)?;
                lb_up_now = false;
            }
            self.kernel.set_mac(lb_index, m)?;
            plan.changes
                .push(format!("set MAC {} on {}", mac_str(m), self.lb));
        }

        // VLAN sub-interfaces: delete what is not configured, create what is missing.
        let wanted_vlans: Vec<(String, VlanWant)> = want
            .vlans
            .iter()
            .map(|v| (format!("{}.{}", self.lb, v.id), *v))
            .collect();
        let mut relist = false;
        for l in links
            .iter()
            .filter(|l| l.parent == Some(lb_index) && l.kind.as_deref() == Some("vlan"))
        {
            let keep = wanted_vlans
                .iter()
                .any(|(n, v)| *n == l.name && l.vlan_id == Some(v.id));
            if !keep {
                self.kernel.del_link(l.index)?;
                plan.changes.push(format!("delete VLAN {}", l.name));
                relist = true;
            }
        }
        if relist {
            links = self.kernel.links()?;
        }
        let mut created = Vec::new();
        for (name, v) in &wanted_vlans {
            if links.iter().any(|l| l.name == *name) {
                continue;
            }
            if let Err(e) = super::vips::check_ifname(name) {
                self.warn_once(format!("VLAN {}: {e}", v.id));
                continue;
            }
            match self.kernel.add_vlan(lb_index, name, v.id) {
                Ok(()) => {
                    plan.changes.push(format!("add VLAN {name}"));
                    created.push(name.clone());
                }
                Err(e) => self.warn_once(format!("cannot create VLAN {name}: {e}")),
            }
        }
        if !created.is_empty() {
            links = self.kernel.links()?;
            if let Some(root) = &self.sysctl_root {
                let names: Vec<&str> = created.iter().map(String::as_str).collect();
                super::sysctl::apply(root, &super::sysctl::per_interface(&names));
            }
        }
        let vlan_links: Vec<(LinkInfo, VlanWant)> = wanted_vlans
            .iter()
            .filter_map(|(n, v)| Some((links.iter().find(|l| l.name == *n)?.clone(), *v)))
            .collect();

        // Addresses: the cluster VIP with the node network's prefix, the VLAN host addresses.
        let held = self.kernel.addrs()?;
        let node_index = links.iter().find(|l| l.name == self.node).map(|l| l.index);
        let node_net = |ip: IpAddr| {
            held.iter()
                .filter(|h| Some(h.index) == node_index && h.proto != SEESAW_PROTO)
                .find(|h| h.addr != ip && in_net(h.addr, h.prefix, ip))
                .map(|h| h.prefix)
        };
        let mut wanted_addrs: Vec<HeldAddr> = Vec::new();
        let mut cluster_v4_net: Option<(IpAddr, u8)> = None;
        let clusters = [
            want.cluster_v4.map(IpAddr::V4),
            want.cluster_v6.map(IpAddr::V6),
        ];
        let mut missing_net = Vec::new();
        for vip in clusters.into_iter().flatten() {
            let Some(prefix) = node_net(vip) else {
                missing_net.push(vip);
                continue;
            };
            if vip.is_ipv4() {
                cluster_v4_net = Some((network(vip, prefix), prefix));
            }
            if distinct || want.up {
                wanted_addrs.push(HeldAddr {
                    index: lb_index,
                    addr: vip,
                    prefix,
                    proto: SEESAW_PROTO,
                });
            }
        }
        for vip in missing_net {
            self.warn_once(format!(
                "cluster VIP {vip} is in no network of the node interface {}: not placing it \
                 (nor its policy routes)",
                self.node
            ));
        }
        for (l, v) in &vlan_links {
            let hosts = [
                v.v4.map(|(a, p)| (IpAddr::V4(a), p)),
                v.v6.map(|(a, p)| (IpAddr::V6(a), p)),
            ];
            for (a, p) in hosts.into_iter().flatten() {
                wanted_addrs.push(HeldAddr {
                    index: l.index,
                    addr: a,
                    prefix: p,
                    proto: SEESAW_PROTO,
                });
                plan.vlan_nets.push((l.name.clone(), network(a, p), p));
            }
        }
        let mut added_on_lb = Vec::new();
        for w in &wanted_addrs {
            plan.keep.push((w.index, w.addr));
            if held.iter().any(|h| h.index == w.index && h.addr == w.addr) {
                continue;
            }
            self.kernel.addr(true, w)?;
            if w.index == lb_index {
                added_on_lb.push(w.addr);
            }
            let name = links
                .iter()
                .find(|l| l.index == w.index)
                .map_or("?", |l| l.name.as_str());
            plan.changes
                .push(format!("add {}/{} on {name}", w.addr, w.prefix));
        }

        // Link state: children go down before the parent, come up after it; IPv6 kept.
        let mut ordered: Vec<(u32, String, bool)> = vec![(lb_index, self.lb.clone(), lb_up_now)];
        ordered.extend(
            vlan_links
                .iter()
                .map(|(l, _)| (l.index, l.name.clone(), l.up)),
        );
        let became_master = link_up && !lb_up_now;
        if link_up {
            for (index, name, up) in &ordered {
                if !up {
                    self.kernel.set_up(*index, true)?;
                    plan.changes.push(format!("{name} up"));
                    self.await_running(name);
                }
            }
        } else {
            let downs: Vec<(u32, String)> = ordered
                .iter()
                .rev()
                .filter(|(_, _, up)| *up)
                .map(|(i, n, _)| (*i, n.clone()))
                .collect();
            self.down_keeping_ipv6(&downs, &mut plan.changes)?;
        }

        // Rules (IPv4): to/from the cluster VIP, from each unicast VIP on the LB interface.
        let table = want.table;
        let rule = |src: Option<Ipv4Addr>, dst: Option<Ipv4Addr>| RuleInfo {
            family: 2,
            src: src.map(|a| (IpAddr::V4(a), 32)),
            dst: dst.map(|a| (IpAddr::V4(a), 32)),
            table,
            action: FR_ACT_TO_TBL,
            priority: None,
            protocol: SEESAW_PROTO,
        };
        let mut wanted_rules: Vec<RuleInfo> = Vec::new();
        if let (Some(c), Some(_)) = (want.cluster_v4, cluster_v4_net) {
            wanted_rules.push(rule(None, Some(c)));
            wanted_rules.push(rule(Some(c), None));
        }
        for v in vips.iter().filter(|v| v.kind == VipKind::Unicast) {
            if let IpAddr::V4(a) = v.addr
                && place(v.addr, &self.lb, &plan.vlan_nets) == self.lb
                && Some(a) != want.cluster_v4
            {
                wanted_rules.push(rule(Some(a), None));
            }
        }
        let held_rules = self.kernel.rules()?;
        sync(&held_rules, &wanted_rules, &mut plan.changes, |add, r| {
            self.kernel.rule(add, r)
        })?;

        // Routes in the table while master: the node network and the default gateway.
        let held_routes = self.kernel.routes()?;
        let mut wanted_routes = Vec::new();
        if want.up
            && let Some((net, prefix)) = cluster_v4_net
        {
            wanted_routes.push(RouteInfo {
                table,
                dst: (net, prefix),
                gateway: None,
                oif: Some(lb_index),
                protocol: SEESAW_PROTO,
                scope: RT_SCOPE_LINK,
                kind: RTN_UNICAST,
                metric: None,
            });
            let gw = held_routes.iter().find(|r| {
                r.table == RT_TABLE_MAIN && r.dst.1 == 0 && r.gateway.is_some_and(|g| g.is_ipv4())
            });
            match gw.and_then(|r| r.gateway) {
                Some(g) => wanted_routes.push(RouteInfo {
                    table,
                    dst: (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                    gateway: Some(g),
                    oif: Some(lb_index),
                    protocol: SEESAW_PROTO,
                    scope: RT_SCOPE_UNIVERSE,
                    kind: RTN_UNICAST,
                    metric: None,
                }),
                None => self.warn_once(format!(
                    "no IPv4 default gateway in the main table: table {table} holds only the \
                     node network"
                )),
            }
        }
        sync(&held_routes, &wanted_routes, &mut plan.changes, |add, r| {
            self.kernel.route(add, r)
        })?;

        // Announcements: a burst for the cluster VIP on becoming master, then the GARP loop.
        let cluster_on_lb: Vec<IpAddr> = wanted_addrs
            .iter()
            .filter(|a| a.index == lb_index)
            .map(|a| a.addr)
            .collect();
        if want.up
            && let Some(a) = &self.announce
        {
            let fresh = if became_master {
                &cluster_on_lb
            } else {
                &added_on_lb
            };
            for ip in fresh {
                a.announce(&self.lb, *ip);
            }
        }
        if let Some(p) = &self.periodic {
            let mut targets: Vec<(String, IpAddr)> = Vec::new();
            if want.up {
                targets.extend(
                    cluster_on_lb
                        .iter()
                        .filter(|a| a.is_ipv4())
                        .map(|a| (self.lb.clone(), *a)),
                );
                if want.vmac.is_none() {
                    for v in vips.iter().filter(|v| v.kind == VipKind::Unicast) {
                        if v.addr.is_ipv4() && !cluster_on_lb.contains(&v.addr) {
                            targets.push((
                                place(v.addr, &self.lb, &plan.vlan_nets).to_owned(),
                                v.addr,
                            ));
                        }
                    }
                }
            }
            p.set(targets, want.garp_interval);
        }
        Ok(plan)
    }
}

/// The real kernel over rtnetlink.
#[derive(Debug)]
pub struct KernelLb(Rtnl);

impl KernelLb {
    /// Opens the rtnetlink socket in this network namespace.
    pub fn open() -> Result<Self, NccError> {
        Rtnl::open().map(Self)
    }

    fn call(&mut self, msg: &[u8]) -> Result<(), RtnlError> {
        self.0.exchange(msg, false).map(drop)
    }

    /// Dumps with the request `encode(seq)` and keeps the replies `pick` accepts.
    fn dump<T>(
        &mut self,
        encode: impl FnOnce(u32) -> Vec<u8>,
        pick: fn(rtnl::RtReply) -> Option<T>,
    ) -> Result<Vec<T>, NccError> {
        let seq = self.0.seq();
        Ok(self
            .0
            .request(&encode(seq), true)?
            .into_iter()
            .filter_map(pick)
            .collect())
    }
}

fn plane(e: RtnlError) -> NccError {
    NccError::Plane(e.to_string())
}

/// An add or delete's answer, where adding what exists (`EEXIST`) or deleting what is already
/// gone is done too.
fn idempotent(add: bool, res: Result<(), RtnlError>) -> Result<(), NccError> {
    match res {
        Err(RtnlError::Kernel(17)) if add => Ok(()),
        Err(e) if !add && gone(&e) => Ok(()),
        res => res.map_err(plane),
    }
}

/// `ENOENT`/`ESRCH`: what deleting something already gone answers.
fn gone(e: &RtnlError) -> bool {
    matches!(e, RtnlError::Kernel(2 | 3))
}

impl LbKernel for KernelLb {
    fn links(&mut self) -> Result<Vec<LinkInfo>, NccError> {
        self.dump(rtnl::encode_link_dump, rtnl::RtReply::link)
    }

    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError> {
        self.dump(rtnl::encode_addr_dump, rtnl::RtReply::addr)
    }

    fn routes(&mut self) -> Result<Vec<RouteInfo>, NccError> {
        self.dump(|seq| rtnl::encode_route_dump(seq, 2), rtnl::RtReply::route)
    }

    fn rules(&mut self) -> Result<Vec<RuleInfo>, NccError> {
        self.dump(|seq| rtnl::encode_rule_dump(seq, 2), rtnl::RtReply::rule)
    }

    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError> {
        let seq = self.0.seq();
        self.call(&rtnl::encode_link_up(seq, index, up))
            .map_err(plane)
    }

    fn running(&mut self, name: &str) -> bool {
        nix::ifaddrs::getifaddrs().is_ok_and(|mut all| {
            all.any(|ifa| {
                ifa.interface_name == name
                    && ifa
                        .flags
                        .contains(nix::net::if_::InterfaceFlags::IFF_RUNNING)
            })
        })
    }

    fn set_mac(&mut self, index: u32, mac: Mac) -> Result<(), NccError> {
        let seq = self.0.seq();
        self.call(&rtnl::encode_link_mac(seq, index, mac))
            .map_err(plane)
    }

    fn add_vlan(&mut self, parent: u32, name: &str, id: u16) -> Result<(), NccError> {
        let seq = self.0.seq();
        match self.call(&rtnl::encode_vlan_add(seq, parent, name, id)) {
            Err(RtnlError::Kernel(95)) => Err(NccError::Unsupported(vec![
                "this kernel has no 802.1q VLAN support".into(),
            ])),
            r => r.map_err(plane),
        }
    }

    fn del_link(&mut self, index: u32) -> Result<(), NccError> {
        let seq = self.0.seq();
        match self.call(&rtnl::encode_link_del(seq, index)) {
            Err(e) if !gone(&e) && !matches!(e, RtnlError::Kernel(19)) => Err(plane(e)),
            _ => Ok(()),
        }
    }

    fn addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError> {
        let seq = self.0.seq();
        let msg = rtnl::encode_addr_proto(add, seq, a.index, a.addr, a.prefix, a.proto);
        match self.call(&msg) {
            Err(RtnlError::Kernel(17)) if add => Ok(()),
            Err(RtnlError::Kernel(99)) if !add => Ok(()),
            r => r.map_err(plane),
        }
    }

    fn route(&mut self, add: bool, r: &RouteInfo) -> Result<(), NccError> {
        let seq = self.0.seq();
        idempotent(add, self.call(&rtnl::encode_route(add, seq, r)))
    }

    fn rule(&mut self, add: bool, r: &RuleInfo) -> Result<(), NccError> {
        let seq = self.0.seq();
        idempotent(add, self.call(&rtnl::encode_rule(add, seq, r)))
    }
}

#[cfg(test)]
#[path = "lb_tests.rs"]
mod tests;
