//! The native pool form: a vserver ("pool") and its backends ("members") as JSON or YAML, the
//! shape the REST API's bodies, the dashboard's forms and `config import` share. Input is
//! untrusted: [`pool_from_value`] walks a generic document and reports *every* problem with its
//! field path (`services[0].port: ...`) before anything is converted, so a bad body changes
//! nothing.
//!
//! ```yaml
//! name: web@demo              # required; the vserver name
//! hostname: web.demo.         # the VIP's fqdn (default: "<name with @ as .>.")
//! vip: 127.0.0.1              # IPv4 or IPv6, bare or with a prefix length
//! rp: ops@example.com         # responsible party (default "seesaw-ecu")
//! services:                   # at least one
//!   - port: 80
//!     protocol: tcp           # tcp | udp (default tcp)
//!     scheduler: wrr          # rr wrr lc wlc sh mh dh random p2c (default rr)
//!     mode: nat               # nat | dsr | tun (default nat)
//!     backend_port: 8080      # optional
//!     healthchecks: [ ... ]   # optional, as below
//! healthchecks:               # optional, for every service
//!   - type: http              # tcp | http | https | udp | dns | icmp | tcp_tls | radius
//!     port: 8080
//!     send: /healthz
//!     receive: ""
//!     code: 200
//!     interval: 2             # seconds
//!     timeout: 1
//!     retries: 1
//! members:
//!   - host: be1.demo.         # the backend's fqdn (its name in overrides)
//!     ip: 127.0.0.2
//!     weight: 1               # 0..=1000000 (default 1)
//! ```

use std::net::IpAddr;

use seesaw_proto::config as pb;
use serde_json::{Map, Value};

/// One problem in a body, with the path of the field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Where, e.g. `services[0].port` (empty: the document itself).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A validated member.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The backend's fqdn.
    pub host: String,
    /// Its address.
    pub ip: IpAddr,
    /// Its weight.
    pub weight: i32,
}

/// Collects errors under a path prefix.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// A JSON object view that remembers which keys were read, so unknown keys are reported.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    known: &'static [&'static str],
}

impl<'a> Obj<'a> {
    fn new(
        v: &'a Value,
        path: &str,
        known: &'static [&'static str],
        errs: &mut Errors,
    ) -> Option<Self> {
        let Value::Object(map) = v else {
            errs.push(path, "must be an object");
            return None;
        };
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                errs.push(
                    &join(path, k),
                    format!("unknown field (known: {})", known.join(", ")),
                );
            }
        }
        Some(Self {
            map,
            path: path.to_owned(),
            known,
        })
    }

    fn path(&self, key: &str) -> String {
        debug_assert!(self.known.contains(&key));
        join(&self.path, key)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                errs.push(&self.path(key), "must be a string");
                None
            }
        }
    }

    fn required_string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        if self.get(key).is_none() {
            errs.push(&self.path(key), "is required");
            return None;
        }
        let s = self.string(key, errs)?;
        if s.trim().is_empty() {
            errs.push(&self.path(key), "must not be empty");
            return None;
        }
        Some(s)
    }

    fn int(&self, key: &str, min: i64, max: i64, errs: &mut Errors) -> Option<i64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_i64(),
            // YAML and form fields often carry numbers as strings.
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                errs.push(
                    &self.path(key),
                    format!("{n} is out of range {min}..={max}"),
                );
                None
            }
            None => {
                errs.push(&self.path(key), "must be an integer");
                None
            }
        }
    }

    fn list(&self, key: &str, errs: &mut Errors) -> Option<&'a Vec<Value>> {
        match self.get(key)? {
            Value::Array(a) => Some(a),
            _ => {
                errs.push(&self.path(key), "must be a list");
                None
            }
        }
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        choices: &[(&str, T)],
        default: T,
        errs: &mut Errors,
    ) -> T {
        let Some(s) = self.string(key, errs) else {
            return default;
        };
        let lower = s.trim().to_ascii_lowercase();
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == lower) {
            return *v;
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        errs.push(
            &self.path(key),
            format!("{s:?} is not one of {}", names.join(", ")),
        );
        default
    }
}

