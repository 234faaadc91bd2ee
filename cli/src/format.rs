//! Text rendering of the shell's views, close to Seesaw's shell output, with aligned columns.
//! Every function is pure: it takes a view (and `now` where it prints relative times) and returns
//! the text, ending in a newline.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::tree::HelpLine;
use crate::view::{
    BackendRow, CheckRow, ClusterView, ConfigStatusView, DestinationRow, DestinationView, HaView,
    ReloadView, ServiceView, VersionRow, VersionView, VlanRow, VserverView, WarningsView,
};

/// `show vservers` with no argument or several matches: `[n] name`, plus ` (disabled)`.
pub fn vserver_list(vservers: &[VserverView], filter: Option<&str>) -> String {
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
pub fn vserver_detail(v: &VserverView) -> String {
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
    let mut services: Vec<&ServiceView> = v.services.iter().collect();
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

/// `show ha`.
pub fn ha(h: &HaView, now_ms: i64) -> String {
    fields(
        "HA Status:\n",
        &[
            ("State", h.state.clone()),
            ("Since", timestamp(h.since_ms, now_ms)),
            ("Transitions", h.transitions.to_string()),
            ("Adverts sent", h.adverts_sent.to_string()),
            ("Adverts received", h.adverts_received.to_string()),
            ("Last update", timestamp(h.last_update_ms, now_ms)),
        ],
    )
}

/// `show nodes`: `[n] hostname enabled|disabled`, addresses, priority and `(this node)`.
pub fn nodes(c: &ClusterView) -> String {
    if c.nodes.is_empty() {
        return "No nodes.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                format!("[{}]", i + 1),
                n.hostname.clone(),
                enabled(n.vservers_enabled).to_owned(),
                format!("IPv4 {}", or_dash(&n.ipv4)),
                format!("IPv6 {}", or_dash(&n.ipv6)),
                format!("priority {}", n.priority),
                if n.is_local { "(this node)" } else { "" }.to_owned(),
            ]
        })
        .collect();
    table(None, &rows, "")
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
pub fn reload(r: &ReloadView) -> String {
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

/// `show backends`: one aligned row per backend host.
pub fn backends(rows: &[BackendRow]) -> String {
    if rows.is_empty() {
        return "No backends.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|b| {
            vec![
                b.hostname.clone(),
                b.address.clone(),
                b.destinations.to_string(),
                format!("{}/{}", b.healthy, b.destinations),
                format!("{}/{}", b.active, b.destinations),
                or_dash(&b.override_state).to_owned(),
            ]
        })
        .collect();
    table(
        Some(&[
            "Backend", "Address", "Dests", "Healthy", "Active", "Override",
        ]),
        &cells,
        "",
    )
}

/// `show destinations`.
pub fn destinations(rows: &[DestinationRow]) -> String {
    if rows.is_empty() {
        return "No destinations.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.backend.clone(),
                d.address.clone(),
                d.weight.to_string(),
                enabled(d.enabled).to_owned(),
                if d.healthy { "healthy" } else { "unhealthy" }.to_owned(),
                yes_no(d.active),
                or_dash(&d.override_state).to_owned(),
                format!("{}/{}", d.active_conns, d.total_conns),
            ]
        })
        .collect();
    table(
        Some(&[
            "Destination",
            "Backend",
            "Address",
            "Weight",
            "Enabled",
            "Health",
            "Active",
            "Override",
            "Conns",
        ]),
        &cells,
        "",
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
pub fn history(rows: &[VersionRow], now_ms: i64) -> String {
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

/// `show vlans`.
pub fn vlans(rows: &[VlanRow]) -> String {
    if rows.is_empty() {
        return "No VLANs.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.host.clone(),
                or_dash(&v.ipv4).to_owned(),
                or_dash(&v.ipv6).to_owned(),
            ]
        })
        .collect();
    table(Some(&["VLAN", "Host", "IPv4", "IPv6"]), &cells, "")
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
pub fn config_status(c: &ConfigStatusView, now_ms: i64) -> String {
    let mut out = fields(
        "Config Status:\n",
        &[
            (
                "Last update",
                timestamp(c.last_updated.saturating_mul(1000), now_ms),
            ),
            ("Loaded at", timestamp(c.loaded_at_ms, now_ms)),
            ("Source", or_dash(&c.source).to_owned()),
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
        ],
    );
    let rows: Vec<Vec<String>> = c
        .attributes
        .iter()
        .map(|(k, v)| vec![format!("{k}:"), v.clone()])
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

fn service(s: &ServiceView) -> String {
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
        if s.active { "active" } else { "inactive" }
    );
    let _ = writeln!(
        out,
        "  Watermarks: Low {:.2}, High {:.2}, Currently {:.2}",
        s.low_watermark, s.high_watermark, s.current_watermark
    );
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
fn destination_rows(d: &DestinationView) -> Vec<Vec<String>> {
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
