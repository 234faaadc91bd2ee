//! Fuzzes the payload-rule checker, compiler and evaluator: arbitrary bytes become a rule set
//! (fields, operators, masks, values of any shape — most invalid) and payloads; every set the
//! checker accepts must compile, and the compiled evaluator must agree with the reference
//! evaluator on every payload. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::proxy::rules::{Compiled, Verdict, reference_route};
use seesaw_ncc::model::{Cond, Field, Op, Rule, RuleTarget, ServiceOpts};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        h.to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let nrules = inp.byte() % 16;
    let mut rules = Vec::new();
    for _ in 0..nrules {
        let nconds = inp.byte() % 4;
        let mut conds = Vec::new();
        for _ in 0..nconds {
            let kind = inp.byte() % 3;
            let a = u32::from(inp.byte());
            let b = u32::from(inp.byte() % 72);
            let field = match kind {
                0 => Field::Bytes { offset: a % 40, len: b },
                1 => Field::Bits { offset: a, len: b },
                _ => Field::Sni,
            };
            let op = [
                Op::Eq,
                Op::Ne,
                Op::Lt,
                Op::Le,
                Op::Gt,
                Op::Ge,
                Op::Prefix,
                Op::Suffix,
                Op::In,
            ][usize::from(inp.byte() % 9)];
            let nvals = inp.byte() % 4;
            let mut values = Vec::new();
            for _ in 0..nvals {
                let l = usize::from(inp.byte() % 12);
                values.push(inp.bytes(l));
            }
            let ml = usize::from(inp.byte() % 10);
            let mask = if ml > 8 { Vec::new() } else { inp.bytes(ml) };
            conds.push(Cond {
                field,
                op,
                mask,
                values,
            });
        }
        let t = inp.byte();
        rules.push(Rule {
            conds,
            target: if t % 5 == 0 {
                RuleTarget::Deny
            } else {
                RuleTarget::Group(u16::from(t % 4))
            },
        });
    }
    let hk = inp.byte();
    let opts = ServiceOpts {
        rules,
        default_target: RuleTarget::Group(7),
        hash_key: (hk % 3 == 0).then(|| (u32::from(hk % 16), u32::from(inp.byte() % 8))),
        ..ServiceOpts::default()
    };
    let Ok(compiled) = Compiled::compile(&opts) else {
        return;
    };
    let sni_len = usize::from(inp.byte() % 16);
    let sni = inp.bytes(sni_len);
    let rest = inp.0;
    for cut in [rest.len(), rest.len() / 2, rest.len().min(3)] {
        let p = &rest[..cut];
        for s in [None, Some(sni.as_slice())] {
            let got = compiled.route(p, s);
            let want = Verdict::from(&reference_route(&opts, p, s));
            assert_eq!(got, want, "payload {p:?} sni {s:?}");
        }
        let _ = compiled.hash_key(p);
    }
});
