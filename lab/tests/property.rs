//! "A config that validates is applied", as a property: generated cluster.pb files (seeded, so a
//! failure reproduces) go through the engine's validation for each data plane; every one that
//! validates for a plane becomes the engine's desired state (every backend healthy) and must be
//! accepted by that plane, applied as the next change to one running instance of it:
//!
//! - proxy: the real `ProxyPlane` (sockets bound on 127.20.0.0/24);
//! - ipvs: the real `IpvsPlane` over its stateful fake kernel (this kernel has no IPVS);
//! - nftables: the real `NftPlane` in a network namespace (root and `nft`; skipped otherwise),
//!   every config through its refusal checks and every 5th committed with `nft` for real.
//!
//! `PROPERTY_CONFIGS` (default 10,000) and `PROPERTY_SEED` change the run.
#![allow(
    clippy::print_stderr,
    reason = "the run's figures are reported to the person running the tests"
)]

#[path = "support/desired.rs"]
mod support;

use std::fmt::Write as _;

use seesaw_engine::config::DataplaneKind;
use seesaw_ncc::dataplane::ipvs::{FakeIpvs, IpvsPlane};
use seesaw_ncc::dataplane::nftables::{NftCli, NftPlane};
use seesaw_ncc::dataplane::proxy::ProxyPlane;
use seesaw_ncc::dataplane::{self, Dataplane};
use seesaw_ncc::model::Service;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).expect("small")]
    }
}

/// One generated cluster.pb: a few vservers on a small pool of VIPs, ports and backends (so
/// collisions happen), every scheduler and mode (or Seesaw's defaults), persistence, firewall
/// marks, check modes, proxy options, backend groups and backups.
fn generate(rng: &mut Rng) -> String {
    let mut t = String::from(
        "seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" status: PRODUCTION >\n\
         node < fqdn: \"n.\" ipv4: \"10.0.0.2/24\" status: PRODUCTION >\n",
    );
    for v in 0..=rng.below(3) {
        let vip = 1 + rng.below(6);
        let _ = writeln!(
            t,
            "vserver < name: \"vs{v}\" rp: \"x\" entry_address < fqdn: \"vs{v}.\" ipv4: \"127.20.0.{vip}/32\" >"
        );
        if rng.chance(8) {
            t.push_str("  use_fwm: true\n");
        }
        for _ in 0..=rng.below(1) {
            let proto = if rng.chance(75) { "TCP" } else { "UDP" };
            let port = rng.pick(&["18080", "18443", "19000", "15353"]);
            let _ = write!(t, "  vserver_entry < protocol: {proto} port: {port}");
            if rng.chance(85) {
                let s = rng.pick(&[
                    "RR", "RR", "WRR", "WRR", "LC", "WLC", "SH", "MH", "DH", "RANDOM", "P2C",
                ]);
                let _ = write!(t, " scheduler: {s}");
            }
            if rng.chance(85) {
                let m = rng.pick(&["NAT", "NAT", "NAT", "NAT", "DSR", "DSR", "TUN"]);
                let _ = write!(t, " mode: {m}");
            }
            if rng.chance(15) {
                t.push_str(" persistence: 300");
            }
            if rng.chance(10) {
                t.push_str(" one_packet: true");
            }
            if rng.chance(60) {
                let mode = rng.pick(&["PLAIN", "PLAIN", "PLAIN", "DSR", "TUN"]);
                let _ = write!(t, " healthcheck < type: TCP mode: {mode} >");
            }
            if rng.chance(8) {
                let p = rng.pick(&[
                    "drain_timeout_s: 5",
                    "proxy_protocol: V2",
                    "first_bytes: 4 rule < cond < offset: 0 length: 2 op: EQ value: \"ab\" > group: \"canary\" >",
                    "hash_offset: 0 hash_length: 4",
                ]);
                let _ = write!(t, " proxy < {p} >");
            }
            t.push_str(" >\n");
        }
        for b in 0..=rng.below(3) {
            let ip = 1 + rng.below(6);
            let w = rng.below(4);
            let _ = write!(
                t,
                "  backend < host < fqdn: \"b{v}-{b}.\" ipv4: \"127.30.0.{ip}/32\" > weight: {w}"
            );
            if rng.chance(4) {
                t.push_str(" group: \"canary\"");
            }
            if rng.chance(4) {
                t.push_str(" backup: true");
            }
            t.push_str(" >\n");
        }
        t.push_str(">\n");
    }
    t
}

