//! Text rendering of the shell's views, close to Seesaw's shell output, with aligned columns.
//! Every function is pure: it takes a view (and `now` where it prints relative times) and returns
//! the text, ending in a newline.
//!
//! `show ha`, `show nodes`, `show backends`, `show destinations`, `show vlans` and `show bgp
//! neighbors <ip>` print what Seesaw's shell prints (its `cli/show.go`): a heading, then either
//! `[n] summary` lines or a detail block of `  Label:` lines with the values from column 23.
//! Where we know more than Seesaw shows, the extra columns follow Seesaw's line and the extra
//! labels follow Seesaw's block, so Seesaw's text is always a prefix of ours.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::tree::HelpLine;
use crate::view::{BackendRow, CheckRow, DestinationRow, VersionView, WarningsView};
use seesaw_status::{
    BgpNeighbor, Cluster, ConfigStatus, Destination, HaStatus, Node, Outcome, Preview, Service,
    Version, Vlan, Vserver,
};

/// `show vservers` with no argument or several matches: `[n] name`, plus ` (disabled)`.
pub fn vserver_list(vservers: &[Vserver], filter: Option<&str>) -> String {
    if vservers.is_empty() {
        return match filter {
            Some(f) => format!("No vserver matches \"{f}\".\n"),
            None => "No vservers.\n".to_owned(),
        };
    }
    let mut out = String::new();
    for (i, v) in vservers.iter().enumerate() {
        let disabled = if v.enabled { "" } else { " (disabled)" };
        let _ = writeln!(out, "[{}] {}{disabled}", i + 1, v.name);
    }
    out
}

/// `show vservers NAME` with one match: the vserver, each service and its destinations.
pub fn vserver_detail(v: &Vserver) -> String {
    let mut status = enabled(v.enabled).to_owned();
    if !v.override_state.is_empty() {
        // Seesaw's wording: the override and the config each named.
        let _ = write!(
            status,
            " (override state {}; config state {})",
            v.override_state,
            enabled(v.config_enabled)
        );
    } else if v.enabled != v.config_enabled {
        let _ = write!(status, " (config state {})", enabled(v.config_enabled));
    }
    let vips = if v.vips.is_empty() {
        "none".to_owned()
    } else {
        v.vips.join(", ")
    };
    let mut out = fields(
        "",
        &[
            ("Name", v.name.clone()),
            ("Hostname", v.hostname.clone()),
            ("Status", status),
            ("VIPs", vips),
        ],
    );
    let mut services: Vec<&Service> = v.services.iter().collect();
    services.sort_by_key(|s| (family(&s.address) == "IPv6", s.protocol.clone(), s.port));
    for s in services {
        out.push('\n');
        out.push_str(&service(s));
    }
    if !v.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &v.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

/// `show ha`: Seesaw's block. Times are UTC, in Seesaw's `Jan 2 15:04:05 MST` layout; a time
/// the ha process never reported reads `N/A`. Rejected adverts, when there are any, follow by
/// reason, with a warning when the peer's adverts fail authentication (the usual cause: the
/// two nodes' `[ha]` keys differ, or only one node has one).
pub fn ha(h: &HaStatus, now_ms: i64) -> String {
    let duration = if h.since_ms > 0 {
        let secs = now_ms.saturating_sub(h.since_ms) / 1000;
        let sign = if secs < 0 { "-" } else { "" };
        format!(
            "{sign}{} (since {})",
            go_duration(secs.unsigned_abs()),
            seesaw_time(h.since_ms)
        )
    } else {
        "N/A".to_owned()
    };
    let mut out = block(
        "HA Status",
        &[
            ("State:", h.state.clone()),
            ("Duration:", duration),
            ("Transitions:", h.transitions.to_string()),
            ("Advertisements Sent:", h.adverts_sent.to_string()),
            ("Advertisements Rcvd:", h.adverts_received.to_string()),
            ("Last Update:", seesaw_time(h.last_update_ms)),
        ],
    );
    if !h.adverts_rejected.is_empty() {
        let counts: Vec<String> = h
            .adverts_rejected
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        out.push_str(&format!("  adverts rejected: {}\n", counts.join(", ")));
        let auth_failed = ["bad_mac", "unauthenticated", "unexpected_auth"]
            .iter()
            .any(|r| h.adverts_rejected.get(*r).is_some_and(|n| *n > 0));
        if auth_failed {
            out.push_str(
                "  Warning: the peer's adverts do not verify: the two nodes' [ha] auth keys differ?\n",
            );
        }
    }
    out
}

/// `show nodes`: Seesaw's `[n] hostname enabled|disabled` (HA enabled or not), then our columns:
/// addresses, priority and `(this node)`.
pub fn nodes(c: &Cluster) -> String {
    let rows: Vec<Vec<String>> = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                format!("[{}] {} {}", i + 1, n.hostname, enabled(n.ha_enabled)),
                format!("IPv4 {}", or_dash(&n.ipv4)),
                format!("IPv6 {}", or_dash(&n.ipv6)),
                format!("priority {}", n.priority),
                if n.is_local { "(this node)" } else { "" }.to_owned(),
            ]
        })
        .collect();
    format!("Nodes\n{}", table(None, &rows, ""))
}

