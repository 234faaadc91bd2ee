//! `seesaw_ncc`: flags, logging, data-plane choice, socket, then `seesaw_ncc::run` until a signal.

use std::process::ExitCode;

use clap::Parser;
use seesaw_common::{args::CommonArgs, exit, paths, uds};
use seesaw_ncc::dataplane::ipvs::{IpvsPlane, sys::Netlink};
use seesaw_ncc::dataplane::nftables::{NftCli, NftPlane};
use seesaw_ncc::dataplane::proxy::ProxyPlane;

/// The Seesaw network control centre.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ncc", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[allow(clippy::print_stderr, reason = "startup errors go to the terminal")]
fn main() -> ExitCode {
    let args = match Args::try_parse_from(seesaw_common::args::normalize_go_flags(std::env::args()))
    {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let _log = match seesaw_common::logging::init("seesaw_ncc", args.common.log_dir.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("seesaw_ncc: {e}");
            return ExitCode::from(exit::USAGE);
        }
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seesaw_ncc: cannot start runtime: {e}");
            return ExitCode::from(exit::OSERR);
        }
    };
    rt.block_on(async move {
        let listener = match uds::bind_exclusive(&paths::ncc_socket(&args.common.run_dir)) {
            Ok(l) => l,
            Err(e @ uds::BindError::AlreadyRunning(_)) => {
                tracing::error!("{e}");
                return ExitCode::from(exit::UNAVAILABLE);
            }
            Err(e) => {
                tracing::error!(error = ?e, "cannot bind the ncc socket");
                return ExitCode::from(exit::OSERR);
            }
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        if let Err(e) = seesaw_common::signal::install(shutdown.clone()) {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(exit::OSERR);
        }
        tracing::info!(configured = %choice.configured, "data plane: {}", choice.kind);
        let vips = vip_manager(&vip_settings);
        let served = if choice.kind == "ipvs" {
            let ifaces: Vec<&str> = choice.lb_interface.iter().map(String::as_str).collect();
            seesaw_ncc::kernel::sysctl::apply(
                std::path::Path::new("/proc/sys"),
                &seesaw_ncc::kernel::sysctl::wanted(&ifaces),
            );
            // Adopts what IPVS holds: never a flush at start.
            match Netlink::open().and_then(IpvsPlane::new) {
                Ok(plane) => {
                    seesaw_ncc::server::run_with_vips(plane, vips, listener, shutdown).await
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
            match NftPlane::new(NftCli::default(), choice.lb_interface.clone()) {
                Ok(plane) => {
                    seesaw_ncc::server::run_with_vips(plane, vips, listener, shutdown).await
                }
                Err(e) => {
                    tracing::error!("cannot read the nftables state: {e}");
                    return ExitCode::from(exit::UNAVAILABLE);
                }
            }
        } else {
            seesaw_ncc::server::run_with_vips(ProxyPlane::new(), vips, listener, shutdown).await
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
