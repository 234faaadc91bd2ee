//! Per-service capabilities (`capabilities =` in watchdog.cfg): parsing, and the system calls
//! the spawner makes in the child between fork and exec. Those calls are raw rustix syscalls on
//! values computed before the fork (no allocation, no locks), so they are safe to run there.
//!
//! The order in the child, when the watchdog is root: keep capabilities across the uid switch
//! (`PR_SET_KEEPCAPS`), remove every unlisted capability from the bounding set (so a child that
//! stays root cannot regain them at exec; this needs CAP_SETPCAP, so it comes before the
//! switch), drop supplementary groups, switch gid then uid (if `user =`), set the permitted,
//! effective and inheritable sets to exactly the listed capabilities, and raise them in the
//! ambient set (so they survive `execve` of a non-setuid binary).

use std::io;

use rustix::thread::{CapabilitySet, CapabilitySets};

/// One capability a service may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cap(CapabilitySet);

/// The names `capabilities =` accepts, with and without the `CAP_` prefix, any case.
const NAMES: &[(&str, CapabilitySet)] = &[
    ("NET_ADMIN", CapabilitySet::NET_ADMIN),
    ("NET_RAW", CapabilitySet::NET_RAW),
    ("NET_BIND_SERVICE", CapabilitySet::NET_BIND_SERVICE),
    ("NET_BROADCAST", CapabilitySet::NET_BROADCAST),
    ("SYS_ADMIN", CapabilitySet::SYS_ADMIN),
    ("SYS_NICE", CapabilitySet::SYS_NICE),
    ("SYS_RESOURCE", CapabilitySet::SYS_RESOURCE),
    ("SYS_PTRACE", CapabilitySet::SYS_PTRACE),
    ("KILL", CapabilitySet::KILL),
    ("SETUID", CapabilitySet::SETUID),
    ("SETGID", CapabilitySet::SETGID),
    ("SETPCAP", CapabilitySet::SETPCAP),
    ("CHOWN", CapabilitySet::CHOWN),
    ("DAC_OVERRIDE", CapabilitySet::DAC_OVERRIDE),
    ("DAC_READ_SEARCH", CapabilitySet::DAC_READ_SEARCH),
    ("FOWNER", CapabilitySet::FOWNER),
    ("IPC_LOCK", CapabilitySet::IPC_LOCK),
    ("BPF", CapabilitySet::BPF),
    ("PERFMON", CapabilitySet::PERFMON),
];

/// The highest capability number the bounding-set loop visits (CAP_CHECKPOINT_RESTORE is 40).
const LAST_CAP: u32 = 63;

impl Cap {
    /// The capability's name without the prefix, e.g. `NET_ADMIN`.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, c)| *c == self.0)
            .map_or("?", |(n, _)| *n)
    }
}

/// Parses `CAP_NET_ADMIN, CAP_NET_RAW` (commas or spaces), or `none` for the empty list.
pub fn parse_list(value: &str) -> Result<Vec<Cap>, String> {
    let words: Vec<&str> = value
        .split([',', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() == 1 && words[0].eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if words.is_empty() {
        return Err("empty; write `none` for no capabilities".to_owned());
    }
    let mut out = Vec::new();
    for w in words {
        let upper = w.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        match NAMES.iter().find(|(n, _)| *n == bare) {
            Some((_, c)) if !out.contains(&Cap(*c)) => out.push(Cap(*c)),
            Some(_) => return Err(format!("{w} is listed twice")),
            None => {
                let known: Vec<String> = NAMES.iter().map(|(n, _)| format!("CAP_{n}")).collect();
                return Err(format!(
                    "unknown capability {w:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// What the child applies, computed before the fork.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    keep: CapabilitySet,
    caps: [Option<CapabilitySet>; NAMES.len()],
    run_as: Option<(u32, u32)>,
}

impl Plan {
    /// The plan for `caps`, after an optional switch to `(uid, gid)`.
    pub fn new(caps: &[Cap], run_as: Option<(u32, u32)>) -> Self {
        let mut keep = CapabilitySet::empty();
        let mut list = [None; NAMES.len()];
        for (slot, c) in list.iter_mut().zip(caps) {
            keep |= c.0;
            *slot = Some(c.0);
        }
        Self {
            keep,
            caps: list,
            run_as,
        }
    }

    /// Runs in the forked child: async-signal-safe (syscalls only).
    pub fn apply_in_child(&self) -> io::Result<()> {
        use rustix::process::{Gid, Uid};
        rustix::thread::set_keep_capabilities(true)?;
        // The bounding set first: shrinking it needs CAP_SETPCAP, which the uid switch below
        // clears from the effective set. Stop at the first number this kernel does not know.
        for n in 0..=LAST_CAP {
            let Some(bit) = CapabilitySet::from_bits(1u64 << n) else {
                continue;
            };
            if self.keep.contains(bit) {
                continue;
            }
            match rustix::thread::remove_capability_from_bounding_set(bit) {
                Ok(()) => {}
                Err(rustix::io::Errno::INVAL) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some((uid, gid)) = self.run_as {
            rustix::thread::set_thread_groups(&[])?;
            let gid = Gid::from_raw(gid);
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            let uid = Uid::from_raw(uid);
            rustix::thread::set_thread_res_uid(uid, uid, uid)?;
        }
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: self.keep,
                permitted: self.keep,
                inheritable: self.keep,
            },
        )?;
        for c in self.caps.iter().flatten() {
            rustix::thread::configure_capability_in_ambient_set(*c, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix() {
        let caps = parse_list("CAP_NET_ADMIN, net_raw").expect("valid");
        let names: Vec<&str> = caps.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["NET_ADMIN", "NET_RAW"]);
        assert_eq!(parse_list("none"), Ok(Vec::new()));
        assert!(parse_list("").is_err());
        assert!(parse_list("CAP_NET_ADMIN CAP_NET_ADMIN").is_err());
        let err = parse_list("CAP_FLY").expect_err("unknown");
        assert!(err.contains("unknown capability \"CAP_FLY\""), "{err}");
    }

    #[test]
    fn the_plan_keeps_exactly_the_listed_bits() {
        let caps = parse_list("CAP_NET_RAW").expect("valid");
        let plan = Plan::new(&caps, Some((65534, 65534)));
        assert_eq!(plan.keep, CapabilitySet::NET_RAW);
        assert_eq!(plan.caps.iter().flatten().count(), 1);
    }
}
