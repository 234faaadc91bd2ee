//! ncc, the network control centre: the only process that changes the network. The engine sends
//! the desired data-plane state; ncc diffs it against what the plane holds and reports the changes
//! it made. Layout:
//!
//! - [`model`]: services and destinations (domain types);
//! - [`dataplane`]: the `Dataplane` trait, the pure `diff`, and the planes: `proxy` (userspace TCP
//!   proxy, unprivileged), `nftables` and `ipvs` (kernel planes) and `fake` (in-memory, for tests);
//! - [`kernel`]: privilege detection, sysctls, and the rest of what ncc changes in the kernel;
//! - [`bgp`]: BGP announcements through GoBGP's gRPC API (the `Speaker` port and the announced set);
//! - [`relay`]: the proxy plane in its own process (`seesaw_proxy`), as ncc drives it;
//! - [`convert`]: proto ↔ domain conversion, in one place;
//! - [`lease`]: the fence: the master-only state held under a lease ha renews (sans-io);
//! - [`server`]: the gRPC API; serialises every operation.
#![deny(unsafe_code)]

pub mod bgp;
pub mod convert;
pub mod dataplane;
pub mod kernel;
pub mod lease;
pub mod model;
pub mod reconciler;
pub mod relay;
pub mod sched;
pub mod server;
#[cfg(test)]
mod test_support;

/// Why ncc could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum NccError {
    /// The request is malformed (bad address, port 0, unknown enum).
    #[error("invalid request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The plane cannot hold some service of the request.
    #[error("not supported by this data plane: {}", .0.join("; "))]
    Unsupported(Vec<String>),
    /// The plane's own state disagrees with ncc's model (a bug or outside interference).
    #[error("data plane inconsistent: {0}")]
    Inconsistent(String),
    /// The plane failed to apply a change (bind failed, kernel error).
    #[error("data plane error: {0}")]
    Plane(String),
    /// A delta whose base is not the request ncc holds (the sender sends the whole state).
    #[error("unknown base: {0}")]
    UnknownBase(String),
}

impl From<NccError> for tonic::Status {
    fn from(e: NccError) -> Self {
        match e {
            NccError::Invalid(_) => Self::invalid_argument(e.to_string()),
            NccError::Unsupported(_) => Self::failed_precondition(e.to_string()),
            NccError::Inconsistent(_) => Self::internal(e.to_string()),
            // The plane failed the request (a bind, a netlink or nft error): ncc itself is up,
            // so this is not "unavailable" to the caller.
            NccError::Plane(_) => Self::aborted(e.to_string()),
            NccError::UnknownBase(_) => Self::not_found(e.to_string()),
        }
    }
}

pub use server::run;
