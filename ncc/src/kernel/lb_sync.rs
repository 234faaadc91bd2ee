//! How the LB plane keeps its policy rules and routes in step with what it wants: the two kinds
//! as one [`Entry`], and [`sync`], which deletes ours that are not wanted and adds what is
//! missing.

use super::rtnl::{RouteInfo, RuleInfo, SEESAW_PROTO};
use crate::NccError;

/// A policy rule or a route, as the LB plane keeps them in step with what it wants.
pub(super) trait Entry {
    /// The kind, for the change list ("rule", "route").
    const KIND: &'static str;
    /// Whether ncc made it (`SEESAW_PROTO`).
    fn ours(&self) -> bool;
    /// Whether two entries are the same for the kernel.
    fn same(&self, other: &Self) -> bool;
    /// How the change list shows it.
    fn show(&self) -> String;
}

impl Entry for RuleInfo {
    const KIND: &'static str = "rule";
    fn ours(&self) -> bool {
        self.protocol == SEESAW_PROTO
    }
    fn same(&self, o: &Self) -> bool {
        (self.family, self.src, self.dst, self.table, self.action)
            == (o.family, o.src, o.dst, o.table, o.action)
    }
    fn show(&self) -> String {
        rule_str(self)
    }
}

impl Entry for RouteInfo {
    const KIND: &'static str = "route";
    fn ours(&self) -> bool {
        self.protocol == SEESAW_PROTO
    }
    fn same(&self, o: &Self) -> bool {
        (self.table, self.dst, self.gateway, self.oif) == (o.table, o.dst, o.gateway, o.oif)
    }
    fn show(&self) -> String {
        route_str(self)
    }
}

/// Deletes (through `set(false, _)`) each of our `held` entries not `wanted`, then adds each
/// `wanted` one not held; every change goes on `changes`.
pub(super) fn sync<T: Entry>(
    held: &[T],
    wanted: &[T],
    changes: &mut Vec<String>,
    mut set: impl FnMut(bool, &T) -> Result<(), NccError>,
) -> Result<(), NccError> {
    for h in held.iter().filter(|h| h.ours()) {
        if !wanted.iter().any(|w| w.same(h)) {
            set(false, h)?;
            changes.push(format!("delete {} {}", T::KIND, h.show()));
        }
    }
    for w in wanted {
        if !held.iter().any(|h| w.same(h)) {
            set(true, w)?;
            changes.push(format!("add {} {}", T::KIND, w.show()));
        }
    }
    Ok(())
}

fn rule_str(r: &RuleInfo) -> String {
    let sel = match (r.src, r.dst) {
        (Some((s, _)), None) => format!("from {s}"),
        (None, Some((d, _))) => format!("to {d}"),
        (Some((s, _)), Some((d, _))) => format!("from {s} to {d}"),
        (None, None) => "from all".to_owned(),
    };
    format!("{sel} lookup {}", r.table)
}

fn route_str(r: &RouteInfo) -> String {
    let dst = if r.dst.1 == 0 {
        "default".to_owned()
    } else {
        format!("{}/{}", r.dst.0, r.dst.1)
    };
    let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    format!("{dst}{via} table {}", r.table)
}
