//! The `Dataplane` trait every plane implements, and the pure diff that turns "what the plane
//! holds" and "what the engine wants" into an ordered list of changes. Ordering: destinations
//! leave before their service, services are added before their destinations, weights are edited
//! in place (never delete + add), so established flows on unchanged destinations are untouched.

#[cfg(test)]
pub(crate) mod contract;
pub mod fake;
pub mod ipvs;
pub mod nftables;
pub mod proxy;
pub mod trace;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::NccError;
use crate::model::{Dest, DestStats, Service, ServiceKey};

/// One change to a data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Remove a destination.
    DeleteDest(ServiceKey, Dest),
    /// Remove a service (its destinations are removed first).
    DeleteService(ServiceKey),
    /// Add a service (without destinations).
    AddService(Service),
    /// Change a service's scheduler, mode or persistence.
    UpdateService(Service),
    /// Add a destination.
    AddDest(ServiceKey, Dest),
    /// Change a destination's weight, group or backup flag (in place).
    UpdateDest(ServiceKey, Dest),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeleteDest(k, d) => write!(f, "delete destination {} from {k}", d.addr),
            Self::DeleteService(k) => write!(f, "delete service {k}"),
            Self::AddService(s) => {
                write!(f, "add service {} ({:?}, {:?})", s.key, s.scheduler, s.mode)
            }
            Self::UpdateService(s) => write!(
                f,
                "update service {} ({:?}, {:?}, persistence {}s)",
                s.key, s.scheduler, s.mode, s.persistence
            ),
            Self::AddDest(k, d) => {
                write!(f, "add destination {} to {k} (weight {})", d.addr, d.weight)
            }
            Self::UpdateDest(k, d) => write!(f, "set weight of {} in {k} to {}", d.addr, d.weight),
        }
    }
}

/// Counters of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    /// The service.
    pub service: Service,
    /// Per destination.
    pub dests: Vec<DestStats>,
    /// The Maglev table's fingerprint ([`crate::sched::maglev::table_hash`]) for `mh` services
    /// on the planes that build the table themselves (proxy, nftables); `None` otherwise.
    pub table_hash: Option<u64>,
}

/// A data plane: userspace proxy, nftables or IPVS.
pub trait Dataplane: Send + 'static {
    /// `proxy`, `nftables`, `ipvs` or `fake`.
    fn kind(&self) -> &'static str;
    /// Why the plane cannot hold `service`, if it cannot.
    fn unsupported(&self, service: &Service) -> Option<String>;
    /// Whether the plane builds its own Maglev tables (proxy, nftables), so a service's
    /// [`Service::anchor`] applies; otherwise anchors are dropped before the diff.
    fn builds_tables(&self) -> bool {
        false
    }
    /// Re-reads the plane's state from where it lives (kernel planes: the kernel), so the next
    /// diff is against the truth. Called before every apply; the default does nothing.
    fn refresh(&mut self) -> Result<(), NccError> {
        Ok(())
    }
    /// What the plane holds now. Kernel planes read the kernel, so state there at start is adopted.
    fn current(&self) -> Vec<Service>;
    /// Applies `changes` in order; kernel planes make it one transaction.
    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError>;
    /// Counters.
    fn stats(&self) -> Vec<ServiceStats>;
    /// A reader of the counters that runs without the plane: the reconciler hands it to a
    /// blocking thread, so a slow read (nftables lists every counter through `nft`: seconds at
    /// 10,000 services) never delays an apply. The default reads now.
    fn stats_reader(&self) -> StatsReader {
        let s = self.stats();
        Box::new(move || s)
    }
    /// Makes the plane hold `desired` and returns the changes made, as text. The default is
    /// [`apply`] (check the request, diff against [`Dataplane::current`], commit); a plane in
    /// another process (ncc's `relay` module) checks the request, sends the whole state, and
    /// that process diffs it against what it holds.
    fn apply_desired(&mut self, desired: &[Service]) -> Result<Vec<String>, NccError> {
        Ok(texts(&apply(self, desired)?))
    }
    /// Makes the plane hold `scope.whole`, given that it holds the request that one replaced
    /// except for the services `scope` names: the reconciler calls it for a delta on the
    /// request it last applied without error. The default applies the whole request
    /// ([`Dataplane::apply_desired`]); planes whose [`Dataplane::current_of`] is cheap use
    /// [`apply_scoped`], which touches only those services, so a health flip costs what it
    /// changes.
    fn apply_changed(&mut self, scope: &Scope<'_>) -> Result<Vec<String>, NccError> {
        self.apply_desired(scope.whole)
    }
    /// What the plane holds of the services `keys`. The default filters
    /// [`Dataplane::current`].
    fn current_of(&self, keys: &BTreeSet<ServiceKey>) -> Vec<Service> {
        let mut v = self.current();
        v.retain(|s| keys.contains(&s.key));
        v
    }
    /// What the plane would do with `flow` (`seesaw trace`): read-only. The default says the
    /// plane cannot tell.
    fn trace(&mut self, flow: &trace::TraceFlow) -> trace::PlaneTrace {
        let _ = flow;
        trace::PlaneTrace::unsupported(self.kind())
    }
    /// A value that changes whenever the plane lost its state outside ncc's control (the proxy
    /// relay restarted): ncc's `Watch` stream then sends the engine a new id, and the engine
    /// re-sends the desired state at once. `None`: the plane's state lives and dies with ncc's
    /// view of it.
    fn epoch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// A delta as the reconciler hands it to a plane ([`Dataplane::apply_changed`]).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The whole request.
    pub whole: &'a [Service],
    /// The services of it that changed since the request the plane holds (their new form).
    pub changed: &'a [Service],
    /// The services that request held and this one does not.
    pub removed: &'a [ServiceKey],
}

