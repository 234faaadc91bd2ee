//! `ecu.cfg`: the HTTPS API's settings and its users (INI, in the config dir; a missing file means
//! no API server, only the plain read-only monitor address). Every error is collected.
//!
//! ```ini
//! [api]
//! listen = 127.0.0.1:10258          ; HTTPS address (host:port, [v6]:port, :port)
//! cert = /etc/seesaw/ecu/cert.pem   ; server certificate chain (PEM)
//! key = /etc/seesaw/ecu/key.pem     ; its private key (PEM)
//! client_ca = /etc/seesaw/ecu/ca.pem ; optional: accept client certificates signed by this CA
//! audit_log = /var/log/seesaw/ecu_audit.log ; default <log-dir>/seesaw_ecu_audit.log
//!
//! [user alice]
//! role = admin                      ; reader | operator | admin
//! token_sha256 = <64 hex digits>    ; sha256 of the bearer token (`seesaw_ecu --hash-token`)
//! cert_cn = alice.example.com       ; client certificate common name (needs client_ca)
//! ```
//!
//! `token = <plain token>` is accepted instead of `token_sha256`; the file must then not be
//! readable by group or others (refused otherwise).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::auth::{Role, User, Users, parse_digest, token_digest};
use crate::config::parse_listen;

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// HTTPS address.
    pub listen: SocketAddr,
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// CA for client certificates.
    pub client_ca: Option<PathBuf>,
    /// Audit log file (`None`: the default under the log dir).
    pub audit_log: Option<PathBuf>,
    /// The users.
    pub users: Users,
}

/// Why `ecu.cfg` was refused: every problem, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", path.display(), problems.join("; "))]
pub struct ApiConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problems: Vec<String>,
}

const API_KEYS: &[&str] = &["listen", "cert", "key", "client_ca", "audit_log"];
const USER_KEYS: &[&str] = &["role", "token_sha256", "token", "cert_cn"];

