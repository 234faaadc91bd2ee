//! Operator overrides and who may set them. Seesaw accepts backend and destination overrides but
//! ignores them; here all three kinds change what runs:
//!
//! - a **vserver** override (by name) forces a vserver up or down whatever its config says;
//! - a **backend** override (by hostname) enables or disables that host in every vserver;
//! - a **destination** override (`<vserver>/<ip>:<port>/<proto>`) does so in one service only, and
//!   wins over a backend override.
//!
//! Overrides are kept by the engine across config reloads and apply to vservers created later.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::model::{Cluster, Vserver};

/// An override's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideState {
    /// Follow the config (removes the override).
    Default,
    /// Force enabled.
    Enabled,
    /// Force disabled.
    Disabled,
}

impl OverrideState {
    /// `default`, `enabled` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
}

/// What an override targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OverrideKind {
    /// A vserver by name.
    Vserver,
    /// A backend host by hostname, in every vserver.
    Backend,
    /// One destination by name.
    Destination,
}

impl OverrideKind {
    /// `vserver`, `backend` or `destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vserver => "vserver",
            Self::Backend => "backend",
            Self::Destination => "destination",
        }
    }
}

/// One stored override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Enabled or disabled (defaults are not stored).
    pub state: OverrideState,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: SystemTime,
}

/// Every override in force, keyed by kind and target (so kinds never collide, unlike Seesaw).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    entries: BTreeMap<(OverrideKind, String), Override>,
}

impl Overrides {
    /// Sets (or, with `Default`, removes) an override; returns the previous state.
    pub fn set(
        &mut self,
        kind: OverrideKind,
        target: &str,
        state: OverrideState,
        set_by: &str,
        now: SystemTime,
    ) -> OverrideState {
        let key = (kind, target.to_owned());
        let previous = self
            .entries
            .get(&key)
            .map_or(OverrideState::Default, |o| o.state);
        if state == OverrideState::Default {
            self.entries.remove(&key);
        } else {
            self.entries.insert(
                key,
                Override {
                    state,
                    set_by: set_by.to_owned(),
                    set_at: now,
                },
            );
        }
        previous
    }

    /// The override on `target` of `kind`, if any.
    pub fn get(&self, kind: OverrideKind, target: &str) -> Option<OverrideState> {
        self.entries
            .get(&(kind, target.to_owned()))
            .map(|o| o.state)
    }

    /// Every override, sorted by kind and target.
    pub fn iter(&self) -> impl Iterator<Item = (OverrideKind, &str, &Override)> {
        self.entries.iter().map(|((k, t), o)| (*k, t.as_str(), o))
    }

    /// Whether a vserver runs, given its config state.
    pub fn vserver_enabled(&self, name: &str, config_enabled: bool) -> bool {
        match self.get(OverrideKind::Vserver, name) {
            Some(OverrideState::Enabled) => true,
            Some(OverrideState::Disabled) => false,
            _ => config_enabled,
        }
    }

    /// The override deciding a destination, if any: the destination's own, else its backend's.
    pub fn destination(&self, dest_name: &str, backend: &str) -> Option<OverrideState> {
        self.get(OverrideKind::Destination, dest_name)
            .or_else(|| self.get(OverrideKind::Backend, backend))
    }
}

/// Who is asking, as the engine knows it from the socket's peer credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Root or the engine's own user (or a trusted proxy acting without an end user).
    pub trusted: bool,
    /// User name.
    pub user: String,
    /// The user's Unix groups.
    pub groups: Vec<String>,
}

/// Whether `caller` may override `vserver`: trusted callers always; others need a USER grant naming
/// them, or a GROUP grant whose group contains them (through `access_groups` or Unix membership).
pub fn may_override(cluster: &Cluster, vserver: &Vserver, caller: &Caller) -> bool {
    if caller.trusted {
        return true;
    }
    vserver.access_grants.iter().any(|g| {
        if g.group {
            caller.groups.contains(&g.grantee)
                || cluster
                    .access_groups
                    .get(&g.grantee)
                    .is_some_and(|members| members.contains(&caller.user))
        } else {
            g.grantee == caller.user
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_cluster;

    #[test]
    fn default_removes_and_destination_wins_over_backend() {
        let t = SystemTime::UNIX_EPOCH;
        let mut o = Overrides::default();
        assert_eq!(
            o.set(
                OverrideKind::Backend,
                "b1.",
                OverrideState::Disabled,
                "root",
                t
            ),
            OverrideState::Default
        );
        assert_eq!(
            o.destination("web/10.0.0.1:80/TCP", "b1."),
            Some(OverrideState::Disabled)
        );
        o.set(
            OverrideKind::Destination,
            "web/10.0.0.1:80/TCP",
            OverrideState::Enabled,
            "root",
            t,
        );
        assert_eq!(
            o.destination("web/10.0.0.1:80/TCP", "b1."),
            Some(OverrideState::Enabled)
        );
        assert_eq!(
            o.destination("other/10.0.0.1:80/TCP", "b1."),
            Some(OverrideState::Disabled)
        );
        // Same target string, different kinds: no collision.
        o.set(
            OverrideKind::Vserver,
            "b1.",
            OverrideState::Enabled,
            "root",
            t,
        );
        assert_eq!(
            o.get(OverrideKind::Backend, "b1."),
            Some(OverrideState::Disabled)
        );
        assert_eq!(
            o.set(
                OverrideKind::Backend,
                "b1.",
                OverrideState::Default,
                "root",
                t
            ),
            OverrideState::Disabled
        );
        assert_eq!(o.get(OverrideKind::Backend, "b1."), None);
        assert!(o.vserver_enabled("b1.", false));
    }

    #[test]
    fn grants_authorise_users_and_groups() {
        let text = br#"
            seesaw_vip < fqdn: "v." >
            vserver < name: "irc" rp: "x" entry_address < fqdn: "i." ipv4: "10.0.0.1/32" >
              access_grant < grantee: "alice" role: OPS type: USER >
              access_grant < grantee: "irc-oncall" role: OPS type: GROUP >
              access_grant < grantee: "netops" role: ADMIN type: GROUP >
            >
            access_groups < name: "irc-oncall" member: "bob" >
        "#;
        let c = load_cluster(text, None).unwrap();
        let v = &c.vservers["irc"];
        let who = |user: &str, groups: &[&str]| Caller {
            trusted: false,
            user: user.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        assert!(may_override(&c, v, &who("alice", &[])));
        assert!(
            may_override(&c, v, &who("bob", &[])),
            "member through access_groups"
        );
        assert!(
            may_override(&c, v, &who("carol", &["netops"])),
            "member through a Unix group"
        );
        assert!(!may_override(&c, v, &who("mallory", &["users"])));
        assert!(may_override(
            &c,
            v,
            &Caller {
                trusted: true,
                user: "root".into(),
                groups: vec![]
            }
        ));
    }
}

/// One override as the master reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOverride {
    /// What it targets.
    pub kind: OverrideKind,
    /// The name.
    pub target: String,
    /// Enabled or disabled.
    pub state: OverrideState,
    /// Who set it on the master.
    pub set_by: String,
}