/// The engine's desired state for `text` on `plane` with every backend healthy, in ncc's terms;
/// `None` if validation refused it for that plane.
fn desired(text: &str, plane: DataplaneKind) -> Option<Vec<Service>> {
    support::desired(text, plane).ok()
}

fn configs() -> (usize, u64) {
    let n = std::env::var("PROPERTY_CONFIGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed = std::env::var("PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x05ee_5a11);
    (n, seed)
}

/// Applies `services` to `plane`; panics with the config if the plane refuses.
fn must_apply<P: Dataplane>(plane: &mut P, services: &[Service], i: usize, text: &str) {
    if let Err(e) = dataplane::apply(plane, services) {
        panic!(
            "config #{i} validated for {} but the plane refused it: {e}\n{text}",
            plane.kind()
        );
    }
}

#[test]
fn every_config_that_validates_is_applied_by_the_proxy_and_ipvs_planes() {
    let (n, seed) = configs();
    let mut rng = Rng(seed);
    let mut proxy = ProxyPlane::with_threads(1);
    let mut ipvs = IpvsPlane::new(FakeIpvs::default())
        .expect("the fake IPVS kernel")
        .with_firewall(Box::new(|_| Ok(())));
    let (mut on_proxy, mut on_ipvs) = (0usize, 0usize);
    for i in 0..n {
        let text = generate(&mut rng);
        if let Some(s) = desired(&text, DataplaneKind::Proxy) {
            must_apply(&mut proxy, &s, i, &text);
            on_proxy += 1;
        }
        if let Some(s) = desired(&text, DataplaneKind::Ipvs) {
            must_apply(&mut ipvs, &s, i, &text);
            on_ipvs += 1;
        }
    }
    eprintln!(
        "{n} generated configs (seed {seed:#x}): {on_proxy} validated for the proxy plane and \
         were applied, {on_ipvs} for ipvs and were applied; the rest were refused by validation"
    );
    // The generator must exercise both outcomes on both planes.
    assert!(
        on_proxy > n / 20 && on_proxy < n,
        "proxy: {on_proxy} of {n}"
    );
    assert!(on_ipvs > n / 20 && on_ipvs < n, "ipvs: {on_ipvs} of {n}");
}

#[test]
fn every_config_that_validates_is_applied_by_the_nftables_plane() {
    if !seesaw_lab::require_nft("the nftables property test") {
        return;
    }
    let (n, seed) = configs();
    let lab = seesaw_lab::Lab::builder()
        .node("lb1", &["192.0.2.10/24"])
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    let (validated, committed) = lab
        .run_in("lb1", move || {
            let mut rng = Rng(seed);
            let mut plane =
                NftPlane::new(NftCli::default(), Some("eth0".to_owned())).expect("read nftables");
            let (mut validated, mut committed) = (0usize, 0usize);
            for i in 0..n {
                let text = generate(&mut rng);
                let Some(s) = desired(&text, DataplaneKind::Nftables) else {
                    continue;
                };
                validated += 1;
                if validated % 5 == 1 {
                    must_apply(&mut plane, &s, i, &text);
                    committed += 1;
                } else if let Err(e) = dataplane::check(&plane, &s) {
                    panic!(
                        "config #{i} validated for nftables but the plane refused it: {e}\n{text}"
                    );
                }
            }
            (validated, committed)
        })
        .expect("entering lb1");
    eprintln!(
        "{n} generated configs (seed {seed:#x}): {validated} validated for the nftables plane; \
         every one passed its checks and {committed} were committed with nft"
    );
    assert!(
        validated > n / 20 && validated < n,
        "nftables: {validated} of {n}"
    );
}
