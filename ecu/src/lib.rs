//! `seesaw_ecu`: the external control unit. This first level serves a read-only JSON API and
//! Prometheus metrics over plain HTTP, from fresh reads of the engine's local API.
//!
//! Layout:
//! - [`config`]: the listen address (flag/env, `[ecu] listen` in seesaw.cfg, default);
//! - [`engine_view`]: the port to the engine (`EngineView`), its gRPC adapter and a test fake;
//! - [`model`]: the JSON shapes, converted from proto at the engine edge;
//! - [`http`]: the axum router (routes are listed there);
//! - [`metrics`]: the OpenMetrics rendering, one fresh registry per scrape.
#![forbid(unsafe_code)]

// The fakes are test hooks; a release binary must not be able to contain them.
#[cfg(all(feature = "testing", not(debug_assertions)))]
compile_error!("the `testing` feature is for debug builds (tests) only");

pub mod config;
pub mod engine_view;
pub mod http;
pub mod metrics;
pub mod model;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine_view::EngineView;

/// Why the ECU stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EcuError {
    /// The HTTP server failed.
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// Serves the HTTP API on `listener` (already bound by the caller) until `shutdown` is cancelled,
/// then lets in-flight requests finish.
pub async fn run<V: EngineView>(
    listener: TcpListener,
    view: V,
    shutdown: CancellationToken,
) -> Result<(), EcuError> {
    let addr = listener.local_addr().map_err(EcuError::Serve)?;
    tracing::info!("ecu listening on {addr}");
    seesaw_common::ready::notify_ready();
    axum::serve(listener, http::router(view))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(EcuError::Serve)?;
    seesaw_common::ready::notify_stopping();
    Ok(())
}
