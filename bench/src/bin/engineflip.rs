//! `engineflip`: the engine's share of a backend's health flip at scale, for
//! `bench/nft_flips.sh` (issue 16 item 4). The real core ([`seesaw_engine::machine::Engine`])
//! holds N vservers × M backends, each backend with one TCP check, past its start-up gate as the
//! only node; then K flips, each one check's result turned bad, then good again. Per flip it
//! times the three steps between the engine learning the result and ncc holding the request
//! (ncc's own apply is `nftscale flips`):
//!
//! - `core`: `Engine::handle` of the health report until it asks for the apply (health
//!   aggregation, the desired state);
//! - `send`: what changed since the last request as ncc's `DesiredDelta`, encoded (what goes on
//!   the socket; with `whole`, the whole state as a `DesiredState`, as before deltas);
//! - `recv`: decoded and converted to ncc's services (`seesaw_ncc::convert`).
//!
//! Prints `core_p50 core_p99 send_p50 send_p99 recv_p50 recv_p99 total_p50 total_p99 bytes` (ms,
//! and the last message's size), over the 2K applies.
//!
//! With `ncc SOCKET [GAP_MS]` the flip goes all the way instead: the core's request is sent by
//! the engine's own ncc port ([`seesaw_engine::ncc_port::GrpcNcc`], a delta on the request ncc
//! holds) to a running `seesaw_ncc` on SOCKET, which answers once its plane committed it. Per
//! flip the time from the health report reaching the core to ncc's answer (`e2e`), and ncc's
//! part alone (`ncc`: the call's round trip); the flips are GAP_MS apart (default 0). Prints
//! `e2e_p50 e2e_p99 ncc_p50 ncc_p99 whole deltas` (ms, and how many requests ncc took whole and
//! as deltas).
//! Usage: `engineflip N M K [whole | ncc SOCKET [GAP_MS]]`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measuring tool prints its results and why it stopped"
)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use prost::Message as _;
use seesaw_engine::config::{Loaded, load_cluster, seesaw_cfg};
use seesaw_engine::events::Event;
use seesaw_engine::machine::{Effect, Engine, Input, Now, Reply};
use seesaw_engine::state::{CheckResult, HaRole, HaView};

/// N vservers (10.8.x.y:80, one VIP each) × M backends (10.9.a.b), one TCP check each; the
/// scheduler is `SCHED` (`wrr` by default, `wlc`, `mh`).
fn loaded(n: usize, m: usize) -> Loaded {
    let sched = match std::env::var("SCHED").as_deref() {
        Ok("wlc") => "WLC",
        Ok("mh") => "MH",
        _ => "WRR",
    };
    let mut c = String::from(
        r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        node < fqdn: "n." ipv4: "10.0.0.2/24" >"#,
    );
    for i in 0..n {
        let _ = write!(
            c,
            r#"
        vserver < name: "v{i}" rp: "x" entry_address < fqdn: "e{i}." ipv4: "10.8.{}.{}/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: {sched} mode: NAT
            healthcheck < type: TCP interval: 5 timeout: 1 > >"#,
            i / 250,
            i % 250 + 1
        );
        for j in 0..m {
            let b = i * m + j;
            let _ = write!(
                c,
                r#"
          backend < host < fqdn: "b{b}." ipv4: "10.9.{}.{}/16" > weight: 1 >"#,
                b / 250 % 250,
                b % 250 + 1
            );
        }
        c.push_str(" >");
    }
    Loaded {
        settings: seesaw_cfg::parse(
            "[cluster]\nname = bench\nnode_ipv4 = 10.0.0.2\n[engine]\nchurn_limit = 0\n",
        )
        .expect("seesaw.cfg"),
        cluster: load_cluster(c.as_bytes(), None).expect("cluster.pb"),
    }
}

