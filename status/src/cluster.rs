//! The cluster and its nodes, HA, the running config and its saved versions, reload outcomes,
//! overrides, VLANs and BGP neighbours, as the engine reports them.

use std::collections::BTreeMap;

use seesaw_proto::engine as pb;
use serde::{Deserialize, Serialize};

/// The cluster and its nodes (`ClusterStatus`; `GET /v1/nodes`, `show nodes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// The site (cluster name), shown in the shell's prompt.
    pub site: String,
    /// The engine's API version.
    pub version: u32,
    /// The data plane in use.
    pub dataplane: String,
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// One node of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The node's hostname.
    pub hostname: String,
    /// Its IPv4 address, empty if none.
    pub ipv4: String,
    /// Its IPv6 address, empty if none.
    pub ipv6: String,
    /// HA priority.
    pub priority: u32,
    /// Whether HA runs on the node.
    pub ha_enabled: bool,
    /// Whether anycast VIPs are served.
    pub anycast_enabled: bool,
    /// Whether BGP runs.
    pub bgp_enabled: bool,
    /// Whether the node serves vservers; `show nodes` calls the node enabled when it does.
    pub vservers_enabled: bool,
    /// Whether this is the node the engine runs on (the one the shell or the ECU talks to).
    pub is_local: bool,
}

/// The node's HA status (`GET /v1/ha`, `show ha`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HaStatus {
    /// `UNKNOWN`, `BACKUP`, `DISABLED`, `ERROR`, `LEADER` or `SHUTDOWN`.
    pub state: String,
    /// UNIX milliseconds of the last transition (0 if never).
    pub since_ms: i64,
    /// Transitions since the ha process started.
    pub transitions: u64,
    /// Advertisements sent.
    pub adverts_sent: u64,
    /// Advertisements received.
    pub adverts_received: u64,
    /// Datagrams the ha process dropped, by reason (`bad_mac`, `replay`, ...); non-zero only.
    pub adverts_rejected: BTreeMap<String, u64>,
    /// UNIX milliseconds of the last report from the ha process (0: never).
    pub last_update_ms: i64,
}

/// The running configuration's status (`GET /v1/config`, `config status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigStatus {
    /// Increments on every applied config.
    pub generation: u64,
    /// UNIX seconds of the config's `metadata.last_updated` (0 if unset).
    pub last_updated: i64,
    /// UNIX milliseconds when the running config was loaded.
    pub loaded_at_ms: i64,
    /// Where the config came from.
    pub source: String,
    /// Metadata attributes, in config order.
    pub attributes: Vec<Attribute>,
    /// Cluster warnings.
    pub warnings: Vec<String>,
    /// Errors of the last refused reload (empty if it succeeded).
    pub last_reload_errors: Vec<String>,
    /// Refused reloads since the engine started.
    pub reload_failures: u64,
    /// With config source etcd: the key, the revision running, and trouble.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdStatus>,
}

/// Config source etcd as the config status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EtcdStatus {
    /// The config key.
    pub key: String,
    /// The etcd revision running.
    pub revision: u64,
    /// Why etcd is not followed now (empty while it is); the node serves its last config.
    pub trouble: String,
}

/// A config metadata attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// The attribute name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A saved cluster.pb version (`GET /v1/config/history`, `config history`). Also the line the
/// engine's history keeps per version in `history/index.jsonl`, so renaming a field here changes
/// that file's format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Increasing id, from 1.
    pub id: u64,
    /// UNIX milliseconds.
    pub at_ms: i64,
    /// Who made it.
    pub who: String,
    /// What changed.
    pub what: String,
    /// Hex SHA-256 of the saved bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The engine's answer to a reload, a cluster update or a rollback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Whether the configuration was applied.
    pub applied: bool,
    /// Human-readable summary.
    pub message: String,
    /// Every error when it was refused.
    pub errors: Vec<String>,
}

/// An override in force (`GET /v1/overrides`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Override {
    /// `vserver`, `backend` or `destination`.
    pub kind: String,
    /// What it names.
    pub target: String,
    /// `default`, `enabled` or `disabled`.
    pub state: String,
    /// Who set it.
    pub set_by: String,
    /// UNIX milliseconds.
    pub set_at_ms: i64,
}

/// A VLAN with the engine's counts (`show vlans`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Vlan {
    /// The 802.1Q id.
    pub id: u32,
    /// The host's fqdn.
    pub host: String,
    /// IPv4 with prefix length, empty if none.
    pub ipv4: String,
    /// IPv6 with prefix length, empty if none.
    pub ipv6: String,
    /// Distinct backend addresses of the cluster inside the IPv4 subnet.
    pub ipv4_backends: u32,
    /// ... inside the IPv6 subnet.
    pub ipv6_backends: u32,
    /// Distinct vserver entry addresses inside the IPv4 subnet.
    pub ipv4_vips: u32,
    /// ... inside the IPv6 subnet.
    pub ipv6_vips: u32,
}

/// One BGP neighbour (`show bgp neighbors`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BgpNeighbor {
    /// The neighbour's address.
    pub address: String,
    /// Its AS number.
    pub peer_asn: u32,
    /// Its router id.
    pub router_id: String,
    /// Session state (ESTABLISHED, ACTIVE, ...).
    pub state: String,
    /// Seconds the session has been in that state.
    pub uptime_s: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// UPDATEs received.
    pub updates_received: u64,
    /// UPDATEs sent.
    pub updates_sent: u64,
}

