//! The engine's SIGUSR1 state dump: three reporters (`engine`, `engine vservers`,
//! `engine overrides`) registered with `seesaw_common::signal::on_dump`, each one log line built
//! from the latest published [`Snapshot`] and the outcome of the last data-plane apply. Reading
//! a `watch` and a small mutex is all they do, so a dump never waits for the event loop. Lists
//! are bounded: the first [`MAX_LISTED`] entries, then "... and N more".

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

use super::Snapshot;

/// Entries listed per dump line before "... and N more".
pub(crate) const MAX_LISTED: usize = 50;

/// The outcome of the last data-plane apply.
#[derive(Debug, Clone)]
pub(crate) struct LastApply {
    /// When it finished.
    pub(crate) at: SystemTime,
    /// Services in the desired state.
    pub(crate) services: usize,
    /// Changes made, or why it failed.
    pub(crate) outcome: Result<usize, String>,
}

/// Shared between the loop (writer) and the reporter (reader).
pub(crate) type ApplyLog = Arc<Mutex<Option<LastApply>>>;

/// Records an apply's outcome.
pub(crate) fn record(log: &ApplyLog, services: usize, outcome: Result<usize, String>) {
    let mut last = log.lock().unwrap_or_else(|e| e.into_inner());
    *last = Some(LastApply {
        at: SystemTime::now(),
        services,
        outcome,
    });
}

/// Registers the engine's reporters.
pub(crate) fn register(snap: watch::Receiver<Arc<Snapshot>>, applies: ApplyLog) {
    let s = snap.clone();
    seesaw_common::signal::on_dump("engine", move || {
        let last = applies.lock().unwrap_or_else(|e| e.into_inner()).clone();
        summary(&s.borrow(), last.as_ref(), SystemTime::now())
    });
    let s = snap.clone();
    seesaw_common::signal::on_dump("engine vservers", move || vservers(&s.borrow()));
    seesaw_common::signal::on_dump("engine overrides", move || {
        overrides(&snap.borrow(), SystemTime::now())
    });
}

/// Generation, HA, data plane and the last apply.
pub(crate) fn summary(s: &Snapshot, last: Option<&LastApply>, now: SystemTime) -> String {
    let mut out = format!(
        "config generation {} (loaded {}, {} reload failures); ha {}",
        s.generation,
        ago(s.loaded_at, now),
        s.reload_failures,
        s.ha.state
    );
    if let Some(since) = s.ha.since {
        let _ = write!(out, " since {}", ago(since, now));
    }
    let _ = write!(
        out,
        " (last report {}); data plane {}; vservers {}; checks {}; warnings {}; last apply ",
        s.ha.last_update
            .map_or_else(|| "never".to_owned(), |t| ago(t, now)),
        s.dataplane,
        s.vservers.len(),
        s.checks.len(),
        s.warnings.len()
    );
    match last {
        None => out.push_str("none yet"),
        Some(a) => {
            let _ = match &a.outcome {
                Ok(changes) => write!(
                    out,
                    "{}: ok, {changes} changes, {} services",
                    ago(a.at, now),
                    a.services
                ),
                Err(e) => write!(out, "{}: failed: {e}", ago(a.at, now)),
            };
        }
    }
    out
}

/// Every vserver with its health counts, bounded.
pub(crate) fn vservers(s: &Snapshot) -> String {
    let mut out = format!("{} vservers", s.vservers.len());
    for (i, v) in s.vservers.iter().enumerate() {
        if i == MAX_LISTED {
            let _ = write!(out, "; ... and {} more", s.vservers.len() - MAX_LISTED);
            break;
        }
        let services = v.services.len();
        let healthy = v.services.iter().filter(|s| s.healthy).count();
        let active = v.services.iter().filter(|s| s.active).count();
        let dests: usize = v.services.iter().map(|s| s.dests.len()).sum();
        let dests_up: usize = v
            .services
            .iter()
            .map(|s| s.dests.iter().filter(|d| d.healthy).count())
            .sum();
        let _ = write!(
            out,
            "{} {} {}: services {healthy}/{services} healthy ({active} active), \
             destinations {dests_up}/{dests} healthy",
            if i == 0 { ":" } else { ";" },
            v.name,
            if v.enabled { "enabled" } else { "disabled" },
        );
        if let Some(o) = v.override_state {
            let _ = write!(out, " (override {})", o.as_str());
        }
    }
    out
}