/// Hands `input` to the core and carries its effects in order as the driver does: each apply
/// through `apply` (its answer is fed back before anything else); returns the desired state of
/// the first apply the core asked for, the time until it asked, and the time until `apply`
/// answered it.
fn run(
    e: &mut Engine,
    input: Input,
    now: Now,
    apply: &mut dyn FnMut(&std::sync::Arc<seesaw_engine::desired::DesiredState>) -> Input,
) -> Option<(
    std::sync::Arc<seesaw_engine::desired::DesiredState>,
    Duration,
    Duration,
)> {
    let t = Instant::now();
    let mut first = None;
    let mut inputs = VecDeque::from([input]);
    while let Some(input) = inputs.pop_front() {
        for effect in e.handle(input, now) {
            match effect {
                Effect::Apply(d) => {
                    let asked = t.elapsed();
                    let answer = apply(&d);
                    if first.is_none() {
                        first = Some((d, asked, t.elapsed()));
                    }
                    inputs.push_front(answer);
                }
                Effect::Bgp(_) => inputs.push_front(Input::BgpDone(Ok(Vec::new()))),
                Effect::Reply(Reply::Ha(tx, f)) => {
                    let _ = tx.send(f);
                }
                _ => {}
            }
        }
    }
    first
}

/// An apply that succeeds at once (the in-process modes).
fn applied(_: &std::sync::Arc<seesaw_engine::desired::DesiredState>) -> Input {
    Input::Applied(Ok(Vec::new()))
}

fn health(ids: &[u64], healthy: bool, now: Now) -> Input {
    let results = ids
        .iter()
        .map(|id| {
            let r = CheckResult {
                healthy,
                message: String::new(),
                at: now.wall,
            };
            (*id, r)
        })
        .collect();
    Input::Event(Event::Health(results, Vec::new()))
}