/// `show nodes <host>` with one match: Seesaw's block, then the priority and whether it is the
/// node the shell talks to.
pub fn node_detail(site: &str, n: &Node) -> String {
    block(
        "Node",
        &[
            ("Hostname:", n.hostname.clone()),
            ("Site:", site.to_owned()),
            ("IPv4 Address:", or_not_configured(&n.ipv4)),
            ("IPv6 Address:", or_not_configured(&n.ipv6)),
            ("HA Enabled:", n.ha_enabled.to_string()),
            ("Anycast Enabled:", n.anycast_enabled.to_string()),
            ("BGP Enabled:", n.bgp_enabled.to_string()),
            ("Vservers Enabled:", n.vservers_enabled.to_string()),
            ("Priority:", n.priority.to_string()),
            ("This Node:", n.is_local.to_string()),
        ],
    )
}

/// `show warnings`.
pub fn warnings(w: &WarningsView) -> String {
    if w.warnings.is_empty() {
        return "No warnings.\n".to_owned();
    }
    let mut out = format!("There are {} warnings:\n", w.warnings.len());
    for line in &w.warnings {
        let _ = writeln!(out, "  - {line}");
    }
    out
}

/// `config reload`: the engine's message, and if refused every error.
pub fn reload(r: &Outcome) -> String {
    let mut out = String::new();
    if !r.message.is_empty() {
        let _ = writeln!(out, "{}", r.message);
    }
    if !r.applied {
        out.push_str("Configuration reload refused:\n");
        for e in &r.errors {
            let _ = writeln!(out, "  {e}");
        }
    }
    out
}

/// A change preview: counts, then each name (`+` added, `-` removed, `~` changed), then the
/// share of flows each consistent-hash service would move.
pub fn preview(p: &Preview) -> String {
    let mut out = String::new();
    if !p.valid() {
        let _ = writeln!(
            out,
            "The change would be refused ({} errors):",
            p.errors.len()
        );
        for e in &p.errors {
            let _ = writeln!(out, "  {e}");
        }
        return out;
    }
    out.push_str("Preview (nothing applied):\n");
    for (what, c) in p.groups() {
        let _ = writeln!(
            out,
            "  {:<13} {} added, {} removed, {} changed",
            format!("{what}:"),
            c.added.len(),
            c.removed.len(),
            c.changed.len()
        );
        for (sign, names) in [("+", &c.added), ("-", &c.removed), ("~", &c.changed)] {
            for n in names {
                let _ = writeln!(out, "    {sign} {n}");
            }
        }
    }
    if !p.flows_moved.is_empty() {
        out.push_str("  flows that would move (Maglev):\n");
        for f in &p.flows_moved {
            let _ = writeln!(out, "    {:<28} {:>6.2} %", f.service, f.share * 100.0);
        }
    }
    out
}

