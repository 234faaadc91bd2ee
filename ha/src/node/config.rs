//! The node's inputs that are not events: its state names, the HA config the engine hands out,
//! and the peering (protocol parameters) derived from it.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::advert::Advert;
use crate::auth::{AuthKeys, AuthSetting};

/// The HA state, as the engine API spells it (`HaStatus.state`).
pub use seesaw_proto::domain::HaState as State;

/// The HA part of the cluster config, as the engine hands it out (domain form of `HaConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// Whether HA runs at all.
    pub enabled: bool,
    /// This node's address.
    pub local_addr: String,
    /// The peer's address; `None` means no peer is configured (single-node mode).
    pub remote_addr: Option<String>,
    /// Advertisement priority (1..=255; 0 is reserved for "giving up" and read as 1).
    pub priority: u32,
    /// Virtual router id (1..=255).
    pub vrid: u32,
    /// Advertisement interval (10 ms .. 40.95 s).
    pub advert_interval: Duration,
    /// Whether a backup takes over from a lower-priority master.
    pub preempt: bool,
    /// Advert authentication (`[ha] auth_key_file`), with the key files already read by the
    /// link adapter: the node does no io.
    pub auth: AuthSetting,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            local_addr: String::new(),
            remote_addr: None,
            priority: 0,
            vrid: 0,
            advert_interval: DEFAULT_ADVERT_INTERVAL,
            preempt: false,
            auth: AuthSetting::Off,
        }
    }
}

/// Seesaw's advert interval.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_millis(500);

/// The protocol parameters of peer mode, derived from a valid [`HaConfig`]; what the transport
/// is opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peering {
    /// Source of our adverts; adverts from it are dropped.
    pub local: Ipv4Addr,
    /// Destination of our adverts (unicast) and the only accepted source.
    pub peer: Ipv4Addr,
    /// Virtual router id.
    pub vrid: u8,
    /// Our priority (1..=255).
    pub priority: u8,
    /// Our advert interval.
    pub interval: Duration,
    /// Preemption.
    pub preempt: bool,
    /// The advert keys; `None` sends and accepts only unsigned adverts. Part of the peering, so
    /// a key change re-opens the transport (and resets the replay window).
    pub auth: Option<AuthKeys>,
}

impl Peering {
    /// The peering a config asks for, or why it cannot be run.
    pub fn from_config(c: &HaConfig) -> Result<Option<Self>, String> {
        let Some(remote) = &c.remote_addr else {
            return Ok(None);
        };
        let auth = match &c.auth {
            AuthSetting::Off => None,
            AuthSetting::Keys(k) => Some(*k),
            AuthSetting::Unusable(why) => return Err(why.clone()),
        };
        let local: Ipv4Addr = c
            .local_addr
            .trim()
            .parse()
            .map_err(|_| format!("local address {:?} is not an IPv4 address", c.local_addr))?;
        let peer: Ipv4Addr = remote
            .trim()
            .parse()
            .map_err(|_| format!("peer address {remote:?} is not an IPv4 address"))?;
        if local == peer {
            return Err(format!("peer address {peer} is this node's own address"));
        }
        let vrid = u8::try_from(c.vrid)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| format!("vrid {} is outside 1..255", c.vrid))?;
        let priority = u8::try_from(c.priority.clamp(1, 255)).unwrap_or(255);
        // The wire carries centiseconds: round like the encoder so both sides agree.
        let interval = Advert::new(vrid, priority, c.advert_interval).interval();
        Ok(Some(Self {
            local,
            peer,
            vrid,
            priority,
            interval,
            preempt: c.preempt,
            auth,
        }))
    }

    /// Our advert at `priority`.
    pub fn advert(&self, priority: u8) -> Advert {
        Advert::new(self.vrid, priority, self.interval)
    }

    /// RFC 5798's master-down interval for a master advertising every `interval`, with our skew.
    pub fn master_down(&self, interval: Duration) -> Duration {
        interval * 3 + interval * (256 - u32::from(self.priority)) / 256
    }

    /// The skew alone: how long a backup waits after a priority-0 advert it cannot act on.
    pub(super) fn skew(&self) -> Duration {
        self.interval * (256 - u32::from(self.priority)) / 256
    }
}

/// The lease a LEADER holds on ncc's master-only state, renewed with every advert: three
/// intervals, so it runs out when the peer's master-down interval ends (3 intervals and its
/// skew after the last advert) and survives two late renewals.
pub fn lease_ttl(p: &Peering) -> Duration {
    p.interval * 3
}
