//! `seesaw.cfg`: Seesaw's INI keys with their defaults (reference §2.1), plus this project's
//! `[engine]`, `[dataplane]`, `[ha]`, `[bgp]` and `[ecu]` sections, read the way Seesaw's goconf
//! reads them: section and key names in any case, goconf's booleans (true/false, yes/no, y/n,
//! on/off, t/f, 1/0, any case), `=` or `:` between key and value, and `;` or `#` comments, whole
//! line or after a value. An unknown key in one of Seesaw's own sections is a warning (Seesaw
//! ignores it), with a did-you-mean; unknown sections and unknown keys in our sections are errors.
//! Every error and warning carries its `[section] key` path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use seesaw_common::goconf::Goconf;

/// Which data plane ncc drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataplaneKind {
    /// IPVS if the kernel has it, else nftables if privileged, else the userspace proxy.
    Auto,
    /// Kernel IPVS.
    Ipvs,
    /// nftables.
    Nftables,
    /// The userspace proxy.
    Proxy,
}

impl DataplaneKind {
    /// Parses the `[dataplane] kind` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "ipvs" => Self::Ipvs,
            "nftables" => Self::Nftables,
            "proxy" => Self::Proxy,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Ipvs => "ipvs",
            Self::Nftables => "nftables",
            Self::Proxy => "proxy",
        }
    }

    /// The plane this kind means here: `auto` becomes the plane the running ncc reported
    /// ([`set_running_plane`]), or, before that (and in `--validate`), the one an installed ncc
    /// would pick on this host (`seesaw_common::plane::auto_for_installed_ncc`, asked once). So a
    /// config is validated against the plane that will hold it, never against "any plane".
    pub fn effective(self) -> Self {
        if self != Self::Auto {
            return self;
        }
        if let Some(k) = RUNNING_PLANE.get() {
            return *k;
        }
        static HOST: std::sync::OnceLock<DataplaneKind> = std::sync::OnceLock::new();
        *HOST.get_or_init(|| {
            Self::parse(seesaw_common::plane::auto_for_installed_ncc()).unwrap_or(Self::Proxy)
        })
    }
}

/// The plane the running ncc reported, once known.
static RUNNING_PLANE: std::sync::OnceLock<DataplaneKind> = std::sync::OnceLock::new();

/// Records the plane ncc reported (`proxy`, `nftables`, `ipvs`): what `auto` means from now
/// on for this process. The first report wins (ncc resolves `auto` once, at its start; a
/// changed seesaw.cfg needs a restart either way).
pub fn set_running_plane(kind: &str) {
    if let Some(k) = DataplaneKind::parse(kind).filter(|k| *k != DataplaneKind::Auto) {
        let _ = RUNNING_PLANE.set(k);
    }
}