/// Changes as the text ncc reports.
pub fn texts(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

/// See [`Dataplane::stats_reader`].
pub type StatsReader = Box<dyn FnOnce() -> Vec<ServiceStats> + Send>;

/// The ordered changes that turn `current` into `desired`.
pub fn diff(current: &[Service], desired: &[Service]) -> Vec<Change> {
    let cur: BTreeMap<ServiceKey, &Service> = current.iter().map(|s| (s.key, s)).collect();
    let want: BTreeMap<ServiceKey, &Service> = desired.iter().map(|s| (s.key, s)).collect();
    let mut out = Vec::new();
    // Removals first, destinations before their service.
    for (k, s) in &cur {
        match want.get(k) {
            None => {
                out.extend(s.dests.iter().map(|d| Change::DeleteDest(*k, *d)));
                out.push(Change::DeleteService(*k));
            }
            Some(w) => {
                for d in &s.dests {
                    if !w.dests.iter().any(|x| x.addr == d.addr) {
                        out.push(Change::DeleteDest(*k, *d));
                    }
                }
            }
        }
    }
    // Then additions and in-place edits.
    for (k, w) in &want {
        match cur.get(k) {
            None => {
                out.push(Change::AddService(Service {
                    dests: Vec::new(),
                    ..(*w).clone()
                }));
                out.extend(w.dests.iter().map(|d| Change::AddDest(*k, *d)));
            }
            Some(c) => {
                if c.settings() != w.settings() {
                    out.push(Change::UpdateService(Service {
                        dests: Vec::new(),
                        ..(*w).clone()
                    }));
                }
                for d in &w.dests {
                    match c.dests.iter().find(|x| x.addr == d.addr) {
                        None => out.push(Change::AddDest(*k, *d)),
                        Some(x) if x != d => out.push(Change::UpdateDest(*k, *d)),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    out
}

/// `services` as `plane` holds them: Maglev anchors matter only to the planes that build their
/// own tables, so the others get them without (no copy when nothing changes).
fn as_held<'a, P: Dataplane + ?Sized>(plane: &P, services: &'a [Service]) -> Cow<'a, [Service]> {
    if plane.builds_tables() || services.iter().all(|s| s.anchor.is_none()) {
        return Cow::Borrowed(services);
    }
    let stripped = services.iter().map(|s| Service {
        anchor: None,
        ..s.clone()
    });
    Cow::Owned(stripped.collect())
}

/// Makes `plane` hold `desired`: refuses the whole request if the plane cannot hold any service
/// of it, else commits the diff. Returns the changes made (empty when already in sync).
pub fn apply<P: Dataplane + ?Sized>(
    plane: &mut P,
    desired: &[Service],
) -> Result<Vec<Change>, NccError> {
    check(&*plane, desired)?;
    plane.refresh()?;
    let desired = as_held(&*plane, desired);
    let changes = diff(&plane.current(), &desired);
    if !changes.is_empty() {
        plane.commit(&changes)?;
    }
    Ok(changes)
}

/// [`apply`] for a plane known to hold the request `scope.whole` replaced except for the
/// services `scope` names (see [`Dataplane::apply_changed`]): the same refusals, then the diff
/// of those services alone. The cross-service firewall-mark check reads the whole request only
/// when it holds a firewall-mark service (no other service can conflict).
pub fn apply_scoped<P: Dataplane + ?Sized>(
    plane: &mut P,
    scope: &Scope<'_>,
) -> Result<Vec<Change>, NccError> {
    let Scope {
        whole,
        changed,
        removed,
    } = *scope;
    if whole.iter().any(|s| s.key.is_fwmark()) {
        check(&*plane, whole)?;
    } else {
        check(&*plane, changed)?;
    }
    plane.refresh()?;
    let changed = as_held(&*plane, changed);
    let keys: BTreeSet<ServiceKey> = changed
        .iter()
        .map(|s| s.key)
        .chain(removed.iter().copied())
        .collect();
    let changes = diff(&plane.current_of(&keys), &changed);
    if !changes.is_empty() {
        plane.commit(&changes)?;
    }
    Ok(changes)
}

/// Refuses the whole request if any service of it is malformed or `plane` cannot hold it.
pub fn check<P: Dataplane + ?Sized>(plane: &P, desired: &[Service]) -> Result<(), NccError> {
    let invalid = fwmark_problems(desired);
    if !invalid.is_empty() {
        return Err(NccError::Invalid(invalid));
    }
    let refused: Vec<String> = desired
        .iter()
        .filter_map(|s| plane.unsupported(s).map(|why| format!("{}: {why}", s.key)))
        .collect();
    if !refused.is_empty() {
        return Err(NccError::Unsupported(refused));
    }
    Ok(())
}

/// `current` with `changes` applied, in order: what a plane holding `current` holds after a
/// commit of `changes`. `fold(c, &diff(c, d))` is `d` (up to order).
pub fn fold(current: &[Service], changes: &[Change]) -> Vec<Service> {
    let mut m: BTreeMap<ServiceKey, Service> = current.iter().map(|s| (s.key, s.clone())).collect();
    for c in changes {
        match c {
            Change::AddService(s) => {
                m.insert(s.key, s.clone());
            }
            Change::DeleteService(k) => {
                m.remove(k);
            }
            Change::UpdateService(s) => {
                if let Some(x) = m.get_mut(&s.key) {
                    *x = Service {
                        dests: std::mem::take(&mut x.dests),
                        ..s.clone()
                    };
                }
            }
            Change::AddDest(k, d) | Change::UpdateDest(k, d) => {
                if let Some(x) = m.get_mut(k) {
                    x.dests.retain(|y| y.addr != d.addr);
                    x.dests.push(*d);
                    x.dests.sort();
                }
            }
            Change::DeleteDest(k, d) => {
                if let Some(x) = m.get_mut(k) {
                    x.dests.retain(|y| y.addr != d.addr);
                }
            }
        }
    }
    m.into_values().collect()
}

/// Every problem with the request's firewall-mark services: each service's own fields
/// ([`Service::fwmark_problem`]), and a VIP:port tuple marked into two services or marked while
/// it is also a VIP:port service of its own (the plane could not tell where its packets go).
pub fn fwmark_problems(desired: &[Service]) -> Vec<String> {
    let mut out: Vec<String> = desired
        .iter()
        .filter_map(|s| s.fwmark_problem().map(|why| format!("{}: {why}", s.key)))
        .collect();
    let mut owner: BTreeMap<ServiceKey, ServiceKey> = desired
        .iter()
        .filter(|s| !s.key.is_fwmark())
        .map(|s| (s.key, s.key))
        .collect();
    for s in desired.iter().filter(|s| s.key.is_fwmark()) {
        for m in &s.marks {
            if let Some(other) = owner.insert(*m, s.key) {
                out.push(format!("{}: {m} is already served by {other}", s.key));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// The plane ncc runs, resolved from seesaw.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneChoice {
    /// `proxy`, `nftables` or `ipvs`.
    pub kind: &'static str,
    /// What `[dataplane] kind` said (`auto`, `proxy`, `nftables`, `ipvs`).
    pub configured: String,
    /// `[interface] lb`, the interface of VIPs and of the DSR ingress hook.
    pub lb_interface: Option<String>,
}

/// Reads `[dataplane] kind` and `[interface] lb` from seesaw.cfg (missing file or key: `auto`)
/// and resolves the plane: `auto` is IPVS where `/proc/net/ip_vs` exists and this build can
/// drive it, else nftables when we are privileged and `nft` runs, else the userspace proxy.
/// Asking for a plane that cannot run here is an error rather than a silent fallback.
pub fn choose_plane(seesaw_cfg: &std::path::Path) -> Result<PlaneChoice, String> {
    let ini = seesaw_common::goconf::Goconf::read(seesaw_cfg)?;
    let get = |sec: &str, key: &str| ini.as_ref().and_then(|i| i.get_from(Some(sec), key));
    let configured = get("dataplane", "kind").unwrap_or("auto").to_owned();
    let lb_interface = get("interface", "lb").map(str::to_owned);
    let nft_ok = || {
        crate::kernel::privileged()
            && std::process::Command::new("nft")
                .args(["list", "tables"])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    let ipvs_ok = || ipvs::available() && crate::kernel::privileged();
    let kind = match configured.as_str() {
        "proxy" => "proxy",
        "auto" => {
            seesaw_common::plane::auto(crate::kernel::privileged(), ipvs::available(), nft_ok())
        }
        "nftables" if nft_ok() => "nftables",
        "nftables" => {
            return Err(
                "[dataplane] kind = nftables: needs CAP_NET_ADMIN and a working `nft` binary"
                    .into(),
            );
        }
        "ipvs" if ipvs_ok() => "ipvs",
        "ipvs" => {
            return Err(
                "[dataplane] kind = ipvs: needs CAP_NET_ADMIN and a kernel with IPVS \
                 (/proc/net/ip_vs; modprobe ip_vs); set kind = nftables or auto"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "[dataplane] kind = {other:?} is not one of auto, ipvs, nftables, proxy"
            ));
        }
    };
    Ok(PlaneChoice {
        kind,
        configured,
        lb_interface,
    })
}
