//! VIPs on interfaces: the engine says which VIPs should be up; [`Vips::apply`] diffs that
//! against the addresses the kernel holds and adds or removes only the difference, so every
//! apply is idempotent and a restarted ncc adopts what its predecessor added (addresses marked
//! with [`rtnl::SEESAW_PROTO`]) instead of flushing. Addresses ncc did not add are never
//! removed; a wanted VIP someone else already configured on the right interface is left as is.
//!
//! Placement: unicast VIPs go on the LB interface (`[interface] lb`), anycast and dedicated
//! VIPs on the VIP interface (`[interface] vip`; default `dummy0` where the kernel has it,
//! else `lo`), each as a host address (/32, /128) whose local route the kernel adds. A newly
//! added VIP on a real interface is announced ([`Announce`]: gratuitous ARP / unsolicited NA).
//! A unicast VIP inside a VLAN's subnet goes on that VLAN sub-interface ([`Vips::set_vlans`]);
//! the LB manager's own addresses are left to it ([`Vips::apply_keeping`]). ncc manages VIPs
//! only when it may change the network and seesaw.cfg names `[interface] lb` or `vip`; a
//! unicast VIP without an LB interface is skipped with a warning.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::rtnl::{self, HeldAddr, Rtnl};
use crate::NccError;

/// Where a VIP belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VipKind {
    /// On the LB interface; moves with HA.
    Unicast,
    /// In a dedicated VIP subnet: on the VIP interface.
    Dedicated,
    /// Anycast (announced over BGP): on the VIP interface.
    Anycast,
}

/// One VIP that should be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Its kind.
    pub kind: VipKind,
}

/// The kernel side: the rtnetlink socket in production, a stateful fake in tests.
pub trait AddrKernel: Send + 'static {
    /// The index of interface `name`.
    fn index(&self, name: &str) -> Result<u32, NccError>;
    /// Every address of every interface.
    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError>;
    /// Adds `a` (its `proto` [`rtnl::SEESAW_PROTO`] marks it ours) to its interface, or deletes
    /// it.
    fn set_addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError>;
    /// Sets interface `index` up or down.
    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError>;
}

/// Sends neighbour announcements for a VIP just added on a real interface.
pub trait Announce: Send + 'static {
    /// Announces `addr` on interface `iface` (asynchronously; failures are logged).
    fn announce(&self, iface: &str, addr: IpAddr);
}

/// Refuses what cannot be an interface name (before it reaches a sysfs path).
pub fn check_ifname(name: &str) -> Result<(), NccError> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', '\0']) || name.starts_with('.') {
        return Err(NccError::Invalid(vec![format!(
            "{name:?} is not an interface name"
        )]));
    }
    Ok(())
}

