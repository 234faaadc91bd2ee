//! Tunnel mode on the nftables plane: one IPIP device per tunnel-mode destination, named after
//! its address ([`dev_name`]). A tunnel-mode service lives in the DSR table; its dispatch rule
//! forwards the packet, unchanged, into the destination's device (`fwd … device meta mark map
//! @tdev`), whose kernel driver wraps it in an outer IP header to the backend — IPVS's tunnel
//! mode, with the backend decapsulating on its `tunl0` (or `ip6tnl0`) that holds the VIP.
//! IPv4 destinations get `ipip` devices (local address: any), IPv6 ones `ip6tnl` in
//! IPv6-in-IPv6 mode with this node's source address towards the destination as the local one
//! (an `ip6tnl` device without one does not transmit).
//!
//! The devices are created before the transaction that names them and deleted after the one that
//! stops naming them; at the first commit the plane lists what exists (a previous ncc's devices
//! are adopted, stale ones removed). Devices are ours by name and kind: `ipip`/`ip6tnl`
//! links named with the prefix [`PREFIX`]. A kernel without the `ipip`/`ip6_tunnel` modules refuses tunnel-mode services with
//! that reason ([`Tunnels::probe`]); everything else still applies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::NccError;
use crate::kernel::rtnl::{self, Rtnl, RtnlError};

/// The name prefix of the plane's tunnel devices.
pub const PREFIX: &str = "sst";

/// The device of destination `ip`: `sst` and the IPv4 address in hex (`sstc0000202`), or `sst6`
/// and 11 hex digits of a hash of the IPv6 address (interface names have at most 15 bytes).
pub fn dev_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("{PREFIX}{:08x}", u32::from(a)),
        IpAddr::V6(a) => {
            // FNV-1a: fixed, so every ncc (and every node) names a destination the same way.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in a.octets() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{PREFIX}6{:011x}", h & 0xfff_ffff_ffff)
        }
    }
}

/// Tunnel devices: rtnetlink in production ([`KernelTunnels`]), a stateful fake in tests.
pub trait Tunnels: Send + std::fmt::Debug + 'static {
    /// The names of the devices with [`PREFIX`] that exist now.
    fn held(&mut self) -> Result<BTreeSet<String>, NccError>;
    /// Creates device `name` to `remote`, up (an existing one is kept).
    fn add(&mut self, name: &str, remote: IpAddr) -> Result<(), NccError>;
    /// Deletes device `name` (a missing one is not an error).
    fn del(&mut self, name: &str) -> Result<(), NccError>;
    /// Whether this kernel can make tunnel devices of `remote`'s family: `Err` is the reason.
    fn probe(&mut self, v6: bool) -> Result<(), String>;
}

/// The real kernel over rtnetlink. The socket opens at first use, so a plane that never
/// carries a tunnel-mode service never opens it.
#[derive(Debug, Default)]
pub struct KernelTunnels {
    rtnl: Option<Rtnl>,
    probed: [Option<Result<(), String>>; 2],
}

fn plane(e: impl std::fmt::Display) -> NccError {
    NccError::Plane(format!("tunnel devices: {e}"))
}

impl KernelTunnels {
    fn rtnl(&mut self) -> Result<&mut Rtnl, NccError> {
        if self.rtnl.is_none() {
            self.rtnl = Some(Rtnl::open()?);
        }
        self.rtnl.as_mut().ok_or_else(|| plane("rtnetlink socket"))
    }

