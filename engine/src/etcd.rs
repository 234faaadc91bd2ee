//! etcd as the cluster config's store for many stateless nodes (issue 15), through the
//! `etcd-client` crate (gRPC, TLS).
//!
//! Layout under `[etcd] prefix`: `cluster.pb` holds the whole cluster config as protobuf text, and
//! `cluster.meta` (JSON: who, what, when) is written in the same transaction. One key rather than
//! one per vserver: every edit is one compare-and-swap on one revision, a reader never sees half an
//! edit, and the key's revisions are the history (rollback reads the bytes at a revision, byte for
//! byte). The cost is etcd's request limit (`--max-request-bytes`, 1.5 MiB by default, roughly
//! 5,000 vservers of protobuf text).
//!
//! [`Store`] is the request side (seed, read, conditional write, history); [`follow`] is the
//! watch side: it reads the key, watches it from the revision after the one it delivered, resumes
//! from that revision after a disconnect, and reads afresh when that revision was compacted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::etcd_cfg::EtcdSettings;

mod vips;
pub use vips::Allocation;

/// What the API server reads without the loop: the store while etcd is the source, and the
/// revision running.
#[derive(Debug, Default)]
pub struct EtcdShared {
    pub(crate) active: std::sync::atomic::AtomicBool,
    pub(crate) revision: std::sync::atomic::AtomicI64,
    pub(crate) store: std::sync::Mutex<Option<Store>>,
}

impl EtcdShared {
    /// The store, while etcd is the config source and connected.
    pub fn store(&self) -> Option<Store> {
        if !self.active.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether etcd is the config source.
    pub fn active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The revision of the running config (0: none yet).
    pub fn revision(&self) -> i64 {
        self.revision.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The etcd source's state for `config status` and `show warnings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdView {
    /// The config key.
    pub key: String,
    /// The revision running (0: none from etcd yet).
    pub revision: i64,
    /// Why etcd is not followed right now (unreachable, key deleted), if so.
    pub trouble: Option<String>,
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// etcd did not answer (down, partitioned, TLS refused, deadline passed).
    #[error("etcd is not reachable: {0}")]
    Unreachable(String),
    /// Another writer changed the config since it was read.
    #[error(
        "conflict: the cluster config in etcd is at revision {current}, not revision {base} that \
         this edit was based on; read it again and retry"
    )]
    Conflict {
        /// The revision the writer read.
        base: i64,
        /// The key's revision now.
        current: i64,
    },
    /// Anything else (a revision that was compacted, a key that does not exist).
    #[error("{0}")]
    Other(String),
}

/// Who wrote a version, and why (the `cluster.meta` key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Author.
    pub who: String,
    /// What changed.
    pub what: String,
    /// UNIX milliseconds.
    pub at_ms: i64,
}

impl Meta {
    /// `who` and `what`, stamped now.
    pub fn now(who: &str, what: &str) -> Self {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self {
            who: who.to_owned(),
            what: what.to_owned(),
            at_ms: i64::try_from(at_ms).unwrap_or(i64::MAX),
        }
    }
}

/// One version of the config in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The etcd revision that wrote it (its id for rollback).
    pub revision: i64,
    /// Who, what, when (empty when the meta key was not written, e.g. by `etcdctl put`).
    pub meta: Meta,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One Maglev anchor change of a write: the service (`ServiceKey` as text) and its new stored
/// anchor ([`seesaw_common::maglev::Anchor::to_bytes`]), or `None` to delete it.
pub type AnchorOp = (String, Option<Vec<u8>>);

/// What [`Store::read_all`] reads at one revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The config and the revision that wrote it (`None`: no config key).
    pub config: Option<(Vec<u8>, i64)>,
    /// Registered members, key → value.
    pub members: BTreeMap<String, Vec<u8>>,
    /// Maglev anchors, service → stored bytes.
    pub anchors: BTreeMap<String, Vec<u8>>,
    /// The revision of the read.
    pub revision: i64,
}

/// A connection to etcd for one prefix; cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    /// `<prefix>/`: everything this cluster keeps.
    prefix: String,
    key: String,
    meta_key: String,
    /// `<prefix>/members/`: registered members.
    members: String,
    /// `<prefix>/maglev/`: the Maglev anchors, one key per `mh` service (see [`Store::write`]).
    anchors: String,
    deadline: Duration,
}