/// `label value`, or nothing when there is no value.
fn labelled(label: &str, value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("{label} {value}")
    }
}

/// `show backends` with several matches: Seesaw's `[   n] hostname (status)`, then our columns:
/// address, destinations, healthy and active shares, and the override.
pub fn backends(rows: &[BackendRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let status = if b.status == "enabled" {
                String::new()
            } else {
                format!(" ({})", b.status)
            };
            vec![
                format!("[{:4}] {}{status}", i + 1, b.hostname),
                b.address.clone(),
                format!("dests {}", b.destinations),
                format!("healthy {}/{}", b.healthy, b.destinations),
                format!("active {}/{}", b.active, b.destinations),
                labelled("override", &b.override_state),
            ]
        })
        .collect();
    format!("Backends\n{}", table(None, &cells, ""))
}

/// `show backends <prefix>` with one match: Seesaw's block, its destinations as `[  n] name
/// (status)`; then the address and override.
pub fn backend_detail(b: &BackendRow, dests: &[DestinationRow]) -> String {
    let mut out = format!("Backend\n  Hostname: {}\n  Destinations:\n", b.hostname);
    for (i, d) in dests.iter().enumerate() {
        let _ = writeln!(out, "  [{:3}] {}", i + 1, destination_summary(d));
    }
    let _ = writeln!(out, "  Address: {}", b.address);
    if !b.override_state.is_empty() {
        let _ = writeln!(out, "  Override: {}", b.override_state);
    }
    out
}

/// `show destinations` with several matches: Seesaw's `[   n] name (status)`, then our columns:
/// address, weight, override and connections (open/total).
pub fn destinations(rows: &[DestinationRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, d)| {
            vec![
                format!("[{:4}] {}", i + 1, destination_summary(d)),
                d.address.clone(),
                format!("weight {}", d.weight),
                format!("conns {}/{}", d.active_conns, d.total_conns),
                labelled("override", &d.override_state),
            ]
        })
        .collect();
    format!("Destinations\n{}", table(None, &cells, ""))
}

/// `show destinations <prefix>` with one match: Seesaw's block, then ours.
pub fn destination_detail(d: &DestinationRow) -> String {
    let vserver = if d.vserver_enabled {
        d.vserver.clone()
    } else {
        format!("{} (disabled)", d.vserver)
    };
    block(
        "Destination",
        &[
            ("Name:", d.name.clone()),
            ("Vserver:", vserver),
            ("Backend:", d.backend.clone()),
            ("Enabled:", d.enabled.to_string()),
            ("Healthy:", d.healthy.to_string()),
            ("Active:", d.active.to_string()),
            ("Service:", d.service.clone()),
            ("Address:", d.address.clone()),
            ("Weight:", d.weight.to_string()),
            ("Override:", or_dash(&d.override_state).to_owned()),
            (
                "Connections:",
                format!("{} active, {} total", d.active_conns, d.total_conns),
            ),
        ],
    )
}

/// `show healthchecks`.
pub fn healthchecks(rows: &[CheckRow]) -> String {
    if rows.is_empty() {
        return "No health checks.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                format!("{:016x}", c.id),
                c.destination.clone(),
                c.name.clone(),
                c.state.clone(),
                c.last_latency_us.map_or_else(|| "-".to_owned(), latency),
                format!("{}/{}", c.successes, c.failures),
                c.message.clone(),
            ]
        })
        .collect();
    table(
        Some(&[
            "Id",
            "Destination",
            "Check",
            "State",
            "Last probe",
            "Passed/failed",
            "Message",
        ]),
        &cells,
        "",
    )
}