impl ApiConfig {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, ApiConfigError> {
        let fail = |problems: Vec<String>| ApiConfigError {
            path: path.to_owned(),
            problems,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(vec![format!("cannot read: {e}")])),
        };
        let private = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 == 0)
            .unwrap_or(false);
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, private).map(Some).map_err(fail)
    }

    /// Parses the text; relative paths are relative to `base`. `private`: the file is readable
    /// by its owner only (plain tokens are allowed).
    pub fn parse(text: &str, base: &Path, private: bool) -> Result<Self, Vec<String>> {
        let ini = ini::Ini::load_from_str(text)
            .map_err(|e| vec![format!("line {}:{}: {}", e.line, e.col, e.msg)])?;
        let mut problems = Vec::new();
        let mut listen = None;
        let (mut cert, mut key, mut client_ca, mut audit_log) = (None, None, None, None);
        let mut users = Vec::new();
        let resolve = |v: &str| base.join(v.trim());
        for (section, props) in ini.iter() {
            match section {
                None if props.is_empty() => {}
                None => problems.push("settings outside a section".to_owned()),
                Some("api") => {
                    for (k, v) in props.iter() {
                        match k {
                            "listen" => match parse_listen(v) {
                                Ok(a) => listen = Some(a),
                                Err(e) => problems.push(format!("[api] listen: {e}")),
                            },
                            "cert" => cert = Some(resolve(v)),
                            "key" => key = Some(resolve(v)),
                            "client_ca" => client_ca = Some(resolve(v)),
                            "audit_log" => audit_log = Some(resolve(v)),
                            other => problems.push(format!(
                                "[api] {other}: unknown key (known: {})",
                                API_KEYS.join(", ")
                            )),
                        }
                    }
                }
                Some(s) if s.starts_with("user ") => {
                    let name = s["user ".len()..].trim().to_owned();
                    match user(&name, props, private) {
                        Ok(u) => users.push(u),
                        Err(mut e) => problems.append(&mut e),
                    }
                }
                Some(other) => problems.push(format!(
                    "[{other}]: unknown section (known: [api], [user NAME])"
                )),
            }
        }
        for (what, v) in [
            ("listen", listen.is_some()),
            ("cert", cert.is_some()),
            ("key", key.is_some()),
        ] {
            if !v {
                problems.push(format!("[api] {what} is required"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for u in &users {
            if !names.insert(u.name.clone()) {
                problems.push(format!("[user {}] is defined twice", u.name));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (Some(listen), Some(cert), Some(key)) = (listen, cert, key) else {
            return Err(vec!["[api] is incomplete".to_owned()]);
        };
        Ok(Self {
            listen,
            cert,
            key,
            client_ca,
            audit_log,
            users: Users::new(users),
        })
    }
}

fn user(name: &str, props: &ini::Properties, private: bool) -> Result<User, Vec<String>> {
    let mut problems = Vec::new();
    let at = format!("[user {name}]");
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push(format!("{at}: the name must be one word"));
    }
    let (mut role, mut token_sha256, mut cert_cn) = (None, None, None);
    for (k, v) in props.iter() {
        match k {
            "role" => match Role::parse(v) {
                Some(r) => role = Some(r),
                None => problems.push(format!(
                    "{at} role = {v:?}: not one of reader, operator, admin"
                )),
            },
            "token_sha256" => match parse_digest(v) {
                Some(d) => token_sha256 = Some(d),
                None => problems.push(format!("{at} token_sha256: not 64 hex digits")),
            },
            "token" if !private => problems.push(format!(
                "{at} token: a plain token needs a file only its owner can read (chmod 600), \
                 or use token_sha256"
            )),
            "token" if v.trim().len() < 16 => {
                problems.push(format!("{at} token: at least 16 characters"));
            }
            "token" => token_sha256 = Some(token_digest(v.trim())),
            "cert_cn" => cert_cn = Some(v.trim().to_owned()),
            other => problems.push(format!(
                "{at} {other}: unknown key (known: {})",
                USER_KEYS.join(", ")
            )),
        }
    }
    if role.is_none() {
        problems.push(format!("{at}: role is required"));
    }
    if token_sha256.is_none() && cert_cn.is_none() {
        problems.push(format!("{at}: needs token_sha256, token or cert_cn"));
    }
    match role {
        Some(role) if problems.is_empty() => Ok(User {
            name: name.to_owned(),
            role,
            token_sha256,
            cert_cn,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let hex: String = token_digest("t0ken-t0ken-t0ken")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            "[api]\nlisten = 127.0.0.1:10258\ncert = c.pem\nkey = /k.pem\n\n\
             [user alice]\nrole = admin\ntoken_sha256 = {hex}\n\n\
             [user bob]\nrole = reader\ntoken = plain-token-of-16+\n\n\
             [user carol]\nrole = operator\ncert_cn = carol.example.com\n"
        );
        let c = ApiConfig::parse(&text, Path::new("/etc/seesaw"), true).expect("valid");
        assert_eq!(c.cert, Path::new("/etc/seesaw/c.pem"));
        assert_eq!(c.key, Path::new("/k.pem"));
        let who = c
            .users
            .authenticate(Some("t0ken-t0ken-t0ken"), None)
            .expect("alice");
        assert_eq!((who.user.as_str(), who.role), ("alice", Role::Admin));
        assert!(
            c.users
                .authenticate(Some("plain-token-of-16+"), None)
                .is_some()
        );
        // The same file readable by others refuses bob's plain token.
        let errs = ApiConfig::parse(&text, Path::new("/"), false).expect_err("plain token");
        assert!(errs[0].contains("chmod 600"), "{errs:?}");
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = ApiConfig::parse(
            "[api]\nlisten = nowhere\ncolour = red\n[user x]\nrole = god\n[other]\n",
            Path::new("/"),
            true,
        )
        .expect_err("invalid");
        let all = errs.join("\n");
        for want in [
            "[api] listen",
            "[api] colour: unknown key",
            "[user x] role = \"god\"",
            "[user x]: needs token_sha256",
            "[other]: unknown section",
            "[api] cert is required",
        ] {
            assert!(all.contains(want), "{want:?} not in {all}");
        }
    }

    #[test]
    fn a_missing_file_is_no_api() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(
            ApiConfig::load(&dir.path().join("ecu.cfg"))
                .expect("ok")
                .is_none()
        );
    }
}