/// Every setting of `seesaw.cfg`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `[cluster] name` (required): the site name.
    pub cluster_name: String,
    /// `[cluster] anycast_enabled` (default true).
    pub anycast_enabled: bool,
    /// `[cluster] node_ipv4`.
    pub node_ipv4: Option<Ipv4Addr>,
    /// `[cluster] node_ipv6`.
    pub node_ipv6: Option<Ipv6Addr>,
    /// `[cluster] peer_ipv4`.
    pub peer_ipv4: Option<Ipv4Addr>,
    /// `[cluster] peer_ipv6`.
    pub peer_ipv6: Option<Ipv6Addr>,
    /// `[cluster] vip_ipv4`.
    pub vip_ipv4: Option<Ipv4Addr>,
    /// `[cluster] vip_ipv6`.
    pub vip_ipv6: Option<Ipv6Addr>,
    /// `[cluster] use_vmac` (default true).
    pub use_vmac: bool,
    /// `[cluster] garp_interval_sec` (default 10).
    pub garp_interval: Duration,
    /// `[cluster] vrid` (1..=255, default 60).
    pub vrid: u8,
    /// `[config_server] primary/secondary/tertiary`, in order (default `seesaw-config.example.com`).
    pub config_servers: Vec<String>,
    /// `[interface] node` (default eth0).
    pub node_interface: String,
    /// `[interface] lb` (default eth1).
    pub lb_interface: String,
    /// `[interface] routing_table_id` (1..=250, default 2, Seesaw's `RoutingTableID`): the
    /// policy-routing table of the cluster VIP and the unicast VIPs on the LB interface.
    pub routing_table_id: u8,
    /// `[extra_service_anycast]` values: always-announced anycast addresses.
    pub extra_service_anycast: Vec<IpAddr>,
    /// `[dataplane] kind` (default auto).
    pub dataplane: DataplaneKind,
    /// `[ha] advert_interval_ms` (10..=10000, default 500).
    pub ha_advert_interval: Duration,
    /// `[ha] preempt` (default false).
    pub ha_preempt: bool,
    /// `[ha] auth_key_file` (default none): the key adverts are signed and accepted with.
    pub ha_auth_key_file: Option<std::path::PathBuf>,
    /// `[ha] auth_accept_key_file` (default none; needs `auth_key_file`): a second key adverts
    /// are also accepted with, for key rotation.
    pub ha_auth_accept_key_file: Option<std::path::PathBuf>,
    /// `[bgp] gobgp_api` (default 127.0.0.1:50051): the GoBGP daemon's gRPC address.
    pub bgp_gobgp_api: SocketAddr,
    /// `[bgp] service_anycast` (default true): while anycast is enabled, hold and announce
    /// Seesaw's service anycast VIPs 192.168.255.254 and 2015:cafe:ffff::254 (each while a
    /// cluster VIP of its family is set), as Seesaw does.
    pub service_anycast: bool,
    /// `[ecu] listen` (default 127.0.0.1:10257): the ECU's HTTP address.
    pub ecu_listen: SocketAddr,
    /// `[config_server] port` (default 10255, Seesaw's).
    pub config_server_port: u16,
    /// `[config_server] ca_file` (default `<config dir>/ssl/ca.crt`): the pinned CA.
    pub config_server_ca: Option<std::path::PathBuf>,
    /// `[engine] config_interval_sec` (default 60): how often the server source is polled.
    pub config_interval: Duration,
    /// `[engine] churn_limit` (default 10, 0 = unlimited): vserver creations or deletions applied
    /// per config update; the rest follows on later updates.
    pub churn_limit: usize,
    /// `[engine] sync_port` (default 10258): the peer-sync port, served on the node address when a
    /// peer is configured.
    pub sync_port: u16,
    /// Whether `[config_server]` names a server (then the default config source is `server`, as
    /// in Seesaw; without one it is `disk`).
    pub config_server_configured: bool,
    /// `[etcd]`: the shared config store of many nodes (then the default config source is
    /// `etcd`).
    pub etcd: Option<super::etcd_cfg::EtcdSettings>,
    /// What Seesaw would ignore and we report: unknown keys in Seesaw's sections.
    pub warnings: Vec<String>,
}

/// Seesaw's hard-coded anycast ranges; a VIP inside one is an anycast VIP.
pub const ANYCAST_V4: &str = "192.168.255.0/24";
/// See [`ANYCAST_V4`].
pub const ANYCAST_V6: &str = "2015:cafe:ffff::/64";

/// Whether `ip` lies in Seesaw's anycast ranges.
pub fn is_anycast(ip: IpAddr) -> bool {
    [ANYCAST_V4, ANYCAST_V6].iter().any(|r| {
        r.parse::<IpNet>()
            .expect("constant anycast range parses")
            .contains(&ip)
    })
}

/// Seesaw's own sections: an unknown key there is a warning, as Seesaw ignores it.
const SEESAW_SECTIONS: &[&str] = &[
    "cluster",
    "config_server",
    "interface",
    "extra_service_anycast",
];

