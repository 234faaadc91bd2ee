//! Config source `etcd` in the event loop: follows the config key ([`crate::etcd::follow`]),
//! applies each revision once (validated and saved to `<config-dir>/cluster.pb` off the loop, so a
//! node restarted while etcd is down serves its last applied config), and sends edits and
//! rollbacks to etcd as compare-and-swap writes on the revision the writer read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::config_source::{ARCHIVE_KEEP, ARCHIVE_MAX_AGE};
use crate::config::{self, Loaded, etcd_cfg::EtcdSettings};
use crate::etcd::{AnchorOp, EtcdShared, EtcdView, Meta, Report, Store, StoreError};
use crate::events::ReloadReply;
use crate::machine::{EtcdOutcome, Pending};
use crate::state::ReloadOutcome;
use crate::state::anchors::Anchors;

/// Messages to the loop.
#[derive(Debug)]
pub(super) enum EtcdMsg {
    /// From the follower.
    Report(Report),
    /// A revision validated and saved off the loop (or why it was refused).
    Checked {
        revision: i64,
        checked: Box<Result<Loaded, Vec<String>>>,
        reply: Option<oneshot::Sender<ReloadReply>>,
    },
}

/// A message with the epoch of the follower that sent it.
pub(super) type Stamped = (u64, EtcdMsg);

/// The loop's side of the etcd source.
pub(super) struct EtcdSource {
    settings: Option<EtcdSettings>,
    dir: PathBuf,
    shared: Arc<EtcdShared>,
    tx: mpsc::Sender<Stamped>,
    follower: Option<CancellationToken>,
    /// Counts `start`s: messages of an earlier follower (still in flight when it was stopped)
    /// are told apart and never applied.
    epoch: u64,
    /// This node's own writes, to the forwarder (see [`forward`]).
    written: Option<mpsc::Sender<Written>>,
    applied: i64,
    trouble: Option<String>,
}

impl EtcdSource {
    pub(super) fn new(
        settings: Option<EtcdSettings>,
        dir: &Path,
    ) -> (Self, mpsc::Receiver<Stamped>, Arc<EtcdShared>) {
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::new(EtcdShared::default());
        let me = Self {
            settings,
            dir: dir.to_owned(),
            shared: Arc::clone(&shared),
            tx,
            follower: None,
            epoch: 0,
            written: None,
            applied: 0,
            trouble: None,
        };
        (me, rx, shared)
    }

