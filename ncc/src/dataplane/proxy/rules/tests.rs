//! Rule checking, compiling and evaluation: each operator, masks, bit ranges, short payloads,
//! first-match order across merged dispatch runs, and the compiled evaluator against the
//! reference on many generated rule sets and payloads.

use super::*;
use crate::model::{Cond, Field, Op, Rule, RuleTarget, ServiceOpts};

fn bytes(offset: u32, len: u32) -> Field {
    Field::Bytes { offset, len }
}

fn cond(field: Field, op: Op, values: &[&[u8]]) -> Cond {
    Cond {
        field,
        op,
        mask: Vec::new(),
        values: values.iter().map(|v| v.to_vec()).collect(),
    }
}

fn rule(conds: Vec<Cond>, group: u16) -> Rule {
    Rule {
        conds,
        target: RuleTarget::Group(group),
    }
}

fn opts(rules: Vec<Rule>, default: RuleTarget) -> ServiceOpts {
    ServiceOpts {
        rules,
        default_target: default,
        ..ServiceOpts::default()
    }
}

fn both(o: &ServiceOpts, p: &[u8], sni: Option<&[u8]>) -> Verdict {
    let c = Compiled::compile(o).unwrap();
    let got = c.route(p, sni);
    assert_eq!(
        got,
        Verdict::from(&reference_route(o, p, sni)),
        "payload {p:?}"
    );
    got
}

#[test]
fn stevedore_version_routing_with_default_deny() {
    // data[4:6] == 1 → ver1, == 2 → ver2, else deny.
    let o = opts(
        vec![
            rule(vec![cond(bytes(4, 2), Op::Eq, &[&[0, 1]])], 1),
            rule(vec![cond(bytes(4, 2), Op::Eq, &[&[0, 2]])], 2),
        ],
        RuleTarget::Deny,
    );
    assert_eq!(both(&o, &[0, 0, 0, 0, 0, 1, 9], None), Verdict::Group(1));
    assert_eq!(both(&o, &[0, 0, 0, 0, 0, 2], None), Verdict::Group(2));
    assert_eq!(both(&o, &[0, 0, 0, 0, 0, 3], None), Verdict::Deny);
    assert_eq!(both(&o, &[0, 0, 0, 0, 0], None), Verdict::Deny);
}

#[test]
fn every_operator() {
    let f = bytes(1, 2);
    let p = [9u8, 0x01, 0x00]; // field = 256
    for (op, v, want) in [
        (Op::Eq, 256u16, true),
        (Op::Ne, 256, false),
        (Op::Lt, 257, true),
        (Op::Le, 256, true),
        (Op::Gt, 256, false),
        (Op::Ge, 256, true),
        (Op::Gt, 255, true),
    ] {
        let o = opts(
            vec![rule(vec![cond(f, op, &[&v.to_be_bytes()])], 1)],
            RuleTarget::Group(0),
        );
        assert_eq!(both(&o, &p, None) == Verdict::Group(1), want, "{op:?} {v}");
    }
    let o = opts(
        vec![rule(vec![cond(f, Op::In, &[&[0, 5], &[1, 0]])], 1)],
        RuleTarget::Group(0),
    );
    assert_eq!(both(&o, &p, None), Verdict::Group(1));
    let o = opts(
        vec![rule(vec![cond(bytes(0, 4), Op::Prefix, &[b"GE"])], 1)],
        RuleTarget::Deny,
    );
    assert_eq!(both(&o, b"GET /", None), Verdict::Group(1));
    assert_eq!(both(&o, b"PUT /", None), Verdict::Deny);
    assert_eq!(
        both(&o, b"GE", None),
        Verdict::Deny,
        "field not fully present"
    );
}

#[test]
fn masks_and_bit_ranges() {
    // High nibble of byte 0 == 4 (an IPv4-style version field), via a mask and via bits.
    let mut c = cond(bytes(0, 1), Op::Eq, &[&[0x40]]);
    c.mask = vec![0xf0];
    let o = opts(vec![rule(vec![c], 1)], RuleTarget::Deny);
    assert_eq!(both(&o, &[0x45], None), Verdict::Group(1));
    assert_eq!(both(&o, &[0x65], None), Verdict::Deny);
    let o = opts(
        vec![rule(
            vec![cond(Field::Bits { offset: 0, len: 4 }, Op::Eq, &[&[4]])],
            1,
        )],
        RuleTarget::Deny,
    );
    assert_eq!(both(&o, &[0x45], None), Verdict::Group(1));
    // A bit range across 9 bytes.
    let f = Field::Bits { offset: 4, len: 64 };
    let o = opts(
        vec![rule(vec![cond(f, Op::Eq, &[&[0xff; 8]])], 1)],
        RuleTarget::Deny,
    );
    let mut p = [0xffu8; 9];
    assert_eq!(both(&o, &p, None), Verdict::Group(1));
    p[0] = 0xf0;
    assert_eq!(both(&o, &p, None), Verdict::Deny);
    p[0] = 0x0f;
    assert_eq!(both(&o, &p, None), Verdict::Group(1));
}

