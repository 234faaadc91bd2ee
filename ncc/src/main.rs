//! `seesaw_ncc`: flags, logging, data-plane choice, socket, then `seesaw_ncc::run` until a signal.

use std::process::ExitCode;

use clap::Parser;
use seesaw_common::{args::CommonArgs, exit, paths, uds};
use seesaw_ncc::dataplane::ipvs::{IpvsPlane, sys::Netlink};
use seesaw_ncc::dataplane::nftables::{NftCli, NftLib, NftPlane};
use seesaw_ncc::relay::RelayPlane;

/// The Seesaw network control centre.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ncc", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[allow(clippy::print_stderr, reason = "startup errors go to the terminal")]
fn main() -> ExitCode {
    let (args, _log) = match seesaw_common::args::start_daemon("seesaw_ncc", |a: &Args| &a.common) {
        Ok(started) => started,
        Err(code) => return code,
    };
    tracing::info!("{}", seesaw_common::build_info());
    let choice =
        match seesaw_ncc::dataplane::choose_plane(&args.common.config_dir.join("seesaw.cfg")) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("seesaw_ncc: {e}");
                return ExitCode::from(exit::CONFIG);
            }
        };
    let vip_settings =
        match seesaw_ncc::kernel::vips::settings(&args.common.config_dir.join("seesaw.cfg")) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("seesaw_ncc: {e}");
                return ExitCode::from(exit::CONFIG);
            }
        };
    let rt = match seesaw_common::runtime_or_exit(&mut tokio::runtime::Builder::new_multi_thread())
    {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let listener =
            match uds::bind_or_exit(&paths::ncc_socket(&args.common.run_dir), "ncc socket") {
                Ok(l) => l,
                Err(code) => return code,
            };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let usr1 = match seesaw_common::signal::install(shutdown.clone()) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "cannot install signal handlers");
                return ExitCode::from(exit::OSERR);
            }
        };
        tokio::spawn(dump_on_signal(
            usr1,
            paths::ncc_socket(&args.common.run_dir),
            vip_settings.clone(),
            shutdown.clone(),
        ));
        tracing::info!(configured = %choice.configured, "data plane: {}", choice.kind);
        let vips = vip_manager(&vip_settings);
        let lb = vips.as_ref().and_then(|_| lb_manager(&vip_settings));
        let served = if choice.kind == "ipvs" {
            let ifaces: Vec<&str> = choice.lb_interface.iter().map(String::as_str).collect();
            seesaw_ncc::kernel::sysctl::apply(
                std::path::Path::new("/proc/sys"),
                &seesaw_ncc::kernel::sysctl::wanted(&ifaces),
            );
            // Adopts what IPVS holds: never a flush at start.
            let nft = NftCli::default();
            // The marks an earlier ncc put in the firewall table are adopted with IPVS.
            let listing = nft
                .list_text(seesaw_ncc::dataplane::ipvs::firewall::TABLE)
                .unwrap_or_else(|e| {
                    tracing::warn!("cannot read the firewall table ({e}); it is rewritten");
                    String::new()
                });
            let firewall: seesaw_ncc::dataplane::ipvs::FirewallRunner = Box::new(move |script| {
                seesaw_ncc::dataplane::nftables::NftRunner::run(&nft, script)
            });
            match Netlink::open()
                .and_then(IpvsPlane::new)
                .map(|p| p.with_firewall(firewall).adopt_marks(&listing))
            {
                Ok(plane) => {
                    seesaw_ncc::server::run_with_interfaces(plane, vips, lb, listener, shutdown)
                        .await
                }
                Err(e) => {
                    tracing::error!("cannot read the IPVS state: {e}");
                    return ExitCode::from(exit::UNAVAILABLE);
                }
            }
        } else if choice.kind == "nftables" {
            let ifaces: Vec<&str> = choice.lb_interface.iter().map(String::as_str).collect();
            seesaw_ncc::kernel::sysctl::apply(
                std::path::Path::new("/proc/sys"),
                &seesaw_ncc::kernel::sysctl::wanted(&ifaces),
            );
            // Adopts what the kernel holds: never a flush at start.
            match NftLib::open().and_then(|nft| NftPlane::new(nft, choice.lb_interface.clone())) {
                Ok(plane) => {
                    // lc/wlc: connection counts re-cut the slot tables, off the API's lock.
                    let plane = plane.with_rebalancer(
                        Box::new(seesaw_ncc::dataplane::nftables::NfnlLoads::default()),
                        seesaw_ncc::dataplane::nftables::SAMPLE_PERIOD,
                    );
                    seesaw_ncc::server::run_with_interfaces(plane, vips, lb, listener, shutdown)
                        .await
                }
                Err(e) => {
                    tracing::error!("cannot read the nftables state: {e}");
                    return ExitCode::from(exit::UNAVAILABLE);
                }
            }
        } else {
            // The proxy forwards nothing in the kernel, so only the LB interface's own settings
            // apply (ARP for the VIPs it holds), and only when ncc manages that interface.
            if let (Some(_), Some(name)) = (&lb, &choice.lb_interface) {
                seesaw_ncc::kernel::sysctl::apply(
                    std::path::Path::new("/proc/sys"),
                    &seesaw_ncc::kernel::sysctl::per_interface(&[name.as_str()]),
                );
            }
            // The relay runs in its own process (`seesaw_proxy`, started by the watchdog), so the
            // connections it carries outlive ncc.
            let relay = paths::proxy_socket(&args.common.run_dir);
            tracing::info!(relay = %relay.display(), "the proxy relay is seesaw_proxy");
            let plane = RelayPlane::connect(&relay, tokio::runtime::Handle::current());
            seesaw_ncc::server::run_with_interfaces(plane, vips, lb, listener, shutdown).await
        };
        match served {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                tracing::error!(error = ?e, "ncc failed");
                ExitCode::from(exit::SOFTWARE)
            }
        }
    })
}

