//! The fence: the HA master's unicast VIPs are held under a lease that its ha process renews
//! every advert interval (a datagram on the lease socket, `seesaw_common::lease`, or the `Lease`
//! stream). When the lease runs out — the ha process stalled or
//! died and can no longer advertise, so the peer is about to take over — ncc withdraws what
//! only the master may serve (unicast and dedicated VIPs, the services on them, the LB
//! interface) before the peer starts, and puts it back on the next renewal. The engine's desired
//! state is kept as it was sent, so returning is one apply.
//!
//! Sans-io: [`Lease`] is fed renewals and timer wakes with the time injected, and answers with
//! the [`Change`] to make. A lease is armed by its first renewal; a node whose ha never renews
//! (no peer, HA off) is never fenced.
//!
//! ncc itself stalling (SIGSTOP, a long page-in) must not fence a master that is fine: when the
//! timer fires far later than it was due, the renewal that is surely queued on the socket gets
//! one more lease period to arrive ([`Lease::wake`]).

use std::time::Duration;

use tokio::time::Instant;

/// What the data plane must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// Withdraw the master-only part of the desired state.
    Fence,
    /// Put the whole desired state back.
    Unfence,
}

/// The lease on this node's master-only state.
#[derive(Debug, Clone, Default)]
pub struct Lease {
    /// The period of the last renewal (zero until armed).
    ttl: Duration,
    /// When the lease runs out; `None` until the first renewal.
    until: Option<Instant>,
    fenced: bool,
    /// How many times the lease was fenced.
    fences: u64,
    /// A late wake already granted one extra period since the last renewal.
    graced: bool,
}

impl Lease {
    /// Whether the master-only state is withdrawn now.
    pub fn fenced(&self) -> bool {
        self.fenced
    }

    /// How many times the master-only state was withdrawn.
    pub fn fences(&self) -> u64 {
        self.fences
    }

    /// When the timer should next wake: the end of a running lease; `None` when unarmed or
    /// already fenced.
    pub fn deadline(&self) -> Option<Instant> {
        if self.fenced { None } else { self.until }
    }

    /// A renewal for `ttl` from `now`; a zero `ttl` fences at once (ha stepping down).
    pub fn renew(&mut self, ttl: Duration, now: Instant) -> Change {
        self.ttl = ttl;
        self.graced = false;
        self.until = Some(now + ttl);
        match (ttl.is_zero(), self.fenced) {
            (true, false) => {
                self.fenced = true;
                self.fences += 1;
                Change::Fence
            }
            (false, true) => {
                self.fenced = false;
                Change::Unfence
            }
            _ => Change::None,
        }
    }

    /// The timer fired at `now`; it was due at `due`. A wake later than half a lease period
    /// means this process did not run for a while: the lease gets one more period, once per
    /// renewal, for the renewal waiting in the socket.
    pub fn wake(&mut self, now: Instant, due: Instant) -> Change {
        let Some(until) = self.until else {
            return Change::None;
        };
        if self.fenced || now < until {
            return Change::None;
        }
        if !self.graced && now.saturating_duration_since(due) > self.ttl / 2 {
            self.graced = true;
            self.until = Some(now + self.ttl);
            return Change::None;
        }
        self.fenced = true;
        self.fences += 1;
        Change::Fence
    }
}

/// The master-only part of a desired state, withdrawn: unicast and dedicated VIPs, the services
/// on them (a firewall-mark service when any of its tuples is on one), and the LB interface
/// (down). Anycast VIPs and their services stay: BGP, not HA, decides where they are served. A
/// request that did not list its VIPs cannot tell unicast from anycast, so every service goes.
pub fn fenced(
    vips: Option<&[crate::kernel::vips::Vip]>,
    lb: Option<&crate::kernel::lb::LbWant>,
    services: &[crate::model::Service],
) -> (
    Option<Vec<crate::kernel::vips::Vip>>,
    Option<crate::kernel::lb::LbWant>,
    Vec<crate::model::Service>,
) {
    use crate::kernel::vips::VipKind;
    let lb = lb.map(|l| crate::kernel::lb::LbWant {
        up: false,
        ..l.clone()
    });
    let Some(vips) = vips else {
        return (None, lb, Vec::new());
    };
    let withdrawn: std::collections::HashSet<std::net::IpAddr> = vips
        .iter()
        .filter(|v| v.kind != VipKind::Anycast)
        .map(|v| v.addr)
        .collect();
    let kept_vips = vips
        .iter()
        .filter(|v| v.kind == VipKind::Anycast)
        .copied()
        .collect();
    let services = services
        .iter()
        .filter(|s| {
            !withdrawn.contains(&s.key.vip) && !s.marks.iter().any(|m| withdrawn.contains(&m.vip))
        })
        .cloned()
        .collect();
    (Some(kept_vips), lb, services)
}

#[cfg(test)]
mod tests;
