//! seesaw.cfg `[etcd]`: where many stateless nodes keep their shared cluster config (issue 15).
//! With this section the default config source is `etcd`. Parsed strictly: an endpoint that is
//! not `http://host:port` or `https://host:port`, a mix of the two, a client certificate without
//! its key, or a prefix that is not an absolute key path are errors, never silently ignored.

use std::path::PathBuf;
use std::time::Duration;

/// The keys `[etcd]` accepts.
pub const KEYS: &[&str] = &[
    "endpoints",
    "prefix",
    "ca_file",
    "cert_file",
    "key_file",
    "dial_timeout_ms",
];

/// `[etcd]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// `endpoints`: comma-separated `http://host:port` or `https://host:port` (all one scheme).
    pub endpoints: Vec<String>,
    /// `prefix` (default `/seesaw/<cluster name>`), without a trailing `/`.
    pub prefix: String,
    /// `ca_file`: the CA that signs the etcd servers' certificates (required for `https`).
    pub ca_file: Option<PathBuf>,
    /// `cert_file` and `key_file`: this node's client certificate, both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `dial_timeout_ms` (default 2000, 100..=60000): connect and per-call deadline.
    pub dial_timeout: Duration,
}

impl EtcdSettings {
    /// Whether the endpoints use TLS.
    pub fn tls(&self) -> bool {
        self.endpoints.iter().any(|e| e.starts_with("https://"))
    }

    /// The key that holds the whole cluster.pb.
    pub fn config_key(&self) -> String {
        format!("{}/cluster.pb", self.prefix)
    }

    /// The key written in the same transaction as every config: who, what, when (JSON).
    pub fn meta_key(&self) -> String {
        format!("{}/cluster.meta", self.prefix)
    }
}

/// Parses `[etcd]` from `get(key)`; `None` when the section names no endpoints. Errors are pushed
/// to `errors` with their `[etcd] key` path.
pub fn parse<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    cluster_name: &str,
    errors: &mut Vec<String>,
) -> Option<EtcdSettings> {
    let raw = get("endpoints").unwrap_or("").trim();
    if raw.is_empty() {
        for k in KEYS.iter().filter(|k| **k != "endpoints") {
            if get(k).is_some() {
                errors.push(format!("seesaw.cfg [etcd] {k}: set without endpoints"));
            }
        }
        return None;
    }
    let mut endpoints = Vec::new();
    for e in raw.split(',').map(str::trim) {
        match check_endpoint(e) {
            Ok(()) => endpoints.push(e.to_owned()),
            Err(why) => errors.push(format!("seesaw.cfg [etcd] endpoints: {e:?} {why}")),
        }
    }
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if https != 0 && https != endpoints.len() {
        errors.push("seesaw.cfg [etcd] endpoints: mixes http:// and https://".to_owned());
    }
    let prefix = match get("prefix").map(str::trim) {
        None | Some("") => format!("/seesaw/{cluster_name}"),
        Some(p) if !p.starts_with('/') || p.chars().any(|c| c.is_control() || c == ' ') => {
            errors.push(format!(
                "seesaw.cfg [etcd] prefix: {p:?} is not an absolute key path (like /seesaw/site1)"
            ));
            String::new()
        }
        Some(p) if p.trim_end_matches('/').is_empty() => {
            errors.push("seesaw.cfg [etcd] prefix: \"/\" is the whole keyspace".to_owned());
            String::new()
        }
        Some(p) => p.trim_end_matches('/').to_owned(),
    };
    let path = |k: &str| {
        get(k)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let ca_file = path("ca_file");
    let client_cert = match (path("cert_file"), path("key_file")) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            errors.push("seesaw.cfg [etcd] cert_file: set without key_file".to_owned());
            None
        }
        (None, Some(_)) => {
            errors.push("seesaw.cfg [etcd] key_file: set without cert_file".to_owned());
            None
        }
    };
    if https == 0 && (ca_file.is_some() || client_cert.is_some()) {
        errors.push(
            "seesaw.cfg [etcd] ca_file/cert_file/key_file: set, but the endpoints are http://"
                .to_owned(),
        );
    }
    if https != 0 && ca_file.is_none() {
        errors.push(
            "seesaw.cfg [etcd] ca_file: https endpoints need the CA that signs etcd's certificates"
                .to_owned(),
        );
    }
    let dial_ms = match get("dial_timeout_ms").map(str::trim) {
        None | Some("") => 2000,
        Some(v) => match v.parse::<u64>() {
            Ok(ms @ 100..=60_000) => ms,
            _ => {
                errors.push(format!(
                    "seesaw.cfg [etcd] dial_timeout_ms: {v:?} is not a number of milliseconds in 100..60000"
                ));
                2000
            }
        },
    };
    Some(EtcdSettings {
        endpoints,
        prefix,
        ca_file,
        client_cert,
        dial_timeout: Duration::from_millis(dial_ms),
    })
}