/// The keys each section accepts. `extra_service_anycast` accepts any key.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "cluster",
        &[
            "name",
            "anycast_enabled",
            "node_ipv4",
            "node_ipv6",
            "peer_ipv4",
            "peer_ipv6",
            "vip_ipv4",
            "vip_ipv6",
            "use_vmac",
            "garp_interval_sec",
            "vrid",
        ],
    ),
    (
        "config_server",
        &["primary", "secondary", "tertiary", "port", "ca_file"],
    ),
    (
        "engine",
        &["churn_limit", "config_interval_sec", "sync_port"],
    ),
    (
        "interface",
        &[
            "node",
            "lb",
            "vip",
            "garp_count",
            "garp_interval_ms",
            "routing_table_id",
        ],
    ),
    ("extra_service_anycast", &[]),
    ("dataplane", &["kind"]),
    (
        "ha",
        &[
            "advert_interval_ms",
            "preempt",
            "auth_key_file",
            "auth_accept_key_file",
        ],
    ),
    ("bgp", &["gobgp_api", "service_anycast"]),
    ("ecu", &["listen"]),
    ("etcd", super::etcd_cfg::KEYS),
];

/// Parses `seesaw.cfg` text. On failure returns every error found.
pub fn parse(text: &str) -> Result<Settings, Vec<String>> {
    let ini = match Goconf::parse(text) {
        Ok(ini) => ini,
        Err(e) => return Err(vec![format!("seesaw.cfg {e}")]),
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (section, props) in &ini.sections {
        let Some(section) = section else {
            for (k, _) in props {
                errors.push(format!("seesaw.cfg {k}: key outside any section"));
            }
            continue;
        };
        match SECTIONS.iter().find(|(s, _)| s == section) {
            None => errors.push(format!(
                "seesaw.cfg [{section}]: unknown section{}",
                did_you_mean(section, SECTIONS.iter().map(|(s, _)| *s))
            )),
            Some((_, keys)) if section != "extra_service_anycast" => {
                for (k, _) in props {
                    if keys.contains(&k.as_str()) {
                        continue;
                    }
                    let hint = did_you_mean(k, keys.iter().copied());
                    if SEESAW_SECTIONS.contains(&section.as_str()) {
                        warnings.push(format!(
                            "seesaw.cfg [{section}] {k}: unknown key, ignored{hint}"
                        ));
                    } else {
                        errors.push(format!("seesaw.cfg [{section}] {k}: unknown key{hint}"));
                    }
                }
            }
            Some(_) => {}
        }
    }

    let mut r = Reader {
        ini: &ini,
        errors: &mut errors,
    };
    let cluster_name = r.string("cluster", "name", "");
    if cluster_name.is_empty() {
        r.errors
            .push("seesaw.cfg [cluster] name: required".to_owned());
    }
    let anycast_enabled = r.boolean("cluster", "anycast_enabled", true);
    let node_ipv4 = r.parsed::<Ipv4Addr>("cluster", "node_ipv4", "an IPv4 address");
    let node_ipv6 = r.parsed::<Ipv6Addr>("cluster", "node_ipv6", "an IPv6 address");
    let peer_ipv4 = r.parsed::<Ipv4Addr>("cluster", "peer_ipv4", "an IPv4 address");
    let peer_ipv6 = r.parsed::<Ipv6Addr>("cluster", "peer_ipv6", "an IPv6 address");
    let vip_ipv4 = r.parsed::<Ipv4Addr>("cluster", "vip_ipv4", "an IPv4 address");
    let vip_ipv6 = r.parsed::<Ipv6Addr>("cluster", "vip_ipv6", "an IPv6 address");
    let use_vmac = r.boolean("cluster", "use_vmac", true);
    let garp = r
        .parsed::<u32>("cluster", "garp_interval_sec", "a number of seconds")
        .unwrap_or(10);
    let vrid = u8::try_from(r.ranged("cluster", "vrid", "an integer 1..255", 1..=255, 60))
        .expect("range checked");
    let config_server_port = r
        .parsed::<u16>("config_server", "port", "a port")
        .unwrap_or(10255);
    let config_server_ca = ini
        .get_from(Some("config_server"), "ca_file")
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from);
    let config_interval = r.ranged("engine", "config_interval_sec", "seconds", 1..=86_400, 60);
    let sync_port = r
        .parsed::<u16>("engine", "sync_port", "a port")
        .unwrap_or(10258);
    let churn_limit = r
        .parsed::<usize>("engine", "churn_limit", "a count (0: unlimited)")
        .unwrap_or(10);
    let mut config_servers: Vec<String> = ["primary", "secondary", "tertiary"]
        .iter()
        .filter_map(|k| ini.get_from(Some("config_server"), k))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let config_server_configured = !config_servers.is_empty();
    if config_servers.is_empty() {
        config_servers.push("seesaw-config.example.com".to_owned());
    }
    let etcd = super::etcd_cfg::parse(|k| ini.get_from(Some("etcd"), k), &cluster_name, r.errors);
    let node_interface = r.string("interface", "node", "eth0");
    let lb_interface = r.string("interface", "lb", "eth1");
    let routing_table_id =
        u8::try_from(r.ranged("interface", "routing_table_id", "a table id", 1..=250, 2))
            .expect("range checked");
    let mut extra_service_anycast = Vec::new();
    if let Some(props) = ini.section("extra_service_anycast") {
        for (k, v) in props {
            match v.parse::<IpAddr>() {
                Ok(ip) if is_anycast(ip) => extra_service_anycast.push(ip),
                Ok(ip) => r.errors.push(format!(
                    "seesaw.cfg [extra_service_anycast] {k}: {ip} is not in the anycast ranges {ANYCAST_V4}, {ANYCAST_V6}"
                )),
                Err(_) => r.errors.push(format!(
                    "seesaw.cfg [extra_service_anycast] {k}: {v:?} is not an IP address"
                )),
            }
        }
    }
    let dataplane = match ini.get_from(Some("dataplane"), "kind") {
        None => DataplaneKind::Auto,
        Some(s) => DataplaneKind::parse(s).unwrap_or_else(|| {
            r.errors.push(format!(
                "seesaw.cfg [dataplane] kind: {s:?} is not one of auto, ipvs, nftables, proxy"
            ));
            DataplaneKind::Auto
        }),
    };
    let advert_ms = r.ranged("ha", "advert_interval_ms", "milliseconds", 10..=10_000, 500);
    let ha_preempt = r.boolean("ha", "preempt", false);
    let key_file = |r: &mut Reader<'_>, key: &str| {
        let v = r.string("ha", key, "");
        (!v.is_empty()).then(|| std::path::PathBuf::from(v))
    };
    let ha_auth_key_file = key_file(&mut r, "auth_key_file");
    let ha_auth_accept_key_file = key_file(&mut r, "auth_accept_key_file");
    if ha_auth_accept_key_file.is_some() && ha_auth_key_file.is_none() {
        r.errors.push(
            "seesaw.cfg [ha] auth_accept_key_file: set without auth_key_file (the accept key is \
             the second key of a rotation; set auth_key_file to the key adverts are signed with)"
                .to_owned(),
        );
    }
    let bgp_gobgp_api = r
        .parsed::<SocketAddr>("bgp", "gobgp_api", "an address like 127.0.0.1:50051")
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051)));
    let service_anycast = r.boolean("bgp", "service_anycast", true);
    let ecu_listen = r
        .parsed::<SocketAddr>("ecu", "listen", "an address like 127.0.0.1:10257")
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 10257)));

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        cluster_name,
        anycast_enabled,
        node_ipv4,
        node_ipv6,
        peer_ipv4,
        peer_ipv6,
        vip_ipv4,
        vip_ipv6,
        use_vmac,
        garp_interval: Duration::from_secs(u64::from(garp)),
        vrid,
        config_servers,
        node_interface,
        lb_interface,
        routing_table_id,
        extra_service_anycast,
        dataplane,
        ha_advert_interval: Duration::from_millis(advert_ms),
        ha_preempt,
        ha_auth_key_file,
        ha_auth_accept_key_file,
        bgp_gobgp_api,
        service_anycast,
        ecu_listen,
        config_server_port,
        config_server_ca,
        config_interval: Duration::from_secs(config_interval),
        churn_limit,
        sync_port,
        config_server_configured,
        etcd,
        warnings,
    })
}

