//! Health checks of a vserver or an entry: conversion, Seesaw's naming (`<TYPE>/<port>_<n>`)
//! and defaults.

use super::*;

/// Converts a list of checks and names them `<TYPE>/<port>_<n>` as Seesaw does: sorted by
/// Seesaw's type order, port and the other fields, the counter restarting whenever type or port
/// changes. HTTPS is named HTTP and TCP_TLS TCP, so an HTTPS check on the port of an HTTP check
/// (or TCP_TLS beside TCP) can get a name already taken; Seesaw keeps the first and skips it,
/// and so do we, with a warning. `default_port` is the entry's port for entry-level checks,
/// `None` for vserver-level ones.
pub fn healthchecks(
    list: &[pb::Healthcheck],
    default_port: Option<u16>,
    path: &str,
    r: &mut Report,
) -> BTreeMap<String, Healthcheck> {
    let mut checks: Vec<(usize, Healthcheck)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((i, healthcheck(h, default_port, &format!("{path}[{i}]"), r)?)))
        .collect();
    let key = |c: &Healthcheck| {
        (
            c.kind.seesaw_rank(),
            c.port,
            c.send.clone(),
            c.receive.clone(),
            c.method.clone(),
            c.code,
            c.proxy,
            c.tls_verify,
            c.interval,
            c.timeout,
        )
    };
    checks.sort_by_cached_key(|(_, c)| key(c));
    let mut last: Option<(CheckKind, u16)> = None;
    let mut counter = 0usize;
    let mut out: BTreeMap<String, Healthcheck> = BTreeMap::new();
    for (i, mut c) in checks {
        if last == Some((c.kind, c.port)) {
            counter += 1;
        } else {
            counter = 0;
            last = Some((c.kind, c.port));
        }
        c.name = format!("{}/{}_{}", c.kind.seesaw_name(), c.port, counter);
        if let Some(kept) = out.get(&c.name) {
            r.warnings.push(format!(
                "{path}[{i}]: {} check on port {} is named {:?} like the {} check before it; Seesaw keeps the first, skipped",
                c.kind.proto_name(),
                c.port,
                c.name,
                kept.kind.proto_name()
            ));
            continue;
        }
        out.insert(c.name.clone(), c);
    }
    out
}

/// Converts one check, applying proto2 defaults. `None` if it has errors.
pub fn healthcheck(
    h: &pb::Healthcheck,
    default_port: Option<u16>,
    path: &str,
    r: &mut Report,
) -> Option<Healthcheck> {
    use pb::healthcheck::{Mode as M, Type as T};
    let errors_before = r.errors.len();
    let kind = match T::try_from(h.r#type) {
        Ok(T::IcmpPing) => CheckKind::Icmp,
        Ok(T::Udp) => CheckKind::Udp,
        Ok(T::Tcp) => CheckKind::Tcp,
        Ok(T::Http) => CheckKind::Http,
        Ok(T::Https) => CheckKind::Https,
        Ok(T::Dns) => CheckKind::Dns,
        Ok(T::TcpTls) => CheckKind::TcpTls,
        Ok(T::Radius) => CheckKind::Radius,
        Ok(T::Mysql) => CheckKind::Mysql,
        Err(_) => {
            r.errors
                .push(format!("{path}.type: unknown type {}", h.r#type));
            CheckKind::Tcp
        }
    };
    let mode = match h.mode.map(M::try_from).unwrap_or(Ok(M::Plain)) {
        Ok(M::Plain) => CheckMode::Plain,
        Ok(M::Dsr) => CheckMode::Dsr,
        Ok(M::Tun) => CheckMode::Tun,
        Err(_) => {
            r.errors.push(format!("{path}.mode: unknown mode"));
            CheckMode::Plain
        }
    };
    if kind == CheckKind::Icmp && mode != CheckMode::Plain {
        // Seesaw drops these too (its engine cannot build the checker and skips it): an echo
        // sent to the VIP is not tied to a port, so it cannot show that one backend serves it.
        r.warnings.push(format!(
            "{path}.mode: ICMP_PING checks cannot run in {} mode (an echo to the VIP cannot prove that one backend serves it); check dropped as Seesaw drops it — use PLAIN, or a TCP/UDP/HTTP check in this mode",
            if mode == CheckMode::Dsr { "DSR" } else { "TUN" }
        ));
        return None;
    }
    let port = match (h.port, default_port) {
        (Some(p), _) => port(p, &format!("{path}.port"), r).unwrap_or(0),
        (None, Some(p)) => p,
        (None, None) if kind == CheckKind::Icmp => 0,
        (None, None) => {
            r.errors
                .push(format!("{path}.port: required for vserver-level checks"));
            0
        }
    };
    let secs = |v: i32, name: &str, r: &mut Report| match u64::try_from(v) {
        Ok(s @ 1..=86_400) => Duration::from_secs(s),
        _ => {
            r.errors
                .push(format!("{path}.{name}: {v} is outside 1..86400 seconds"));
            Duration::from_secs(1)
        }
    };
    let interval = secs(h.interval(), "interval", r);
    let timeout = secs(h.timeout(), "timeout", r);
    let code = match h.code() {
        0 => 200,
        c @ 100..=999 => u16::try_from(c).expect("range checked"),
        c => {
            r.errors
                .push(format!("{path}.code: {c} is not an HTTP status"));
            200
        }
    };
    let retries = non_negative(h.retries(), &format!("{path}.retries"), r);
    let rise = match h.rise() {
        n @ 1.. => u32::try_from(n).expect("positive"),
        n => {
            r.errors.push(format!("{path}.rise: {n} is less than 1"));
            1
        }
    };
    if r.errors.len() > errors_before {
        return None;
    }
    Some(Healthcheck {
        name: String::new(),
        kind,
        mode,
        port,
        interval,
        timeout,
        send: h.send().to_owned(),
        receive: h.receive().to_owned(),
        code,
        method: h.method().to_owned(),
        proxy: h.proxy(),
        tls_verify: h.tls_verify(),
        retries,
        rise,
    })
}