/// The index of interface `name` in the caller's network namespace (`if_nametoindex(3)`, an
/// ioctl on a socket of this namespace; sysfs would show the namespace it was mounted in).
#[allow(unsafe_code)]
pub fn ifindex(name: &str) -> Result<u32, NccError> {
    check_ifname(name)?;
    let c = std::ffi::CString::new(name)
        .map_err(|_| NccError::Invalid(vec![format!("{name:?} is not an interface name")]))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(NccError::Plane(format!(
            "interface {name}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(i)
}

/// The default VIP interface: `dummy0` where it exists, else `lo`.
pub fn default_vip_interface() -> String {
    if std::path::Path::new("/sys/class/net/dummy0").exists() {
        "dummy0".into()
    } else {
        "lo".into()
    }
}

/// What seesaw.cfg says about VIP placement and announcements: `[interface] lb`, `vip`
/// (default [`default_vip_interface`]), `garp_count` (default 3), `garp_interval_ms`
/// (default 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSettings {
    /// The LB interface.
    pub lb: Option<String>,
    /// The node interface (`[interface] node`, default `eth0`): the cluster VIP's network is
    /// looked up there, and the LB interface is never taken down when it is the same.
    pub node: String,
    /// The interface of anycast and dedicated VIPs.
    pub vip_iface: String,
    /// Whether ncc manages VIPs at all: seesaw.cfg names `[interface] lb` or `vip`.
    pub managed: bool,
    /// Announcement bursts.
    pub garp: super::garp::GarpConfig,
}

/// Reads [`VipSettings`] from seesaw.cfg (a missing file gives the defaults).
pub fn settings(seesaw_cfg: &std::path::Path) -> Result<VipSettings, String> {
    let ini = seesaw_common::goconf::Goconf::read(seesaw_cfg)?;
    let get = |key: &str| {
        ini.as_ref()
            .and_then(|i| i.get_from(Some("interface"), key))
    };
    let num = |key: &str, default: u32| -> Result<u32, String> {
        get(key).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| format!("[interface] {key} = {v:?} is not a number"))
        })
    };
    let mut garp = super::garp::GarpConfig::default();
    garp.count = num("garp_count", garp.count)?;
    let ms = u64::try_from(garp.interval.as_millis()).unwrap_or(500);
    garp.interval = std::time::Duration::from_millis(u64::from(num(
        "garp_interval_ms",
        u32::try_from(ms).unwrap_or(500),
    )?));
    Ok(VipSettings {
        managed: get("lb").is_some() || get("vip").is_some(),
        lb: get("lb").map(str::to_owned),
        node: get("node").unwrap_or("eth0").to_owned(),
        vip_iface: get("vip").map_or_else(default_vip_interface, str::to_owned),
        garp,
    })
}

/// The real kernel over rtnetlink.
#[derive(Debug)]
pub struct KernelAddrs(Rtnl);

impl KernelAddrs {
    /// Opens the rtnetlink socket in this network namespace.
    pub fn open() -> Result<Self, NccError> {
        Rtnl::open().map(Self)
    }
}

impl AddrKernel for KernelAddrs {
    fn index(&self, name: &str) -> Result<u32, NccError> {
        ifindex(name)
    }

    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError> {
        let seq = self.0.seq();
        Ok(self
            .0
            .request(&rtnl::encode_addr_dump(seq), true)?
            .into_iter()
            .filter_map(rtnl::RtReply::addr)
            .collect())
    }

    fn set_addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError> {
        let seq = self.0.seq();
        let msg = rtnl::encode_addr_proto(add, seq, a.index, a.addr, a.prefix, a.proto);
        self.0.request(&msg, false).map(drop)
    }

    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError> {
        let seq = self.0.seq();
        self.0
            .request(&rtnl::encode_link_up(seq, index, up), false)
            .map(drop)
    }
}

/// The VIP manager.
pub struct Vips {
    kernel: Box<dyn AddrKernel>,
    lb: Option<String>,
    vip_iface: String,
    announce: Option<Box<dyn Announce>>,
    /// VLAN sub-interfaces of the LB interface with their networks: a unicast VIP inside one
    /// goes there (Seesaw §5.3).
    vlans: Vec<(String, IpAddr, u8)>,
}

impl std::fmt::Debug for Vips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vips")
            .field("lb", &self.lb)
            .field("vip_iface", &self.vip_iface)
            .finish_non_exhaustive()
    }
}

fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

impl Vips {
    /// A manager over `kernel` placing unicast VIPs on `lb` and the others on `vip_iface`.
    pub fn new(
        kernel: Box<dyn AddrKernel>,
        lb: Option<String>,
        vip_iface: String,
        announce: Option<Box<dyn Announce>>,
    ) -> Self {
        Self {
            kernel,
            lb,
            vip_iface,
            announce,
            vlans: Vec::new(),
        }
    }

    /// The VLAN sub-interfaces (name, network, prefix) unicast VIPs may be placed on.
    pub fn set_vlans(&mut self, vlans: Vec<(String, IpAddr, u8)>) {
        self.vlans = vlans;
    }

    fn managed_ifaces(&self) -> impl Iterator<Item = &String> {
        self.lb
            .iter()
            .chain(std::iter::once(&self.vip_iface))
            .chain(self.vlans.iter().map(|(n, _, _)| n))
    }