/// The fewest bytes an `[ha]` key file may hold.
pub const MIN_HA_KEY_LEN: usize = 32;

/// [`parse`], then the checks that read other files: each `[ha]` key file exists, is a regular
/// file of mode 0600 (nothing for group or others) and holds at least [`MIN_HA_KEY_LEN`] bytes.
/// The ha process reads the keys itself with the same checks; these make `seesaw_engine
/// --validate` and a reload report a bad key before ha runs into it.
pub fn parse_checked(text: &str) -> Result<Settings, Vec<String>> {
    let settings = parse(text)?;
    let errors = check_files(&settings);
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// The file checks of [`parse_checked`]: one error per bad key file.
pub fn check_files(s: &Settings) -> Vec<String> {
    [
        ("auth_key_file", &s.ha_auth_key_file),
        ("auth_accept_key_file", &s.ha_auth_accept_key_file),
    ]
    .into_iter()
    .filter_map(|(key, path)| {
        let path = path.as_ref()?;
        seesaw_common::files::read_secret(path, MIN_HA_KEY_LEN)
            .err()
            .map(|e| format!("seesaw.cfg [ha] {key}: {e}"))
    })
    .collect()
}

/// ` (did you mean "x"?)` for the closest known name within a small edit distance, else "".
fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map_or_else(String::new, |(_, k)| format!(" (did you mean {k:?}?)"))
}

