//! Authenticated adverts (`[ha] auth_key_file`): the keys, the signer and the verifier.
//!
//! Without a key an advert is Seesaw's 8 bytes, and anyone on the segment can forge one with the
//! peer's source address (a priority-0 advert makes the master give up). With a key the payload
//! is 32 bytes:
//!
//! ```text
//! +--------------------------+-------------------------+------------------------------------+
//! | VRRP advert (8 bytes)    | counter (8 bytes, BE)   | HMAC-SHA256, first 16 bytes         |
//! +--------------------------+-------------------------+------------------------------------+
//! ```
//!
//! The MAC covers the source and destination IPv4 addresses, the 8 VRRP bytes with the checksum
//! field zero, and the counter. The VRRP checksum then covers all 32 payload bytes (the
//! pseudo-header carries length 32). The counter is `max(last + 1, wall-clock µs since the UNIX
//! epoch)`, so it rises across restarts of the sender (and the resign sentinel, which signs with
//! the wall clock after ha died, sends above ha's last); a receiver drops any counter not above
//! the highest it accepted (a replay). The key is SHA-256 of the key file's bytes, so any file of
//! at least [`MIN_KEY_FILE_LEN`] bytes works and [`Key`] stays a fixed-size `Copy` value.
//!
//! Everything here is pure except [`load_keys`], which reads the key files where the config
//! arrives from the engine (never inside the node).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Length of the VRRP part of a signed advert (`advert::LEN`; this module sits below `advert`).
pub const ADVERT_LEN: usize = 8;
/// Length of a derived key.
pub const KEY_LEN: usize = 32;
/// The fewest bytes a key file may hold.
pub const MIN_KEY_FILE_LEN: usize = 32;
/// Length of the counter.
pub const COUNTER_LEN: usize = 8;
/// Length of the truncated MAC.
pub const MAC_LEN: usize = 16;

/// Why a signed advert is refused (the parser reports them as its own reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No configured key verifies the MAC (or the payload is not a signed one).
    #[error("advert signature does not verify with our keys")]
    BadMac,
    /// The counter is not above the last accepted one.
    #[error("advert counter not above the last accepted (replay)")]
    Replay,
}

/// A derived advert key. Its `Debug` output never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

/// The keys of a peering: adverts are signed with `send` and accepted with `send` or `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthKeys {
    /// Signs our adverts; also verifies the peer's.
    pub send: Key,
    /// A second key the peer's adverts may verify with (rotation).
    pub accept: Option<Key>,
}

/// The authentication part of the HA config, after the key files were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthSetting {
    /// No key configured: unsigned 8-byte adverts.
    #[default]
    Off,
    /// Signed adverts with these keys.
    Keys(AuthKeys),
    /// A key is configured but cannot be used (the reason names the file); the node goes to
    /// ERROR until a later config fetch reads it.
    Unusable(String),
}

/// The sender's side: the counter of the next signed advert.
#[derive(Debug, Clone)]
pub struct Signer {
    key: Key,
    last: u64,
}

/// The receiver's side: checks MACs with the configured keys and holds the highest counter
/// accepted so far.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: AuthKeys,
    last_counter: u64,
}

// === impl Key ===

impl Key {
    /// The key of a key file's content (its whole bytes, a trailing newline included).
    pub fn derive(file_bytes: &[u8]) -> Self {
        Self(Sha256::digest(file_bytes).into())
    }

    /// Lowercase hex (for the sentinel's arm line, a private pipe).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`Key::to_hex`]'s output.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != KEY_LEN * 2 || !s.is_ascii() {
            return None;
        }
        let mut k = [0u8; KEY_LEN];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(k))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The MAC input: source, destination, the VRRP bytes (checksum zero) and the counter.
fn mac_over(mac: &mut Hmac<Sha256>, src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8], counter: u64) {
    let mut zeroed = [0u8; ADVERT_LEN];
    zeroed.copy_from_slice(vrrp);
    zeroed[6] = 0;
    zeroed[7] = 0;
    mac.update(&src.octets());
    mac.update(&dst.octets());
    mac.update(&zeroed);
    mac.update(&counter.to_be_bytes());
}

