//! Seesaw's own configuration files on every data plane: the shipped `cluster.pb.example` and
//! every cluster config of Seesaw's parser tests that Seesaw itself accepts (all but
//! `vipsubnets2.pb`, `engine/src/config/tests.rs` says why), from `../shared/compat/seesaw/`.
//!
//! - `seesaw_configs_apply_on_ipvs_in_the_kernel_lab` (root, QEMU): inside the kernel lab, each
//!   file's desired state (every backend healthy) is applied by ncc's IPVS plane with its
//!   firewall table; `ipvsadm -Ln` shows every service, and a new plane adopts them with no
//!   change.
//! - `seesaw_configs_apply_on_nftables` (root, nft): the same through the nftables plane, WLC
//!   (Seesaw's default scheduler) included. `vservers2.pb` has TUN entries, carried by one IPIP
//!   device per backend: this host's kernel has no `ipip` module, so here that file must be
//!   refused for exactly that reason (by validation, and by ncc), and `guest_seesaw_configs_apply_on_nftables_with_tunnels`
//!   applies all 15 files inside the kernel lab (booted by the IPVS test, same boot).
//! - `validate_for_the_proxy_plane_refuses_dsr_and_tun`: `seesaw_engine --validate --plane
//!   proxy` refuses, with the reason, the files with DSR or TUN (entries or probes), and accepts
//!   the rest.
//!
//! A file that lists no node gets one (`10.0.0.2`): Seesaw's engine runs only on a node its
//! cluster lists.
#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "the per-file figures are for the person running the tests"
)]

#[path = "support/desired.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use seesaw_engine::config::DataplaneKind;
use seesaw_lab::{Lab, bins, vm};
use seesaw_ncc::dataplane::ipvs::IpvsPlane;
use seesaw_ncc::dataplane::ipvs::firewall::TABLE;
use seesaw_ncc::dataplane::ipvs::sys::Netlink;
use seesaw_ncc::dataplane::nftables::{NftCli, NftPlane, NftRunner};
use seesaw_ncc::dataplane::{Dataplane, apply};
use seesaw_ncc::model::{ForwardMode, Service};

/// A Seesaw cluster config: its name, text (with a node added when it lists none) and this
/// node's address.
struct File {
    name: String,
    text: String,
    node: String,
}

fn compat_dir() -> PathBuf {
    bins::workspace_dir().join("../shared/compat/seesaw")
}

/// Every cluster config Seesaw accepts, or `None` (said loudly) without `../shared`.
fn files() -> Option<Vec<File>> {
    let dir = compat_dir();
    let Ok(entries) = std::fs::read_dir(dir.join("config-testdata")) else {
        eprintln!(
            "SKIPPED: {} not readable; clone the project with ../shared beside it",
            dir.display()
        );
        return None;
    };
    let mut names: Vec<String> = entries
        .map(|e| {
            let name = e.expect("dir entry").file_name();
            format!("config-testdata/{}", name.to_string_lossy())
        })
        // Single Healthcheck messages, and the one file Seesaw refuses.
        .filter(|n| !n.contains("/healthcheck") && !n.ends_with("/vipsubnets2.pb"))
        .collect();
    names.sort();
    names.insert(0, "cluster.pb.example".to_owned());
    let out: Vec<File> = names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let first_node = text
                .split_once("\nnode")
                .and_then(|(_, t)| t.split_once("ipv4: \""))
                .and_then(|(_, t)| t.split_once('/'))
                .map(|(ip, _)| ip.to_owned());
            let (text, node) = match first_node {
                Some(ip) => (text, ip),
                None => (
                    format!(
                        "{text}\nnode < fqdn: \"lb.test.\" ipv4: \"10.0.0.2/24\" status: PRODUCTION >\n"
                    ),
                    "10.0.0.2".to_owned(),
                ),
            };
            File { name, text, node }
        })
        .collect();
    assert_eq!(out.len(), 15, "Seesaw's accepted cluster configs");
    Some(out)
}

fn desired(f: &File, plane: DataplaneKind) -> Result<Vec<Service>, String> {
    support::desired_on(&f.text, plane, &f.node)
}