/// The LB interface manager, next to the VIP manager, when seesaw.cfg names `[interface] lb`:
/// the burst on becoming master uses the VIP burst settings, the GARP loop its own thread.
fn lb_manager(s: &seesaw_ncc::kernel::vips::VipSettings) -> Option<seesaw_ncc::kernel::lb::Lb> {
    use seesaw_ncc::kernel::{garp, lb};
    let name = s.lb.clone()?;
    if name == "lo" {
        // The loopback interface (the demo, single-host set-ups) has no link to hand over.
        tracing::info!("not managing the LB interface: it is lo");
        return None;
    }
    let kernel = match lb::KernelLb::open() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("not managing the LB interface: {e}");
            return None;
        }
    };
    let periodic = match garp::GarpTicker::spawn(garp::RawSender) {
        Ok(t) => Some(Box::new(t) as Box<dyn garp::Periodic>),
        Err(e) => {
            tracing::error!("no periodic gratuitous ARP: {e}");
            None
        }
    };
    Some(lb::Lb::new(
        Box::new(kernel),
        name,
        s.node.clone(),
        Some(Box::new(garp::Garp(s.garp))),
        periodic,
        Some(std::path::PathBuf::from("/proc/sys")),
    ))
}

/// The VIP manager, when ncc may change the network and seesaw.cfg asks for VIPs. Adopts the
/// addresses a previous ncc added; never flushes.
fn vip_manager(
    s: &seesaw_ncc::kernel::vips::VipSettings,
) -> Option<seesaw_ncc::kernel::vips::Vips> {
    use seesaw_ncc::kernel::{garp::Garp, vips};
    if !s.managed {
        tracing::info!("not managing VIPs: seesaw.cfg names no [interface] lb or vip");
        return None;
    }
    if !seesaw_ncc::kernel::privileged() {
        tracing::warn!("not managing VIPs: no CAP_NET_ADMIN");
        return None;
    }
    match vips::KernelAddrs::open() {
        Ok(k) => Some(vips::Vips::new(
            Box::new(k),
            s.lb.clone(),
            s.vip_iface.clone(),
            Some(Box::new(Garp(s.garp))),
        )),
        Err(e) => {
            tracing::error!("not managing VIPs: {e}");
            None
        }
    }
}

