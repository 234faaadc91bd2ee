//! The core's inputs and effects: everything the driver tells [`super::Engine`] and everything
//! the engine asks the driver to do, with the replies it carries. Data only.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::config::Loaded;
use crate::desired::DesiredState;
use crate::events::{BgpNeighborsReply, Edit, Event, ReloadReply, Rollback, Snapshot};
use crate::ncc_port::PlaneStats;
use crate::state::{BgpDesired, OverrideError};

use super::source::{FetchReply, LoadReply, Pending};

/// Everything the core is told.
#[derive(Debug)]
pub enum Input {
    /// A request or report from the API, peer sync or the ha watch.
    Event(Event),
    /// The driver's tick (every second); `ha_heard` is when the API last heard the ha process.
    Tick {
        /// From the API's `HaPulse`.
        ha_heard: Option<SystemTime>,
    },
    /// At start: what the plane already holds (adopted, never flushed).
    Adopt(PlaneStats),
    /// The plane's counters ([`Effect::ReadStats`]).
    Stats(Result<PlaneStats, String>),
    /// ncc's boot id, seen on its watch stream: a new one means ncc restarted.
    NccBoot(u64),
    /// The outcome of [`Effect::Apply`].
    Applied(Result<Vec<String>, String>),
    /// The outcome of [`Effect::Bgp`].
    BgpDone(Result<Vec<String>, String>),
    /// A config directory read off the loop ([`Effect::Load`]).
    Loaded(LoadReply),
    /// An edit checked and saved off the loop ([`Effect::Edit`]).
    Edited(LoadReply),
    /// A config fetched and checked off the loop ([`Effect::Fetch`]).
    Fetched(FetchReply),
    /// A revision of the etcd key, checked and saved off the loop, or an outcome to reply.
    Etcd(EtcdOutcome),
}

/// What the etcd follower hands the core.
#[derive(Debug)]
pub enum EtcdOutcome {
    /// A revision to apply (or why it was refused), with the reply of the write that made it.
    Checked {
        /// The config key's revision.
        revision: i64,
        /// The config, or why it was refused.
        checked: Box<Result<Loaded, Vec<String>>>,
        /// The writer on this node waiting for it.
        reply: Option<oneshot::Sender<ReloadReply>>,
    },
    /// A reply that changes nothing (a write of a stopped follower).
    Reply(Pending),
}

/// A command to the etcd follower the driver owns.
#[derive(Debug)]
pub enum EtcdCmd {
    /// Start following (etcd became the source).
    Start,
    /// Stop following (another source was chosen).
    Stop,
    /// `config reload` with source etcd: re-read the key from scratch; the reply says so.
    Restart(oneshot::Sender<ReloadReply>),
    /// A compare-and-swap edit of the key (`base`: the revision the edit read).
    Update(Edit, crate::state::anchors::Anchors),
    /// Restore the config an etcd revision (`id`) wrote; with the Maglev anchors to write.
    Rollback(Rollback, crate::state::anchors::Anchors),
}

/// Where a fetch goes.
#[derive(Debug, Clone)]
pub enum FetchFrom {
    /// The config servers.
    Server(crate::source::ServerSource),
    /// The peer's engine, over peer sync.
    Peer,
}

/// A reply, sent by the driver once the effects before it are done.
#[derive(Debug)]
pub enum Reply {
    /// A reload, edit or rollback.
    Reload(oneshot::Sender<ReloadReply>, ReloadReply),
    /// An HA report: whether the operator asked for a failover.
    Ha(oneshot::Sender<bool>, bool),
    /// An override.
    Override(
        oneshot::Sender<Result<String, OverrideError>>,
        Result<String, OverrideError>,
    ),
    /// A failover request.
    Failover(
        oneshot::Sender<Result<String, String>>,
        Result<String, String>,
    ),
    /// A preview.
    Preview(
        oneshot::Sender<crate::preview::Preview>,
        Box<crate::preview::Preview>,
    ),
    /// Reading or setting the config source: (current, previous).
    Source(
        oneshot::Sender<Result<(String, String), String>>,
        Result<(String, String), String>,
    ),
}

/// What the driver must do; effects are carried out in order.
#[derive(Debug)]
pub enum Effect {
    /// Make ncc hold this desired state; answer with [`Input::Applied`] before anything else.
    Apply(Arc<DesiredState>),
    /// Send this BGP request to ncc (with a deadline); answer with [`Input::BgpDone`] before
    /// anything else.
    Bgp(BgpDesired),
    /// Publish this snapshot for the API.
    Publish(Box<Snapshot>),
    /// Send a reply.
    Reply(Reply),
    /// Read the config directory off the loop; answer with [`Input::Loaded`].
    Load(Option<oneshot::Sender<ReloadReply>>),
    /// Check and save an edit off the loop (fsync, history); answer with [`Input::Edited`].
    Edit(Edit),
    /// Read history version `id` and hand it back as an `UpdateCluster` event (or refuse).
    Rollback(Rollback),
    /// Fetch a config off the loop; answer with [`Input::Fetched`].
    Fetch(FetchFrom, Option<oneshot::Sender<ReloadReply>>),
    /// Save a fetched config (the previous one archived), off the loop.
    SaveFetched(Vec<u8>),
    /// A command to the etcd follower.
    Etcd(EtcdCmd),
    /// Read the plane's counters off the loop; answer with [`Input::Stats`].
    ReadStats,
    /// Fetch the master's overrides over peer sync; answer with `Event::PeerOverrides`.
    PollPeerOverrides,
    /// Relay an operator's failover to the master's engine and answer with its reply.
    RelayFailover(oneshot::Sender<Result<String, String>>),
    /// Ask the plane about a flow and answer.
    Trace(
        crate::trace::FlowQuery,
        oneshot::Sender<Result<crate::trace::PlaneTrace, String>>,
    ),
    /// Ask the BGP speaker for its neighbours and answer.
    BgpNeighbors(oneshot::Sender<BgpNeighborsReply>),
    /// Watch this ha process exit (ending any earlier watch); answer with `Event::HaGone`.
    WatchHa(i32),
}