/// A probe's duration for people: µs below 1 ms, ms with one decimal below 10 s.
fn latency(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..10_000_000 => format!("{:.1} ms", us as f64 / 1000.0),
        _ => format!("{} s", us / 1_000_000),
    }
}

/// `config history`: newest first.
pub fn history(rows: &[Version], now_ms: i64) -> String {
    if rows.is_empty() {
        return "No saved versions.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                timestamp(v.at_ms, now_ms),
                v.who.clone(),
                v.sha256.chars().take(12).collect(),
                v.what.clone(),
            ]
        })
        .collect();
    table(Some(&["Id", "When", "Who", "SHA-256", "What"]), &cells, "")
}

/// `show vlans`: Seesaw's `[  n] VLAN ID id - hostname`, then our columns: the subnets and the
/// engine's backend and VIP counts per address family.
pub fn vlans(rows: &[Vlan]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, v)| {
            vec![
                format!("[{:3}] VLAN ID {} - {}", i + 1, v.id, v.host),
                or_dash(&v.ipv4).to_owned(),
                or_dash(&v.ipv6).to_owned(),
                format!(
                    "backends {} IPv4, {} IPv6",
                    v.ipv4_backends, v.ipv6_backends
                ),
                format!("VIPs {} IPv4, {} IPv6", v.ipv4_vips, v.ipv6_vips),
            ]
        })
        .collect();
    format!("VLANs\n{}", table(None, &cells, ""))
}

/// `show vlans <id|ip>`: Seesaw's block.
pub fn vlan_detail(v: &Vlan) -> String {
    block(
        "VLAN",
        &[
            ("ID:", v.id.to_string()),
            ("Hostname:", v.host.clone()),
            ("IPv4 Address:", or_not_configured(&v.ipv4)),
            ("IPv6 Address:", or_not_configured(&v.ipv6)),
            ("IPv4 Backend Count:", v.ipv4_backends.to_string()),
            ("IPv6 Backend Count:", v.ipv6_backends.to_string()),
            ("IPv4 VIP Count:", v.ipv4_vips.to_string()),
            ("IPv6 VIP Count:", v.ipv6_vips.to_string()),
        ],
    )
}

/// `show bgp neighbors <ip>`: Seesaw's block (the description is empty: GoBGP's neighbours carry
/// none here), then the message counters.
pub fn bgp_neighbor(n: &BgpNeighbor) -> String {
    block(
        "BGP Neighbor",
        &[
            ("IP Address:", n.address.clone()),
            ("Router ID:", n.router_id.clone()),
            ("ASN:", n.peer_asn.to_string()),
            ("Description:", String::new()),
            ("BGP State:", n.state.clone()),
            ("Duration:", go_duration(n.uptime_s)),
            (
                "Messages:",
                format!(
                    "{} received ({} updates), {} sent ({} updates)",
                    n.messages_received, n.updates_received, n.messages_sent, n.updates_sent
                ),
            ),
        ],
    )
}

/// `show version`.
pub fn version(v: &VersionView) -> String {
    fields(
        "",
        &[
            ("Shell", v.shell.clone()),
            ("Engine", format!("version {}", v.engine)),
            ("Site", v.site.clone()),
            ("Data plane", v.dataplane.clone()),
        ],
    )
}

/// `config status`.
pub fn config_status(c: &ConfigStatus, now_ms: i64) -> String {
    let mut rows = vec![
        (
            "Last update",
            timestamp(c.last_updated.saturating_mul(1000), now_ms),
        ),
        ("Loaded at", timestamp(c.loaded_at_ms, now_ms)),
        ("Source", or_dash(&c.source).to_owned()),
    ];
    if let Some(etcd) = &c.etcd {
        rows.push(("Etcd key", etcd.key.clone()));
        rows.push(("Etcd revision", etcd.revision.to_string()));
        let state = if etcd.trouble.is_empty() {
            "following".to_owned()
        } else {
            format!(
                "NOT FOLLOWED: {} (serving the last applied config)",
                etcd.trouble
            )
        };
        rows.push(("Etcd", state));
    }
    rows.extend([
        ("Generation", c.generation.to_string()),
        ("Reload failures", c.reload_failures.to_string()),
        (
            "Attributes",
            if c.attributes.is_empty() {
                "none".to_owned()
            } else {
                String::new()
            },
        ),
    ]);
    let mut out = fields("Config Status:\n", &rows);
    let rows: Vec<Vec<String>> = c
        .attributes
        .iter()
        .map(|a| vec![format!("{}:", a.name), a.value.clone()])
        .collect();
    out.push_str(&table(None, &rows, "    "));
    out
}