#[test]
fn long_byte_fields_and_sni() {
    let key = [7u8; 20];
    let o = opts(
        vec![
            rule(vec![cond(bytes(2, 20), Op::Eq, &[&key])], 1),
            rule(vec![cond(Field::Sni, Op::Suffix, &[b".example.com"])], 2),
            rule(vec![cond(Field::Sni, Op::In, &[b"a.test", b"b.test"])], 3),
        ],
        RuleTarget::Group(0),
    );
    let mut p = vec![0u8, 0];
    p.extend_from_slice(&key);
    assert_eq!(both(&o, &p, None), Verdict::Group(1));
    assert_eq!(both(&o, &[], Some(b"www.example.com")), Verdict::Group(2));
    assert_eq!(both(&o, &[], Some(b"b.test")), Verdict::Group(3));
    assert_eq!(both(&o, &[], Some(b"c.test")), Verdict::Group(0));
    assert_eq!(both(&o, &[], None), Verdict::Group(0));
}

#[test]
fn merged_runs_keep_first_match_order() {
    // 100 version rules (a dispatch run), a range rule in between, duplicates: first wins.
    let mut rules: Vec<Rule> = (0..50u16)
        .map(|v| rule(vec![cond(bytes(0, 2), Op::Eq, &[&v.to_be_bytes()])], v + 1))
        .collect();
    rules.push(rule(vec![cond(bytes(0, 2), Op::Lt, &[&[0, 200]])], 999));
    rules.extend((0..50u16).map(|v| {
        rule(
            vec![cond(bytes(0, 2), Op::Eq, &[&(v * 5).to_be_bytes()])],
            v + 500,
        )
    }));
    rules.push(rule(vec![cond(bytes(0, 2), Op::Eq, &[&[0, 3]])], 777));
    let o = opts(rules, RuleTarget::Deny);
    for v in 0..400u16 {
        both(&o, &v.to_be_bytes(), None);
    }
    assert_eq!(both(&o, &[0, 3], None), Verdict::Group(4));
    assert_eq!(both(&o, &[0, 150], None), Verdict::Group(999));
    assert_eq!(both(&o, &[0, 205], None), Verdict::Group(500 + 41));
    assert_eq!(both(&o, &[0, 201], None), Verdict::Deny);
}

#[test]
fn check_refuses_bad_shapes() {
    let bad = [
        cond(bytes(0, 0), Op::Eq, &[&[]]),
        cond(bytes(0, 65), Op::Eq, &[&[0; 65]]),
        cond(bytes(70_000, 1), Op::Eq, &[&[0]]),
        cond(bytes(0, 9), Op::Lt, &[&[0; 9]]),
        cond(bytes(0, 2), Op::Eq, &[&[0]]),
        cond(bytes(0, 2), Op::Eq, &[&[0, 0], &[0, 1]]),
        cond(bytes(0, 2), Op::In, &[]),
        cond(bytes(0, 2), Op::Suffix, &[&[0]]),
        cond(bytes(0, 2), Op::Prefix, &[&[0, 0, 0]]),
        cond(Field::Bits { offset: 0, len: 0 }, Op::Eq, &[&[]]),
        cond(Field::Bits { offset: 0, len: 4 }, Op::Eq, &[&[0x10]]),
        cond(Field::Bits { offset: 0, len: 4 }, Op::Prefix, &[&[1]]),
        cond(Field::Sni, Op::Lt, &[b"a"]),
    ];
    for c in bad {
        assert!(check(&c).is_err(), "{c:?} accepted");
        let o = opts(vec![rule(vec![c], 1)], RuleTarget::Deny);
        assert!(Compiled::compile(&o).is_err());
    }
    let mut c = cond(bytes(0, 2), Op::Eq, &[&[0, 0]]);
    c.mask = vec![0xff];
    assert!(check(&c).is_err());
}

