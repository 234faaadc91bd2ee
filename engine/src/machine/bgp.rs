//! BGP announcements as the core plans them (sans-io): what to withdraw before the plane
//! changes, what to announce once it holds, resends, and the backoff after a failed update. The
//! driver carries each request to ncc (with a deadline) and hands the outcome back.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::state::{BgpDesired, BgpSettings};

/// Resend the BGP announcements this often even when nothing changed: a restarted ncc or GoBGP
/// daemon gets them back within this time.
pub(super) const BGP_RESYNC_EVERY: Duration = Duration::from_secs(5);
/// After a failed BGP update the next one waits 1 s, then twice as long after every further
/// failure, up to this: each attempt holds the core's pass (up to the driver's call deadline),
/// so a speaker that does not answer must not cost that on every event.
pub(super) const BGP_RETRY_MAX: Duration = Duration::from_secs(5);

/// What ncc last confirmed announcing, and when.
#[derive(Debug, Default)]
pub struct BgpPlan {
    /// The last request ncc carried out; `None` before the first or after a failure.
    sent: Option<BgpDesired>,
    /// Routes that may be announced although `sent` is `None` (after a failed call).
    maybe: BTreeSet<IpAddr>,
    last_ok: Option<Instant>,
    settings: Option<BgpSettings>,
    /// Failed updates in a row, and when the next may be tried.
    failures: u32,
    retry_at: Option<Instant>,
    /// The request ncc is carrying out now.
    in_flight: Option<BgpDesired>,
}

impl BgpPlan {
    /// ncc restarted (it withdraws everything at its first BGP call): the next update sends the
    /// whole wanted set at once, without waiting out a failure backoff.
    pub fn ncc_restarted(&mut self) {
        self.sent = None;
        self.failures = 0;
        self.retry_at = None;
    }

    /// The request that withdraws every announced route `wanted` does not keep (all of them when
    /// BGP is off), keeping the others; asked before the plane is changed. `None`: nothing to
    /// withdraw, or backing off.
    pub fn withdrawal(&mut self, wanted: Option<&BgpDesired>, now: Instant) -> Option<BgpDesired> {
        let announced: BTreeSet<IpAddr> = self
            .sent
            .as_ref()
            .map(|s| s.routes.clone())
            .unwrap_or_default()
            .union(&self.maybe)
            .copied()
            .collect();
        let keep: BTreeSet<IpAddr> = match wanted {
            Some(w) => announced.intersection(&w.routes).copied().collect(),
            None => BTreeSet::new(),
        };
        if keep == announced {
            return None;
        }
        let settings = wanted
            .map(|w| w.settings.clone())
            .or_else(|| self.settings.clone())?;
        self.call(
            BgpDesired {
                settings,
                routes: keep,
            },
            now,
        )
    }

    /// The request that announces `wanted` when it differs from what ncc holds, or every
    /// [`BGP_RESYNC_EVERY`]; `None` when nothing is to be sent.
    pub fn announcement(&mut self, wanted: Option<BgpDesired>, now: Instant) -> Option<BgpDesired> {
        let w = wanted?;
        let due = self
            .last_ok
            .is_none_or(|t| now.saturating_duration_since(t) >= BGP_RESYNC_EVERY);
        if self.sent.as_ref() == Some(&w) && !due {
            return None;
        }
        self.call(w, now)
    }

    /// Backing off after failures: what was not done stays in `maybe`/unsent and is done by the
    /// first call that gets through.
    fn call(&mut self, req: BgpDesired, now: Instant) -> Option<BgpDesired> {
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        self.in_flight = Some(req.clone());
        Some(req)
    }

    /// The outcome of the request last returned.
    pub fn done(&mut self, outcome: Result<Vec<String>, String>, now: Instant) {
        let Some(req) = self.in_flight.take() else {
            return;
        };
        match outcome {
            Ok(changes) => {
                for c in &changes {
                    tracing::info!("bgp: {c}");
                }
                self.settings = Some(req.settings.clone());
                self.maybe.clear();
                self.sent = Some(req);
                self.last_ok = Some(now);
                (self.failures, self.retry_at) = (0, None);
            }
            Err(e) => {
                // Unknown now: remember what may still be announced so it is withdrawn later.
                if let Some(s) = self.sent.take() {
                    self.maybe.extend(s.routes);
                }
                self.maybe.extend(req.routes.iter().copied());
                self.settings = Some(req.settings);
                let wait = Duration::from_secs(1)
                    .saturating_mul(1 << self.failures.min(8))
                    .min(BGP_RETRY_MAX);
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(now + wait);
                tracing::warn!(error = %e, retry_in = ?wait, "bgp update failed");
            }
        }
    }
}

#[cfg(test)]
#[path = "bgp_tests.rs"]
mod tests;
