//! Unix-socket plumbing for tonic: exclusive bind (a live owner makes us refuse, a stale file is
//! removed), the incoming stream for `serve_with_incoming_shutdown`, and a client channel.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process answers on the socket.
    #[error("another instance is already serving {0} (stop it first)")]
    AlreadyRunning(PathBuf),
    /// Creating the directory, removing the stale file or binding failed.
    #[error("cannot bind {path}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The largest gRPC message any Seesaw process sends or takes, in bytes (tonic's default is
/// 4 MiB to decode). At 10,000 vservers × 10 backends the engine's whole desired state is about
/// 7 MB and its check list and status larger still, so every server and client of ours sets
/// this on both directions: a cluster that validates must never be refused by a size limit.
pub const MAX_MESSAGE: usize = 512 << 20;

/// [`bind_exclusive`] for a daemon's own socket, or the failure logged and the exit code to
/// leave with: [`crate::exit::UNAVAILABLE`] while another instance serves it, else
/// [`crate::exit::OSERR`]. `what` names the socket in the log.
pub fn bind_or_exit(path: &Path, what: &str) -> Result<UnixListener, std::process::ExitCode> {
    bind_exclusive(path).map_err(|e| {
        let code = match e {
            BindError::AlreadyRunning(_) => {
                tracing::error!("{e}");
                crate::exit::UNAVAILABLE
            }
            _ => {
                tracing::error!(error = ?e, "cannot bind the {what}");
                crate::exit::OSERR
            }
        };
        std::process::ExitCode::from(code)
    })
}

/// Binds `path`, creating its directory with mode 0770. If the file exists and a process accepts
/// connections on it, fails with [`BindError::AlreadyRunning`]; if nobody answers, the stale file is
/// removed first and the new socket gets its owner, group and mode. Must be called inside a tokio runtime.
pub fn bind_exclusive(path: &Path) -> Result<UnixListener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).map_err(io_err)?;
    }
    let mut before = None;
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::AlreadyRunning(path.to_owned())),
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "removing stale socket");
                before = crate::files::Ownership::of(path);
                std::fs::remove_file(path).map_err(io_err)?;
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    // A restarted daemon keeps the owner, group and mode its socket had (a group an operator
    // gave access keeps it); a first start makes it 0660.
    match before {
        Some(o) => o.apply(path).map_err(io_err)?,
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(io_err)?,
    }
    Ok(listener)
}

/// The connection stream tonic's `serve_with_incoming*` takes.
pub fn incoming(listener: UnixListener) -> UnixListenerStream {
    UnixListenerStream::new(listener)
}

/// A lazily connecting tonic channel to the socket at `path`: it does not fail if the server is not
/// up yet, and reconnects after the server restarts. Every call gets `timeout`.
pub fn channel(path: &Path, timeout: Duration) -> Channel {
    let path = path.to_owned();
    Endpoint::from_static("http://seesaw.local")
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn live_socket_refuses_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x").join("x.sock");
        let first = bind_exclusive(&path).unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o770);
        // A listener that exists accepts connections (the kernel queues them): refuse.
        match bind_exclusive(&path) {
            Err(BindError::AlreadyRunning(p)) => assert_eq!(p, path),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        // The file is left behind but nobody listens: it is stale and gets replaced.
        assert!(path.exists());
        let _second = bind_exclusive(&path).unwrap();
    }

    /// A restarted daemon recreates its socket with the owner, group and mode an operator gave
    /// the old one (a group granted access keeps it).
    #[tokio::test]
    #[allow(clippy::print_stderr, reason = "a skipped part must say why")]
    async fn a_replaced_socket_keeps_its_group_and_mode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sock");
        let first = bind_exclusive(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o660);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&path, None, Some(4242)).unwrap();
        } else {
            eprintln!("SKIPPED (group part): needs root to chgrp");
        }
        drop(first);
        let _second = bind_exclusive(&path).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.mode() & 0o777, 0o620);
        if root {
            assert_eq!(m.gid(), 4242);
        }
    }
}
