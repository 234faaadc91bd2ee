//! The snapshot the core publishes after every pass (what the API, peer sync and the dump read),
//! and the views' "not applied" marks for services the plane does not hold.

use std::collections::HashSet;
use std::sync::Arc;

use crate::desired::{DesiredState, ServiceKey};
use crate::etcd::EtcdView;
use crate::events::{HaConfigView, Snapshot};
use crate::ncc_port::PlaneKind;
use crate::state::{EngineState, HaRole, VserverView};

use super::ConfigSource;

/// A configured path as the HA config carries it ("" = not configured).
fn path_string(p: Option<&std::path::Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

/// The snapshot of `state` with the vserver views of this pass; the etcd part is added by the
/// driver, which owns the etcd follower ([`with_etcd`]).
pub fn snapshot(
    state: &EngineState,
    plane: Option<PlaneKind>,
    vservers: Vec<Arc<VserverView>>,
    source: ConfigSource,
    ha_reflected: Option<(HaRole, u64)>,
) -> Snapshot {
    let loaded = state.loaded().clone();
    let local = loaded.local_node().cloned();
    let s = &loaded.settings;
    let ha_config = HaConfigView {
        enabled: local.as_ref().is_some_and(|n| n.ha_enabled),
        local_addr: s.node_ipv4.map(|a| a.to_string()).unwrap_or_default(),
        remote_addr: s.peer_ipv4.map(|a| a.to_string()).unwrap_or_default(),
        priority: local.as_ref().map_or(0, |n| u32::from(n.priority)),
        vrid: u32::from(s.vrid),
        advert_interval_ms: u32::try_from(s.ha_advert_interval.as_millis()).unwrap_or(u32::MAX),
        preempt: s.ha_preempt,
        auth_key_file: path_string(s.ha_auth_key_file.as_deref()),
        auth_accept_key_file: path_string(s.ha_auth_accept_key_file.as_deref()),
    };
    let (generation, loaded_at, reload_failures, last_errors) = state.config_meta();
    Snapshot {
        site: s.cluster_name.clone(),
        nodes: loaded
            .cluster
            .nodes
            .iter()
            .map(|n| (n.clone(), local.as_ref().is_some_and(|l| l.host == n.host)))
            .collect(),
        dataplane: plane
            .map_or(s.dataplane.as_str(), PlaneKind::as_str)
            .to_owned(),
        vservers,
        checks: state.check_list(),
        ha: state.ha_view().clone(),
        ha_reflected,
        failover_pending: state.failover_pending(),
        ha_config,
        last_updated: loaded.cluster.metadata.last_updated,
        attributes: loaded.cluster.metadata.attributes.clone(),
        loaded_at,
        generation,
        reload_failures,
        last_reload_errors: last_errors.to_vec(),
        warnings: state.warnings(),
        source: source.as_str().to_owned(),
        etcd: None,
        vip_pools: state.full_config().cluster.vip_pools.clone(),
        overrides: state
            .overrides()
            .iter()
            .map(|(k, t, o)| (k, t.to_owned(), o.state, o.set_by.clone(), o.set_at))
            .collect(),
        vlans: crate::state::vlan_views(&state.full_config().cluster),
    }
}

/// Adds the etcd follower's view (and its trouble as a warning) to a snapshot.
pub fn with_etcd(snap: &mut Snapshot, etcd: Option<EtcdView>) {
    if let Some(EtcdView {
        key,
        revision,
        trouble: Some(why),
    }) = &etcd
    {
        snap.warnings.push(format!(
            "config source etcd ({key}): {why}; serving revision {revision}, saved on disk"
        ));
    }
    snap.etcd = etcd;
}

/// Marks every active service the data plane does not hold as `applied` says (the last desired
/// state ncc confirmed, if any) as not applied, with `why`: `show vservers` must never call a
/// service active that the plane refused.
pub fn mark_unapplied(views: &mut [Arc<VserverView>], applied: Option<&DesiredState>, why: &str) {
    let held_keys: HashSet<ServiceKey> = applied
        .map(|d| d.services.iter().map(|s| s.key).collect())
        .unwrap_or_default();
    for v in views {
        // Only the views that change are copied (the others stay shared with the core).
        if !v
            .services
            .iter()
            .any(|s| s.active && !held_keys.contains(&s.key))
        {
            continue;
        }
        for s in &mut Arc::make_mut(v).services {
            if s.active && !held_keys.contains(&s.key) {
                s.active = false;
                s.not_applied = Some(why.to_owned());
            }
        }
    }
}