/// The files' desired states for `plane`; the files with services must be most of the
/// services (a run where every file gave nothing would prove nothing).
fn desired_all(
    files: &[File],
    plane: DataplaneKind,
) -> Vec<(String, Result<Vec<Service>, String>)> {
    let out: Vec<_> = files
        .iter()
        .map(|f| (f.name.clone(), desired(f, plane)))
        .collect();
    let services: usize = out
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(Vec::len)
        .sum();
    assert!(services >= 28, "{plane:?}: only {services} services in all");
    out
}

/// Inside the kernel lab (IPVS there): the compat files, which must be there too; elsewhere
/// `None`, said on stderr.
fn guest_files() -> Option<Vec<File>> {
    if !(vm::in_guest() && vm::ipvs_here()) {
        eprintln!("skipping: runs inside the kernel lab only");
        return None;
    }
    Some(files().expect("../shared in the kernel lab"))
}

#[test]
fn seesaw_configs_apply_on_ipvs_in_the_kernel_lab() {
    if !vm::host_can_boot() {
        return;
    }
    if files().is_none() {
        return;
    }
    vm::run_guest_tests("guest_seesaw_configs_apply_on_", Duration::from_secs(900));
}

#[test]
#[ignore = "runs inside the kernel lab (seesaw_configs_apply_on_ipvs_in_the_kernel_lab boots it)"]
fn guest_seesaw_configs_apply_on_ipvs() {
    let Some(files) = guest_files() else { return };
    for (name, wanted) in desired_all(&files, DataplaneKind::Ipvs) {
        let wanted = wanted.unwrap_or_else(|e| panic!("{name}: refused for IPVS: {e}"));
        // A namespace of its own per file: nothing carries over.
        let lab = Lab::builder()
            .node("lb1", &["192.0.2.10/24"])
            .build()
            .unwrap_or_else(|e| panic!("building the lab: {e}"));
        let n = wanted.len();
        let (first, again, shown, table) = lab
            .run_in("lb1", move || {
                let plane = || {
                    let nft = NftCli::default();
                    let listing = nft.list_text(TABLE).expect("nft list table");
                    IpvsPlane::new(Netlink::open().expect("IPVS netlink"))
                        .expect("read IPVS")
                        .with_firewall(Box::new(move |s| nft.run(s)))
                        .adopt_marks(&listing)
                };
                let first = plane().apply_desired(&wanted).expect("apply");
                let again = plane().apply_desired(&wanted).expect("apply again");
                let shown = std::process::Command::new("ipvsadm")
                    .arg("-Ln")
                    .output()
                    .expect("ipvsadm");
                let table = NftCli::default().list_text(TABLE).expect("nft list");
                (
                    first,
                    again,
                    String::from_utf8_lossy(&shown.stdout).into_owned(),
                    table,
                )
            })
            .expect("entering lb1");
        let in_kernel = shown
            .lines()
            .filter(|l| l.starts_with("TCP") || l.starts_with("UDP") || l.starts_with("FWM"))
            .count();
        adopted(
            &name,
            n,
            first.len(),
            &again,
            ("ipvsadm shows", in_kernel, &shown),
        );
        if n > 0 {
            assert!(table.contains("reject"), "{name}: the VIP filter:\n{table}");
        }
    }
}

/// Reports how `name`'s `n` services applied (`first` changes; `held` of them found back, as
/// `seen` says, with `detail`; a new plane's `again` changes) and asserts that the plane holds
/// them all and that a new plane adopts them.
fn adopted<C: std::fmt::Debug>(
    name: &str,
    n: usize,
    first: usize,
    again: &[C],
    (seen, held, detail): (&str, usize, &str),
) {
    println!(
        "{name}: {n} services, {first} changes; {seen} {held}; a new plane: {} changes",
        again.len()
    );
    assert_eq!(held, n, "{name}: {seen} {held}:\n{detail}");
    assert!(again.is_empty(), "{name}: not adopted: {again:?}");
}

#[test]
fn seesaw_configs_apply_on_nftables() {
    if !seesaw_lab::require_nft("applying Seesaw's configs on nftables") {
        return;
    }
    let Some(files) = files() else { return };
    apply_all_on_nftables(&files);
}

