//! Reading what the `seesaw` shell prints: the destination table of `show vservers NAME`.
//!
//! Tests assert on the operator's view, so they parse the text the operator reads rather than a
//! side channel. The parser keys on the table's header row and on the yes/no columns, not on
//! exact spacing.

/// One row of a service's `Destinations:` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRow {
    /// The `NAME` column (the backend's fqdn).
    pub name: String,
    /// The `ADDRESS` column (`ip:port`).
    pub address: String,
    /// The `WEIGHT` column.
    pub weight: String,
    /// The `ENABLED` column.
    pub enabled: bool,
    /// The `HEALTHY` column.
    pub healthy: bool,
    /// The whole line, for failure messages.
    pub line: String,
}

impl DestinationRow {
    /// Whether this row is the backend with fqdn `fqdn` or address `ip`.
    pub fn is(&self, fqdn: &str, ip: &str) -> bool {
        self.name == fqdn || self.address.rsplit_once(':').is_some_and(|(a, _)| a == ip)
    }
}

/// Every destination row in `text` (all services).
pub fn destinations(text: &str) -> Vec<DestinationRow> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.starts_with(&["NAME", "ADDRESS", "WEIGHT", "ENABLED", "HEALTHY"]) {
            in_table = true;
            continue;
        }
        if tokens.is_empty() {
            in_table = false;
            continue;
        }
        if !in_table || tokens.len() < 5 {
            continue;
        }
        // Continuation lines (a destination's further checks) have no yes/no columns.
        let (Some(enabled), Some(healthy)) = (yes_no(tokens[3]), yes_no(tokens[4])) else {
            continue;
        };
        rows.push(DestinationRow {
            name: tokens[0].to_owned(),
            address: tokens[1].to_owned(),
            weight: tokens[2].to_owned(),
            enabled,
            healthy,
            line: line.to_owned(),
        });
    }
    rows
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = "\
Name:     web@demo
Hostname: web.demo.
Status:   enabled
VIPs:     127.0.0.1

IPv4 TCP/8080 (NAT, wrr scheduler)
  State: enabled, healthy, active
  Watermarks: Low 0.00, High 0.00, Currently 0.50
  Destinations:
    NAME       ADDRESS         WEIGHT  ENABLED  HEALTHY  ACTIVE  CONNS  TOTAL  CHECKS
    be1.demo.  127.0.0.2:8080  1       yes      yes      yes     2      120    HTTP/8080_0: healthy (200 OK)
    be2.demo.  127.0.0.3:8080  3       yes      no       no      2      120    HTTP/8080_0: unhealthy (connection refused)
                                                                               TCP/8080_1: healthy

IPv6 UDP/53 (DSR, rr scheduler, one-packet mode, 30s persistence)
  State: disabled, unhealthy, inactive
  Destinations: none
";

    #[test]
    fn parses_the_destination_table() {
        let rows = destinations(DETAIL);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[0].is("be1.demo.", "127.0.0.9"));
        assert!(rows[0].healthy && rows[0].enabled);
        assert_eq!(rows[1].weight, "3");
        assert!(rows[1].is("nope.", "127.0.0.3"));
        assert!(!rows[1].healthy);
        assert!(destinations("No vservers.\n").is_empty());
    }
}
