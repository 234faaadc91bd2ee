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
use super::nfnl::{self, NfnlDecodeError, Step};
use super::{DID_BASE, DID_MASK};
use crate::NccError;
use crate::kernel::uapi::{NETLINK_NETFILTER, NFPROTO_NETDEV};

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
                Some(Protocol::from(NETLINK_NETFILTER)),
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

    /// A source whose socket is opened now, in this thread's network namespace (a lazily
    /// opened one belongs to the namespace of the thread that first uses it).
    pub fn opened() -> Result<Self, NccError> {
        let mut s = Self::default();
        s.socket()?;
        Ok(s)
    }

    /// Commits one nf_tables batch ([`super::wire::Batch`]; `last`: the sequence number of
    /// its last message) and waits for the kernel's answer: the whole transaction applied, or
    /// none of it and the error of the first message refused.
    pub fn transact(&mut self, batch: &[u8], last: u32) -> Result<(), NccError> {
        self.dump(batch, |b| nfnl::read_acks(b, last))
            .map_err(|e| match e {
                DumpError::Reply(r) => {
                    NccError::Plane(format!("nf_tables refused the transaction: {r}"))
                }
                DumpError::Io(e) => e,
            })
    }

    /// The next sequence number of a request or batch.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Reserves `n` sequence numbers after [`Self::next_seq`] (a batch's messages).
    pub fn reserve(&mut self, n: u32) {
        self.seq = self.seq.wrapping_add(n);
    }

    /// The nf_tables ruleset generation of this network namespace.
    pub fn generation(&mut self) -> Result<u32, NccError> {
        let req = nfnl::getgen(self.next_seq());
        let mut generation = None;
        self.dump(&req, |b| nfnl::read_gen(b, &mut generation))?;
        generation
            .ok_or_else(|| NccError::Plane("netfilter netlink: no generation in the reply".into()))
    }

    /// The conntrack entry of one connection through our NAT table (`seesaw trace`), if any.
    pub fn find_flow(&mut self, t: &nfnl::Tuple) -> Result<Option<nfnl::FoundFlow>, NccError> {
        let req = nfnl::conntrack_dump(self.next_seq(), DID_BASE, DID_MASK);
        let mut found = None;
        self.dump(&req, |b| nfnl::find_flow(b, t, &mut found))?;
        Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nft(script: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success(), "nft -f: {script}");
    }

    /// The real kernel, in a private network namespace: a marked loopback connection is one
    /// active NAT load of its destination id, and a DSR map's elements count per value.
    #[test]
    #[allow(
        clippy::print_stderr,
        reason = "the skip notice is for the person running the tests"
    )]
    fn counts_conntrack_and_map_elements_in_a_private_netns() {
        if !nix::unistd::geteuid().is_root()
            || std::process::Command::new("nft")
                .arg("--version")
                .output()
                .is_err()
        {
            eprintln!("skipping: counting from the kernel needs root and nft");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .expect("ip link");
            nft("add table inet t\n\
                 add chain inet t o { type filter hook output priority 0; policy accept; }\n\
                 add rule inet t o tcp dport 4711 ct mark set 0x5ee00007\n\
                 add table netdev seesaw\n\
                 add map netdev seesaw k1t300f { type ipv4_addr . inet_service : mark; \
                 flags dynamic,timeout; timeout 300s; }\n\
                 add element netdev seesaw k1t300f { 192.0.2.1 . 1000 : 0x5ee00001, \
                 192.0.2.1 . 1001 : 0x5ee00001, 192.0.2.2 . 1000 : 0x5ee00002 }\n");
            let listener = std::net::TcpListener::bind("127.0.0.1:4711").expect("listen");
            let _client = std::net::TcpStream::connect("127.0.0.1:4711").expect("connect");
            let _server = listener.accept().expect("accept");
            let mut src = NfnlLoads::default();
            let mut nat = HashMap::new();
            src.nat(&mut nat).expect("conntrack dump");
            assert_eq!(
                nat.get(&0x5ee0_0007),
                Some(&Load {
                    active: 1,
                    inactive: 0
                }),
                "{nat:?}"
            );
            assert_eq!(nat.len(), 1, "only our marks: {nat:?}");
            let mut dsr = HashMap::new();
            assert!(src.dsr_map("k1t300f", &mut dsr).expect("set dump"));
            assert_eq!(dsr[&0x5ee0_0001].active, 2);
            assert_eq!(dsr[&0x5ee0_0002].active, 1);
            assert!(!src.dsr_map("k9t300f", &mut dsr).expect("absent map"));
            // The socket survives an absent map.
            assert!(src.dsr_map("k1t300f", &mut dsr).expect("set dump again"));
        })
        .join()
        .expect("netns thread");
    }
}
