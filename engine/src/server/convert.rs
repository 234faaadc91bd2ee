//! Conversions between the engine's domain types and its gRPC messages: times, probe
//! statistics, VLANs, override states and reload replies.

use super::*;

pub(super) fn ms(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn from_ms(ms: i64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// At most this many histogram buckets are accepted per check.
const MAX_LATENCY_BUCKETS: usize = 64;

/// Validates reported probe statistics. Their bounds are their own, or `batch_bounds` when they
/// carry none; `shared` holds the bounds of the previous result so a batch keeps one copy.
pub(super) fn stats_from_proto(
    s: pb::ProbeStats,
    batch_bounds: &[u64],
    shared: &mut Option<Arc<[u64]>>,
) -> Result<ProbeStats, String> {
    let own = &s.latency_bounds_us;
    let bounds_us: &[u64] = if own.is_empty() { batch_bounds } else { own };
    if bounds_us.len() > MAX_LATENCY_BUCKETS {
        return Err(format!(
            "{} buckets (at most {MAX_LATENCY_BUCKETS})",
            bounds_us.len()
        ));
    }
    if s.latency_counts.len() != bounds_us.len() + 1 {
        return Err(format!(
            "{} counts for {} bounds (want one more count than bounds)",
            s.latency_counts.len(),
            bounds_us.len()
        ));
    }
    if bounds_us.windows(2).any(|w| w[0] >= w[1]) {
        return Err("bounds not strictly increasing".to_owned());
    }
    let bounds = match shared {
        Some(b) if **b == *bounds_us => Arc::clone(b),
        _ => {
            let b: Arc<[u64]> = bounds_us.into();
            *shared = Some(Arc::clone(&b));
            b
        }
    };
    Ok(ProbeStats {
        successes: s.successes,
        failures: s.failures,
        last_latency: Duration::from_micros(s.last_latency_us),
        latency_sum: Duration::from_micros(s.latency_sum_us),
        bounds_us: bounds,
        counts: s.latency_counts,
    })
}

pub(super) fn stats_to_proto(s: &ProbeStats) -> pb::ProbeStats {
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    pb::ProbeStats {
        successes: s.successes,
        failures: s.failures,
        last_latency_us: us(s.last_latency),
        latency_sum_us: us(s.latency_sum),
        latency_bounds_us: s.bounds_us.to_vec(),
        latency_counts: s.counts.clone(),
    }
}

pub(super) fn vlan_to_proto(v: &crate::state::VlanView) -> pb::Vlan {
    let host = &v.vlan.host;
    pb::Vlan {
        id: u32::from(v.vlan.id),
        hostname: host.hostname.clone(),
        ipv4: host
            .ipv4
            .map(|(a, len)| format!("{a}/{len}"))
            .unwrap_or_default(),
        ipv6: host
            .ipv6
            .map(|(a, len)| format!("{a}/{len}"))
            .unwrap_or_default(),
        ipv4_backends: v.backends.ipv4,
        ipv6_backends: v.backends.ipv6,
        ipv4_vips: v.vips.ipv4,
        ipv6_vips: v.vips.ipv6,
    }
}

pub(super) fn state_to_pb(s: OverrideState) -> pb::OverrideState {
    match s {
        OverrideState::Default => pb::OverrideState::OverrideDefault,
        OverrideState::Enabled => pb::OverrideState::OverrideEnabled,
        OverrideState::Disabled => pb::OverrideState::OverrideDisabled,
    }
}

/// The reply of a reload, config update or rollback.
pub(super) fn reload_reply(reply: crate::events::ReloadReply) -> pb::ConfigReloadReply {
    match reply.outcome {
        ReloadOutcome::Applied(generation) => pb::ConfigReloadReply {
            applied: true,
            message: match reply.changes {
                Some(n) => format!(
                    "configuration applied (generation {generation}, {n} data-plane changes)"
                ),
                None => format!(
                    "configuration applied (generation {generation}; data plane not updated yet)"
                ),
            },
            errors: Vec::new(),
        },
        ReloadOutcome::Refused(errors) => pb::ConfigReloadReply {
            applied: false,
            message: format!(
                "configuration refused ({} errors); the running configuration is unchanged",
                errors.len()
            ),
            errors: crate::config::summarize(errors, crate::config::SHOWN_ERRORS),
        },
        ReloadOutcome::Unchanged(why) => pb::ConfigReloadReply {
            applied: true,
            message: format!("configuration unchanged: {why}"),
            errors: Vec::new(),
        },
    }
}