#[test]
fn compiled_equals_reference_on_generated_rules() {
    // A small deterministic generator: many rule sets, many payloads.
    let mut rnd = crate::test_support::seeded(0x1234_5678);
    for _ in 0..300 {
        let mut rules = Vec::new();
        for _ in 0..rnd(12) {
            let mut conds = Vec::new();
            for _ in 0..=rnd(2) {
                let bits = rnd(4) == 0;
                let field = if bits {
                    Field::Bits {
                        offset: rnd(20) as u32,
                        len: 1 + rnd(12) as u32,
                    }
                } else {
                    bytes(rnd(6) as u32, 1 + rnd(3) as u32)
                };
                let w = value_width(field).unwrap();
                let op = [
                    Op::Eq,
                    Op::Ne,
                    Op::Lt,
                    Op::Le,
                    Op::Gt,
                    Op::Ge,
                    Op::In,
                    Op::Eq,
                ][rnd(8) as usize];
                let val = |r: &mut dyn FnMut(u64) -> u64| -> Vec<u8> {
                    let mut v: Vec<u8> = (0..w).map(|_| r(4) as u8).collect();
                    if let Field::Bits { len, .. } = field {
                        let x = be(&v) & ((1u64 << len) - 1);
                        v = x.to_be_bytes()[8 - w..].to_vec();
                    }
                    v
                };
                let n = if op == Op::In { 1 + rnd(3) } else { 1 };
                let values = (0..n).map(|_| val(&mut rnd)).collect();
                let mask = if rnd(3) == 0 {
                    (0..w)
                        .map(|_| [0xff, 0x0f, 0x03][rnd(3) as usize])
                        .collect()
                } else {
                    Vec::new()
                };
                conds.push(Cond {
                    field,
                    op,
                    mask,
                    values,
                });
            }
            let target = if rnd(5) == 0 {
                RuleTarget::Deny
            } else {
                RuleTarget::Group(rnd(4) as u16)
            };
            rules.push(Rule { conds, target });
        }
        let o = opts(rules, RuleTarget::Group(9));
        let c = Compiled::compile(&o).unwrap();
        for k in 0..80 {
            // Short payloads (fields cut off: the checked path) and long ones (every field
            // present: the branch-free path), small bytes (many matches) and some 0xff.
            let len = if k % 2 == 0 { rnd(10) } else { 28 + rnd(20) };
            let p: Vec<u8> = (0..len)
                .map(|_| [0, 1, 2, 3, 0xff][rnd(5) as usize])
                .collect();
            assert_eq!(
                c.route(&p, None),
                Verdict::from(&reference_route(&o, &p, None)),
                "{o:?} {p:?}"
            );
        }
    }
}

#[test]
fn invalid_rule_after_a_mergeable_one_is_an_error_not_a_panic() {
    // Found by fuzz/payload_rules: the merge look-ahead saw a zero-length field before `check`.
    let o = opts(
        vec![
            rule(vec![cond(bytes(0, 1), Op::Eq, &[&[1]])], 1),
            rule(vec![cond(bytes(0, 0), Op::Eq, &[&[]])], 2),
            rule(
                vec![cond(Field::Bits { offset: 0, len: 0 }, Op::Eq, &[&[]])],
                3,
            ),
        ],
        RuleTarget::Deny,
    );
    assert!(Compiled::compile(&o).is_err());
}

#[test]
fn flat_numeric_tests_agree_with_the_reference_at_the_edges() {
    // Ordering against 0 and u64::MAX (empty ranges), 8-byte fields, masks, bit ranges that
    // end in the payload's last byte, and payloads that end inside a field.
    let max = [0xff_u8; 8];
    let zero = [0_u8; 8];
    let mut masked = cond(bytes(1, 2), Op::Ne, &[&[0x0f, 0x00]]);
    masked.mask = vec![0x0f, 0xf0];
    let sets: Vec<Vec<Rule>> = vec![
        vec![rule(vec![cond(bytes(0, 8), Op::Lt, &[&zero])], 1)],
        vec![rule(vec![cond(bytes(0, 8), Op::Gt, &[&max])], 1)],
        vec![rule(vec![cond(bytes(0, 8), Op::Ge, &[&max])], 1)],
        vec![rule(vec![cond(bytes(0, 8), Op::Le, &[&zero])], 1)],
        vec![rule(vec![cond(bytes(2, 8), Op::Ne, &[&max])], 1)],
        vec![rule(vec![cond(bytes(3, 1), Op::Gt, &[&[0x7f]])], 1)],
        vec![rule(vec![masked], 1)],
        vec![rule(
            vec![cond(
                Field::Bits {
                    offset: 70,
                    len: 10,
                },
                Op::Ge,
                &[&[0x01, 0x00]],
            )],
            1,
        )],
        vec![rule(
            vec![cond(
                Field::Bits { offset: 4, len: 60 },
                Op::Lt,
                &[&[0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
            )],
            1,
        )],
        vec![
            rule(
                vec![
                    cond(bytes(9, 1), Op::Le, &[&[3]]),
                    cond(bytes(0, 1), Op::Ne, &[&[0]]),
                ],
                1,
            ),
            rule(vec![cond(bytes(0, 2), Op::Ge, &[&[0x80, 0]])], 2),
        ],
    ];
    let payloads: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 7],
        vec![0xff; 8],
        vec![0xff; 10],
        vec![0; 10],
        (0..10).collect(),
        (0..10u8).map(|i| 0xf0 ^ i.wrapping_mul(37)).collect(),
        vec![0x80, 0, 0x0f, 0x80, 1, 2, 3, 4, 5, 2],
    ];
    for rules in sets {
        let o = opts(rules, RuleTarget::Deny);
        for p in &payloads {
            both(&o, p, None);
        }
    }
}