/// ncc's side: the message decoded and converted.
fn receive(wire: &[u8], whole: bool) -> Result<(), String> {
    if whole {
        let msg =
            seesaw_proto::ncc::DesiredState::decode(wire).map_err(|e| format!("decode: {e}"))?;
        seesaw_ncc::convert::services_from_pb(msg).map_err(|e| format!("ncc refuses: {e}"))?;
    } else {
        let msg =
            seesaw_proto::ncc::DesiredDelta::decode(wire).map_err(|e| format!("decode: {e}"))?;
        seesaw_ncc::convert::delta_from_pb(msg.services, &msg.removed)
            .map_err(|e| format!("ncc refuses: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().take(3).filter_map(|a| a.parse().ok()).collect();
    let [n, m, k] = nums[..] else {
        eprintln!("usage: engineflip N M K [whole | ncc SOCKET [GAP_MS]]");
        return ExitCode::from(64);
    };
    let whole = args.get(3).map(String::as_str) == Some("whole");
    let through = match (args.get(3).map(String::as_str), args.get(4)) {
        (Some("ncc"), Some(sock)) => {
            let gap = args.get(5).and_then(|g| g.parse().ok()).unwrap_or(0);
            Some((std::path::PathBuf::from(sock), Duration::from_millis(gap)))
        }
        _ => None,
    };
    let start = Instant::now();
    let at = |secs: f64| Now {
        mono: start + Duration::from_secs_f64(secs),
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs as u64),
    };
    let mut e = Engine::new(loaded(n, m), "/nonexistent".into(), (false, false), at(0.0));
    let ids: Vec<u64> = e.state().checks().map(|c| c.id).collect();
    run(&mut e, health(&ids, true, at(0.1)), at(0.1), &mut applied);
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let view = HaView {
        state: HaRole::Leader,
        since: Some(at(0.2).wall),
        transitions: 1,
        last_update: Some(at(0.2).wall),
        ..HaView::default()
    };
    if let Some((sock, gap)) = through {
        return through_ncc(&mut e, &ids, view, k, &sock, gap, at);
    }
    let Some((mut prev, _, _)) = run(
        &mut e,
        Input::Event(Event::Ha(view, None, tx)),
        at(0.2),
        &mut applied,
    ) else {
        eprintln!("the core asked for no apply once leader");
        return ExitCode::FAILURE;
    };
    let live: usize = prev.services.iter().map(|s| s.dests.len()).sum();
    eprintln!(
        "checks {} services {} destinations {live}",
        ids.len(),
        prev.services.len()
    );
    let (mut core, mut send, mut recv, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for j in 0..k {
        let id = ids[(j * 7919) % ids.len()];
        for healthy in [false, true] {
            let now = at(1.0 + j as f64);
            let Some((desired, c, _)) = run(&mut e, health(&[id], healthy, now), now, &mut applied)
            else {
                eprintln!("flip {j}: the core asked for no apply");
                return ExitCode::FAILURE;
            };
            let t = Instant::now();
            let wire = if whole {
                seesaw_engine::ncc_port::desired_to_pb(&desired).encode_to_vec()
            } else {
                seesaw_engine::ncc_port::delta_to_pb(&prev, &desired, 1, 2).encode_to_vec()
            };
            let s = t.elapsed();
            let t = Instant::now();
            if let Err(err) = receive(&wire, whole) {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
            let r = t.elapsed();
            prev = desired;
            bytes = wire.len();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            core.push(ms(c));
            send.push(ms(s));
            recv.push(ms(r));
            total.push(ms(c + s + r));
        }
    }
    let mut line = String::new();
    for v in [&mut core, &mut send, &mut recv, &mut total] {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p) as usize];
        let _ = write!(line, "{:.1} {:.1} ", q(0.5), q(0.99));
    }
    println!("{line}{bytes}");
    ExitCode::SUCCESS
}

/// The flips all the way to a running ncc (see the module doc): the core becomes leader with
/// every check healthy and its whole state goes to ncc; then the flips.
fn through_ncc(
    e: &mut Engine,
    ids: &[u64],
    view: HaView,
    k: usize,
    sock: &std::path::Path,
    gap: Duration,
    at: impl Fn(f64) -> Now,
) -> ExitCode {
    use seesaw_engine::ncc_port::{GrpcNcc, Ncc as _};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let ncc = {
        let _in = rt.enter();
        GrpcNcc::new(seesaw_common::uds::channel(sock, Duration::from_secs(600)))
    };
    let mut failed = None;
    let mut apply = |d: &std::sync::Arc<seesaw_engine::desired::DesiredState>| {
        let r = rt.block_on(ncc.apply(d)).map_err(|err| err.to_string());
        if let Err(err) = &r {
            failed = Some(err.clone());
        }
        Input::Applied(r)
    };
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let t = Instant::now();
    if run(
        e,
        Input::Event(Event::Ha(view, None, tx)),
        at(0.2),
        &mut apply,
    )
    .is_none()
    {
        eprintln!("the core asked for no apply once leader");
        return ExitCode::FAILURE;
    }
    eprintln!("whole state applied in {:.1} s", t.elapsed().as_secs_f64());
    let (mut e2e, mut part) = (Vec::new(), Vec::new());
    for j in 0..k {
        let id = ids[(j * 7919) % ids.len()];
        for healthy in [false, true] {
            std::thread::sleep(gap);
            let now = at(1.0 + j as f64);
            let Some((_, asked, answered)) = run(e, health(&[id], healthy, now), now, &mut apply)
            else {
                eprintln!("flip {j}: the core asked for no apply");
                return ExitCode::FAILURE;
            };
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            e2e.push(ms(answered));
            part.push(ms(answered - asked));
        }
    }
    if let Some(err) = failed {
        eprintln!("an apply failed: {err}");
        return ExitCode::FAILURE;
    }
    let (deltas, wholes) = ncc.taken();
    let mut line = String::new();
    for v in [&mut e2e, &mut part] {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p) as usize];
        let _ = write!(line, "{:.1} {:.1} ", q(0.5), q(0.99));
    }
    println!("{line}{wholes} {deltas}");
    ExitCode::SUCCESS
}
