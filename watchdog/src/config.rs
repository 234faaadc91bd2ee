//! `watchdog.cfg`: Seesaw's INI file naming the services to supervise, parsed with `rust-ini` and
//! validated with no side effects. Every problem is collected (not just the first) so an operator
//! fixes the file in one pass; each message carries a path like `watchdog.cfg [engine] priority: ...`.
//!
//! Each section except `default` is one service. Keys in `[default]` are inherited by every
//! service that does not set them (the behaviour of Seesaw's goconf-based reader).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ini::{Ini, ParseOption, Properties};

use crate::policy;

/// `term_timeout` when the file sets none.
pub const DEFAULT_TERM_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys a service section may carry.
const KNOWN_KEYS: [&str; 7] = [
    "binary",
    "args",
    "dependency",
    "priority",
    "term_timeout",
    "user",
    "capabilities",
];

/// The section whose keys are defaults for every service.
const DEFAULT_SECTION: &str = "default";

/// A validated `watchdog.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// The services in start order: every service comes after its dependency.
    pub services: Vec<ServiceConfig>,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The section name; also names the log file, the notify socket and `argv[0]` (`seesaw_<name>`).
    pub name: String,
    /// The program to execute.
    pub binary: PathBuf,
    /// Arguments, split on whitespace (the file format has no quoting).
    pub args: Vec<String>,
    /// The service that must report READY before this one starts.
    pub dependency: Option<String>,
    /// Nice value (-20..=19) applied after spawn.
    pub priority: Option<i32>,
    /// How long to wait after SIGTERM before SIGKILL.
    pub term_timeout: Duration,
    /// Whom to run the child as (only honoured when the watchdog is root).
    pub user: Option<RunAs>,
    /// `capabilities =`: the only capabilities the child keeps (`none` for none); unset keeps
    /// the old behaviour (a `user` drop loses all, root keeps all). Only honoured as root.
    pub capabilities: Option<Vec<crate::caps::Cap>>,
}

/// A resolved `user =` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// What the file said (a name or a numeric uid).
    pub name: String,
    /// The uid to switch to.
    pub uid: u32,
    /// The primary gid to switch to.
    pub gid: u32,
}

/// Who the watchdog runs as; decides whether `user =` is a privilege drop or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The effective uid of the watchdog.
    pub euid: u32,
}

impl Identity {
    /// The identity of this process.
    pub fn current() -> Self {
        Self {
            euid: rustix::process::geteuid().as_raw(),
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// The INI syntax is broken; nothing else is checked.
    #[error("{file}:{reason}")]
    Syntax {
        /// The file.
        file: String,
        /// `line:col message` from the parser.
        reason: String,
    },
    /// A problem with the file as a whole.
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A problem with one section.
    #[error("{file} [{section}]: {reason}")]
    Section {
        /// The file.
        file: String,
        /// The section.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A problem with one key of one section.
    #[error("{file} [{section}] {key}: {reason}")]
    Key {
        /// The file.
        file: String,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Every problem found in the file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Reads and validates `path`. Messages name the file as given.
pub fn load(path: &Path, identity: Identity) -> Result<WatchdogConfig, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        }])
    })?;
    parse(&text, &file, identity)
}

/// Parses and validates the text of a `watchdog.cfg`; `file` labels the messages.
pub fn parse(text: &str, file: &str, identity: Identity) -> Result<WatchdogConfig, ConfigErrors> {
    // No quote or escape processing: Seesaw's files hold plain paths and flags, and a backslash
    // or quote in an `args` line must reach the child unchanged.
    let opts = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ParseOption::default()
    };
    let ini = Ini::load_from_str_opt(text, opts).map_err(|e| {
        ConfigErrors(vec![ConfigError::Syntax {
            file: file.to_owned(),
            reason: e.to_string(),
        }])
    })?;
    Validator {
        file,
        identity,
        errors: Vec::new(),
    }
    .validate(&ini)
}

// === impl Validator ===

/// Accumulates errors while turning INI sections into services.
struct Validator<'a> {
    file: &'a str,
    identity: Identity,
    errors: Vec<ConfigError>,
}

