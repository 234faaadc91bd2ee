//! `nftscale`: the nftables plane at scale, for `bench/nft_scale.sh` (root, inside the bench's
//! namespaces); the vservers' scheduler is `SCHED` (`wrr` by default, `wlc`, `mh`). Subcommands:
//!
//! - `apply N M`: makes the plane in this network namespace hold N NAT vservers × M backends
//!   (vserver i is 198.51.100.1:(80+i), backends 203.0.113.11.. port 80) in one transaction and
//!   prints `apply_ms changes script_bytes`;
//! - `touch I`: changes vserver I's first weight and prints the change report, one per line;
//! - `flips K [lib|cli] [GAP_MS] [whole]`: K health flips (one destination of a vserver
//!   removed, then restored, through one plane as ncc holds it, over libnftables as ncc runs it
//!   or the `nft` binary; GAP_MS apart, 0 back to back), each applied as ncc's reconciler
//!   applies a delta (`Dataplane::apply_changed`: the changed service alone), or with `whole`
//!   as a whole state (the diff of every service); prints the median and p99 apply time in ms,
//!   how often the plane re-listed its tables, and the median of the in-process part;
//! - `converge K`: K applies of the whole unchanged desired state (the engine's periodic
//!   re-converge as ncc meets it) and prints the median wall time and CPU time in ms;
//! - `latency VIP:PORT K`: K sequential HTTP/1.0 requests (a new connection each) and prints the
//!   median and p99 latency in microseconds. Only addresses inside the bench's namespaces.
#![allow(clippy::print_stdout, reason = "a measuring tool prints its results")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use seesaw_ncc::dataplane::nftables::{NftCli, NftLib, NftPlane, NftRunner};
use seesaw_ncc::dataplane::{Dataplane, apply};
use seesaw_ncc::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey, ServiceOpts};

/// The vservers' scheduler: `SCHED` (`wrr`, the default, `wlc` or `mh`).
fn scheduler() -> Scheduler {
    match std::env::var("SCHED").as_deref() {
        Ok("wlc") => Scheduler::Wlc,
        Ok("mh") => Scheduler::Mh,
        _ => Scheduler::Wrr,
    }
}

