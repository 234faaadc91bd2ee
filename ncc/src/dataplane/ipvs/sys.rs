//! The thin syscall layer of the IPVS plane: one `AF_NETLINK`/`NETLINK_GENERIC` socket
//! (socket2, no unsafe), requests encoded and replies decoded by [`super::codec`]. Each request
//! waits at most [`REPLY_TIMEOUT`] for its answer.

use std::io::Read;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::codec::{self, Reply};
use super::{IpvsKernel, IpvsService, Op};
use crate::NccError;

/// `NETLINK_GENERIC`.
const NETLINK_GENERIC: i32 = 16;
/// How long one request may wait for the kernel.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on reply datagrams per request (a dump of 10,000 services is far below it).
const MAX_DATAGRAMS: usize = 1 << 20;

/// The IPVS family over a generic-netlink socket.
#[derive(Debug)]
pub struct Netlink {
    sock: Socket,
    family: u16,
    seq: u32,
}

fn io(what: &str, e: &std::io::Error) -> NccError {
    NccError::Plane(format!("ipvs netlink {what}: {e}"))
}

impl Netlink {
    /// Opens the socket and resolves the IPVS family id. Fails when the kernel has no IPVS.
    pub fn open() -> Result<Self, NccError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(NETLINK_GENERIC)),
        )
        .map_err(|e| io("socket", &e))?;
        sock.set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| io("timeout", &e))?;
        let mut n = Self {
            sock,
            family: 0,
            seq: 1,
        };
        let replies = n.request(&codec::get_family("IPVS", 1), false)?;
        n.family = replies
            .iter()
            .find_map(|r| match r {
                Reply::Family(f) => Some(*f),
                _ => None,
            })
            .ok_or_else(|| NccError::Plane("the kernel has no IPVS family".into()))?;
        Ok(n)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and collects its replies: until `NLMSG_DONE` for a dump, until the
    /// acknowledgement (or a controller answer) otherwise. A negative errno is an error.
    fn request(&mut self, msg: &[u8], dump: bool) -> Result<Vec<Reply>, NccError> {
        self.sock.send(msg).map_err(|e| io("send", &e))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..MAX_DATAGRAMS {
            let n = (&self.sock).read(&mut buf).map_err(|e| io("recv", &e))?;
            let replies = codec::decode(&buf[..n], self.family)
                .map_err(|e| NccError::Plane(e.to_string()))?;
            for r in replies {
                match r {
                    Reply::Ack(0) if !dump => return Ok(out),
                    Reply::Ack(0) => {}
                    Reply::Ack(e) => {
                        return Err(NccError::Plane(format!(
                            "ipvs: {}",
                            std::io::Error::from_raw_os_error(e.saturating_neg())
                        )));
                    }
                    Reply::Done => return Ok(out),
                    Reply::Family(f) if !dump => return Ok(vec![Reply::Family(f)]),
                    other => out.push(other),
                }
            }
        }
        Err(NccError::Plane("ipvs: reply without end".into()))
    }
}

impl IpvsKernel for Netlink {
    fn dump(&mut self) -> Result<super::Held, NccError> {
        let seq = self.next_seq();
        let svcs: Vec<IpvsService> = self
            .request(&codec::dump_services(self.family, seq), true)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Service(s) => Some(s),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(svcs.len());
        for s in svcs {
            let seq = self.next_seq();
            let dests = self
                .request(&codec::dump_dests(self.family, seq, &s.id), true)?
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Dest(d) => Some(d),
                    _ => None,
                })
                .collect();
            out.push((s, dests));
        }
        Ok(out)
    }

    fn exec(&mut self, op: &Op) -> Result<(), NccError> {
        let (f, seq) = (self.family, self.next_seq());
        let msg = match op {
            Op::PutService { edit, svc } => codec::put_service(f, seq, *edit, svc),
            Op::DelService(id) => codec::del_service(f, seq, id),
            Op::PutDest { edit, svc, dest } => codec::put_dest(f, seq, *edit, svc, dest),
            Op::DelDest(svc, dest) => codec::del_dest(f, seq, svc, dest),
        };
        self.request(&msg, false).map(drop)
    }
}