/// The typed value of every key a section sets (defaults are merged in later).
#[derive(Default, Clone)]
struct Fields {
    binary: Option<PathBuf>,
    args: Option<Vec<String>>,
    dependency: Option<String>,
    priority: Option<i32>,
    term_timeout: Option<Duration>,
    user: Option<RunAs>,
    capabilities: Option<Vec<crate::caps::Cap>>,
    /// Every known key the section sets, valid or not.
    present: HashSet<String>,
}

impl Validator<'_> {
    fn validate(mut self, ini: &Ini) -> Result<WatchdogConfig, ConfigErrors> {
        let mut defaults = Fields::default();
        let mut sections: Vec<(&str, Fields)> = Vec::new();
        let mut seen = HashSet::new();
        for (name, props) in ini.iter() {
            let Some(name) = name else {
                for (key, _) in props.iter() {
                    self.file_error(format!("key {key:?} is outside any section"));
                }
                continue;
            };
            if !seen.insert(name) {
                self.section_error(name, "duplicate section".into());
                continue;
            }
            if name == DEFAULT_SECTION {
                defaults = self.fields(name, props);
                continue;
            }
            if let Err(reason) = check_service_name(name) {
                self.section_error(name, reason);
            }
            let fields = self.fields(name, props);
            sections.push((name, fields));
        }
        if sections.is_empty() {
            self.file_error("no services defined".into());
        }

        let names: HashSet<&str> = sections.iter().map(|(n, _)| *n).collect();
        let mut services = Vec::with_capacity(sections.len());
        for (name, own) in sections {
            let binary = own.binary.or_else(|| defaults.binary.clone());
            let Some(binary) = binary else {
                // A present but invalid `binary` was reported already.
                if !own.present.contains("binary") && !defaults.present.contains("binary") {
                    self.key_error(name, "binary", "required".into());
                }
                continue;
            };
            let dependency = own.dependency.or_else(|| defaults.dependency.clone());
            if let Some(dep) = &dependency
                && !names.contains(dep.as_str())
            {
                self.key_error(name, "dependency", format!("unknown service {dep:?}"));
            }
            services.push(ServiceConfig {
                name: name.to_owned(),
                binary,
                args: own
                    .args
                    .or_else(|| defaults.args.clone())
                    .unwrap_or_default(),
                dependency,
                priority: own.priority.or(defaults.priority),
                term_timeout: own
                    .term_timeout
                    .or(defaults.term_timeout)
                    .unwrap_or(DEFAULT_TERM_TIMEOUT),
                user: own.user.or_else(|| defaults.user.clone()),
                capabilities: own.capabilities.or_else(|| defaults.capabilities.clone()),
            });
        }

        let order = {
            let edges: Vec<(&str, Option<&str>)> = services
                .iter()
                .map(|s| (s.name.as_str(), s.dependency.as_deref()))
                .collect();
            match policy::start_order(&edges) {
                Ok(order) => order.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                Err(cycles) => {
                    for cycle in cycles {
                        let first = cycle.0[0].clone();
                        self.key_error(&first, "dependency", format!("cycle {cycle}"));
                    }
                    Vec::new()
                }
            }
        };

        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        let mut by_name: HashMap<String, ServiceConfig> =
            services.into_iter().map(|s| (s.name.clone(), s)).collect();
        let services = order
            .iter()
            .map(|n| {
                by_name
                    .remove(n)
                    .expect("start_order returns each service exactly once")
            })
            .collect();
        Ok(WatchdogConfig { services })
    }

    /// Checks the keys of one section and parses each value.
    fn fields(&mut self, section: &str, props: &Properties) -> Fields {
        let mut fields = Fields::default();
        let mut seen = HashSet::new();
        for (key, value) in props.iter() {
            if !KNOWN_KEYS.contains(&key) {
                self.key_error(
                    section,
                    key,
                    format!("unknown key (known: {})", KNOWN_KEYS.join(", ")),
                );
                continue;
            }
            if !seen.insert(key) {
                self.key_error(section, key, "set more than once".into());
                continue;
            }
            fields.present.insert(key.to_owned());
            let value = value.trim();
            let parsed = match key {
                "binary" if value.is_empty() => Err("must not be empty".to_owned()),
                "binary" => {
                    fields.binary = Some(PathBuf::from(value));
                    Ok(())
                }
                "args" => {
                    fields.args = Some(value.split_whitespace().map(str::to_owned).collect());
                    Ok(())
                }
                "dependency" if value.is_empty() => Err("must not be empty".to_owned()),
                "dependency" if value.split_whitespace().count() > 1 => {
                    Err("only one dependency is supported".to_owned())
                }
                "dependency" => {
                    fields.dependency = Some(value.to_owned());
                    Ok(())
                }
                "priority" => parse_priority(value).map(|p| fields.priority = Some(p)),
                "term_timeout" => parse_go_duration(value).map(|d| fields.term_timeout = Some(d)),
                "user" => resolve_user(value, self.identity).map(|u| fields.user = Some(u)),
                "capabilities" => {
                    crate::caps::parse_list(value).map(|c| fields.capabilities = Some(c))
                }
                _ => unreachable!("key was checked against KNOWN_KEYS"),
            };
            if let Err(reason) = parsed {
                self.key_error(section, key, reason);
            }
        }
        fields
    }

    fn file_error(&mut self, reason: String) {
        self.errors.push(ConfigError::File {
            file: self.file.to_owned(),
            reason,
        });
    }

    fn section_error(&mut self, section: &str, reason: String) {
        self.errors.push(ConfigError::Section {
            file: self.file.to_owned(),
            section: section.to_owned(),
            reason,
        });
    }

    fn key_error(&mut self, section: &str, key: &str, reason: String) {
        self.errors.push(ConfigError::Key {
            file: self.file.to_owned(),
            section: section.to_owned(),
            key: key.to_owned(),
            reason,
        });
    }
}

