//! Payload-rule and proxy options of a vserver entry (`proxy_options`): numbers, hex bytes, rule
//! and set limits.

use super::*;

/// Parses a number (decimal or 0x-hex) that must fit in `bits` bits, as `width` big-endian bytes.
pub(super) fn number(v: &str, bits: u32, width: usize) -> Result<Vec<u8>, String> {
    let t = v.trim();
    let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    }
    .map_err(|_| format!("{v:?} is not a number (decimal or 0x-hex)"))?;
    if bits < 64 && n >> bits != 0 {
        return Err(format!("{v:?} does not fit in {bits} bits"));
    }
    Ok(n.to_be_bytes()[8 - width..].to_vec())
}

/// Parses a 0x-hex byte string.
pub(super) fn hex_bytes(v: &str) -> Result<Vec<u8>, String> {
    let h = v
        .trim()
        .strip_prefix("0x")
        .or_else(|| v.trim().strip_prefix("0X"))
        .ok_or_else(|| format!("{v:?} is not a 0x-hex byte string"))?;
    if h.is_empty() || h.len() % 2 != 0 {
        return Err(format!(
            "{v:?} needs an even, non-zero number of hex digits"
        ));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("{v:?} is not a 0x-hex byte string"))
}

/// Most payload rules per entry.
pub(super) const MAX_PAYLOAD_RULES: usize = 10_000;
/// Most values of one `IN`.
pub(super) const MAX_PAYLOAD_SET: usize = 4096;

