//! Where the ECU listens: `--listen` / `SEESAW_ECU_LISTEN`, else `[ecu] listen` in
//! `<config_dir>/seesaw.cfg`, else `127.0.0.1:10257` (Seesaw's monitor port, loopback only so a
//! fresh install exposes nothing). Reading has no side effects; `main` binds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The default listen address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10257);

/// The ECU's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcuConfig {
    /// The HTTP listen address.
    pub listen: SocketAddr,
}

/// Why the ECU settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EcuConfigError {
    /// seesaw.cfg exists but cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// seesaw.cfg is not valid INI.
    #[error("{path}:{line}:{col}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// `[ecu] listen` is not an address.
    #[error("{path}: [ecu] listen = {value:?}: {reason}")]
    Listen {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

// === impl EcuConfig ===

impl EcuConfig {
    /// Resolves the settings: `flag` (from `--listen` or `SEESAW_ECU_LISTEN`) wins; otherwise
    /// seesaw.cfg in `config_dir` is read if it exists. A missing seesaw.cfg is not an error (the
    /// ECU needs nothing from it), a broken one is.
    pub fn load(flag: Option<SocketAddr>, config_dir: &Path) -> Result<Self, EcuConfigError> {
        if let Some(listen) = flag {
            return Ok(Self { listen });
        }
        let path = config_dir.join("seesaw.cfg");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    listen: DEFAULT_LISTEN,
                });
            }
            Err(source) => return Err(EcuConfigError::Read { path, source }),
        };
        Ok(Self {
            listen: listen_from_cfg(&text, &path)?.unwrap_or(DEFAULT_LISTEN),
        })
    }
}

/// Parses a listen address: `host:port`, `[v6]:port`, or Go's `:port` (all interfaces), which
/// is how Seesaw spells its `-monitor_address` flag.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("invalid port in {s:?}"))?;
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:10257, [::1]:10257 or :10257"))
}

fn listen_from_cfg(text: &str, path: &Path) -> Result<Option<SocketAddr>, EcuConfigError> {
    let ini = ini::Ini::load_from_str(text).map_err(|e| EcuConfigError::Syntax {
        path: path.to_owned(),
        // rust-ini reports 1-based positions already.
        line: e.line,
        col: e.col,
        message: e.msg.into_owned(),
    })?;
    let Some(value) = ini.section(Some("ecu")).and_then(|s| s.get("listen")) else {
        return Ok(None);
    };
    parse_listen(value)
        .map(Some)
        .map_err(|reason| EcuConfigError::Listen {
            path: path.to_owned(),
            value: value.to_owned(),
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with_cfg(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("seesaw.cfg"), text).expect("write seesaw.cfg");
        dir
    }

    #[test]
    fn precedence_is_flag_then_file_then_default() {
        let flag: SocketAddr = "127.0.0.1:9000".parse().expect("literal");
        let dir = dir_with_cfg("[cluster]\nname = demo\n\n[ecu]\nlisten = 0.0.0.0:10300\n");
        assert_eq!(
            EcuConfig::load(Some(flag), dir.path()).expect("ok").listen,
            flag
        );
        assert_eq!(
            EcuConfig::load(None, dir.path()).expect("ok").listen,
            "0.0.0.0:10300".parse().expect("literal")
        );
        let empty = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            EcuConfig::load(None, empty.path()).expect("ok").listen,
            DEFAULT_LISTEN
        );
        let no_key = dir_with_cfg("[cluster]\nname = demo\n");
        assert_eq!(
            EcuConfig::load(None, no_key.path()).expect("ok").listen,
            DEFAULT_LISTEN
        );
    }

    #[test]
    fn bad_values_are_reported_with_the_file() {
        let dir = dir_with_cfg("[ecu]\nlisten = localhost\n");
        let err = EcuConfig::load(None, dir.path()).expect_err("not an address");
        let msg = err.to_string();
        assert!(
            msg.contains("seesaw.cfg: [ecu] listen = \"localhost\""),
            "{msg}"
        );
        let dir = dir_with_cfg("[ecu\nlisten = :1\n");
        let err = EcuConfig::load(None, dir.path()).expect_err("broken section header");
        assert!(
            matches!(err, EcuConfigError::Syntax { line: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn go_style_and_v6_addresses() {
        assert_eq!(
            parse_listen(":10257"),
            Ok("[::]:10257".parse().expect("literal"))
        );
        assert_eq!(
            parse_listen("[::1]:80"),
            Ok("[::1]:80".parse().expect("literal"))
        );
        assert!(parse_listen(":http").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
    }
}