/// The address part of `ip` or `ip/len`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let addr = s
        .split_once('/')
        .map_or(s, |(a, len)| if len.parse::<u8>().is_ok() { a } else { "" });
    addr.trim().parse().ok()
}

/// A pool (vserver) name as Seesaw's configs spell them (`dns.resolver@au-syd`): 1 to 255 of
/// letters, digits and `. _ - @ : +`, starting with a letter or digit, without `..`. So a name
/// can never carry a path (`../x`), a control character or a space into a log line or a file.
pub fn check_pool_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':' | '+'))
        && !s.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a pool name: 1 to 255 letters, digits and . _ - @ : + (like web@demo), starting with a letter or digit"
        ))
    }
}

/// A member's host name (from a URL path) as [`member_from_value`] accepts it.
pub fn check_member_host(s: &str) -> Result<(), String> {
    if is_hostname(s) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a host name"))
    }
}

/// Whether `s` is a plausible DNS name (letters, digits, `-`, `_`, dots; no spaces).
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('.')
        && !s.contains("..")
}

/// The fqdn form (trailing dot) of a host name.
fn fqdn(s: &str) -> String {
    if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

/// A `Host` for `ip` with the fqdn `name`.
pub fn host(name: &str, ip: IpAddr) -> pb::Host {
    let (ipv4, ipv6) = match ip {
        IpAddr::V4(a) => (Some(format!("{a}/32")), None),
        IpAddr::V6(a) => (None, Some(format!("{a}/128"))),
    };
    pb::Host {
        fqdn: fqdn(name),
        ipv4,
        ipv6,
        status: None,
    }
}

const POOL_KEYS: &[&str] = &[
    "name",
    "hostname",
    "vip",
    "rp",
    "services",
    "healthchecks",
    "members",
];
const SERVICE_KEYS: &[&str] = &[
    "port",
    "protocol",
    "scheduler",
    "mode",
    "backend_port",
    "persistence",
    "healthchecks",
];
const CHECK_KEYS: &[&str] = &[
    "type", "port", "send", "receive", "code", "interval", "timeout", "retries", "method", "mode",
];
const MEMBER_KEYS: &[&str] = &["host", "ip", "weight"];

/// Validates a pool document and converts it. `members` is `None` when the document has no
/// `members` key (an edit then keeps the pool's members).
pub fn pool_from_value(v: &Value) -> Result<(pb::Vserver, Option<Vec<Member>>), Vec<FieldError>> {
    let mut errs = Errors::default();
    let out = pool(v, "", &mut errs);
    match out {
        Some(p) if errs.0.is_empty() => Ok(p),
        _ => Err(errs.0),
    }
}

fn pool(v: &Value, path: &str, errs: &mut Errors) -> Option<(pb::Vserver, Option<Vec<Member>>)> {
    let o = Obj::new(v, path, POOL_KEYS, errs)?;
    let name = o.required_string("name", errs);
    if let Some(n) = &name
        && let Err(why) = check_pool_name(n)
    {
        errs.push(&o.path("name"), why);
    }
    let vip = o.required_string("vip", errs).and_then(|s| {
        let ip = parse_ip(&s);
        if ip.is_none() {
            errs.push(&o.path("vip"), format!("{s:?} is not an IP address"));
        }
        ip
    });
    let hostname = o.string("hostname", errs);
    if let Some(h) = &hostname
        && !is_hostname(h)
    {
        errs.push(&o.path("hostname"), format!("{h:?} is not a host name"));
    }
    let rp = o
        .string("rp", errs)
        .unwrap_or_else(|| "seesaw-ecu".to_owned());
    let mut entries = Vec::new();
    match o.list("services", errs) {
        Some(list) if !list.is_empty() => {
            for (i, s) in list.iter().enumerate() {
                if let Some(e) = service(s, &format!("{}[{i}]", o.path("services")), errs) {
                    entries.push(e);
                }
            }
        }
        Some(_) => errs.push(&o.path("services"), "needs at least one service"),
        None if o.get("services").is_none() => errs.push(&o.path("services"), "is required"),
        None => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if !seen.insert((e.protocol, e.port)) {
            errs.push(
                &format!("{}[{i}]", o.path("services")),
                format!("duplicate port {} for this protocol", e.port),
            );
        }
    }
    let healthcheck = checks(&o, "healthchecks", errs);
    let members = o.list("members", errs).map(|list| {
        let mut out = Vec::new();
        for (i, m) in list.iter().enumerate() {
            if let Some(m) = member_at(m, &format!("{}[{i}]", o.path("members")), errs) {
                if out.iter().any(|x: &Member| x.host == m.host) {
                    errs.push(
                        &format!("{}[{i}].host", o.path("members")),
                        format!("duplicate member {}", m.host),
                    );
                }
                out.push(m);
            }
        }
        out
    });
    let (name, vip) = (name?, vip?);
    let hostname = hostname.unwrap_or_else(|| name.replace('@', "."));
    let mut vserver = pb::Vserver {
        name,
        entry_address: host(&hostname, vip),
        rp,
        use_fwm: None,
        vserver_entry: entries,
        healthcheck,
        access_grant: Vec::new(),
        warning: Vec::new(),
        backend: Vec::new(),
    };
    if let Some(ms) = &members {
        vserver.backend = ms.iter().map(backend).collect();
    }
    Some((vserver, members))
}

fn service(v: &Value, path: &str, errs: &mut Errors) -> Option<pb::VserverEntry> {
    use pb::vserver_entry::{Mode, Scheduler};
    let o = Obj::new(v, path, SERVICE_KEYS, errs)?;
    if o.get("port").is_none() {
        errs.push(&o.path("port"), "is required");
    }
    let port = o.int("port", 1, 65535, errs);
    let protocol = o.choice(
        "protocol",
        &[("tcp", pb::Protocol::Tcp), ("udp", pb::Protocol::Udp)],
        pb::Protocol::Tcp,
        errs,
    );
    let scheduler = o.choice(
        "scheduler",
        &[
            ("rr", Scheduler::Rr),
            ("wrr", Scheduler::Wrr),
            ("lc", Scheduler::Lc),
            ("wlc", Scheduler::Wlc),
            ("sh", Scheduler::Sh),
            ("mh", Scheduler::Mh),
            ("dh", Scheduler::Dh),
            ("random", Scheduler::Random),
            ("p2c", Scheduler::P2c),
        ],
        Scheduler::Rr,
        errs,
    );
    let mode = o.choice(
        "mode",
        &[("nat", Mode::Nat), ("dsr", Mode::Dsr), ("tun", Mode::Tun)],
        Mode::Nat,
        errs,
    );
    let backend_port = o.int("backend_port", 1, 65535, errs);
    let persistence = o.int("persistence", 0, 86400, errs);
    let healthcheck = checks(&o, "healthchecks", errs);
    let port = port?;
    Some(pb::VserverEntry {
        protocol: protocol as i32,
        port: i32::try_from(port).ok()?,
        scheduler: Some(scheduler as i32),
        mode: Some(mode as i32),
        persistence: persistence.and_then(|p| i32::try_from(p).ok()),
        healthcheck,
        backend_port: backend_port.and_then(|p| i32::try_from(p).ok()),
        ..Default::default()
    })
}

fn checks(o: &Obj<'_>, key: &str, errs: &mut Errors) -> Vec<pb::Healthcheck> {
    let Some(list) = o.list(key, errs) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, c)| check(c, &format!("{}[{i}]", o.path(key)), errs))
        .collect()
}