/// Entries listed per dump line before "... and N more".
const DUMP_MAX_LISTED: usize = 50;

/// SIGUSR1: logs ncc's state — data plane kind, services and destinations, the VIPs held, the
/// BGP announcements. The state lives behind the API's lock, so it is read through ncc's own
/// socket like any client (consistent with what the engine sees, and never from the signal
/// task); the VIPs are read from the kernel with a separate rtnetlink socket.
async fn dump_on_signal(
    usr1: std::sync::Arc<tokio::sync::Notify>,
    socket: std::path::PathBuf,
    vips: seesaw_ncc::kernel::vips::VipSettings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use seesaw_proto::ncc as pb;
    loop {
        tokio::select! {
            () = usr1.notified() => {}
            () = shutdown.cancelled() => return,
        }
        let channel = uds::channel(&socket, std::time::Duration::from_secs(2));
        let mut client = pb::ncc_client::NccClient::new(channel)
            .max_decoding_message_size(uds::MAX_MESSAGE)
            .max_encoding_message_size(uds::MAX_MESSAGE);
        let plane = match client.get_state(pb::Empty {}).await {
            Ok(r) => {
                let r = r.into_inner();
                let dests: usize = r.services.iter().map(|s| s.destinations.len()).sum();
                let mut served: Vec<&str> = r.services.iter().map(|s| s.address.as_str()).collect();
                served.sort_unstable();
                served.dedup();
                format!(
                    "data plane {}: {} services, {dests} destinations, VIPs served {}",
                    r.kind,
                    r.services.len(),
                    bounded(served.iter())
                )
            }
            Err(e) => format!("data plane unavailable: {}", e.message()),
        };
        tracing::info!(actor = "ncc", state = %plane, "state");
        let held = held_vips(&vips).await;
        tracing::info!(actor = "ncc vips", state = %held, "state");
        let bgp = match client.bgp_neighbors(pb::Empty {}).await {
            Ok(r) => {
                let r = r.into_inner();
                let up = r
                    .neighbors
                    .iter()
                    .filter(|n| n.state == "ESTABLISHED")
                    .count();
                format!(
                    "neighbours {} ({up} established); announced {}",
                    r.neighbors.len(),
                    bounded(r.announced.iter())
                )
            }
            Err(e) => format!("no BGP: {}", e.message()),
        };
        tracing::info!(actor = "ncc bgp", state = %bgp, "state");
    }
}

/// The VIPs ncc holds on its interfaces now, or why they are not known.
async fn held_vips(s: &seesaw_ncc::kernel::vips::VipSettings) -> String {
    use seesaw_ncc::kernel::vips;
    if !s.managed || !seesaw_ncc::kernel::privileged() {
        return "VIPs not managed by this ncc".to_owned();
    }
    let (lb, vip_iface) = (s.lb.clone(), s.vip_iface.clone());
    let read = tokio::task::spawn_blocking(move || {
        let kernel = vips::KernelAddrs::open()?;
        vips::Vips::new(Box::new(kernel), lb, vip_iface, None).current()
    })
    .await;
    match read {
        Ok(Ok(held)) => {
            let list: Vec<String> = held.iter().map(|(i, a)| format!("{a} on {i}")).collect();
            format!("VIPs held: {}", bounded(list.iter()))
        }
        Ok(Err(e)) => format!("VIPs unknown: {e}"),
        Err(e) => format!("VIPs unknown: {e}"),
    }
}

/// `"3: a, b, c"`, at most [`DUMP_MAX_LISTED`] items then `"... and N more"`; `"none"` if empty.
fn bounded<T: std::fmt::Display>(items: impl ExactSizeIterator<Item = T>) -> String {
    let n = items.len();
    if n == 0 {
        return "none".to_owned();
    }
    let mut out: Vec<String> = items.take(DUMP_MAX_LISTED).map(|i| i.to_string()).collect();
    if n > DUMP_MAX_LISTED {
        out.push(format!("... and {} more", n - DUMP_MAX_LISTED));
    }
    format!("{n}: {}", out.join(", "))
}
