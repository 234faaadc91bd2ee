//! `seesaw_ecu`: the external control unit. Two servers over one view of the engine's local API:
//!
//! - the **monitor** (plain HTTP, `[ecu] listen` in seesaw.cfg, loopback by default): read-only
//!   JSON and Prometheus `/metrics`, unauthenticated, as before;
//! - the **API** (HTTPS with rustls, configured in `ecu.cfg`): every read and write of the shell
//!   with bearer-token or client-certificate users in reader/operator/admin roles, an audit log,
//!   pools and members edited as cluster.pb, YAML import, history and rollback, and the embedded
//!   dashboard.
//!
//! Layout:
//! - [`config`]: the monitor address; [`api_config`]: `ecu.cfg` (API address, TLS, users);
//! - [`engine_view`]: the port to the engine (`EngineView`), its gRPC adapter and a test fake;
//! - [`model`]: the JSON shapes, converted from proto at the engine edge;
//! - [`http`]: the monitor router; [`api`]: the API router; [`dashboard`]: the embedded page;
//! - [`auth`], [`audit`], [`tls`]: users and roles, the audit log, TLS and client certificates;
//! - [`spec`], [`cluster_edit`], [`import`]: the pool form, structural cluster.pb edits, YAML;
//! - [`metrics`]: the OpenMetrics rendering, one fresh registry per scrape;
//! - [`series`]: the dashboard's 15-minute history (sans-io; sampled and served by
//!   [`api::series`]);
//! - [`processes`]: the watchdog's status file (supervised processes, restarts).
#![forbid(unsafe_code)]

// The fakes are test hooks; a release binary must not be able to contain them.
#[cfg(all(feature = "testing", not(debug_assertions)))]
compile_error!("the `testing` feature is for debug builds (tests) only");

pub mod api;
pub mod api_config;
pub mod audit;
pub mod auth;
pub mod cluster_edit;
pub mod config;
pub mod dashboard;
pub mod engine_view;
pub mod http;
pub mod import;
pub mod metrics;
pub mod model;
pub mod processes;
pub mod series;
pub mod spec;
pub mod tls;

use std::sync::Arc;

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

/// The HTTPS API's parts, set up by the caller.
#[derive(Debug)]
pub struct Api {
    /// The bound TLS listener.
    pub listener: tls::TlsListener,
    /// The users.
    pub users: auth::Users,
    /// The audit log.
    pub audit: audit::AuditLog,
    /// How often the dashboard's history samples the engine ([`series::DEFAULT_INTERVAL`]).
    pub series_interval: std::time::Duration,
}

/// Serves the monitor on `listener` (already bound by the caller) and, if given, the API, until
/// `shutdown` is cancelled, then lets in-flight requests finish. `process_status` is the
/// watchdog's status file (`<run-dir>/watchdog/status.json`), read on every scrape.
pub async fn run<V: EngineView + Clone>(
    listener: TcpListener,
    view: V,
    api: Option<Api>,
    process_status: Option<std::path::PathBuf>,
    shutdown: CancellationToken,
) -> Result<(), EcuError> {
    let addr = listener.local_addr().map_err(EcuError::Serve)?;
    tracing::info!("ecu monitor listening on http://{addr}");
    let api_addr = api
        .as_ref()
        .and_then(|a| axum::serve::Listener::local_addr(&a.listener).ok())
        .map_or_else(|| "off".to_owned(), |p| format!("https://{}", p.remote));
    seesaw_common::signal::on_dump("ecu", move || {
        format!("monitor http://{addr}, api {api_addr}")
    });
    let monitor = axum::serve(listener, http::router_with(view.clone(), process_status))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let api_server = async {
        let Some(api) = api else {
            return Ok(());
        };
        let addr = axum::serve::Listener::local_addr(&api.listener)
            .map_err(EcuError::Serve)?
            .remote;
        tracing::info!(
            "ecu api listening on https://{addr} ({} audit log {})",
            if api.users.is_empty() {
                "no users configured;"
            } else {
                ""
            },
            api.audit.path().display()
        );
        let series = Arc::new(std::sync::Mutex::new(series::Series::new(
            api.series_interval,
            series::WINDOW,
        )));
        let sampler = api::series::sample_engine(
            view.clone(),
            Arc::clone(&series),
            api.series_interval,
            shutdown.clone(),
        );
        let state = Arc::new(api::ApiState::new(view, api.users, api.audit));
        let app = api::router(Arc::clone(&state))
            .merge(api::series::series_routes(state, series))
            .into_make_service_with_connect_info::<tls::Peer>();
        let serve = axum::serve(api.listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        tokio::join!(serve, sampler).0.map_err(EcuError::Serve)
    };
    seesaw_common::ready::notify_ready();
    let (m, a) = tokio::join!(async { monitor.await.map_err(EcuError::Serve) }, api_server);
    seesaw_common::ready::notify_stopping();
    m.and(a)
}
