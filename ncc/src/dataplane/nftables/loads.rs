//! Where the lc/wlc re-weighting gets its connection counts: the [`LoadSource`] port and its
//! netlink implementation, [`NfnlLoads`], one `NETLINK_NETFILTER` socket (socket2, no unsafe)
//! speaking the two dumps of [`super::nfnl`]. NAT flows are counted from conntrack by the
//! destination id in their mark (one dump for every NAT service, filtered in the kernel to our
//! marks); DSR flows have no conntrack (netdev ingress), so a DSR service's flow map (client
//! address and port → destination id, or client → destination for IPv6 and persistence) is
//! dumped and its elements counted per destination. Both cost one pass over our own flows, no
//! `nft` process and no JSON; each receive waits at most [`RECV_TIMEOUT`].

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::least::Load;
use super::nfnl::{self, NFPROTO_NETDEV, NfnlDecodeError, Step};
use super::{DID_BASE, DID_MASK};
use crate::NccError;

/// How long one receive of a dump may wait for the kernel.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on the datagrams of one dump (a million flows take about ten thousand).
const MAX_DATAGRAMS: usize = 1 << 20;

/// Per-destination connection counts, read without the plane's lock.
pub trait LoadSource: Send + 'static {
    /// Adds the load of every NAT flow (conntrack entries whose mark is a destination id) to
    /// `out`, by destination id.
    fn nat(&mut self, out: &mut HashMap<u32, Load>) -> Result<(), NccError>;
    /// Adds one active connection per element of the DSR table's map `name` to `out`, by the
    /// destination id it maps to. `Ok(false)`: there is no such map (its service just left).
    fn dsr_map(&mut self, name: &str, out: &mut HashMap<u32, Load>) -> Result<bool, NccError>;
}

/// [`LoadSource`] over a `NETLINK_NETFILTER` socket, opened on first use (and again after any
/// error, so a half-read dump never confuses the next one).
#[derive(Debug, Default)]
pub struct NfnlLoads {
    sock: Option<Socket>,
    seq: u32,
    buf: Vec<u8>,
}

fn io(what: &str, e: &std::io::Error) -> NccError {
    NccError::Plane(format!("netfilter netlink {what}: {e}"))
}

/// Why a dump failed: the kernel's answer, or the socket.
enum DumpError {
    Reply(NfnlDecodeError),
    Io(NccError),
}

impl From<DumpError> for NccError {
    fn from(e: DumpError) -> Self {
        match e {
            DumpError::Reply(r) => Self::Plane(r.to_string()),
            DumpError::Io(e) => e,
        }
    }
}

impl NfnlLoads {
    fn socket(&mut self) -> Result<&Socket, NccError> {
        if self.sock.is_none() {
            let s = Socket::new(
                Domain::from(libc::AF_NETLINK),
                Type::RAW,
                Some(Protocol::from(nfnl::NETLINK_NETFILTER)),
            )
            .map_err(|e| io("socket", &e))?;
            s.set_read_timeout(Some(RECV_TIMEOUT))
                .map_err(|e| io("timeout", &e))?;
            self.sock = Some(s);
        }
        self.sock
            .as_ref()
            .ok_or_else(|| NccError::Plane("netfilter netlink socket".into()))
    }

    /// Sends `req` and feeds every reply datagram to `count` until the dump ends.
    fn dump(
        &mut self,
        req: &[u8],
        mut count: impl FnMut(&[u8]) -> Result<Step, NfnlDecodeError>,
    ) -> Result<(), DumpError> {
        let r = self.dump_inner(req, &mut count);
        if r.is_err() {
            self.sock = None;
        }
        r
    }

    fn dump_inner(
        &mut self,
        req: &[u8],
        count: &mut impl FnMut(&[u8]) -> Result<Step, NfnlDecodeError>,
    ) -> Result<(), DumpError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(1 << 16, 0);
        let sock = self.socket().map_err(DumpError::Io)?;
        sock.send(req).map_err(|e| DumpError::Io(io("send", &e)))?;
        let mut out = Err(DumpError::Io(NccError::Plane(
            "netfilter netlink: dump without end".into(),
        )));
        for _ in 0..MAX_DATAGRAMS {
            let n = match (&*sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    out = Err(DumpError::Io(io("recv", &e)));
                    break;
                }
            };
            match count(&buf[..n]) {
                Ok(Step::More) => {}
                Ok(Step::Done) => {
                    out = Ok(());
                    break;
                }
                Err(e) => {
                    out = Err(DumpError::Reply(e));
                    break;
                }
            }
        }
        self.buf = buf;
        out
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }
}

impl LoadSource for NfnlLoads {
    fn nat(&mut self, out: &mut HashMap<u32, Load>) -> Result<(), NccError> {
        let req = nfnl::conntrack_dump(self.next_seq(), DID_BASE, DID_MASK);
        Ok(self.dump(&req, |b| nfnl::count_conntrack(b, DID_BASE, DID_MASK, out))?)
    }

    fn dsr_map(&mut self, name: &str, out: &mut HashMap<u32, Load>) -> Result<bool, NccError> {
        let req = nfnl::setelem_dump(self.next_seq(), NFPROTO_NETDEV, "seesaw", name);
        match self.dump(&req, |b| nfnl::count_setelems(b, out)) {
            Ok(()) => Ok(true),
            Err(DumpError::Reply(NfnlDecodeError::Errno(libc::ENOENT))) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