    /// The interface of a VIP; `None` (logged) for a unicast VIP without an LB interface.
    fn iface_of(&self, v: &Vip) -> Option<&str> {
        match v.kind {
            VipKind::Unicast if self.lb.is_none() => {
                tracing::warn!(
                    "not bringing up unicast VIP {}: no LB interface (seesaw.cfg [interface] lb)",
                    v.addr
                );
                None
            }
            VipKind::Unicast => self
                .lb
                .as_deref()
                .map(|lb| super::lb::place(v.addr, lb, &self.vlans)),
            VipKind::Dedicated | VipKind::Anycast => Some(&self.vip_iface),
        }
    }

    /// The VIPs ncc holds now (its own addresses on the LB and VIP interfaces).
    pub fn current(&mut self) -> Result<Vec<(String, IpAddr)>, NccError> {
        let mut ifaces: Vec<(String, u32)> = Vec::new();
        for name in self.managed_ifaces() {
            if let Ok(i) = self.kernel.index(name) {
                ifaces.push((name.clone(), i));
            }
        }
        Ok(self
            .kernel
            .addrs()?
            .into_iter()
            .filter(|a| a.proto == rtnl::SEESAW_PROTO)
            .filter_map(|a| {
                let name = ifaces.iter().find(|(_, i)| *i == a.index)?.0.clone();
                Some((name, a.addr))
            })
            .collect())
    }

    /// Makes the kernel hold exactly `desired` of ncc's VIPs; returns the changes made.
    pub fn apply(&mut self, desired: &[Vip]) -> Result<Vec<String>, NccError> {
        self.apply_keeping(desired, &[])
    }

    /// [`Vips::apply`], leaving alone ncc's own addresses in `keep` (interface index,
    /// address): the LB manager's cluster VIP and VLAN host addresses.
    pub fn apply_keeping(
        &mut self,
        desired: &[Vip],
        keep: &[(u32, IpAddr)],
    ) -> Result<Vec<String>, NccError> {
        let mut want: BTreeSet<(String, u32, IpAddr)> = BTreeSet::new();
        for v in desired {
            let Some(name) = self.iface_of(v).map(str::to_owned) else {
                continue;
            };
            let index = self.kernel.index(&name)?;
            want.insert((name, index, v.addr));
        }
        let held = self.kernel.addrs()?;
        let mut changes = Vec::new();
        // Removals first: ours that are no longer wanted (on any interface).
        let names = |k: &Self, index: u32| {
            k.managed_ifaces()
                .find(|n| k.kernel.index(n).ok() == Some(index))
                .cloned()
                .unwrap_or_else(|| format!("interface {index}"))
        };
        for h in held.iter().filter(|h| h.proto == rtnl::SEESAW_PROTO) {
            if keep.contains(&(h.index, h.addr)) {
                continue;
            }
            if !want.iter().any(|(_, i, a)| *i == h.index && *a == h.addr) {
                self.kernel.set_addr(false, h)?;
                changes.push(format!(
                    "delete VIP {} from {}",
                    h.addr,
                    names(self, h.index)
                ));
            }
        }
        for (name, index, addr) in &want {
            if held.iter().any(|h| h.index == *index && h.addr == *addr) {
                continue;
            }
            self.kernel.set_addr(
                true,
                &HeldAddr {
                    index: *index,
                    addr: *addr,
                    prefix: host_prefix(*addr),
                    proto: rtnl::SEESAW_PROTO,
                },
            )?;
            changes.push(format!("add VIP {addr} on {name}"));
            if name != "lo"
                && let Some(a) = &self.announce
            {
                a.announce(name, *addr);
            }
        }
        Ok(changes)
    }

    /// Brings the LB interface up (master) or down (backup).
    pub fn set_lb_up(&mut self, up: bool) -> Result<(), NccError> {
        let lb = self.lb.clone().ok_or_else(|| {
            NccError::Unsupported(vec!["no LB interface (seesaw.cfg [interface] lb)".into()])
        })?;
        let index = self.kernel.index(&lb)?;
        self.kernel.set_up(index, up)
    }
}

#[cfg(test)]
#[path = "vips_tests.rs"]
mod tests;
