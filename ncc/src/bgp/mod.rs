//! BGP announcements through a real speaker (GoBGP's `gobgpd`, driven over its gRPC API).
//!
//! The engine decides *what* to announce (an anycast VIP while every service behind it is
//! healthy); ncc makes the speaker announce exactly that set, with this node as next hop:
//!
//! - [`Speaker`] is the narrow port to the daemon ([`gobgp::GobgpSpeaker`] in production, the
//!   stateful `fake::FakeSpeaker` in tests);
//! - [`Bgp`] owns the announced set and turns a wanted set into calls: the first contact after ncc
//!   starts (or with a new daemon, or a daemon that lost its state) withdraws every route first,
//!   then withdrawals go out before announcements, and changed settings (next hop, ASN, peers)
//!   re-announce everything.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

pub mod gobgp;

#[cfg(test)]
pub(crate) mod fake;

/// What the engine configures (cluster.pb `bgp_*`, seesaw.cfg `[bgp] gobgp_api`, node addresses):
/// the engine's own type.
pub use seesaw_proto::domain::BgpSettings as Settings;

/// One BGP neighbour as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbour's address.
    pub address: IpAddr,
    /// Its ASN.
    pub peer_asn: u32,
    /// Its router id (empty until OPEN was received).
    pub router_id: String,
    /// Session state.
    pub state: SessionState,
    /// Time since the session came up (zero unless established).
    pub uptime: Duration,
    /// Messages received / sent, all types.
    pub received: u64,
    /// See `received`.
    pub sent: u64,
    /// UPDATE messages received / sent.
    pub updates_received: u64,
    /// See `updates_received`.
    pub updates_sent: u64,
}

/// BGP finite-state-machine states (RFC 4271 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The daemon did not say.
    Unknown,
    /// Idle.
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

impl SessionState {
    /// The upper-case name the API and shell use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Idle => "IDLE",
            Self::Connect => "CONNECT",
            Self::Active => "ACTIVE",
            Self::OpenSent => "OPENSENT",
            Self::OpenConfirm => "OPENCONFIRM",
            Self::Established => "ESTABLISHED",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a BGP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BgpError {
    /// The request itself is wrong (a route without a next hop of its family, a bad address).
    #[error("invalid bgp request: {0}")]
    Invalid(String),
    /// The daemon's address cannot be used.
    #[error("bad gobgp api address {0:?}")]
    Address(String),
    /// The daemon refused or could not be reached.
    #[error("gobgp {call} failed: {message}")]
    Daemon {
        /// The API call.
        call: &'static str,
        /// What the daemon (or the transport) said.
        message: String,
    },
    /// The daemon runs with settings ncc must not override.
    #[error("gobgpd {0}")]
    Conflict(String),
}

/// The port to a BGP speaker daemon.
pub trait Speaker: Send {
    /// Makes the daemon run as `s` says (global ASN and router id, exactly `s.peers` as
    /// neighbours); returns whether the daemon had to be started, i.e. held no state.
    fn ensure_running(
        &mut self,
        s: &Settings,
    ) -> impl Future<Output = Result<bool, BgpError>> + Send;
    /// Announces the host route of `route` with next hop `next_hop`.
    fn announce(
        &mut self,
        route: IpAddr,
        next_hop: IpAddr,
    ) -> impl Future<Output = Result<(), BgpError>> + Send;
    /// Withdraws the host route of `route`.
    fn withdraw(
        &mut self,
        route: IpAddr,
        next_hop: IpAddr,
    ) -> impl Future<Output = Result<(), BgpError>> + Send;
    /// Withdraws every route this speaker originates.
    fn withdraw_all(&mut self) -> impl Future<Output = Result<(), BgpError>> + Send;
    /// The routes the speaker originates now, read from its RIB.
    fn announced(&mut self) -> impl Future<Output = Result<Vec<IpAddr>, BgpError>> + Send;
    /// The neighbours and their sessions.
    fn neighbors(&mut self) -> impl Future<Output = Result<Vec<Neighbor>, BgpError>> + Send;
}

/// Opens a [`Speaker`] for a daemon address.
pub type Connect<S> = Box<dyn FnMut(&str) -> Result<S, BgpError> + Send>;

/// The announced set and the speaker it lives in.
pub struct Bgp<S> {
    connect: Connect<S>,
    speaker: Option<(String, S)>,
    settings: Option<Settings>,
    announced: BTreeSet<IpAddr>,
    /// Every route was withdrawn since ncc started talking to this daemon.
    clean: bool,
}

impl<S> fmt::Debug for Bgp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bgp")
            .field("api", &self.speaker.as_ref().map(|(a, _)| a))
            .field("settings", &self.settings)
            .field("announced", &self.announced)
            .field("clean", &self.clean)
            .finish_non_exhaustive()
    }
}

