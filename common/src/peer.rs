//! Who is calling over a Unix socket, from the kernel's `SO_PEERCRED`, never from the request.
//! Root and the user that owns the serving process are trusted; everybody else may only read.

use tonic::Request;
use tonic::transport::server::UdsConnectInfo;

/// How much a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Root or the socket owner: may read and write.
    Trusted,
    /// Any other local user that can reach the socket: read-only.
    ReadOnly,
}

/// Decides the caller's trust from the connection's peer credentials.
/// A request without credentials (not a Unix socket) is read-only.
pub fn trust_of<T>(req: &Request<T>) -> Trust {
    let uid = req
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .map(|cred| cred.uid());
    match uid {
        Some(uid) if uid == 0 || uid == nix::unistd::geteuid().as_raw() => Trust::Trusted,
        _ => Trust::ReadOnly,
    }
}

/// Returns `PermissionDenied` unless the caller is trusted.
pub fn require_trusted<T>(req: &Request<T>) -> Result<(), tonic::Status> {
    match trust_of(req) {
        Trust::Trusted => Ok(()),
        Trust::ReadOnly => Err(tonic::Status::permission_denied(
            "this operation needs root or the socket owner",
        )),
    }
}