    /// Starts following (etcd became the source); seeds an empty prefix with the on-disk config.
    pub(super) fn start(&mut self) -> Result<(), String> {
        let Some(cfg) = self.settings.clone() else {
            return Err("config source etcd: seesaw.cfg has no [etcd] endpoints".to_owned());
        };
        if self.follower.is_some() {
            return Ok(());
        }
        // An unreadable or empty cluster.pb seeds nothing (never an empty config for all).
        let seed = std::fs::read(self.dir.join("cluster.pb")).unwrap_or_default();
        self.applied = 0;
        self.shared.revision.store(0, Ordering::Release);
        let stop = CancellationToken::new();
        let (reports_tx, reports) = mpsc::channel(16);
        tokio::spawn(crate::etcd::follow(cfg, seed, reports_tx, stop.clone()));
        let (written_tx, written) = mpsc::channel(16);
        self.epoch += 1;
        let tx = self.tx.clone();
        tokio::spawn(forward(
            self.dir.clone(),
            reports,
            written,
            (self.epoch, tx),
        ));
        self.written = Some(written_tx);
        self.follower = Some(stop);
        self.shared.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops following (another source was chosen); the running config stays.
    pub(super) fn stop(&mut self) {
        if let Some(stop) = self.follower.take() {
            stop.cancel();
        }
        self.written = None;
        self.shared.active.store(false, Ordering::Release);
        *self.shared.store.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.trouble = None;
    }

    /// For the snapshot; `None` unless etcd is the source.
    pub(super) fn view(&self) -> Option<EtcdView> {
        let cfg = self.settings.as_ref()?;
        self.follower.as_ref()?;
        Some(EtcdView {
            key: cfg.config_key(),
            revision: self.applied,
            trouble: self.trouble.clone(),
        })
    }

    /// Handles a message: the follower's own bookkeeping here, and what the core must apply or
    /// answer returned.
    pub(super) fn on_msg(&mut self, (epoch, msg): Stamped) -> Option<EtcdOutcome> {
        if epoch != self.epoch || self.follower.is_none() {
            // From a follower stopped since (a reload, another source): never applied. A write
            // it carried stands in etcd; its caller hears so.
            if let EtcdMsg::Checked {
                reply: Some(reply),
                revision,
                ..
            } = msg
            {
                let why =
                    format!("written to etcd at revision {revision}; this node is re-reading etcd");
                return Some(EtcdOutcome::Reply((
                    Some(reply),
                    ReloadOutcome::Unchanged(why),
                )));
            }
            return None;
        }
        match msg {
            EtcdMsg::Report(Report::Connected(store)) => {
                *self.shared.store.lock().unwrap_or_else(|e| e.into_inner()) = Some(*store);
                self.trouble = None;
                None
            }
            EtcdMsg::Report(Report::Trouble(why)) => {
                if self.trouble.as_ref() != Some(&why) {
                    tracing::warn!(
                        revision = self.applied,
                        "etcd: {why}; serving the last applied config"
                    );
                }
                self.trouble = Some(why);
                None
            }
            // Checked on the way in (see `forward`).
            EtcdMsg::Report(Report::Config { .. } | Report::Members { .. }) => None,
            // Every checked state the forwarder sends is newer than the one before (it works
            // in order), so each is applied; `revision` is the config key's.
            EtcdMsg::Checked {
                revision,
                checked,
                reply,
            } => {
                if reply.is_none() {
                    self.trouble = None;
                }
                if checked.is_ok() {
                    self.applied = revision;
                    self.shared.revision.store(revision, Ordering::Release);
                }
                Some(EtcdOutcome::Checked {
                    revision,
                    checked,
                    reply,
                })
            }
        }
    }

    /// The store and the channel writes report on, while etcd is connected.
    fn connected(&self) -> Option<(Store, mpsc::Sender<Written>)> {
        self.shared.store().zip(self.written.clone())
    }

    /// The refusal of an edit while etcd is not connected.
    fn not_connected(&self) -> ReloadOutcome {
        ReloadOutcome::Refused(vec![format!(
            "etcd is not reachable ({}): edits need etcd; the running config stays",
            self.trouble.as_deref().unwrap_or("not connected yet")
        )])
    }

    /// An edit: validated, then written to etcd if the key is still at `base` (0: the revision
    /// running on this node), then applied. Refused at once when etcd is not connected.
    pub(super) fn update(
        &self,
        bytes: Vec<u8>,
        meta: Meta,
        base: i64,
        (reply, anchors): (oneshot::Sender<ReloadReply>, Anchors),
    ) -> Option<Pending> {
        let Some((store, tx)) = self.connected() else {
            return Some((Some(reply), self.not_connected()));
        };
        let base = if base == 0 { self.applied } else { base };
        let dir = self.dir.clone();
        tokio::spawn(write(store, dir, tx, (bytes, anchors), meta, base, reply));
        None
    }

    /// Restores the config etcd revision `id` wrote, byte for byte, as a new revision.
    pub(super) fn rollback(
        &self,
        id: u64,
        who: String,
        (reply, anchors): (oneshot::Sender<ReloadReply>, Anchors),
    ) -> Option<Pending> {
        let Some((store, tx)) = self.connected() else {
            return Some((Some(reply), self.not_connected()));
        };
        let (dir, base) = (self.dir.clone(), self.applied);
        tokio::spawn(async move {
            let rev = i64::try_from(id).unwrap_or(i64::MAX);
            let found = match store.read(Some(rev)).await {
                Ok(Some((bytes, at))) if at == rev => Ok(bytes),
                Ok(_) => Err(format!(
                    "etcd revision {id} did not write the cluster config (`config history` lists the versions)"
                )),
                Err(StoreError::Other(e)) => Err(format!("etcd revision {id}: {e}")),
                Err(e) => Err(e.to_string()),
            };
            match found {
                Ok(bytes) => {
                    let meta = Meta::now(&who, &format!("rollback to revision {id}"));
                    write(store, dir, tx, (bytes, anchors), meta, base, reply).await;
                }
                Err(why) => refuse(reply, vec![why]),
            }
        });
        None
    }
}

fn refuse(reply: oneshot::Sender<ReloadReply>, why: Vec<String>) {
    let _ = reply.send(ReloadReply {
        outcome: ReloadOutcome::Refused(why),
        changes: None,
    });
}

/// Validates `bytes` off the loop, writes them to etcd if the key is at `base` and hands them to
/// the forwarder, which merges the registered members in; the loop answers `reply` once applied.
async fn write(
    store: Store,
    dir: PathBuf,
    tx: mpsc::Sender<Written>,
    (bytes, anchors): (Vec<u8>, Anchors),
    meta: Meta,
    base: i64,
    reply: oneshot::Sender<ReloadReply>,
) {
    let (d, b) = (dir.clone(), bytes.clone());
    let ops =
        match tokio::task::spawn_blocking(move || check(&d, &b).map(|l| anchor_ops(&l, &anchors)))
            .await
        {
            Ok(Ok(ops)) => ops,
            Ok(Err(errors)) => return refuse(reply, errors),
            Err(e) => return refuse(reply, vec![format!("validation failed: {e}")]),
        };
    match store.write(&bytes, &meta, base, &ops).await {
        Ok(revision) => {
            tracing::info!(revision, by = %meta.who, anchors = ops.len(), "{}", meta.what);
            if let Err(e) = tx.send((revision, bytes, ops, reply)).await {
                // The follower restarted meanwhile (a reload, a source change): the write stands
                // and the new follower reads it.
                let (_, _, _, reply) = e.0;
                let _ = reply.send(ReloadReply {
                    outcome: ReloadOutcome::Unchanged(format!(
                        "written to etcd at revision {revision}; this node is re-reading etcd"
                    )),
                    changes: None,
                });
            }
        }
        Err(e) => {
            tracing::warn!(by = %meta.who, "config edit refused: {e}");
            refuse(reply, vec![e.to_string()]);
        }
    }
}

/// The Maglev anchors an edit stores with its config (in the same transaction): each `mh`
/// service whose configured backends changed gets its anchor derived from the running one
/// (`anchors`: what this node runs), so the edit moves only the flows it must and every node —
/// also one that starts later — derives from the same table; a service that left loses its.
fn anchor_ops(new: &Loaded, anchors: &Anchors) -> Vec<AnchorOp> {
    let topology = crate::checks::expand(new);
    let mut ops = Vec::new();
    let mut kept = std::collections::BTreeSet::new();
    for (name, vt) in &topology.vservers {
        for st in &vt.services {
            if st.entry.scheduler != crate::model::Scheduler::Mh {
                continue;
            }
            kept.insert(st.key);
            let set = crate::state::anchors::configured(name, st, None);
            let prev = anchors.get(&st.key);
            if prev.is_some_and(|p| p.set == set) {
                // The same backends: the stored (or built) anchor stands.
                continue;
            }
            let next = seesaw_common::maglev::Anchor::derive(prev.map(|a| &*a.anchor), &set);
            ops.push((st.key.to_string(), Some(next.to_bytes())));
        }
    }
    for k in anchors.keys().filter(|k| !kept.contains(k)) {
        ops.push((k.to_string(), None));
    }
    ops
}

/// A write of this node's, for the forwarder: its revision, bytes, the anchors it changed and
/// the caller's reply.
type Written = (i64, Vec<u8>, Vec<AnchorOp>, oneshot::Sender<ReloadReply>);

/// Turns what the follower reports (and this node's own writes) into checked configs for the
/// loop, one after another and in order: the config bytes merged with the registered members,
/// validated, and saved to `<dir>/cluster.pb`, so cluster.pb on disk is always the newest
/// revision this node applied.
async fn forward(
    dir: PathBuf,
    mut reports: mpsc::Receiver<Report>,
    mut written: mpsc::Receiver<Written>,
    (epoch, tx): (u64, mpsc::Sender<Stamped>),
) {
    let mut config: Option<(i64, Vec<u8>)> = None;
    let mut anchors: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Stored anchors as decoded, with the bytes they came from.
    type Decoded = BTreeMap<String, (Vec<u8>, Arc<seesaw_common::maglev::Anchor>)>;
    let decoded: Arc<std::sync::Mutex<Decoded>> = Arc::default();
    let mut members = BTreeMap::new();
    let mut draining = Draining::default();
    loop {
        let deadline = draining.next_deadline();
        let (_changed_at, reply) = tokio::select! {
            r = reports.recv() => match r {
                None => return,
                Some(Report::Config { revision, bytes, anchors: a }) => {
                    if config.as_ref().is_some_and(|(r, _)| *r >= revision) {
                        continue;
                    }
                    config = Some((revision, bytes));
                    anchors = a;
                    (revision, None)
                }
                Some(Report::Members { revision, members: m }) => {
                    draining.update(&members, &m);
                    members = m;
                    (revision, None)
                }
                Some(other) => {
                    if tx.send((epoch, EtcdMsg::Report(other))).await.is_err() {
                        return;
                    }
                    continue;
                }
            },
            w = written.recv() => match w {
                None => return,
                Some((revision, bytes, ops, reply)) => {
                    if config.as_ref().is_none_or(|(r, _)| *r < revision) {
                        config = Some((revision, bytes));
                        for (service, value) in ops {
                            match value {
                                Some(v) => anchors.insert(service, v),
                                None => anchors.remove(&service),
                            };
                        }
                    }
                    (revision, Some(reply))
                }
            },
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                draining.expire(std::time::Instant::now());
                (0, None)
            }
        };
        let Some((config_rev, bytes)) = &config else {
            continue;
        };
        let revision = *config_rev;
        let (dir2, bytes, m, d, a, cache) = (
            dir.clone(),
            bytes.clone(),
            members.clone(),
            draining.values(),
            anchors.clone(),
            Arc::clone(&decoded),
        );
        let checked = tokio::task::spawn_blocking(move || {
            let (merged, mut warnings, periods, mut registered) = merge_draining(&bytes, &m, &d)?;
            let loaded = match check(&dir2, &merged) {
                Ok(l) => Ok((l, merged)),
                // The members break a config that holds on its own: serve it without them.
                Err(errors) if !m.is_empty() => check(&dir2, &bytes).map(|l| {
                    warnings.push(format!(
                        "registered members left out: with them the config is refused: {}",
                        errors.join("; ")
                    ));
                    registered.clear();
                    (l, bytes.clone())
                }),
                Err(errors) => Err(errors),
            };
            let (mut loaded, saved) = loaded?;
            let mut facts = crate::model::EtcdFacts {
                registered,
                anchors: BTreeMap::new(),
            };
            // Decoded once per stored value (most revisions leave the anchors alone).
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|service, (bytes, _)| a.get(service) == Some(bytes));
            for (service, stored) in &a {
                if let Some((_, anchor)) = cache.get(service) {
                    facts.anchors.insert(service.clone(), Arc::clone(anchor));
                    continue;
                }
                match seesaw_common::maglev::Anchor::from_bytes(stored) {
                    Ok(anchor) => {
                        let anchor = Arc::new(anchor);
                        cache.insert(service.clone(), (stored.clone(), Arc::clone(&anchor)));
                        facts.anchors.insert(service.clone(), anchor);
                    }
                    Err(e) => warnings.push(format!(
                        "etcd Maglev anchor of {service}: {e}; that service's table is built afresh"
                    )),
                }
            }
            drop(cache);
            loaded.cluster.etcd = Some(facts);
            loaded.cluster.warnings.extend(warnings);
            save(&dir2, &saved);
            Ok((loaded, periods))
        })
        .await
        .unwrap_or_else(|e| Err(vec![format!("validation failed: {e}")]))
        .map(|(loaded, periods)| {
            draining.started(&periods, std::time::Instant::now());
            loaded
        });
        let msg = EtcdMsg::Checked {
            revision,
            checked: Box::new(checked),
            reply,
        };
        if tx.send((epoch, msg)).await.is_err() {
            return;
        }
    }
}