// === value parsers ===

/// Service names become file names (`seesaw_<name>.log`, `<name>.notify`), so only a safe
/// alphabet is accepted: no `/`, no `..`, nothing a shell or path join could misread.
fn check_service_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("service name must be 1 to 64 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        || name.starts_with('-')
    {
        return Err("service name may only hold letters, digits, '_' and '-'".into());
    }
    Ok(())
}

fn parse_priority(value: &str) -> Result<i32, String> {
    let p: i32 = value
        .parse()
        .map_err(|_| format!("{value:?} is not an integer"))?;
    if !(-20..=19).contains(&p) {
        return Err(format!("{p} is outside the nice range -20..19"));
    }
    Ok(p)
}

/// Parses a Go duration (`10s`, `500ms`, `1m30s`, `1.5h`). Negative durations are rejected:
/// a timeout cannot be negative.
pub fn parse_go_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?} is not a duration (e.g. 500ms, 10s, 1m)");
    let s = value.strip_prefix('+').unwrap_or(value);
    if s.starts_with('-') {
        return Err(format!("{value:?} is negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let num: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{value:?} is out of range"))
}

/// Resolves `user =` (a name or a numeric uid). A numeric uid without a passwd entry is allowed
/// (containers often have none) and runs with gid = uid.
fn resolve_user(value: &str, identity: Identity) -> Result<RunAs, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let lookup = |r: nix::Result<Option<nix::unistd::User>>| {
        r.map_err(|e| format!("cannot look up user {value:?}: {e}"))
    };
    let (uid, gid) = match value.parse::<u32>() {
        Ok(uid) => match lookup(nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)))? {
            Some(u) => (u.uid.as_raw(), u.gid.as_raw()),
            None => (uid, uid),
        },
        Err(_) => match lookup(nix::unistd::User::from_name(value))? {
            Some(u) => (u.uid.as_raw(), u.gid.as_raw()),
            None => return Err(format!("unknown user {value:?}")),
        },
    };
    if identity.euid != 0 && identity.euid != uid {
        return Err(format!(
            "cannot run as {value:?} (uid {uid}): the watchdog runs as uid {} and is not root",
            identity.euid
        ));
    }
    Ok(RunAs {
        name: value.to_owned(),
        uid,
        gid,
    })
}

#[cfg(test)]
mod tests;