/// One health check. Public so the Parasaus import builds checks the same way.
pub fn check(v: &Value, path: &str, errs: &mut Errors) -> Option<pb::Healthcheck> {
    use pb::healthcheck::{Mode, Type};
    let o = Obj::new(v, path, CHECK_KEYS, errs)?;
    if o.get("type").is_none() {
        errs.push(&o.path("type"), "is required");
    }
    let kind = o.choice(
        "type",
        &[
            ("tcp", Type::Tcp),
            ("http", Type::Http),
            ("https", Type::Https),
            ("udp", Type::Udp),
            ("dns", Type::Dns),
            ("icmp", Type::IcmpPing),
            ("tcp_tls", Type::TcpTls),
            ("radius", Type::Radius),
        ],
        Type::Tcp,
        errs,
    );
    let mode = o.choice(
        "mode",
        &[
            ("plain", Mode::Plain),
            ("dsr", Mode::Dsr),
            ("tun", Mode::Tun),
        ],
        Mode::Plain,
        errs,
    );
    let small = |key: &str, min: i64, max: i64, errs: &mut Errors| {
        o.int(key, min, max, errs)
            .and_then(|n| i32::try_from(n).ok())
    };
    Some(pb::Healthcheck {
        r#type: kind as i32,
        interval: small("interval", 1, 3600, errs),
        timeout: small("timeout", 1, 3600, errs),
        port: small("port", 1, 65535, errs),
        send: o.string("send", errs),
        receive: o.string("receive", errs),
        code: small("code", 100, 599, errs),
        mode: Some(mode as i32),
        method: o.string("method", errs),
        retries: small("retries", 0, 100, errs),
        ..Default::default()
    })
}