impl<S: Speaker> Bgp<S> {
    /// A manager that opens speakers with `connect`; nothing is contacted before the first
    /// [`Bgp::set`].
    pub fn new(connect: Connect<S>) -> Self {
        Self {
            connect,
            speaker: None,
            settings: None,
            announced: BTreeSet::new(),
            clean: false,
        }
    }

    /// What ncc believes is announced.
    pub fn announced(&self) -> &BTreeSet<IpAddr> {
        &self.announced
    }

    /// Makes the speaker announce exactly `routes`; returns the changes made, in order.
    pub async fn set(
        &mut self,
        settings: Settings,
        routes: BTreeSet<IpAddr>,
    ) -> Result<Vec<String>, BgpError> {
        for r in &routes {
            next_hop(&settings, *r)?;
        }
        if self
            .speaker
            .as_ref()
            .is_none_or(|(a, _)| *a != settings.gobgp_api)
        {
            let s = (self.connect)(&settings.gobgp_api)?;
            self.speaker = Some((settings.gobgp_api.clone(), s));
            self.clean = false;
            self.announced.clear();
        }
        let Some((_, speaker)) = self.speaker.as_mut() else {
            return Err(BgpError::Address(settings.gobgp_api));
        };
        let mut changes = Vec::new();
        let fresh = speaker.ensure_running(&settings).await?;
        if fresh {
            changes.push(format!(
                "started bgp as AS{} router id {}",
                settings.local_asn, settings.router_id
            ));
        }
        if !self.clean || fresh {
            speaker.withdraw_all().await?;
            self.announced.clear();
            self.clean = true;
            changes.push("withdrew every route (first contact with the speaker)".to_owned());
        }
        // New next hops: everything announced goes out again (a peer change needs nothing: the
        // daemon sends its RIB to a new neighbour by itself).
        let old = self.settings.replace(settings.clone());
        let resend = old.as_ref().is_some_and(|o| {
            o.next_hop_v4 != settings.next_hop_v4 || o.next_hop_v6 != settings.next_hop_v6
        });
        let withdraw: Vec<IpAddr> = if resend {
            self.announced.iter().copied().collect()
        } else {
            self.announced.difference(&routes).copied().collect()
        };
        for r in withdraw {
            let hop = old
                .as_ref()
                .and_then(|o| next_hop(o, r).ok())
                .map_or_else(|| next_hop(&settings, r), Ok)?;
            speaker.withdraw(r, hop).await?;
            self.announced.remove(&r);
            changes.push(format!("withdraw {}", host_route(r)));
        }
        for r in routes
            .difference(&self.announced)
            .copied()
            .collect::<Vec<_>>()
        {
            speaker.announce(r, next_hop(&settings, r)?).await?;
            self.announced.insert(r);
            changes.push(format!(
                "announce {} via {}",
                host_route(r),
                next_hop(&settings, r)?
            ));
        }
        Ok(changes)
    }

    /// The speaker's neighbours and what its RIB holds for this node.
    pub async fn neighbors(&mut self) -> Result<(Vec<Neighbor>, Vec<IpAddr>), BgpError> {
        let Some((_, speaker)) = self.speaker.as_mut() else {
            return Err(BgpError::Invalid(
                "bgp is not configured (no bgp_peer in cluster.pb, or the engine has not sent it yet)"
                    .to_owned(),
            ));
        };
        let n = speaker.neighbors().await?;
        let a = speaker.announced().await?;
        Ok((n, a))
    }
}

/// The next hop for `route` under `s`.
pub fn next_hop(s: &Settings, route: IpAddr) -> Result<IpAddr, BgpError> {
    match route {
        IpAddr::V4(_) => s.next_hop_v4.map(IpAddr::V4).ok_or_else(|| {
            BgpError::Invalid(format!("{route}: no IPv4 next hop ([cluster] node_ipv4)"))
        }),
        IpAddr::V6(_) => s.next_hop_v6.map(IpAddr::V6).ok_or_else(|| {
            BgpError::Invalid(format!("{route}: no IPv6 next hop ([cluster] node_ipv6)"))
        }),
    }
}

/// `a/32` or `a/128`.
pub fn host_route(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

#[cfg(test)]
mod tests;