impl Store {
    /// Connects to the endpoints (TLS when they are `https://`). Keep-alive pings notice a dead
    /// server on an idle watch within a few seconds.
    pub async fn connect(cfg: &EtcdSettings) -> Result<Self, StoreError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(cfg.dial_timeout)
            .with_keep_alive(Duration::from_secs(2), cfg.dial_timeout)
            .with_keep_alive_while_idle(true);
        if cfg.tls() {
            opts = opts.with_tls(tls(cfg)?);
        }
        let client = tokio::time::timeout(
            cfg.dial_timeout,
            Client::connect(cfg.endpoints.clone(), Some(opts)),
        )
        .await
        .map_err(|_| StoreError::Unreachable(format!("no answer within {:?}", cfg.dial_timeout)))?
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        Ok(Self {
            client,
            prefix: format!("{}/", cfg.prefix),
            key: cfg.config_key(),
            meta_key: cfg.meta_key(),
            members: format!("{}/members/", cfg.prefix),
            anchors: format!("{}/maglev/", cfg.prefix),
            deadline: cfg.dial_timeout.max(Duration::from_secs(1)) * 2,
        })
    }

    /// The key that holds cluster.pb.
    pub fn key(&self) -> &str {
        &self.key
    }

    async fn call<T>(
        &self,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, f).await {
            Err(_) => Err(StoreError::Unreachable(format!(
                "no answer within {:?}",
                self.deadline
            ))),
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if s.code() == tonic::Code::OutOfRange || s.message().contains("compacted") =>
            {
                Err(StoreError::Other(s.message().to_owned()))
            }
            Ok(Err(e)) => Err(StoreError::Unreachable(e.to_string())),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Writes `bytes` only if the key does not exist yet: the first node to start bootstraps the
    /// cluster, the others adopt its config. Whether this call wrote it.
    pub async fn seed(&self, bytes: &[u8], meta: &Meta) -> Result<bool, StoreError> {
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(self.puts(bytes, meta));
        let mut c = self.client.kv_client();
        Ok(self.call(c.txn(txn)).await?.succeeded())
    }

    /// The config and the revision that wrote it, as of `at` (now when `None`); `None` when the
    /// key does not exist (at that revision).
    pub async fn read(&self, at: Option<i64>) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let opts = at.map(|r| GetOptions::new().with_revision(r));
        let mut c = self.client.kv_client();
        let r = self.call(c.get(self.key.clone(), opts)).await?;
        Ok(r.kvs()
            .first()
            .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
    }

    /// Writes `bytes` if the key is still at revision `base` (what the writer read): of two racing
    /// writers one succeeds and the other gets [`StoreError::Conflict`] naming the revision now.
    /// `anchors` (service → new Maglev anchor, `None`: delete) go in the same transaction,
    /// before the config, so a watcher sees them when it sees the config they belong to.
    /// Returns the revision of the write.
    pub async fn write(
        &self,
        bytes: &[u8],
        meta: &Meta,
        base: i64,
        anchors: &[AnchorOp],
    ) -> Result<i64, StoreError> {
        let mut ops: Vec<TxnOp> = anchors
            .iter()
            .map(|(service, value)| {
                let key = format!("{}{service}", self.anchors);
                match value {
                    Some(v) => TxnOp::put(key, v.clone(), None),
                    None => TxnOp::delete(key, None),
                }
            })
            .collect();
        ops.extend(self.puts(bytes, meta));
        let txn = Txn::new()
            .when([Compare::mod_revision(
                self.key.clone(),
                CompareOp::Equal,
                base,
            )])
            .and_then(ops)
            .or_else([TxnOp::get(self.key.clone(), None)]);
        let mut c = self.client.kv_client();
        let r = self.call(c.txn(txn)).await?;
        if r.succeeded() {
            return Ok(r.header().map_or(0, etcd_client::ResponseHeader::revision));
        }
        let current = r
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(g) => Some(g.kvs().first().map_or(0, |kv| kv.mod_revision())),
                _ => None,
            })
            .unwrap_or(0);
        Err(StoreError::Conflict { base, current })
    }

    fn puts(&self, bytes: &[u8], meta: &Meta) -> [TxnOp; 2] {
        let meta = serde_json::to_vec(meta).unwrap_or_default();
        [
            TxnOp::put(self.key.clone(), bytes.to_vec(), None),
            TxnOp::put(self.meta_key.clone(), meta, None),
        ]
    }

    /// The config (with the revision that wrote it), every registered member and every Maglev
    /// anchor (by service), read at one revision (returned too). Only the config key,
    /// `members/` and `maglev/` are read (never the address allocations), page by page, so a
    /// big cluster stays under gRPC's message limit.
    pub async fn read_all(&self) -> Result<Snapshot, StoreError> {
        let mut c = self.client.kv_client();
        let r = self.call(c.get(self.key.clone(), None)).await?;
        let revision = r.header().map_or(0, etcd_client::ResponseHeader::revision);
        let config = r
            .kvs()
            .first()
            .map(|kv| (kv.value().to_vec(), kv.mod_revision()));
        let members = self
            .range(&self.members, false, Some(revision))
            .await?
            .into_iter()
            .collect();
        let anchors = self
            .range(&self.anchors, false, Some(revision))
            .await?
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&self.anchors)?.to_owned(), v)))
            .collect();
        Ok(Snapshot {
            config,
            members,
            anchors,
            revision,
        })
    }

    /// Every key (and value, unless `keys_only`) under `prefix` as of `at` (now when `None`),
    /// read in pages of [`PAGE`] keys at one revision.
    async fn range(
        &self,
        prefix: &str,
        keys_only: bool,
        at: Option<i64>,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut at = at;
        let mut out = Vec::new();
        let mut c = self.client.kv_client();
        loop {
            let mut o = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if keys_only {
                o = o.with_keys_only();
            }
            if let Some(r) = at {
                o = o.with_revision(r);
            }
            let r = self.call(c.get(from.clone(), Some(o))).await?;
            at = at.or_else(|| r.header().map(etcd_client::ResponseHeader::revision));
            for kv in r.kvs() {
                out.push((
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                ));
            }
            match r.kvs().last() {
                Some(last) if r.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    /// Registers `m` for `ttl_s` seconds under `<prefix>/members/<pool>/<host>`, or renews it:
    /// when the key already holds the same member, renewing is one lease keep-alive (no write,
    /// no watch event on any node). Returns the lease and whether it was a renewal.
    pub async fn register(&self, m: &Member, ttl_s: i64) -> Result<(i64, bool), StoreError> {
        let key = format!("{}{}/{}", self.members, m.pool, m.host);
        let value = serde_json::to_vec(m).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut kv = self.client.kv_client();
        let current = self.call(kv.get(key.clone(), None)).await?;
        if let Some(old) = current.kvs().first()
            && old.value() == value.as_slice()
            && old.lease() != 0
        {
            let mut lease = self.client.lease_client();
            let (mut keeper, mut stream) = self.call(lease.keep_alive(old.lease())).await?;
            self.call(keeper.keep_alive()).await?;
            if let Some(r) = self.call(stream.message()).await?
                && r.ttl() > 0
            {
                return Ok((old.lease(), true));
            }
        }
        let mut lease = self.client.lease_client();
        let granted = self.call(lease.grant(ttl_s, None)).await?;
        let opts = etcd_client::PutOptions::new().with_lease(granted.id());
        self.call(kv.put(key, value, Some(opts))).await?;
        Ok((granted.id(), false))
    }

    /// Up to `max` versions, newest first, walking the key's revisions back until it did not exist
    /// or etcd compacted them away.
    pub async fn history(&self, max: usize) -> Result<Vec<Version>, StoreError> {
        let mut out = Vec::new();
        let mut at = None;
        while out.len() < max {
            let got = match self.read(at).await {
                Ok(Some(got)) => got,
                Ok(None) => break,
                // Compacted: history ends here.
                Err(StoreError::Other(_)) if at.is_some() => break,
                Err(e) => return Err(e),
            };
            let (bytes, revision) = got;
            let mut c = self.client.kv_client();
            let meta = self
                .call(c.get(
                    self.meta_key.clone(),
                    Some(GetOptions::new().with_revision(revision)),
                ))
                .await?
                .kvs()
                .first()
                .filter(|kv| kv.mod_revision() == revision)
                .and_then(|kv| serde_json::from_slice::<Meta>(kv.value()).ok())
                .unwrap_or_default();
            out.push(Version {
                revision,
                meta,
                sha256: hex(&Sha256::digest(&bytes)),
                size: bytes.len() as u64,
            });
            if revision <= 1 {
                break;
            }
            at = Some(revision - 1);
        }
        Ok(out)
    }
}

/// Keys per page of a range read (well under gRPC's 4 MiB message limit).
const PAGE: i64 = 5000;

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The TLS options of an `https://` cluster: the pinned CA, and the client certificate if any.
fn tls(cfg: &EtcdSettings) -> Result<TlsOptions, StoreError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::Other(format!("{}: {e}", p.display())))
    };
    let mut t = TlsOptions::new();
    if let Some(ca) = &cfg.ca_file {
        t = t.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = &cfg.client_cert {
        t = t.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(t)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What [`follow`] reports.
#[derive(Debug)]
pub enum Report {
    /// A store is connected (the request side uses it).
    Connected(Box<Store>),
    /// The config at a revision (never an older revision than one already reported).
    Config {
        /// The revision that wrote it.
        revision: i64,
        /// The bytes.
        bytes: Vec<u8>,
        /// The Maglev anchors as of that revision, service → stored bytes.
        anchors: BTreeMap<String, Vec<u8>>,
    },
    /// Every registered member (key → value) as of a revision, after any of them changed.
    Members {
        /// The revision of the change.
        revision: i64,
        /// Key → value under `<prefix>/members/`.
        members: BTreeMap<String, Vec<u8>>,
    },
    /// etcd cannot be reached, or the key was deleted; the node keeps its last config.
    Trouble(String),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("key", &self.key).finish()
    }
}

/// Follows the prefix until `stop`: connects (retrying with a backoff up to 5 s), seeds the
/// config key with `seed` if it does not exist, reports the config and the registered members,
/// then watches the prefix from the revision after the last one reported. A disconnect resumes
/// the watch from that revision; a compacted revision reads the prefix afresh.
pub async fn follow(
    cfg: EtcdSettings,
    seed: Vec<u8>,
    tx: mpsc::Sender<Report>,
    stop: CancellationToken,
) {
    let mut at = Followed::default();
    let mut backoff = Duration::from_millis(250);
    while !stop.is_cancelled() {
        let connected_before = at.connected;
        let why = tokio::select! {
            why = follow_once(&cfg, &seed, &tx, &mut at) => why,
            () = stop.cancelled() => return,
        };
        if at.connected != connected_before {
            // This round got through: the next outage starts its backoff afresh.
            backoff = Duration::from_millis(250);
        }
        if tx.send(Report::Trouble(why)).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What the follower has delivered: the last revision, and the members as of it.
#[derive(Debug, Default)]
struct Followed {
    last: i64,
    members: BTreeMap<String, Vec<u8>>,
    /// Maglev anchors, service → stored bytes.
    anchors: BTreeMap<String, Vec<u8>>,
    /// Counts connections, so `follow` can tell a round that got through.
    connected: u64,
}

/// One connection's worth of [`follow`]; returns why it ended.
async fn follow_once(
    cfg: &EtcdSettings,
    seed: &[u8],
    tx: &mpsc::Sender<Report>,
    at: &mut Followed,
) -> String {
    let store = match Store::connect(cfg).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    at.connected += 1;
    if at.last == 0 && !seed.is_empty() {
        match store
            .seed(
                seed,
                &Meta::now("seesaw", "seeded from a node's cluster.pb"),
            )
            .await
        {
            Ok(true) => {
                tracing::info!(key = %store.key, "etcd had no cluster config: seeded it with this node's")
            }
            Ok(false) => {}
            Err(e) => return e.to_string(),
        }
    }
    let _ = tx.send(Report::Connected(Box::new(store.clone()))).await;
    let mut from = at.last + 1;
    loop {
        if at.last == 0 || from == 0 {
            // Read afresh: at start, or after the revision to resume from was compacted.
            match store.read_all().await {
                Ok(Snapshot {
                    config,
                    members,
                    anchors,
                    revision,
                }) => {
                    let Some((bytes, written)) = config else {
                        return format!("{} does not exist", store.key);
                    };
                    at.anchors = anchors;
                    if written > at.last
                        && tx
                            .send(Report::Config {
                                revision: written,
                                bytes,
                                anchors: at.anchors.clone(),
                            })
                            .await
                            .is_err()
                    {
                        return "engine stopped".to_owned();
                    }
                    if members != at.members || at.last == 0 {
                        at.members = members;
                        let report = Report::Members {
                            revision,
                            members: at.members.clone(),
                        };
                        if tx.send(report).await.is_err() {
                            return "engine stopped".to_owned();
                        }
                    }
                    at.last = at.last.max(revision);
                    from = revision + 1;
                }
                Err(e) => return e.to_string(),
            }
        }
        match watch(&store, from, tx, at).await {
            Watched::Compacted(rev) => {
                tracing::warn!(
                    from,
                    compacted = rev,
                    "etcd compacted the revisions this node had not seen: reading the config afresh"
                );
                from = 0;
            }
            Watched::Ended(why) => return why,
        }
    }
}

enum Watched {
    Compacted(i64),
    Ended(String),
}

async fn watch(store: &Store, from: i64, tx: &mpsc::Sender<Report>, at: &mut Followed) -> Watched {
    let mut w = store.client.watch_client();
    let opts = WatchOptions::new().with_start_revision(from).with_prefix();
    let mut stream = match w.watch(store.prefix.clone(), Some(opts)).await {
        Ok(s) => s,
        Err(e) => return Watched::Ended(e.to_string()),
    };
    let ended = |_| Watched::Ended("engine stopped".to_owned());
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Watched::Ended("etcd closed the watch".to_owned()),
            Err(e) => return Watched::Ended(e.to_string()),
        };
        if resp.compact_revision() > 0 {
            return Watched::Compacted(resp.compact_revision());
        }
        if resp.canceled() {
            return Watched::Ended(format!("watch canceled: {}", resp.cancel_reason()));
        }
        let mut members_at = None;
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let revision = kv.mod_revision();
            // (Several events of one transaction share a revision.)
            if revision < at.last {
                continue;
            }
            // Only events advance the revision: a response header (the watch's creation among
            // them) carries the store's revision, ahead of events still to come.
            at.last = revision;
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            if key == store.key {
                match ev.event_type() {
                    EventType::Put => {
                        // A transaction writes the anchors before the config: they are in.
                        let report = Report::Config {
                            revision,
                            bytes: kv.value().to_vec(),
                            anchors: at.anchors.clone(),
                        };
                        if let Err(e) = tx.send(report).await {
                            return ended(e);
                        }
                    }
                    EventType::Delete => {
                        let why = format!(
                            "{} was deleted in etcd at revision {revision}; this node keeps its last config",
                            store.key
                        );
                        if let Err(e) = tx.send(Report::Trouble(why)).await {
                            return ended(e);
                        }
                    }
                }
            } else if let Some(service) = key.strip_prefix(&store.anchors) {
                match ev.event_type() {
                    EventType::Put => at.anchors.insert(service.to_owned(), kv.value().to_vec()),
                    EventType::Delete => at.anchors.remove(service),
                };
            } else if key.starts_with(&store.members) {
                match ev.event_type() {
                    EventType::Put => at.members.insert(key, kv.value().to_vec()),
                    EventType::Delete => at.members.remove(&key),
                };
                members_at = Some(revision);
            }
        }
        if let Some(revision) = members_at {
            let report = Report::Members {
                revision,
                members: at.members.clone(),
            };
            if let Err(e) = tx.send(report).await {
                return ended(e);
            }
        }
    }
}

/// A member registered through [`Store::register`]: the value of `<prefix>/members/<pool>/<host>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The pool (vserver) it joins.
    pub pool: String,
    /// Its fqdn.
    pub host: String,
    /// Its address.
    pub ip: std::net::IpAddr,
    /// Its weight.
    pub weight: i32,
}

/// The most bytes a member value may have; etcd values are untrusted input.
pub const MAX_MEMBER_BYTES: usize = 1024;

/// Parses a member value read from etcd (untrusted: size-bounded, strict JSON, checked names).
pub fn parse_member(bytes: &[u8]) -> Result<Member, String> {
    if bytes.len() > MAX_MEMBER_BYTES {
        return Err(format!(
            "{} bytes (at most {MAX_MEMBER_BYTES})",
            bytes.len()
        ));
    }
    let m: Member = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    check_name("pool", &m.pool)?;
    check_name("host", &m.host)?;
    if !(0..=1_000_000).contains(&m.weight) {
        return Err(format!("weight {} is outside 0..1000000", m.weight));
    }
    Ok(m)
}

fn check_name(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 253
        || s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/')
    {
        return Err(format!("{what} {s:?} is not a valid name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