/// Validates the userspace proxy options of an entry.
pub(super) fn proxy_opts(p: &pb::ProxyOptions, path: &str, r: &mut Report) -> ProxyOpts {
    use pb::payload_condition::{Key as K, Operator as O};
    let group = |g: &str| (g != "deny").then(|| g.to_owned());
    let mut rules = Vec::new();
    if p.rule.len() > MAX_PAYLOAD_RULES {
        r.errors.push(format!(
            "{path}.rule: {} rules (at most {MAX_PAYLOAD_RULES})",
            p.rule.len()
        ));
    }
    for (i, rule) in p.rule.iter().enumerate() {
        let rpath = format!("{path}.rule[{i}]");
        if rule.condition.is_empty() {
            r.errors.push(format!(
                "{rpath}.condition: a rule needs at least one condition"
            ));
        }
        let mut conds = Vec::new();
        for (j, c) in rule.condition.iter().enumerate() {
            let cpath = format!("{rpath}.condition[{j}]");
            let key = match K::try_from(c.key.unwrap_or(K::Bytes as i32)) {
                Ok(K::Bytes) => PayloadKey::Bytes,
                Ok(K::Bits) => PayloadKey::Bits,
                Ok(K::TlsSni) => PayloadKey::TlsSni,
                Err(_) => {
                    r.errors.push(format!("{cpath}.key: unknown key"));
                    continue;
                }
            };
            let op = match O::try_from(c.op.unwrap_or(O::Eq as i32)) {
                Ok(O::Eq) => PayloadOp::Eq,
                Ok(O::Ne) => PayloadOp::Ne,
                Ok(O::Lt) => PayloadOp::Lt,
                Ok(O::Le) => PayloadOp::Le,
                Ok(O::Gt) => PayloadOp::Gt,
                Ok(O::Ge) => PayloadOp::Ge,
                Ok(O::Prefix) => PayloadOp::Prefix,
                Ok(O::Suffix) => PayloadOp::Suffix,
                Ok(O::In) => PayloadOp::In,
                Err(_) => {
                    r.errors.push(format!("{cpath}.op: unknown operator"));
                    continue;
                }
            };
            let (offset, length) = (c.offset(), c.length());
            let before = r.errors.len();
            match (c.value.len(), op) {
                (0, _) => r.errors.push(format!("{cpath}.value: needs a value")),
                (n, PayloadOp::In) if n > MAX_PAYLOAD_SET => r.errors.push(format!(
                    "{cpath}.value: {n} values (at most {MAX_PAYLOAD_SET})"
                )),
                (1, _) | (_, PayloadOp::In) => {}
                (n, _) => r.errors.push(format!(
                    "{cpath}.value: {n} values given, the operator takes one"
                )),
            }
            let ordering = matches!(
                op,
                PayloadOp::Lt | PayloadOp::Le | PayloadOp::Gt | PayloadOp::Ge
            );
            let mut values = Vec::new();
            let mut mask = Vec::new();
            match key {
                PayloadKey::TlsSni => {
                    if ordering {
                        r.errors.push(format!(
                            "{cpath}.op: the server name supports EQ, NE, PREFIX, SUFFIX and IN"
                        ));
                    }
                    if c.mask.is_some() {
                        r.errors
                            .push(format!("{cpath}.mask: the server name takes no mask"));
                    }
                    values = c
                        .value
                        .iter()
                        .map(|v| v.to_ascii_lowercase().into_bytes())
                        .collect();
                }
                PayloadKey::Bytes | PayloadKey::Bits => {
                    let bits = key == PayloadKey::Bits;
                    let (max_len, unit) = if bits { (64, "bits") } else { (64, "bytes") };
                    if !(1..=max_len).contains(&length) {
                        r.errors.push(format!(
                            "{cpath}.length: {length} {unit} is not in 1..={max_len}"
                        ));
                    }
                    if (if bits { offset / 8 } else { offset }) > 65_535 {
                        r.errors.push(format!(
                            "{cpath}.offset: {offset} is too far into the payload"
                        ));
                    }
                    if op == PayloadOp::Suffix {
                        r.errors
                            .push(format!("{cpath}.op: SUFFIX is for the server name only"));
                    }
                    if bits && op == PayloadOp::Prefix {
                        r.errors
                            .push(format!("{cpath}.op: PREFIX needs a BYTES field"));
                    }
                    let width = if bits {
                        length.div_ceil(8) as usize
                    } else {
                        length as usize
                    };
                    let field_bits = if bits { length } else { length * 8 };
                    if width > 8 && ordering {
                        r.errors.push(format!(
                            "{cpath}.op: ordering needs a field of at most 8 bytes"
                        ));
                    }
                    if r.errors.len() == before {
                        for (k, v) in c.value.iter().enumerate() {
                            let parsed = if op == PayloadOp::Prefix || width > 8 {
                                hex_bytes(v).and_then(|b| {
                                    let ok = if op == PayloadOp::Prefix {
                                        b.len() <= width
                                    } else {
                                        b.len() == width
                                    };
                                    if ok {
                                        Ok(b)
                                    } else {
                                        Err(format!(
                                            "{v:?} has {} bytes, the field {width}",
                                            b.len()
                                        ))
                                    }
                                })
                            } else {
                                number(v, field_bits, width)
                            };
                            match parsed {
                                Ok(b) => values.push(b),
                                Err(e) => r.errors.push(format!("{cpath}.value[{k}]: {e}")),
                            }
                        }
                        if let Some(m) = &c.mask {
                            if op == PayloadOp::Prefix {
                                r.errors.push(format!("{cpath}.mask: PREFIX takes no mask"));
                            }
                            let parsed = if width > 8 {
                                hex_bytes(m).and_then(|b| {
                                    if b.len() == width {
                                        Ok(b)
                                    } else {
                                        Err(format!("{m:?} is not {width} bytes"))
                                    }
                                })
                            } else {
                                number(m, field_bits, width)
                            };
                            match parsed {
                                Ok(b) => mask = b,
                                Err(e) => r.errors.push(format!("{cpath}.mask: {e}")),
                            }
                        }
                    }
                }
            }
            conds.push(PayloadCond {
                key,
                offset: if key == PayloadKey::TlsSni { 0 } else { offset },
                length: if key == PayloadKey::TlsSni { 0 } else { length },
                op,
                values,
                mask,
            });
        }
        rules.push(PayloadRule {
            conds,
            group: group(&rule.group),
        });
    }
    let hash_key = match (p.hash_offset(), p.hash_length()) {
        (_, 0) => None,
        (o, l) => {
            if l > 64 || o > 65_535 {
                r.errors.push(format!(
                    "{path}.hash_length: hash key {o}:{l} must be at most 64 bytes within the first 64 KiB"
                ));
            }
            Some((o, l))
        }
    };
    if p.udp_max_flows() == 0 {
        r.errors
            .push(format!("{path}.udp_max_flows: must be at least 1"));
    }
    if p.udp_idle_timeout_s() == 0 {
        r.errors
            .push(format!("{path}.udp_idle_timeout_s: must be at least 1"));
    }
    if p.first_bytes() > 16_384 {
        r.errors.push(format!(
            "{path}.first_bytes: {} is above 16384",
            p.first_bytes()
        ));
    }
    use pb::proxy_options::{ProxyProtocol as PP, UdpMode as U};
    ProxyOpts {
        rules,
        default_group: group(p.default_group()),
        hash_key,
        first_bytes: p.first_bytes(),
        first_bytes_timeout_ms: p.first_bytes_timeout_ms(),
        drain_timeout_s: p.drain_timeout_s(),
        proxy_protocol: match p.proxy_protocol() {
            PP::Off => 0,
            PP::V1 => 1,
            PP::V2 => 2,
        },
        udp_per_packet: p.udp_mode() == U::PerPacket,
        udp_idle_timeout_s: p.udp_idle_timeout_s(),
        udp_max_flows: p.udp_max_flows(),
    }
}