/// Inside the kernel lab, whose kernel has `ipip`: every file applies on nftables, the TUN
/// entries of `vservers2.pb` included.
#[test]
#[ignore = "runs inside the kernel lab (seesaw_configs_apply_on_ipvs_in_the_kernel_lab boots it)"]
fn guest_seesaw_configs_apply_on_nftables_with_tunnels() {
    let Some(files) = guest_files() else { return };
    assert_eq!(
        apply_all_on_nftables(&files),
        files.len(),
        "every file applied"
    );
}

/// Applies every file through the nftables plane in a namespace of its own, then again with a
/// new plane (0 changes: adopted). A file with TUN entries applies wherever the kernel can
/// make IPIP devices; on a kernel without them (this host's) it must be refused for exactly
/// that reason. Returns how many files applied.
fn apply_all_on_nftables(files: &[File]) -> usize {
    let mut wlc = 0;
    let mut applied = 0;
    for (name, wanted) in desired_all(files, DataplaneKind::Nftables) {
        let wanted = match wanted {
            Ok(w) => w,
            // A kernel without ipip (this host's): validation refuses the TUN entries with
            // that reason, as ncc would.
            Err(e) if !vm::in_guest() && e.contains("needs the kernel module ipip") => {
                println!("{name}: refused on this kernel (no ipip module): {e}");
                continue;
            }
            Err(e) => panic!("{name}: refused for nftables: {e}"),
        };
        wlc += wanted
            .iter()
            .filter(|s| s.scheduler == seesaw_ncc::model::Scheduler::Wlc)
            .count();
        let tun = wanted.iter().any(|s| s.mode == ForwardMode::Tun);
        let lab = Lab::builder()
            .node("lb1", &["192.0.2.10/24"])
            .build()
            .unwrap_or_else(|e| panic!("building the lab: {e}"));
        let n = wanted.len();
        let outcome = lab
            .run_in("lb1", move || {
                let plane = || {
                    NftPlane::new(NftCli::default(), Some("eth0".to_owned()))
                        .expect("read nftables")
                };
                let first = match apply(&mut plane(), &wanted) {
                    Ok(c) => c,
                    Err(e) => return Err(e.to_string()),
                };
                let fresh = plane();
                let held = fresh.current().len();
                let again = apply(&mut { fresh }, &wanted).expect("apply again");
                let devices = std::process::Command::new("ip")
                    .args(["-d", "link", "show"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                Ok((first, again, held, devices))
            })
            .expect("entering lb1");
        let (first, again, held, devices) = match outcome {
            Ok(r) => r,
            Err(e) if tun && !vm::in_guest() && e.contains("ipip module") => {
                println!("{name}: refused on this kernel (no ipip module): {e}");
                continue;
            }
            Err(e) => panic!("{name}: apply on nftables: {e}"),
        };
        adopted(&name, n, first.len(), &again, ("read back", held, ""));
        if tun {
            assert!(
                devices.contains("ipip"),
                "{name}: no IPIP device:\n{devices}"
            );
        }
        applied += 1;
    }
    assert!(wlc >= 5, "Seesaw's default WLC: only {wlc} services");
    applied
}

#[test]
fn validate_for_the_proxy_plane_refuses_dsr_and_tun() {
    let Some(files) = files() else { return };
    let engine = bins::binary("seesaw_engine").unwrap_or_else(|e| panic!("{e}"));
    for f in &files {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cluster.pb"), &f.text).expect("cluster.pb");
        std::fs::write(
            dir.path().join("seesaw.cfg"),
            format!("[cluster]\nname = t\nnode_ipv4 = {}\n", f.node),
        )
        .expect("seesaw.cfg");
        let out = std::process::Command::new(&engine)
            .arg("--config-dir")
            .arg(dir.path())
            .args(["--validate", "--plane", "proxy"])
            .output()
            .expect("seesaw_engine --validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let kernel_only = f.text.contains("DSR") || f.text.contains("TUN");
        println!(
            "{}: exit {:?}: {}",
            f.name,
            out.status.code(),
            text.lines().take(2).collect::<Vec<_>>().join(" | ")
        );
        if kernel_only {
            assert_eq!(out.status.code(), Some(78), "{}: {text}", f.name);
            assert!(
                text.contains("kernel data plane") || text.contains("needs the ipvs"),
                "{}: the reason: {text}",
                f.name
            );
        } else {
            assert!(out.status.success(), "{}: {text}", f.name);
            assert!(
                text.contains("config OK for the proxy data plane"),
                "{text}"
            );
        }
    }
}
