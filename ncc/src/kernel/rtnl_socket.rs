//! The `NETLINK_ROUTE` socket: one request, its replies until the acknowledgement (or the end
//! of a dump), decoded by the pure functions of [`super`].

use super::*;

/// How long one request may wait for the kernel.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on datagrams per request.
const MAX_DATAGRAMS: usize = 1 << 16;

/// A `NETLINK_ROUTE` socket in the caller's network namespace.
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// Opens the socket.
    pub fn open() -> Result<Self, NccError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(0)),
        )
        .map_err(|e| NccError::Plane(format!("rtnetlink socket: {e}")))?;
        sock.set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| NccError::Plane(format!("rtnetlink timeout: {e}")))?;
        Ok(Self { sock, seq: 0 })
    }

    /// The next sequence number.
    pub fn seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `msg` and collects replies until the acknowledgement (or `NLMSG_DONE` for a dump).
    pub fn request(&mut self, msg: &[u8], dump: bool) -> Result<Vec<RtReply>, NccError> {
        self.exchange(msg, dump)
            .map_err(|e| NccError::Plane(e.to_string()))
    }

    /// [`Rtnl::request`] keeping the kernel's errno apart, for callers that act on it.
    pub fn exchange(&mut self, msg: &[u8], dump: bool) -> Result<Vec<RtReply>, RtnlError> {
        self.sock.send(msg).map_err(RtnlError::Io)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let n = (&self.sock).read(&mut buf).map_err(RtnlError::Io)?;
            for r in decode(&buf[..n])? {
                match r {
                    RtReply::Ack(0) if !dump => return Ok(out),
                    RtReply::Ack(0) => {}
                    RtReply::Ack(e) => return Err(RtnlError::Kernel(e.saturating_neg())),
                    RtReply::Done => return Ok(out),
                    other => out.push(other),
                }
            }
        }
        Err(RtnlError::Endless)
    }
}