    fn links(&mut self) -> Result<Vec<rtnl::LinkInfo>, NccError> {
        let r = self.rtnl()?;
        let seq = r.seq();
        Ok(r.request(&rtnl::encode_link_dump(seq), true)?
            .into_iter()
            .filter_map(|x| match x {
                rtnl::RtReply::Link(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    fn create(
        &mut self,
        name: &str,
        remote: IpAddr,
        local: Option<IpAddr>,
    ) -> Result<(), RtnlError> {
        let r = self.rtnl().map_err(|_| RtnlError::Kernel(9))?;
        let seq = r.seq();
        r.exchange(&rtnl::encode_tunnel_add(seq, name, remote, local), false)
            .map(drop)
    }
}

/// The source address this node uses towards `remote` (what the kernel's route lookup picks;
/// connecting a UDP socket sends nothing). An `ip6tnl` device needs it as its local address.
fn source_towards(remote: IpAddr) -> Result<IpAddr, String> {
    let any: std::net::SocketAddr = if remote.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).map_err(|e| e.to_string())?;
    s.connect((remote, 9))
        .map_err(|e| format!("no route to {remote}: {e}"))?;
    s.local_addr().map(|a| a.ip()).map_err(|e| e.to_string())
}

/// What the kernel's refusal to create a tunnel device means.
fn refusal(v6: bool, e: &RtnlError) -> String {
    let module = if v6 { "ip6_tunnel" } else { "ipip" };
    match e {
        // EOPNOTSUPP: no such link kind (the module is absent and cannot be loaded).
        RtnlError::Kernel(95) => format!(
            "tunnel mode needs the kernel's {module} module, which this kernel does not have"
        ),
        other => format!("tunnel mode: cannot create a {module} device: {other}"),
    }
}

impl Tunnels for KernelTunnels {
    fn held(&mut self) -> Result<BTreeSet<String>, NccError> {
        Ok(self
            .links()?
            .into_iter()
            // Only tunnel devices: a foreign link that happens to share the prefix is left alone.
            .filter(|l| {
                l.name.starts_with(PREFIX) && matches!(l.kind.as_deref(), Some("ipip" | "ip6tnl"))
            })
            .map(|l| l.name)
            .collect())
    }

    fn add(&mut self, name: &str, remote: IpAddr) -> Result<(), NccError> {
        let local =
            if remote.is_ipv6() {
                Some(source_towards(remote).map_err(|e| {
                    NccError::Plane(format!("tunnel device {name} to {remote}: {e}"))
                })?)
            } else {
                None
            };
        match self.create(name, remote, local) {
            Ok(()) | Err(RtnlError::Kernel(17)) => Ok(()),
            Err(e) => Err(NccError::Plane(refusal(remote.is_ipv6(), &e))),
        }
    }

    fn del(&mut self, name: &str) -> Result<(), NccError> {
        let Some(l) = self.links()?.into_iter().find(|l| l.name == name) else {
            return Ok(());
        };
        let r = self.rtnl()?;
        let seq = r.seq();
        match r.exchange(&rtnl::encode_link_del(seq, l.index), false) {
            Ok(_) | Err(RtnlError::Kernel(2 | 19)) => Ok(()),
            Err(e) => Err(plane(e)),
        }
    }

    fn probe(&mut self, v6: bool) -> Result<(), String> {
        let slot = usize::from(v6);
        if let Some(r) = &self.probed[slot] {
            return r.clone();
        }
        // Create and delete a device whose remote is a documentation address (no packet is
        // ever sent through it).
        let (name, remote): (&str, IpAddr) = if v6 {
            (
                "sst-probe6",
                IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            )
        } else {
            (
                "sst-probe",
                IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
            )
        };
        let r = match self.create(name, remote, None) {
            Ok(()) | Err(RtnlError::Kernel(17)) => {
                let _ = self.del(name);
                Ok(())
            }
            Err(e) => Err(refusal(v6, &e)),
        };
        self.probed[slot] = Some(r.clone());
        r
    }
}

/// A stateful fake: the devices in a shared map (so a test can look at them after handing the
/// fake to a plane), and an optional refusal standing for a kernel without the modules.
#[derive(Debug, Clone, Default)]
pub struct FakeTunnels {
    /// Device name → remote.
    pub devs: Arc<Mutex<BTreeMap<String, IpAddr>>>,
    /// `Some(reason)`: no tunnel devices on this "kernel".
    pub refuse: Option<String>,
}

impl FakeTunnels {
    fn devs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, IpAddr>> {
        self.devs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Tunnels for FakeTunnels {
    fn held(&mut self) -> Result<BTreeSet<String>, NccError> {
        Ok(self.devs().keys().cloned().collect())
    }

    fn add(&mut self, name: &str, remote: IpAddr) -> Result<(), NccError> {
        if let Some(why) = &self.refuse {
            return Err(NccError::Plane(why.clone()));
        }
        self.devs().entry(name.to_owned()).or_insert(remote);
        Ok(())
    }

    fn del(&mut self, name: &str) -> Result<(), NccError> {
        self.devs().remove(name);
        Ok(())
    }

    fn probe(&mut self, _v6: bool) -> Result<(), String> {
        self.refuse.clone().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_an_interface_name_and_differ_per_destination() {
        assert_eq!(dev_name("192.0.2.2".parse().unwrap()), "sstc0000202");
        let a = dev_name("2001:db8::2".parse().unwrap());
        let b = dev_name("2001:db8::3".parse().unwrap());
        assert!(a.starts_with("sst6") && a.len() == 15, "{a}");
        assert_ne!(a, b);
        assert_eq!(a, dev_name("2001:db8::2".parse().unwrap()), "stable");
        for ip in ["255.255.255.255", "0.0.0.0", "ffff::ffff"] {
            assert!(dev_name(ip.parse().unwrap()).len() <= 15);
        }
    }

    #[test]
    fn fake_keeps_devices_and_refuses_when_told() {
        let mut t = FakeTunnels::default();
        t.add("sstc0000202", "192.0.2.2".parse().unwrap()).unwrap();
        assert_eq!(t.held().unwrap().len(), 1);
        t.del("sstc0000202").unwrap();
        t.del("sstc0000202").unwrap();
        assert!(t.held().unwrap().is_empty());
        t.refuse = Some("no ipip".into());
        assert!(t.probe(false).is_err());
        assert!(t.add("sstc0000203", "192.0.2.3".parse().unwrap()).is_err());
    }
}