/// Validates a member document.
pub fn member_from_value(v: &Value) -> Result<Member, Vec<FieldError>> {
    let mut errs = Errors::default();
    match member_at(v, "", &mut errs) {
        Some(m) if errs.0.is_empty() => Ok(m),
        _ => Err(errs.0),
    }
}

fn member_at(v: &Value, path: &str, errs: &mut Errors) -> Option<Member> {
    let o = Obj::new(v, path, MEMBER_KEYS, errs)?;
    let host = o.required_string("host", errs);
    if let Some(h) = &host
        && !is_hostname(h)
    {
        errs.push(&o.path("host"), format!("{h:?} is not a host name"));
    }
    let ip = o.required_string("ip", errs).and_then(|s| {
        let ip = parse_ip(&s);
        if ip.is_none() {
            errs.push(&o.path("ip"), format!("{s:?} is not an IP address"));
        }
        ip
    });
    let weight = o.int("weight", 0, 1_000_000, errs).unwrap_or(1);
    Some(Member {
        host: fqdn(&host?),
        ip: ip?,
        weight: i32::try_from(weight).ok()?,
    })
}

/// The cluster.pb backend of a member.
pub fn backend(m: &Member) -> pb::Backend {
    pb::Backend {
        host: host(&m.host, m.ip),
        weight: Some(m.weight),
        group: None,
        backup: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_full_pool_converts() {
        let (v, members) = pool_from_value(&json!({
            "name": "web@demo", "vip": "127.0.0.1",
            "services": [{"port": 80, "scheduler": "wrr", "backend_port": "8080",
                          "healthchecks": [{"type": "http", "send": "/healthz", "code": 200}]}],
            "members": [{"host": "be1.demo", "ip": "127.0.0.2", "weight": 2}],
        }))
        .expect("valid");
        assert_eq!(v.entry_address.fqdn, "web.demo.");
        assert_eq!(v.entry_address.ipv4.as_deref(), Some("127.0.0.1/32"));
        assert_eq!(v.vserver_entry[0].backend_port, Some(8080));
        assert_eq!(v.backend[0].host.fqdn, "be1.demo.");
        assert_eq!(members.map(|m| m.len()), Some(1));
    }

    #[test]
    fn every_error_has_its_path() {
        let errs = pool_from_value(&json!({
            "vip": "nope", "colour": 1,
            "services": [{"port": 70000, "protocol": "sctp"}, {"port": "x"}],
            "members": [{"host": "a b", "ip": "1.2.3.4"}, 7],
        }))
        .expect_err("invalid");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for want in [
            "name",
            "vip",
            "colour",
            "services[0].port",
            "services[0].protocol",
            "services[1].port",
            "members[0].host",
            "members[1]",
        ] {
            assert!(fields.contains(&want), "{want} missing from {errs:?}");
        }
        assert_eq!(
            pool_from_value(&json!([])).expect_err("not an object")[0].message,
            "must be an object"
        );
    }

    #[test]
    fn members_validate_alone() {
        let m = member_from_value(&json!({"host": "be9.demo.", "ip": "::1"})).expect("valid");
        assert_eq!((m.weight, m.ip.is_ipv6()), (1, true));
        let errs = member_from_value(&json!({"host": "x", "weight": -1})).expect_err("bad");
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