/// The overrides in force, bounded.
pub(crate) fn overrides(s: &Snapshot, now: SystemTime) -> String {
    let mut out = format!("{} overrides", s.overrides.len());
    for (i, (kind, target, state, who, at)) in s.overrides.iter().enumerate() {
        if i == MAX_LISTED {
            let _ = write!(out, "; ... and {} more", s.overrides.len() - MAX_LISTED);
            break;
        }
        let _ = write!(
            out,
            "{} {} {target} {} by {who} {}",
            if i == 0 { ":" } else { ";" },
            kind.as_str(),
            state.as_str(),
            ago(*at, now)
        );
    }
    out
}

/// `"12.3 s ago"` (or `"in the future"` after a clock step).
fn ago(t: SystemTime, now: SystemTime) -> String {
    match now.duration_since(t) {
        Ok(d) => format!("{}.{} s ago", d.as_secs(), d.subsec_millis() / 100),
        Err(_) => "in the future".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::overrides::{OverrideKind, OverrideState};
    use crate::state::EngineState;

    fn demo() -> Snapshot {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/demo");
        let loaded = crate::config::load_dir(&dir).expect("the demo config loads");
        let mut state = EngineState::new(loaded, SystemTime::now());
        let (views, _) = state.evaluate();
        crate::machine::snapshot(
            &state,
            Some(crate::ncc_port::PlaneKind::Proxy),
            views,
            crate::machine::ConfigSource::Disk,
            None,
        )
    }

    #[test]
    fn summary_names_generation_ha_plane_and_last_apply() {
        let s = demo();
        let now = s.loaded_at + Duration::from_millis(2_500);
        let text = summary(&s, None, now);
        assert!(
            text.starts_with(&format!(
                "config generation {} (loaded 2.5 s ago",
                s.generation
            )),
            "{text}"
        );
        assert!(text.contains("ha UNKNOWN"), "{text}");
        assert!(text.contains("data plane proxy"), "{text}");
        assert!(text.ends_with("last apply none yet"), "{text}");
        let ok = LastApply {
            at: now - Duration::from_secs(1),
            services: 2,
            outcome: Ok(3),
        };
        assert!(
            summary(&s, Some(&ok), now)
                .ends_with("last apply 1.0 s ago: ok, 3 changes, 2 services")
        );
        let failed = LastApply {
            outcome: Err("ncc unavailable".into()),
            ..ok
        };
        assert!(summary(&s, Some(&failed), now).ends_with("failed: ncc unavailable"));
    }

    #[test]
    fn vservers_show_health_counts_and_are_bounded() {
        let mut s = demo();
        let text = vservers(&s);
        let first = &s.vservers[0];
        let dests: usize = first.services.iter().map(|s| s.dests.len()).sum();
        assert!(
            text.starts_with(&format!("{} vservers: {} ", s.vservers.len(), first.name)),
            "{text}"
        );
        // Nothing has been probed yet: every destination is down.
        assert!(
            text.contains(&format!("destinations 0/{dests} healthy")),
            "{text}"
        );
        let one = s.vservers[0].clone();
        s.vservers = (0..MAX_LISTED + 7)
            .map(|i| {
                let mut v = one.clone();
                Arc::make_mut(&mut v).name = format!("v{i}");
                v
            })
            .collect();
        let text = vservers(&s);
        assert!(text.contains("; v49 "), "{text}");
        assert!(!text.contains("; v50 "), "{text}");
        assert!(text.ends_with("; ... and 7 more"), "{text}");
    }

    #[test]
    fn overrides_list_who_and_when() {
        let mut s = demo();
        assert_eq!(overrides(&s, SystemTime::now()), "0 overrides");
        let at = SystemTime::now();
        s.overrides = vec![(
            OverrideKind::Backend,
            "be1.demo.".into(),
            OverrideState::Disabled,
            "root".into(),
            at,
        )];
        assert_eq!(
            overrides(&s, at + Duration::from_secs(4)),
            "1 overrides: backend be1.demo. disabled by root 4.0 s ago"
        );
    }
}