/// The truncated MAC of an advert (`vrrp` is the 8 VRRP bytes; its checksum field is ignored).
pub fn tag(key: &Key, src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8], counter: u64) -> [u8; MAC_LEN] {
    let mut m = key.mac();
    mac_over(&mut m, src, dst, vrrp, counter);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// Whether `mac` is the truncated MAC of the advert under `key`, compared in constant time.
fn verifies(
    key: &Key,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vrrp: &[u8],
    counter: u64,
    mac: &[u8],
) -> bool {
    let mut m = key.mac();
    mac_over(&mut m, src, dst, vrrp, counter);
    m.verify_truncated_left(mac).is_ok()
}

// === impl Signer ===

impl Signer {
    /// A signer that has sent nothing yet: its first counter is the wall clock.
    pub fn new(key: Key) -> Self {
        Self { key, last: 0 }
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The counter of the next advert at wall-clock `now_us`: above every earlier one, and at
    /// least the clock, so a restarted sender (which forgot `last`) still counts upward.
    pub fn next_counter(&mut self, now_us: u64) -> u64 {
        self.last = self.last.saturating_add(1).max(now_us);
        self.last
    }
}

// === impl Verifier ===

impl Verifier {
    /// A verifier that has accepted nothing yet.
    pub fn new(keys: AuthKeys) -> Self {
        Self {
            keys,
            last_counter: 0,
        }
    }

    /// The highest counter accepted so far (0: none).
    pub fn last_counter(&self) -> u64 {
        self.last_counter
    }

    /// Checks the MAC of a signed payload (`payload` is the 32 payload bytes) against every
    /// configured key; returns its counter. Does not check or move the replay window.
    pub fn check_mac(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<u64, AuthError> {
        let (vrrp, rest) = payload
            .split_at_checked(ADVERT_LEN)
            .ok_or(AuthError::BadMac)?;
        let (counter, mac) = rest
            .split_at_checked(COUNTER_LEN)
            .ok_or(AuthError::BadMac)?;
        if mac.len() != MAC_LEN {
            return Err(AuthError::BadMac);
        }
        let counter = u64::from_be_bytes(counter.try_into().map_err(|_| AuthError::BadMac)?);
        let ok = std::iter::once(&self.keys.send)
            .chain(self.keys.accept.as_ref())
            .any(|k| verifies(k, src, dst, vrrp, counter, mac));
        if ok {
            Ok(counter)
        } else {
            Err(AuthError::BadMac)
        }
    }

    /// Accepts `counter` if it is above every counter accepted so far, and remembers it.
    pub fn accept(&mut self, counter: u64) -> Result<(), AuthError> {
        if counter <= self.last_counter {
            return Err(AuthError::Replay);
        }
        self.last_counter = counter;
        Ok(())
    }
}

/// Wall-clock microseconds since the UNIX epoch (0 before it), the floor of every counter.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Reads the key files the engine named (`""` = not configured) with the same checks as the
/// engine's validation: a regular file of mode 0600 (nothing for group or others) holding at
/// least [`MIN_KEY_FILE_LEN`] bytes. A file that fails makes the whole setting
/// [`AuthSetting::Unusable`], naming it and why.
pub fn load_keys(send_file: &str, accept_file: &str) -> AuthSetting {
    let send_file = send_file.trim();
    let accept_file = accept_file.trim();
    if send_file.is_empty() {
        if accept_file.is_empty() {
            return AuthSetting::Off;
        }
        return AuthSetting::Unusable(format!(
            "[ha] auth_accept_key_file {accept_file} is set without auth_key_file"
        ));
    }
    let read = |path: &str| {
        seesaw_common::files::read_secret(Path::new(path), MIN_KEY_FILE_LEN)
            .map(|bytes| Key::derive(&bytes))
            .map_err(|e| format!("advert key file {e}"))
    };
    let send = match read(send_file) {
        Ok(k) => k,
        Err(e) => return AuthSetting::Unusable(e),
    };
    let accept = if accept_file.is_empty() {
        None
    } else {
        match read(accept_file) {
            Ok(k) => Some(k),
            Err(e) => return AuthSetting::Unusable(e),
        }
    };
    AuthSetting::Keys(AuthKeys { send, accept })
}

#[cfg(test)]
mod tests;
