//! Shared pieces of the data-plane benchmarks: the rule sets the divan benches evaluate, and the
//! loopback-only address argument of the load tools.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use seesaw_ncc::model::{Cond, Field, Op, Rule, RuleTarget, ServiceOpts};

fn cond(field: Field, op: Op, v: Vec<u8>) -> Cond {
    Cond {
        field,
        op,
        mask: Vec::new(),
        values: vec![v],
    }
}

/// 100 version-routing rules (`bytes 4:2 == v → group v`), default deny: the stevedore shape.
pub fn version_rules() -> ServiceOpts {
    ServiceOpts {
        rules: (0..100u16)
            .map(|v| Rule {
                conds: vec![cond(
                    Field::Bytes { offset: 4, len: 2 },
                    Op::Eq,
                    v.to_be_bytes().to_vec(),
                )],
                target: RuleTarget::Group(v % 8),
            })
            .collect(),
        default_target: RuleTarget::Deny,
        ..ServiceOpts::default()
    }
}

/// 100 rules that cannot be merged: each has two conditions on different offsets with
/// ordering, masks and bit ranges, so every rule is evaluated (the payload matches none).
pub fn mixed_rules() -> ServiceOpts {
    ServiceOpts {
        rules: (0..100u32)
            .map(|i| {
                let mut masked = cond(
                    Field::Bytes {
                        offset: i % 16,
                        len: 2,
                    },
                    Op::Eq,
                    vec![0x7f, (i % 256) as u8],
                );
                masked.mask = vec![0x7f, 0xff];
                let second = match i % 3 {
                    0 => cond(
                        Field::Bytes {
                            offset: 20 + i % 8,
                            len: 4,
                        },
                        Op::Gt,
                        (i * 1000).to_be_bytes().to_vec(),
                    ),
                    1 => cond(
                        Field::Bits {
                            offset: 3 + i % 40,
                            len: 12,
                        },
                        Op::Le,
                        vec![0x0f, 0xff],
                    ),
                    _ => cond(Field::Bytes { offset: 8, len: 8 }, Op::Ne, vec![0; 8]),
                };
                Rule {
                    conds: vec![masked, second],
                    target: RuleTarget::Group((i % 8) as u16),
                }
            })
            .collect(),
        default_target: RuleTarget::Group(0),
        ..ServiceOpts::default()
    }
}

/// The socket address in the argument `s`, which must be a loopback one: otherwise `usage()` on a
/// malformed one, and exit 64 naming `tool` on another host's.
#[allow(clippy::print_stderr, reason = "a command-line tool's argument error")]
pub fn loopback_addr(tool: &str, s: &str, usage: fn() -> !) -> SocketAddr {
    let a: SocketAddr = s.parse().unwrap_or_else(|_| usage());
    if !a.ip().is_loopback() {
        eprintln!("{tool}: {a} is not a loopback address");
        std::process::exit(64);
    }
    a
}
