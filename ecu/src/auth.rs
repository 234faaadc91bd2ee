//! Who may do what through the HTTPS API: users from `ecu.cfg`, each with one role, found by a
//! bearer token (compared as SHA-256 digests, so the file may hold only digests) or by the common
//! name of a verified client certificate.
//!
//! | role | may |
//! |---|---|
//! | `reader` | every read |
//! | `operator` | + overrides, `config reload`, `failover` |
//! | `admin` | + pools and members, import, history rollback, `config source` |
//!
//! No credentials → 401; a role below what the route needs → 403. Nothing is allowed by default.

use std::fmt;

use sha2::{Digest, Sha256};

/// A role, ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only.
    Reader,
    /// Reads, overrides, reload, failover.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses `reader`, `operator` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "reader" => Some(Self::Reader),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reader => "reader",
            Self::Operator => "operator",
            Self::Admin => "admin",
        })
    }
}

/// One configured user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The name recorded in the audit log and the config history.
    pub name: String,
    /// The role.
    pub role: Role,
    /// SHA-256 of the bearer token, if the user has one.
    pub token_sha256: Option<[u8; 32]>,
    /// The client certificate common name, if the user has one.
    pub cert_cn: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print token digests.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("cert_cn", &self.cert_cn)
            .finish_non_exhaustive()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// `token` or `certificate`.
    pub via: &'static str,
}

/// The configured users.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: Vec<User>,
}

/// The SHA-256 of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Parses 64 hex digits.
pub fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compares without an early exit, so timing says nothing about where digests differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Users {
    /// The users, as configured.
    pub fn new(users: Vec<User>) -> Self {
        Self { users }
    }

    /// Whether no user is configured (then every API call is refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The caller: a bearer token wins over a client certificate.
    pub fn authenticate(&self, bearer: Option<&str>, cert_cn: Option<&str>) -> Option<Identity> {
        if let Some(token) = bearer {
            let digest = token_digest(token);
            // Check every user, so the time taken does not depend on which one matches.
            let mut found = None;
            for u in &self.users {
                if u.token_sha256.as_ref().is_some_and(|d| same(d, &digest)) && found.is_none() {
                    found = Some(u);
                }
            }
            return found.map(|u| Identity {
                user: u.name.clone(),
                role: u.role,
                via: "token",
            });
        }
        let cn = cert_cn?;
        self.users
            .iter()
            .find(|u| u.cert_cn.as_deref() == Some(cn))
            .map(|u| Identity {
                user: u.name.clone(),
                role: u.role,
                via: "certificate",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::new(vec![
            User {
                name: "alice".into(),
                role: Role::Admin,
                token_sha256: Some(token_digest("s3cret")),
                cert_cn: Some("alice.example.com".into()),
            },
            User {
                name: "rita".into(),
                role: Role::Reader,
                token_sha256: Some(token_digest("read")),
                cert_cn: None,
            },
        ])
    }

    #[test]
    fn tokens_and_certificates_map_to_users() {
        let u = users();
        assert_eq!(
            u.authenticate(Some("s3cret"), None).map(|i| i.role),
            Some(Role::Admin)
        );
        assert_eq!(
            u.authenticate(Some("read"), None).map(|i| i.user),
            Some("rita".into())
        );
        assert_eq!(
            u.authenticate(Some("wrong"), Some("alice.example.com")),
            None
        );
        assert_eq!(
            u.authenticate(None, Some("alice.example.com"))
                .map(|i| i.via),
            Some("certificate")
        );
        assert_eq!(u.authenticate(None, Some("mallory")), None);
        assert_eq!(u.authenticate(None, None), None);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Reader);
    }

    #[test]
    fn digests_parse_from_hex() {
        let d = token_digest("x");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_digest(&hex), Some(d));
        assert_eq!(parse_digest("zz"), None);
        assert_eq!(parse_digest(&"g".repeat(64)), None);
        assert!(!format!("{:?}", users()).contains("token_sha256:"));
    }
}