/// `help`.
pub fn help() -> String {
    "Use ? for context-aware command completions; Tab completes words.\n".to_owned()
}

/// The choices `?` lists: word and one-line help, aligned.
pub fn help_options(options: &[HelpLine]) -> String {
    if options.is_empty() {
        return "No completions.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = options
        .iter()
        .map(|o| vec![o.word.clone(), o.help.to_owned()])
        .collect();
    table(None, &rows, "  ")
}

/// An absolute time with how long ago it was: `5m 3s ago (2024-05-01 12:00:00 UTC)`, or `never`
/// for 0.
pub fn timestamp(ms: i64, now_ms: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    let absolute = chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let delta = now_ms.saturating_sub(ms) / 1000;
    let relative = if delta >= 0 {
        format!("{} ago", duration(delta.unsigned_abs()))
    } else {
        format!("in {}", duration(delta.unsigned_abs()))
    };
    format!("{relative} ({absolute})")
}

/// A duration in its two most significant units: `2d 3h`, `4m 5s`, `7s`.
pub fn duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| secs >= *size) else {
        return "0s".to_owned();
    };
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, name) in &units[first..(first + 2).min(units.len())] {
        let n = rest / size;
        rest %= size;
        if n > 0 || parts.is_empty() {
            parts.push(format!("{n}{name}"));
        }
    }
    parts.join(" ")
}

// === private helpers ===