/// `http://host:port` or `https://host:port`, nothing after the port.
fn check_endpoint(e: &str) -> Result<(), &'static str> {
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .ok_or("is not http://host:port or https://host:port")?;
    let (host, port) = rest.rsplit_once(':').ok_or("has no port")?;
    if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
        return Err("has no valid host");
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err("has no valid port (1..65535)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)]) -> (Option<EtcdSettings>, Vec<String>) {
        let mut errors = Vec::new();
        let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let s = parse(get, "site1", &mut errors);
        (s, errors)
    }

    #[test]
    fn endpoints_prefix_and_defaults() {
        let (s, e) = run(&[("endpoints", "http://10.0.0.1:2379, http://[::1]:2379")]);
        assert!(e.is_empty(), "{e:?}");
        let s = s.unwrap();
        assert_eq!(s.endpoints, ["http://10.0.0.1:2379", "http://[::1]:2379"]);
        assert_eq!(s.prefix, "/seesaw/site1");
        assert_eq!(s.config_key(), "/seesaw/site1/cluster.pb");
        assert_eq!(s.dial_timeout, Duration::from_millis(2000));
        assert!(!s.tls());
        let (s, e) = run(&[("endpoints", "http://a:1"), ("prefix", "/lb/eu/")]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.unwrap().prefix, "/lb/eu");
        assert_eq!(run(&[]).0, None);
    }

    #[test]
    fn hostile_and_inconsistent_settings_are_refused_with_their_key() {
        for (pairs, want) in [
            (vec![("endpoints", "10.0.0.1:2379")], "endpoints"),
            (vec![("endpoints", "http://a")], "no port"),
            (vec![("endpoints", "http://a:0")], "valid port"),
            (vec![("endpoints", "http://a:99999")], "valid port"),
            (vec![("endpoints", "http://:1")], "valid host"),
            (vec![("endpoints", "http://a/b:1")], "valid host"),
            (vec![("endpoints", "http://a:1,https://b:1")], "mixes"),
            (vec![("endpoints", "https://a:1")], "ca_file"),
            (
                vec![("endpoints", "http://a:1"), ("ca_file", "/ca.pem")],
                "endpoints are http",
            ),
            (
                vec![
                    ("endpoints", "https://a:1"),
                    ("ca_file", "/ca"),
                    ("cert_file", "/c"),
                ],
                "without key_file",
            ),
            (
                vec![("endpoints", "http://a:1"), ("prefix", "seesaw")],
                "absolute",
            ),
            (
                vec![("endpoints", "http://a:1"), ("prefix", "/")],
                "whole keyspace",
            ),
            (
                vec![("endpoints", "http://a:1"), ("prefix", "/a\nb")],
                "absolute",
            ),
            (
                vec![("endpoints", "http://a:1"), ("dial_timeout_ms", "5")],
                "dial_timeout_ms",
            ),
            (
                vec![("endpoints", "http://a:1"), ("dial_timeout_ms", "-1")],
                "dial_timeout_ms",
            ),
            (vec![("prefix", "/x")], "without endpoints"),
        ] {
            let (_, e) = run(&pairs);
            assert!(
                e.iter().any(|e| e.contains("[etcd]") && e.contains(want)),
                "{pairs:?}: {e:?}"
            );
        }
        let (s, e) = run(&[
            ("endpoints", "https://a:1"),
            ("ca_file", "/ca"),
            ("cert_file", "/c"),
            ("key_file", "/k"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert!(s.unwrap().tls());
    }
}
