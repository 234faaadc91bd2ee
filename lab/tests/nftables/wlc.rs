//! Seesaw's default scheduler, wlc, on the nftables plane in the scheduler lab: ncc's plane runs
//! inside `lb1` for the whole test with its re-weighting thread (connection counts sampled every
//! 250 ms: conntrack for NAT, the flow map for DSR). be1 first serves alone and is given 40
//! open keep-alive connections; then be2 and be3 join with the same weight. New connections now
//! go to the two idle backends (be1 gets at most 10 %), while every connection held on be1
//! keeps working (the re-weighting moves no established flow). Once be1's connections close,
//! it takes its share again (NAT). The same holds for DSR, whose loads come from the flow map.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use seesaw_ncc::dataplane::nftables::{NfnlLoads, NftLib, SAMPLE_PERIOD};

use super::*;

/// Long enough for several samples and the slot rewrites they cause.
const SETTLE: Duration = Duration::from_millis(1500);
/// Connections held open on be1.
const HELD: usize = 40;
/// New connections counted per phase.
const NEW: usize = 60;

type Job = (Vec<Service>, mpsc::Sender<Result<usize, String>>);

/// ncc's nftables plane with its re-weighting thread, living in `lb1` until dropped.
struct LivePlane {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LivePlane {
    fn start(lab: &Lab) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = lab.thread_in("lb1", move || {
            // Threads this one starts (the re-weighting) stay in lb1 too. The plane runs as in
            // ncc: libnftables, and its own netlink batches for flips and slot rewrites.
            let nft = NftLib::open().expect("libnftables");
            let mut plane = NftPlane::new(nft, Some("eth0".to_owned()))
                .expect("read nftables")
                .with_rebalancer(Box::new(NfnlLoads::default()), SAMPLE_PERIOD);
            for (desired, reply) in rx {
                let r = apply(&mut plane, &desired)
                    .map(|c| c.len())
                    .map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
        });
        let thread = thread.expect("lb1");
        Self {
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    fn apply(&self, desired: &[Service]) -> usize {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .expect("running")
            .send((desired.to_vec(), tx))
            .expect("plane thread");
        rx.recv().expect("plane thread").expect("apply")
    }
}

impl Drop for LivePlane {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One keep-alive request on `s`; returns the backend's name.
fn ask(s: &mut BufReader<TcpStream>, vip: SocketAddr) -> Result<String, String> {
    s.get_mut()
        .write_all(format!("GET / HTTP/1.1\r\nHost: {vip}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        s.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("closed".into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v
                .trim()
                .parse()
                .map_err(|_| format!("bad length {line:?}"))?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body).trim().to_owned())
}

/// Opens `n` keep-alive connections to `vip` from the client, one request each.
fn hold(lab: &Lab, vip: SocketAddr, n: usize) -> Vec<(BufReader<TcpStream>, String)> {
    lab.run_in("client", move || {
        (0..n)
            .map(|i| {
                let s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("held connection {i}: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(3)))
                    .expect("timeout");
                let mut r = BufReader::new(s);
                let name = ask(&mut r, vip).unwrap_or_else(|e| panic!("held {i}: {e}"));
                (r, name)
            })
            .collect()
    })
    .expect("entering client")
}

fn tally(names: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for n in names {
        *out.entry(n.clone()).or_insert(0) += 1;
    }
    out
}

/// Runs the phases on `vip` (`mode` decides the table); `closing`: also check that be1 takes its
/// share again once its connections close.
fn one_backend_busy(lab: &Lab, plane: &LivePlane, vip: &str, mode: ForwardMode, closing: bool) {
    let addr: SocketAddr = format!("{vip}:80").parse().expect("literal");
    plane.apply(&[service(vip, 80, Scheduler::Wlc, mode, &[1, 0, 0])]);
    let mut held = hold(lab, addr, HELD);
    assert!(held.iter().all(|(_, n)| n == "be1"), "be1 serves alone");
    plane.apply(&[service(vip, 80, Scheduler::Wlc, mode, &[1, 1, 1])]);
    std::thread::sleep(SETTLE);

    let busy = tally(&names(lab, addr, NEW));
    #[allow(
        clippy::print_stderr,
        reason = "the measured shares, for the person running the lab"
    )]
    {
        eprintln!("{mode:?} wlc, be1 holding {HELD}: {NEW} new connections went {busy:?}");
    }
    let on_be1 = busy.get("be1").copied().unwrap_or(0);
    assert!(
        on_be1 * 10 <= NEW,
        "{mode:?} wlc: be1 holds {HELD} connections, yet got {on_be1} of {NEW} new ones: {busy:?}"
    );
    for idle in ["be2", "be3"] {
        assert!(
            busy.get(idle).copied().unwrap_or(0) * 4 >= NEW,
            "{mode:?} wlc: {idle} got too few of {NEW}: {busy:?}"
        );
    }
    // Established flows stayed where they were through every re-weighting.
    for (i, (s, _)) in held.iter_mut().enumerate() {
        assert_eq!(ask(s, addr).as_deref(), Ok("be1"), "held connection {i}");
    }
    if closing {
        drop(held);
        std::thread::sleep(SETTLE);
        let after = tally(&names(lab, addr, NEW));
        #[allow(clippy::print_stderr, reason = "as above")]
        {
            eprintln!("{mode:?} wlc, be1's connections closed: {after:?}");
        }
        assert!(
            after.get("be1").copied().unwrap_or(0) * 100 >= NEW * 15,
            "{mode:?} wlc: be1, idle again, gets its share: {after:?}"
        );
    }
}

#[test]
fn wlc_sends_new_connections_away_from_a_busy_backend() {
    if !can_run() {
        return;
    }
    let lab = scheduler_lab();
    let plane = LivePlane::start(&lab);
    one_backend_busy(&lab, &plane, NAT_VIP, ForwardMode::Nat, true);
    one_backend_busy(&lab, &plane, DSR_VIP, ForwardMode::Dsr, false);
    assert!(plane.apply(&[]) > 0);
}
