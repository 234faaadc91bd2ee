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

/// A connection to etcd for one prefix; cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    key: String,
    meta_key: String,
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
            key: cfg.config_key(),
            meta_key: cfg.meta_key(),
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
    /// Returns the revision of the write.
    pub async fn write(&self, bytes: &[u8], meta: &Meta, base: i64) -> Result<i64, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(
                self.key.clone(),
                CompareOp::Equal,
                base,
            )])
            .and_then(self.puts(bytes, meta))
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
    },
    /// etcd cannot be reached, or the key was deleted; the node keeps its last config.
    Trouble(String),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("key", &self.key).finish()
    }
}

/// Follows the config key until `stop`: connects (retrying with a backoff up to 5 s), seeds the
/// key with `seed` if it does not exist, reports the config, then watches from the revision after
/// the last one reported. A disconnect resumes the watch from that revision; a compacted revision
/// reads the key afresh.
pub async fn follow(
    cfg: EtcdSettings,
    seed: Vec<u8>,
    tx: mpsc::Sender<Report>,
    stop: CancellationToken,
) {
    let mut last: i64 = 0;
    let mut backoff = Duration::from_millis(250);
    while !stop.is_cancelled() {
        let why = tokio::select! {
            why = follow_once(&cfg, &seed, &tx, &mut last) => why,
            () = stop.cancelled() => return,
        };
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

/// One connection's worth of [`follow`]; returns why it ended.
async fn follow_once(
    cfg: &EtcdSettings,
    seed: &[u8],
    tx: &mpsc::Sender<Report>,
    last: &mut i64,
) -> String {
    let store = match Store::connect(cfg).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    if *last == 0 {
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
    let mut from = *last + 1;
    loop {
        if *last == 0 || from == 0 {
            // Read afresh: at start, or after the revision to resume from was compacted.
            match store.read(None).await {
                Ok(Some((bytes, revision))) => {
                    if revision > *last {
                        *last = revision;
                        if tx.send(Report::Config { revision, bytes }).await.is_err() {
                            return "engine stopped".to_owned();
                        }
                    }
                    from = revision + 1;
                }
                Ok(None) => return format!("{} does not exist", store.key),
                Err(e) => return e.to_string(),
            }
        }
        match watch(&store, from, tx, last).await {
            Watched::Compacted(at) => {
                tracing::warn!(
                    from,
                    compacted = at,
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

async fn watch(store: &Store, from: i64, tx: &mpsc::Sender<Report>, last: &mut i64) -> Watched {
    let mut w = store.client.watch_client();
    let opts = WatchOptions::new().with_start_revision(from);
    let mut stream = match w.watch(store.key.clone(), Some(opts)).await {
        Ok(s) => s,
        Err(e) => return Watched::Ended(e.to_string()),
    };
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
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            match ev.event_type() {
                EventType::Put if kv.mod_revision() > *last => {
                    *last = kv.mod_revision();
                    let report = Report::Config {
                        revision: kv.mod_revision(),
                        bytes: kv.value().to_vec(),
                    };
                    if tx.send(report).await.is_err() {
                        return Watched::Ended("engine stopped".to_owned());
                    }
                }
                EventType::Put => {}
                EventType::Delete => {
                    let why = format!(
                        "{} was deleted in etcd at revision {}; this node keeps its last config",
                        store.key,
                        kv.mod_revision()
                    );
                    if tx.send(Report::Trouble(why)).await.is_err() {
                        return Watched::Ended("engine stopped".to_owned());
                    }
                }
            }
        }
    }
}