struct Reader<'a> {
    ini: &'a Goconf,
    errors: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn string(&mut self, section: &str, key: &str, default: &str) -> String {
        self.ini
            .get_from(Some(section), key)
            .unwrap_or(default)
            .to_owned()
    }

    fn boolean(&mut self, section: &str, key: &str, default: bool) -> bool {
        match self.ini.get_from(Some(section), key) {
            None => default,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => true,
                "f" | "false" | "n" | "no" | "off" | "0" => false,
                _ => {
                    self.errors.push(format!(
                        "seesaw.cfg [{section}] {key}: {v:?} is not a boolean (true or false)"
                    ));
                    default
                }
            },
        }
    }

    /// `[section] key` as a number in `range` (`what` says what it must be), `default` when unset,
    /// not a number or outside the range (both errors).
    fn ranged(
        &mut self,
        section: &str,
        key: &str,
        what: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> u64 {
        match self.parsed::<u64>(section, key, what) {
            None => default,
            Some(v) if range.contains(&v) => v,
            Some(v) => {
                self.errors.push(format!(
                    "seesaw.cfg [{section}] {key}: {v} is outside {}..{}",
                    range.start(),
                    range.end()
                ));
                default
            }
        }
    }

    fn parsed<T: std::str::FromStr>(&mut self, section: &str, key: &str, what: &str) -> Option<T> {
        let v = self.ini.get_from(Some(section), key)?;
        if v.is_empty() {
            return None;
        }
        match v.parse() {
            Ok(t) => Some(t),
            Err(_) => {
                self.errors
                    .push(format!("seesaw.cfg [{section}] {key}: {v:?} is not {what}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seesaw_example_loads_with_defaults() {
        let Some(text) = crate::config::tests::compat_file("seesaw.cfg.example") else {
            return;
        };
        let s = parse(&text).unwrap();
        assert!(
            s.warnings.is_empty(),
            "Seesaw's own example: {:?}",
            s.warnings
        );
        assert!(
            s.config_server_configured,
            "its config servers make `server` the default"
        );
        assert_eq!(s.cluster_name, "au-syd");
        assert!(!s.anycast_enabled);
        assert_eq!(s.node_ipv4, Some(Ipv4Addr::new(192, 168, 10, 2)));
        assert_eq!(s.peer_ipv6, Some("2015:cafe::3".parse().unwrap()));
        assert_eq!(s.vip_ipv4, Some(Ipv4Addr::new(192, 168, 10, 1)));
        assert_eq!(
            s.config_servers,
            [
                "seesaw-config1.example.com",
                "seesaw-config2.example.com",
                "seesaw-config3.example.com"
            ]
        );
        assert_eq!(
            (s.node_interface.as_str(), s.lb_interface.as_str()),
            ("eth0", "eth1")
        );
        // Defaults for keys the example leaves out.
        assert_eq!(s.vrid, 60);
        assert!(s.use_vmac);
        assert_eq!(s.garp_interval, Duration::from_secs(10));
        assert_eq!(s.dataplane, DataplaneKind::Auto);
        assert_eq!(s.ha_advert_interval, Duration::from_millis(500));
        assert_eq!(s.ecu_listen, "127.0.0.1:10257".parse().unwrap());
        assert_eq!(s.routing_table_id, 2);
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let text = "[cluster]\nvrid = 300\nnode_ipv4 = 1.2.3\nanycast_enabled = maybe\n\
                    [extra_service_anycast]\na = 10.0.0.1\n[dataplane]\nkind = xdp\nbogus = 1\n[nope]\nx = 1\n\
                    [interface]\nrouting_table_id = 251\n";
        let errs = parse(text).unwrap_err();
        let want = [
            "[cluster] name: required",
            "[cluster] vrid: 300 is outside 1..255",
            "[cluster] node_ipv4: \"1.2.3\" is not an IPv4 address",
            "[cluster] anycast_enabled: \"maybe\" is not a boolean",
            "[dataplane] bogus: unknown key",
            "[extra_service_anycast] a: 10.0.0.1 is not in the anycast ranges",
            "[dataplane] kind: \"xdp\" is not one of",
            "[nope]: unknown section",
            "[interface] routing_table_id: 251 is outside 1..250",
        ];
        for w in want {
            assert!(
                errs.iter().any(|e| e.contains(w)),
                "missing {w:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
    }

    #[test]
    fn ha_key_files_are_checked_at_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path.display().to_string()
        };
        // 32 random bytes; a text key with its trailing newline is fine too.
        let good = write("ha.key", &[0xa5; 32], 0o600);
        let text = write("text.key", b"0123456789abcdef0123456789abcdef\n", 0o400);
        let open = write("open.key", &[0xa5; 32], 0o640);
        let short = write("short.key", &[0xa5; 31], 0o600);
        let cfg = |keys: &str| format!("[cluster]\nname = x\n[ha]\n{keys}");

        let s = parse_checked(&cfg(&format!(
            "auth_key_file = {good}\nauth_accept_key_file = {text}\n"
        )))
        .unwrap();
        assert_eq!(
            s.ha_auth_key_file.as_deref(),
            Some(std::path::Path::new(&good))
        );
        assert_eq!(
            s.ha_auth_accept_key_file.as_deref(),
            Some(std::path::Path::new(&text))
        );
        let s = parse_checked(&cfg("")).unwrap();
        assert_eq!(
            (s.ha_auth_key_file, s.ha_auth_accept_key_file),
            (None, None)
        );

        for (keys, want) in [
            (
                format!("auth_key_file = {open}\n"),
                "[ha] auth_key_file: ".to_owned() + &open + ": must be mode 0600",
            ),
            (
                format!("auth_key_file = {short}\n"),
                "holds 31 bytes, needs at least 32".to_owned(),
            ),
            (
                "auth_key_file = /nonexistent/ha.key\n".to_owned(),
                "[ha] auth_key_file: /nonexistent/ha.key: cannot read".to_owned(),
            ),
            (
                format!("auth_key_file = {good}\nauth_accept_key_file = {open}\n"),
                "[ha] auth_accept_key_file: ".to_owned() + &open + ": must be mode 0600",
            ),
            (
                format!("auth_accept_key_file = {good}\n"),
                "[ha] auth_accept_key_file: set without auth_key_file".to_owned(),
            ),
            (
                format!("auth_key_file = {}\n", dir.path().display()),
                "not a regular file".to_owned(),
            ),
        ] {
            let errs = parse_checked(&cfg(&keys)).unwrap_err();
            assert!(
                errs.iter().any(|e| e.contains(&want)),
                "want {want:?} in {errs:#?}"
            );
            assert_eq!(errs.len(), 1, "{errs:#?}");
        }
        // Plain parse reads no files: the mode and length are load-time checks.
        assert!(parse(&cfg(&format!("auth_key_file = {open}\n"))).is_ok());
    }

    #[test]
    fn extra_anycast_inside_range_is_kept() {
        let s =
            parse("[cluster]\nname = x\n[extra_service_anycast]\ndns = 192.168.255.53\n").unwrap();
        assert_eq!(
            s.extra_service_anycast,
            ["192.168.255.53".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn goconf_forms_read_as_seesaw_reads_them() {
        let s = parse(
            "[Cluster]\nName = au-syd ; the site\nANYCAST_ENABLED = Off # no BGP\nuse_vmac = F\n\
             node_ipv4: 192.168.10.2\n[HA]\npreempt = YES\n[Config_Server]\nprimary = cfg.example.com\n",
        )
        .unwrap();
        assert_eq!(s.cluster_name, "au-syd");
        assert!(!s.anycast_enabled && !s.use_vmac && s.ha_preempt);
        assert_eq!(s.node_ipv4, Some(Ipv4Addr::new(192, 168, 10, 2)));
        assert!(s.config_server_configured);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        for (v, want) in [
            ("t", true),
            ("TRUE", true),
            ("y", true),
            ("Yes", true),
            ("on", true),
            ("1", true),
            ("f", false),
            ("False", false),
            ("N", false),
            ("no", false),
            ("OFF", false),
            ("0", false),
        ] {
            let s = parse(&format!("[cluster]\nname = x\nanycast_enabled = {v}\n")).unwrap();
            assert_eq!(s.anycast_enabled, want, "{v}");
        }
        let s = parse("[cluster]\nname = x\n").unwrap();
        assert!(
            !s.config_server_configured,
            "the built-in default server is not configured"
        );
    }

    #[test]
    fn unknown_keys_warn_in_seesaws_sections_and_fail_in_ours() {
        let s = parse(
            "[cluster]\nname = x\nanycast_enable = true\nfrobnicate = 1\n[interface]\nlbb = eth2\n",
        )
        .unwrap();
        assert_eq!(
            s.warnings,
            [
                "seesaw.cfg [cluster] anycast_enable: unknown key, ignored (did you mean \"anycast_enabled\"?)",
                "seesaw.cfg [cluster] frobnicate: unknown key, ignored",
                "seesaw.cfg [interface] lbb: unknown key, ignored (did you mean \"lb\"?)",
            ]
        );
        let errs = parse("[cluster]\nname = x\n[ha]\npremept = true\n[dataplan]\nkind = proxy\n")
            .unwrap_err();
        assert_eq!(
            errs,
            [
                "seesaw.cfg [ha] premept: unknown key (did you mean \"preempt\"?)",
                "seesaw.cfg [dataplan]: unknown section (did you mean \"dataplane\"?)",
            ]
        );
    }
}
