//! `seesaw_proxy`: the proxy relay, the userspace data plane in a process of its own. It holds
//! the listening sockets and every relayed connection, and serves ncc's `Ncc` API (`Apply`,
//! `GetState`, `Watch`) on `<run>/proxy/proxy.sock` for ncc alone; so kill -9 of ncc (or of the
//! engine, or of anything else) never breaks a relayed connection. It changes nothing in the
//! kernel: its only privilege is binding VIP ports below 1024 (CAP_NET_BIND_SERVICE).

use std::process::ExitCode;

use clap::Parser;
use seesaw_common::{args::CommonArgs, exit, paths, uds};
use seesaw_ncc::dataplane::proxy::ProxyPlane;

/// The Seesaw proxy relay.
#[derive(Debug, Parser)]
#[command(name = "seesaw_proxy", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    run().unwrap_or_else(|code| code)
}

fn run() -> Result<ExitCode, ExitCode> {
    let (args, _log) = seesaw_common::args::start_daemon::<Args>("seesaw_proxy", |a| &a.common)?;
    tracing::info!("{}", seesaw_common::build_info());
    // A socket per service and worker: take every descriptor allowed.
    match seesaw_common::files::raise_nofile_limit() {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let rt = seesaw_common::runtime_or_exit(
        tokio::runtime::Builder::new_multi_thread().worker_threads(1),
    )?;
    rt.block_on(async move {
        let socket = paths::proxy_socket(&args.common.run_dir);
        let listener = uds::bind_or_exit(&socket, "proxy relay socket")?;
        let shutdown = seesaw_common::signal::shutdown_or_exit()?;
        let plane = ProxyPlane::new();
        tracing::info!(socket = %socket.display(), capacity = %plane.capacity(), "proxy relay serving");
        Ok(match seesaw_ncc::server::run(plane, listener, shutdown).await {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                tracing::error!(error = ?e, "proxy relay failed");
                ExitCode::from(exit::SOFTWARE)
            }
        })
    })
}
