//! Everything ncc does to the kernel outside the data-plane tables: privilege detection,
//! Seesaw's sysctls ([`sysctl`]), VIPs and interfaces over rtnetlink ([`rtnl`], [`vips`]), the
//! LB interface with its HA role, policy routing, VMAC and VLANs ([`lb`]) and neighbour
//! announcements ([`garp`]). Each piece has a pure core and a narrow side-effecting
//! edge.

pub mod garp;
pub mod lb;
mod lb_sync;
pub mod netlink;
pub mod rtnl;
pub mod sysctl;
pub mod uapi;
pub mod vips;

pub use seesaw_common::plane::{cap_eff, privileged};