/// How long a registered member that left is kept at weight 0 when its pool sets no
/// `proxy.drain_timeout_s`.
pub(super) const DEFAULT_MEMBER_DRAIN: Duration = Duration::from_secs(30);

/// Registered members that left etcd (their lease expired, or they were deleted), kept in their
/// pool at weight 0 — no new flows, open ones go on — until the pool's drain time has passed.
#[derive(Debug, Default)]
struct Draining {
    /// Key → (the member's last value, when it leaves: unknown until a merge told its pool's
    /// drain time).
    left: BTreeMap<String, (Vec<u8>, Option<std::time::Instant>)>,
}

impl Draining {
    /// A new member set: those that left start draining, those back stop.
    fn update(&mut self, old: &BTreeMap<String, Vec<u8>>, new: &BTreeMap<String, Vec<u8>>) {
        for (k, v) in old {
            if !new.contains_key(k) {
                self.left.insert(k.clone(), (v.clone(), None));
            }
        }
        self.left.retain(|k, _| !new.contains_key(k));
    }

    /// The draining members' values, for [`merge_draining`].
    fn values(&self) -> BTreeMap<String, Vec<u8>> {
        self.left
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Starts the clocks of members whose drain time a merge reported.
    fn started(&mut self, periods: &BTreeMap<String, Duration>, now: std::time::Instant) {
        for (k, (_, until)) in &mut self.left {
            if until.is_none() {
                *until = Some(now + periods.get(k).copied().unwrap_or(DEFAULT_MEMBER_DRAIN));
            }
        }
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        self.left.values().filter_map(|(_, t)| *t).min()
    }

    /// Drops the members whose drain time has passed.
    fn expire(&mut self, now: std::time::Instant) {
        self.left.retain(|_, (_, t)| t.is_none_or(|t| t > now));
    }
}

/// cluster.pb `bytes` with the registered `members` (values of `<prefix>/members/…`) added as
/// backends of their pools; unchanged bytes when there are none. A member that does not parse,
/// names a pool the config lacks, or repeats a static backend is left out with a warning.
pub fn merge(
    bytes: &[u8],
    members: &BTreeMap<String, Vec<u8>>,
) -> Result<(Vec<u8>, Vec<String>), Vec<String>> {
    merge_draining(bytes, members, &BTreeMap::new()).map(|(b, w, _, _)| (b, w))
}

/// What [`merge_draining`] gives: the merged bytes, warnings, each draining member's drain
/// time, and the members merged in as (vserver, backend fqdn).
type Merged = (
    Vec<u8>,
    Vec<String>,
    BTreeMap<String, Duration>,
    std::collections::BTreeSet<(String, String)>,
);

/// [`merge`], plus `draining` members at weight 0; also returns each draining member's drain
/// time: the longest `proxy.drain_timeout_s` of its pool's entries, else
/// [`DEFAULT_MEMBER_DRAIN`].
pub(super) fn merge_draining(
    bytes: &[u8],
    members: &BTreeMap<String, Vec<u8>>,
    draining: &BTreeMap<String, Vec<u8>>,
) -> Result<Merged, Vec<String>> {
    let mut periods = BTreeMap::new();
    let mut registered = std::collections::BTreeSet::new();
    if members.is_empty() && draining.is_empty() {
        return Ok((bytes.to_vec(), Vec::new(), periods, registered));
    }
    let mut pb = config::cluster::parse(bytes)?;
    let mut warnings = Vec::new();
    let all = members
        .iter()
        .map(|(k, v)| (k, v, false))
        .chain(draining.iter().map(|(k, v)| (k, v, true)));
    for (key, value, leaving) in all {
        let mut m = match crate::etcd::parse_member(value) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("etcd member {key}: {e}; ignored"));
                continue;
            }
        };
        let Some(v) = pb.vserver.iter_mut().find(|v| v.name == m.pool) else {
            warnings.push(format!(
                "registered member {} of unknown pool {:?}; ignored",
                m.host, m.pool
            ));
            continue;
        };
        if leaving {
            m.weight = 0;
            let longest = v
                .vserver_entry
                .iter()
                .filter_map(|e| e.proxy.as_ref()?.drain_timeout_s)
                .max()
                .unwrap_or(0);
            let period = match longest {
                0 => DEFAULT_MEMBER_DRAIN,
                s => Duration::from_secs(u64::from(s)),
            };
            periods.insert(key.clone(), period);
        }
        let fqdn = format!("{}.", m.host.trim_end_matches('.'));
        let same_ip = |h: &seesaw_proto::config::Host| {
            [h.ipv4.as_deref(), h.ipv6.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|a| a.split('/').next()?.parse::<std::net::IpAddr>().ok())
                .any(|a| a == m.ip)
        };
        if let Some(b) = v.backend.iter().find(|b| same_ip(&b.host)) {
            warnings.push(format!(
                "registered member {} has the address {} of backend {} in {}; ignored",
                m.host, m.ip, b.host.fqdn, m.pool
            ));
            continue;
        }
        if v.backend
            .iter()
            .any(|b| b.host.fqdn.trim_end_matches('.') == fqdn.trim_end_matches('.'))
        {
            warnings.push(format!(
                "registered member {} is a static backend of {}; registration ignored",
                m.host, m.pool
            ));
            continue;
        }
        let (ipv4, ipv6) = match m.ip {
            std::net::IpAddr::V4(a) => (Some(format!("{a}/32")), None),
            std::net::IpAddr::V6(a) => (None, Some(format!("{a}/128"))),
        };
        registered.insert((v.name.clone(), fqdn.clone()));
        v.backend.push(seesaw_proto::config::Backend {
            host: seesaw_proto::config::Host {
                fqdn,
                ipv4,
                ipv6,
                status: None,
            },
            weight: Some(m.weight),
            group: None,
            backup: None,
        });
    }
    Ok((pb.to_text().into_bytes(), warnings, periods, registered))
}