fn services(n: u16, m: u8, bump: Option<u16>) -> Vec<Service> {
    (0..n)
        .map(|i| Service {
            anchor: None,
            key: ServiceKey {
                vip: "198.51.100.1".parse().expect("literal"),
                proto: Protocol::Tcp,
                port: 80 + i,
                fwmark: 0,
            },
            scheduler: scheduler(),
            mode: ForwardMode::Nat,
            persistence: 0,
            dests: (0..m)
                .map(|j| {
                    let w = if bump == Some(i) && j == 0 { 7 } else { 1 };
                    Dest::new(
                        format!("203.0.113.{}:80", 11 + j).parse().expect("literal"),
                        w,
                    )
                })
                .collect(),
            opts: ServiceOpts::default(),
            marks: Vec::new(),
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u32>().ok());
    match args.first().map(String::as_str) {
        Some("apply") => {
            let (Some(n), Some(m)) = (num(1), num(2)) else {
                return usage();
            };
            let (Ok(n), Ok(m)) = (u16::try_from(n), u8::try_from(m)) else {
                return usage();
            };
            let t = Instant::now();
            let mut plane = match NftPlane::new(NftCli::default(), None) {
                Ok(p) => p,
                Err(e) => return fail(&e.to_string()),
            };
            match apply(&mut plane, &services(n, m, None)) {
                Ok(changes) => {
                    println!(
                        "{} {} {}",
                        t.elapsed().as_millis(),
                        changes.len(),
                        plane.last_script.0
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Some("touch") => {
            let Some(i) = num(1).and_then(|i| u16::try_from(i).ok()) else {
                return usage();
            };
            let mut plane = match NftPlane::new(NftCli::default(), None) {
                Ok(p) => p,
                Err(e) => return fail(&e.to_string()),
            };
            let cur = plane.current();
            let n = u16::try_from(cur.len()).unwrap_or(u16::MAX);
            let m = u8::try_from(cur.first().map_or(0, |s| s.dests.len())).unwrap_or(0);
            match apply(&mut plane, &services(n, m, Some(i))) {
                Ok(changes) => {
                    for c in &changes {
                        println!("{c}");
                    }
                    println!("script lines: {}", plane.last_script.1);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Some("flips") => {
            let Some(k) = num(1) else {
                return usage();
            };
            let gap = Duration::from_millis(num(3).map_or(0, u64::from));
            let whole = args.get(4).map(String::as_str) == Some("whole");
            match args.get(2).map(String::as_str) {
                None | Some("lib") => match NftLib::open() {
                    Ok(nft) => flips(nft, k, gap, whole),
                    Err(e) => fail(&e.to_string()),
                },
                Some("cli") => flips(NftCli::default(), k, gap, whole),
                Some(_) => usage(),
            }
        }
        Some("scripts") => {
            // Scripts A and B (files) alternately through libnftables, K times each: prints the
            // median ms of each (to see what a transaction's parts cost).
            let (Some(k), Some(a), Some(b)) = (num(1), args.get(2), args.get(3)) else {
                return usage();
            };
            let (Ok(a), Ok(b)) = (std::fs::read_to_string(a), std::fs::read_to_string(b)) else {
                return fail("cannot read the scripts");
            };
            let nft = match NftLib::open() {
                Ok(n) => n,
                Err(e) => return fail(&e.to_string()),
            };
            let (mut ta, mut tb) = (Vec::new(), Vec::new());
            for _ in 0..k {
                for (s, v) in [(&a, &mut ta), (&b, &mut tb)] {
                    let t = Instant::now();
                    if let Err(e) = nft.run(s) {
                        return fail(&e.to_string());
                    }
                    v.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            ta.sort_by(f64::total_cmp);
            tb.sort_by(f64::total_cmp);
            println!("{:.1} {:.1}", ta[ta.len() / 2], tb[tb.len() / 2]);
            ExitCode::SUCCESS
        }
        Some("converge") => {
            let Some(k) = num(1) else {
                return usage();
            };
            match NftLib::open() {
                Ok(nft) => converge(nft, k),
                Err(e) => fail(&e.to_string()),
            }
        }
        Some("stats") => {
            // What the engine pays every 2 s and at every start: adopting the plane's state
            // (`current`) and reading its counters (`stats`), in milliseconds.
            let t = Instant::now();
            let plane = match NftPlane::new(NftCli::default(), None) {
                Ok(p) => p,
                Err(e) => return fail(&e.to_string()),
            };
            let n = plane.current().len();
            let adopt = t.elapsed().as_millis();
            let t = Instant::now();
            let stats = plane.stats();
            let read = t.elapsed().as_millis();
            let dests: usize = stats.iter().map(|s| s.dests.len()).sum();
            println!("{adopt} {read} {n} {dests}");
            ExitCode::SUCCESS
        }
        Some("latency") => {
            let (Some(addr), Some(k)) = (
                args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
                num(2),
            ) else {
                return usage();
            };
            let mut lat = Vec::new();
            for _ in 0..k.min(100_000) {
                let t = Instant::now();
                if let Err(e) = one(addr) {
                    return fail(&format!("request to {addr}: {e}"));
                }
                lat.push(t.elapsed().as_micros());
            }
            lat.sort_unstable();
            let at = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q) as usize).copied();
            println!("{} {}", at(0.5).unwrap_or(0), at(0.99).unwrap_or(0));
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

fn one(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    if buf.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(std::io::Error::other("not an HTTP response"))
    }
}

#[allow(clippy::print_stderr, reason = "a measuring tool")]
fn fail(msg: &str) -> ExitCode {
    eprintln!("nftscale: {msg}");
    ExitCode::FAILURE
}

#[allow(clippy::print_stderr, reason = "a measuring tool")]
fn usage() -> ExitCode {
    eprintln!(
        "usage: nftscale apply N M | touch I | flips K [lib|cli] [GAP_MS] [whole] | converge K | stats | latency VIP:PORT K"
    );
    ExitCode::from(64)
}

/// A backend's health flip as ncc meets it: the plane (one for the whole run, as in ncc) gets
/// the desired state with one destination of vserver i gone, then back, as a delta (the changed
/// service alone, as the reconciler applies it) or, with `whole`, the whole state. Prints the
/// median and p99 apply time in ms over the 2K applies, how often the plane listed its tables
/// after its start, and the median of the in-process part alone (check, current state, diff).
fn flips<R: NftRunner>(runner: R, k: u32, gap: Duration, whole: bool) -> ExitCode {
    let mut plane = match NftPlane::new(runner, None) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let reads = plane.reads;
    let full = plane.current();
    if full.is_empty() {
        return fail("the plane holds nothing: run `apply N M` first");
    }
    let mut ms = Vec::new();
    let mut local = Vec::new();
    for j in 0..k {
        let i = (j as usize * 7919) % full.len();
        let mut down = full.clone();
        down[i].dests.remove(0);
        for want in [&down, &full] {
            std::thread::sleep(gap);
            let changed = std::slice::from_ref(&want[i]);
            // The in-process part alone (check, current state, diff), for the breakdown.
            let t = Instant::now();
            if whole {
                let _ = seesaw_ncc::dataplane::check(&plane, want);
                let _ = seesaw_ncc::dataplane::diff(&plane.current(), want);
            } else {
                let _ = seesaw_ncc::dataplane::check(&plane, changed);
                let keys = std::collections::BTreeSet::from([want[i].key]);
                let _ = seesaw_ncc::dataplane::diff(&plane.current_of(&keys), changed);
            }
            local.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let r = if whole {
                apply(&mut plane, want).map(|_| ())
            } else {
                plane
                    .apply_changed(&seesaw_ncc::dataplane::Scope {
                        whole: want,
                        changed,
                        removed: &[],
                    })
                    .map(|_| ())
            };
            if let Err(e) = r {
                return fail(&e.to_string());
            }
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    local.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    println!(
        "{:.1} {:.1} {} {:.1}",
        at(&ms, 0.5),
        at(&ms, 0.99),
        plane.reads - reads,
        at(&local, 0.5)
    );
    ExitCode::SUCCESS
}

/// The periodic re-converge as ncc meets it: the whole desired state, unchanged, applied K
/// times through one plane. Prints the median wall and CPU (user + system of this thread) ms.
fn converge<R: NftRunner>(runner: R, k: u32) -> ExitCode {
    use nix::sys::resource::{UsageWho, getrusage};
    let mut plane = match NftPlane::new(runner, None) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let full = plane.current();
    if full.is_empty() {
        return fail("the plane holds nothing: run `apply N M` first");
    }
    let cpu = || {
        getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |u| {
            let t = |v: nix::sys::time::TimeVal| {
                Duration::from_secs(v.tv_sec().unsigned_abs())
                    + Duration::from_micros(v.tv_usec().unsigned_abs())
            };
            t(u.user_time()) + t(u.system_time())
        })
    };
    let (mut wall, mut used) = (Vec::new(), Vec::new());
    for _ in 0..k {
        let (t, c) = (Instant::now(), cpu());
        match apply(&mut plane, &full) {
            Ok(changes) if changes.is_empty() => {}
            Ok(changes) => return fail(&format!("an unchanged state changed {}", changes.len())),
            Err(e) => return fail(&e.to_string()),
        }
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        used.push((cpu() - c).as_secs_f64() * 1000.0);
    }
    wall.sort_by(f64::total_cmp);
    used.sort_by(f64::total_cmp);
    println!("{:.1} {:.1}", wall[wall.len() / 2], used[used.len() / 2]);
    ExitCode::SUCCESS
}