/// Seesaw's detail block: the heading, then each label indented by two and padded to 20
/// characters, a space and the value (so values start in column 23). Lines never end in blanks.
fn block(heading: &str, pairs: &[(&str, String)]) -> String {
    let mut out = format!("{heading}\n");
    for (label, value) in pairs {
        let line = format!("  {label:<20} {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Seesaw's destination summary: `name (enabled, healthy, active)`, `name (disabled)`, or
/// `name (vserver disabled)` when its vserver is.
fn destination_summary(d: &DestinationRow) -> String {
    let status = if !d.vserver_enabled {
        "vserver disabled".to_owned()
    } else if d.enabled {
        format!(
            "enabled, {}, {}",
            if d.healthy { "healthy" } else { "unhealthy" },
            if d.active { "active" } else { "inactive" }
        )
    } else {
        "disabled".to_owned()
    };
    format!("{} ({status})", d.name)
}

/// A duration of whole seconds as Go prints a `time.Duration`: `45s`, `2m5s`, `1h0m7s`, `0s`.
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A time in Seesaw's `Jan 2 15:04:05 MST` layout, in UTC; `N/A` for 0 (never).
fn seesaw_time(ms: i64) -> String {
    if ms <= 0 {
        return "N/A".to_owned();
    }
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%b %-d %H:%M:%S UTC").to_string(),
    )
}

/// Seesaw's `IPv4Printable`: the address, or `<not configured>`.
fn or_not_configured(address: &str) -> String {
    if address.is_empty() {
        "<not configured>".to_owned()
    } else {
        address.to_owned()
    }
}

fn service(s: &Service) -> String {
    let mut flags = vec![
        s.mode.to_uppercase(),
        format!("{} scheduler", s.scheduler.to_lowercase()),
    ];
    if s.one_packet {
        flags.push("one-packet mode".to_owned());
    }
    if s.persistence > 0 {
        flags.push(format!("{}s persistence", s.persistence));
    }
    let mut out = format!(
        "{} {}/{} ({})\n",
        family(&s.address),
        s.protocol.to_uppercase(),
        s.port,
        flags.join(", ")
    );
    let _ = writeln!(
        out,
        "  State: {}, {}, {}",
        enabled(s.enabled),
        if s.healthy { "healthy" } else { "unhealthy" },
        if !s.not_applied.is_empty() {
            format!("NOT APPLIED ({})", s.not_applied)
        } else if s.active {
            "active".to_owned()
        } else {
            "inactive".to_owned()
        }
    );
    let _ = writeln!(
        out,
        "  Watermarks: Low {:.2}, High {:.2}, Currently {:.2}",
        s.low_watermark, s.high_watermark, s.current_watermark
    );
    if !s.table_hash.is_empty() {
        let _ = writeln!(out, "  Maglev table: {}", s.table_hash);
    }
    if s.destinations.is_empty() {
        out.push_str("  Destinations: none\n");
        return out;
    }
    out.push_str("  Destinations:\n");
    let mut rows = Vec::new();
    for d in &s.destinations {
        rows.extend(destination_rows(d));
    }
    out.push_str(&table(
        Some(&[
            "NAME", "ADDRESS", "WEIGHT", "ENABLED", "HEALTHY", "ACTIVE", "CONNS", "TOTAL", "CHECKS",
        ]),
        &rows,
        "    ",
    ));
    out
}

/// A destination's row, plus one more row per extra check so each check gets its own line.
fn destination_rows(d: &Destination) -> Vec<Vec<String>> {
    let checks: Vec<String> = d
        .checks
        .iter()
        .map(|c| {
            if c.message.is_empty() {
                format!("{}: {}", c.name, c.state)
            } else {
                format!("{}: {} ({})", c.name, c.state, c.message)
            }
        })
        .collect();
    let mut rows = vec![vec![
        d.name.clone(),
        host_port(&d.address, d.port),
        d.weight.to_string(),
        yes_no(d.enabled),
        yes_no(d.healthy),
        yes_no(d.active),
        d.active_conns.to_string(),
        d.total_conns.to_string(),
        checks.first().cloned().unwrap_or_else(|| "-".to_owned()),
    ]];
    for extra in checks.iter().skip(1) {
        let mut row = vec![String::new(); 8];
        row.push(extra.clone());
        rows.push(row);
    }
    rows
}

/// Columns padded to their widest cell and separated by two spaces; the last column is not
/// padded and trailing blanks are trimmed, so lines never end in whitespace.
fn table(headers: Option<&[&str]>, rows: &[Vec<String>], indent: &str) -> String {
    let mut all: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if let Some(h) = headers {
        all.push(h.iter().map(|s| (*s).to_owned()).collect());
    }
    all.extend(rows.iter().cloned());
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            all.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &all {
        let mut line = indent.to_owned();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `Label: value` lines with the values aligned, after an optional heading. With a heading the
/// fields are indented.
fn fields(heading: &str, pairs: &[(&str, String)]) -> String {
    let indent = if heading.is_empty() { "" } else { "  " };
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = heading.to_owned();
    for (k, v) in pairs {
        let label = format!("{k}:");
        let line = format!("{indent}{label:<width$} {v}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn family(address: &str) -> &'static str {
    let bare = address.split('/').next().unwrap_or(address);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => "IPv6",
        Ok(IpAddr::V4(_)) => "IPv4",
        Err(_) if bare.contains(':') => "IPv6",
        Err(_) => "IPv4",
    }
}

fn host_port(address: &str, port: u32) -> String {
    if family(address) == "IPv6" {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn enabled(on: bool) -> &'static str {
    if on { "enabled" } else { "disabled" }
}

fn yes_no(on: bool) -> String {
    if on { "yes" } else { "no" }.to_owned()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

#[cfg(test)]
mod tests;