/// Validates `bytes` as cluster.pb with this node's seesaw.cfg. Blocking.
fn check(dir: &Path, bytes: &[u8]) -> Result<Loaded, Vec<String>> {
    std::fs::read_to_string(dir.join("seesaw.cfg"))
        .map_err(|e| vec![format!("seesaw.cfg: {e}")])
        .and_then(|t| config::seesaw_cfg::parse_checked(&t))
        .and_then(|settings| {
            let cluster = config::load_cluster(bytes, Some(settings.dataplane))?;
            Ok(Loaded { settings, cluster })
        })
        .map_err(|e| config::summarize(e, config::SHOWN_ERRORS))
}

/// Saves an applied revision as `<dir>/cluster.pb` (the previous one archived): a restart while
/// etcd is down serves it. Blocking.
fn save(dir: &Path, bytes: &[u8]) {
    if let Err(e) = crate::source::save_with_archive(
        dir,
        bytes,
        SystemTime::now(),
        ARCHIVE_KEEP,
        ARCHIVE_MAX_AGE,
    ) {
        tracing::warn!(error = %e, "could not save the etcd config to disk");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &[u8] = br#"
seesaw_vip < fqdn: "v." ipv4: "127.0.0.10/8" status: PRODUCTION >
node < fqdn: "n1." ipv4: "127.0.0.1/8" status: PRODUCTION >
vserver < name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "127.0.0.20/32" >
  vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: RR proxy < drain_timeout_s: 7 > >
  vserver_entry < protocol: TCP port: 81 mode: NAT scheduler: RR >
  backend < host < fqdn: "b1." ipv4: "127.0.0.21/32" > >
>
vserver < name: "api" rp: "x" entry_address < fqdn: "a." ipv4: "127.0.0.30/32" >
  vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: RR >
>
"#;

    fn member(pool: &str, host: &str, ip: &str) -> (String, Vec<u8>) {
        (
            format!("/p/members/{pool}/{host}"),
            format!(r#"{{"pool":"{pool}","host":"{host}","ip":"{ip}","weight":3}}"#).into_bytes(),
        )
    }

    fn weight_of(bytes: &[u8], pool: &str, host: &str) -> Option<i32> {
        let pb = config::cluster::parse(bytes).unwrap();
        let v = pb.vserver.iter().find(|v| v.name == pool)?;
        let b = v
            .backend
            .iter()
            .find(|b| b.host.fqdn == format!("{host}."))?;
        Some(b.weight.unwrap_or(1))
    }

    #[test]
    fn a_member_that_left_drains_at_weight_zero_for_its_pools_drain_time() {
        let t0 = std::time::Instant::now();
        let (m1, m2) = (
            member("web", "r1", "127.0.0.41"),
            member("api", "r2", "127.0.0.42"),
        );
        let both: BTreeMap<_, _> = [m1.clone(), m2.clone()].into();
        let mut d = Draining::default();
        d.update(&BTreeMap::new(), &both);
        assert!(d.values().is_empty(), "nothing left yet");
        // Both leases run out.
        d.update(&both, &BTreeMap::new());
        let (merged, warnings, periods, registered) =
            merge_draining(CLUSTER, &BTreeMap::new(), &d.values()).unwrap();
        // Members merged in are live backends, never part of a Maglev anchor.
        assert!(
            registered.contains(&("web".to_owned(), "r1.".to_owned())),
            "{registered:?}"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            weight_of(&merged, "web", "r1"),
            Some(0),
            "kept, no new flows"
        );
        assert_eq!(weight_of(&merged, "api", "r2"), Some(0));
        // web's longest drain_timeout_s is 7; api sets none.
        assert_eq!(periods[&m1.0], Duration::from_secs(7));
        assert_eq!(periods[&m2.0], DEFAULT_MEMBER_DRAIN);
        d.started(&periods, t0);
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(7)));
        // A second merge does not restart the clock.
        d.started(&BTreeMap::new(), t0 + Duration::from_secs(5));
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(7)));
        // After 7 s r1 is gone; r2 drains on.
        d.expire(t0 + Duration::from_secs(7));
        let (merged, _, _, _) = merge_draining(CLUSTER, &BTreeMap::new(), &d.values()).unwrap();
        assert_eq!(weight_of(&merged, "web", "r1"), None);
        assert_eq!(weight_of(&merged, "api", "r2"), Some(0));
        // r2 registers again: it stops draining and serves at its weight.
        let back: BTreeMap<_, _> = [m2.clone()].into();
        d.update(&BTreeMap::new(), &back);
        assert!(d.values().is_empty());
        let (merged, _, _, _) = merge_draining(CLUSTER, &back, &d.values()).unwrap();
        assert_eq!(weight_of(&merged, "api", "r2"), Some(3));
        d.expire(t0 + Duration::from_secs(3600));
        assert_eq!(d.next_deadline(), None);
    }
}
