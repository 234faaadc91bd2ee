//! The lease datagram between ha and ncc (the fence, `ncc/src/lease.rs`): while this node is the
//! HA master, ha sends one every advert interval on ncc's lease socket
//! (`<run>/ncc/lease.sock`, `paths::ncc_lease_socket`): "hold the master-only state for
//! `ttl_ms` from `sent_at_us`"; a zero `ttl_ms` gives it up. One `sendto` per renewal, no reply:
//! renewals come every 30 ms, and a call each would cost more than the adverts themselves.
//!
//! ```text
//! 0       8           12
//! +-------+-----------+
//! |sent_at|  ttl_ms   |   sent_at: wall-clock µs (big-endian), also the message's order
//! +-------+-----------+
//! ```
//!
//! The sender's clock is the receiver's (same host), so a renewal that waited in the socket
//! while ncc was stopped counts only for what is left of it, and one sent before another that
//! was already applied (an older renewal behind a give-up) is ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of a lease datagram.
pub const LEN: usize = 12;

/// One lease message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseMsg {
    /// When it was sent: wall-clock microseconds since the UNIX epoch.
    pub sent_at_us: u64,
    /// How long the lease holds from `sent_at_us`, in milliseconds; 0 gives it up.
    pub ttl_ms: u32,
}

impl LeaseMsg {
    /// A message sent now for `ttl`.
    pub fn now(ttl: Duration) -> Self {
        Self {
            sent_at_us: now_us(),
            ttl_ms: u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// The datagram.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&self.sent_at_us.to_be_bytes());
        b[8..].copy_from_slice(&self.ttl_ms.to_be_bytes());
        b
    }

    /// Parses a datagram; anything but exactly [`LEN`] bytes is not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; LEN] = b.try_into().ok()?;
        let (at, ttl) = b.split_at(8);
        Some(Self {
            sent_at_us: u64::from_be_bytes(at.try_into().ok()?),
            ttl_ms: u32::from_be_bytes(ttl.try_into().ok()?),
        })
    }

    /// What is left of the lease at wall-clock `now_us`: at most its `ttl` (a clock stepped
    /// back does not lengthen it); zero for a give-up or a renewal already over.
    pub fn remaining(&self, now_us: u64) -> Duration {
        let ttl = Duration::from_millis(u64::from(self.ttl_ms));
        let until = self
            .sent_at_us
            .saturating_add(u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX));
        Duration::from_micros(until.saturating_sub(now_us)).min(ttl)
    }
}

/// Wall-clock microseconds since the UNIX epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_every_other_length() {
        let m = LeaseMsg {
            sent_at_us: 1_764_000_000_123_456,
            ttl_ms: 90,
        };
        assert_eq!(LeaseMsg::decode(&m.encode()), Some(m));
        let junk = [0xa5u8; 64];
        for n in (0..64).filter(|n| *n != LEN) {
            assert_eq!(LeaseMsg::decode(&junk[..n]), None, "{n} bytes");
        }
        // Any 12 bytes are a message; the receiver judges its times.
        assert!(LeaseMsg::decode(&junk[..LEN]).is_some());
    }

    #[test]
    fn what_is_left_never_exceeds_the_ttl_and_ends_at_zero() {
        let m = LeaseMsg {
            sent_at_us: 10_000_000,
            ttl_ms: 90,
        };
        assert_eq!(m.remaining(10_000_000), Duration::from_millis(90));
        assert_eq!(m.remaining(10_060_000), Duration::from_millis(30));
        assert_eq!(m.remaining(10_090_000), Duration::ZERO);
        assert_eq!(
            m.remaining(99_000_000),
            Duration::ZERO,
            "waited in the socket"
        );
        assert_eq!(
            m.remaining(0),
            Duration::from_millis(90),
            "clock stepped back"
        );
        let give_up = LeaseMsg { ttl_ms: 0, ..m };
        assert_eq!(give_up.remaining(10_000_000), Duration::ZERO);
        let hostile = LeaseMsg {
            sent_at_us: u64::MAX,
            ttl_ms: u32::MAX,
        };
        assert!(hostile.remaining(0) <= Duration::from_millis(u64::from(u32::MAX)));
    }
}