// === conversions from the protos ===

impl From<pb::ClusterStatus> for Cluster {
    fn from(c: pb::ClusterStatus) -> Self {
        Self {
            site: c.site,
            version: c.version,
            dataplane: c.dataplane,
            nodes: c.nodes.into_iter().map(Node::from).collect(),
        }
    }
}

impl From<pb::Node> for Node {
    fn from(n: pb::Node) -> Self {
        Self {
            hostname: n.hostname,
            ipv4: n.ipv4,
            ipv6: n.ipv6,
            priority: n.priority,
            ha_enabled: n.ha_enabled,
            anycast_enabled: n.anycast_enabled,
            bgp_enabled: n.bgp_enabled,
            vservers_enabled: n.vservers_enabled,
            is_local: n.is_local,
        }
    }
}

impl From<pb::HaStatus> for HaStatus {
    fn from(h: pb::HaStatus) -> Self {
        Self {
            state: h.state,
            since_ms: h.since_ms,
            transitions: h.transitions,
            adverts_sent: h.adverts_sent,
            adverts_received: h.adverts_received,
            adverts_rejected: h
                .adverts_rejected
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            last_update_ms: h.last_update_ms,
        }
    }
}

impl From<pb::ConfigStatus> for ConfigStatus {
    fn from(c: pb::ConfigStatus) -> Self {
        Self {
            generation: c.generation,
            last_updated: c.last_updated,
            loaded_at_ms: c.loaded_at_ms,
            source: c.source,
            attributes: c
                .attributes
                .into_iter()
                .map(|a| Attribute {
                    name: a.name,
                    value: a.value,
                })
                .collect(),
            warnings: c.warnings,
            last_reload_errors: c.last_reload_errors,
            reload_failures: c.reload_failures,
            etcd: (!c.etcd_key.is_empty()).then_some(EtcdStatus {
                key: c.etcd_key,
                revision: c.etcd_revision,
                trouble: c.etcd_trouble,
            }),
        }
    }
}

impl From<pb::ConfigVersion> for Version {
    fn from(v: pb::ConfigVersion) -> Self {
        Self {
            id: v.id,
            at_ms: v.at_ms,
            who: v.who,
            what: v.what,
            sha256: v.sha256,
            size: v.size,
        }
    }
}

impl From<Version> for pb::ConfigVersion {
    fn from(v: Version) -> Self {
        let Version {
            id,
            at_ms,
            who,
            what,
            sha256,
            size,
        } = v;
        Self {
            id,
            at_ms,
            who,
            what,
            sha256,
            size,
        }
    }
}

impl From<pb::ConfigReloadReply> for Outcome {
    fn from(r: pb::ConfigReloadReply) -> Self {
        Self {
            applied: r.applied,
            message: r.message,
            errors: r.errors,
        }
    }
}

impl From<pb::Override> for Override {
    fn from(o: pb::Override) -> Self {
        Self {
            state: match pb::OverrideState::try_from(o.state) {
                Ok(pb::OverrideState::OverrideEnabled) => "enabled",
                Ok(pb::OverrideState::OverrideDisabled) => "disabled",
                _ => "default",
            }
            .to_owned(),
            kind: o.kind,
            target: o.target,
            set_by: o.set_by,
            set_at_ms: o.set_at_ms,
        }
    }
}

impl From<pb::Vlan> for Vlan {
    fn from(v: pb::Vlan) -> Self {
        Self {
            id: v.id,
            host: v.hostname,
            ipv4: v.ipv4,
            ipv6: v.ipv6,
            ipv4_backends: v.ipv4_backends,
            ipv6_backends: v.ipv6_backends,
            ipv4_vips: v.ipv4_vips,
            ipv6_vips: v.ipv6_vips,
        }
    }
}

/// The engine passes the ncc's neighbour list through as it is (`BgpNeighbors` answers
/// `seesaw.ncc.BgpNeighborList`).
impl From<seesaw_proto::ncc::BgpNeighbor> for BgpNeighbor {
    fn from(n: seesaw_proto::ncc::BgpNeighbor) -> Self {
        Self {
            address: n.address,
            peer_asn: n.peer_asn,
            router_id: n.router_id,
            state: n.state,
            uptime_s: n.uptime_s,
            messages_received: n.messages_received,
            messages_sent: n.messages_sent,
            updates_received: n.updates_received,
            updates_sent: n.updates_sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_shows_only_with_a_key_and_rejections_only_when_counted() {
        let c = ConfigStatus::from(pb::ConfigStatus::default());
        assert_eq!(c.etcd, None);
        let c = ConfigStatus::from(pb::ConfigStatus {
            etcd_key: "/seesaw/cluster.pb".into(),
            etcd_revision: 9,
            ..Default::default()
        });
        assert_eq!(
            c.etcd.map(|e| (e.key, e.revision)),
            Some(("/seesaw/cluster.pb".into(), 9))
        );
        let h = HaStatus::from(pb::HaStatus {
            adverts_rejected: [("bad_mac".to_owned(), 2), ("replay".to_owned(), 0)].into(),
            ..Default::default()
        });
        assert_eq!(h.adverts_rejected, [("bad_mac".to_owned(), 2)].into());
    }
}
