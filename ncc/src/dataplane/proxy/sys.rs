//! The few Linux syscalls the proxy needs that std and tokio do not wrap: `pipe2` + `splice` for
//! the zero-copy TCP relay, `recvmmsg`/`sendmmsg`, UDP GSO (`UDP_SEGMENT`) and GRO (`UDP_GRO`)
//! for batched UDP, and `epoll` for the UDP workers. Every `unsafe` block of the proxy is here,
//! each with its `SAFETY:` argument; callers see safe functions over borrowed or owned file
//! descriptors.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A non-blocking socket of `addr`'s family with `SO_REUSEADDR` and `SO_REUSEPORT` set, not yet
/// bound: every worker binds its own socket of a service's address.
pub(crate) fn reuse_port_socket(
    addr: SocketAddr,
    ty: socket2::Type,
    protocol: socket2::Protocol,
) -> io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), ty, Some(protocol))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Grows a pipe's buffer to `bytes` (best effort: the kernel caps it at `fs.pipe-max-size` and
/// at the user's pipe page budget); returns the size it has.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int argument; the fd is borrowed and so open.
    let r = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, want) })?;
    Ok(r as usize)
}

/// Receives into `buf` without blocking (`WouldBlock` when there is nothing to read).
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the fd is borrowed and so open.
    cvt_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })
}

/// Sends `buf` without blocking (`WouldBlock` when the socket buffer is full); never raises
/// SIGPIPE.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; the fd is borrowed and so open.
    cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// Moves up to `len` bytes from `from` to `to` without copying through userspace; one of them
/// must be a pipe. Non-blocking: `WouldBlock` when there is nothing to move or no room.
pub(crate) fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed, hence open for the call; null offsets mean "the
    // current position", which is what sockets and pipes require.
    cvt_size(unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    })
}

/// Converts a socket address to its C form.
pub(crate) fn sockaddr_from(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Converts a C socket address (as filled by the kernel) to std's.
pub(crate) fn sockaddr_to(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in>()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Buffers and headers for batched UDP receive or send: `n` slots of `size` bytes each.
pub(crate) struct Batch {
    bufs: Vec<u8>,
    size: usize,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Per slot, room for the `UDP_GRO` control message of a receive (8-byte aligned).
    controls: Vec<[u64; 4]>,
    /// Per slot after a receive: the size of the datagrams coalesced into it by GRO (the last
    /// may be shorter), or its length when it holds one datagram.
    segs: Vec<usize>,
    /// Slots in use (send side).
    pub(crate) len: usize,
}

// SAFETY: the raw pointers inside `iovs`/`hdrs` point only into this struct's own heap buffers
// and are rebuilt before every syscall; nothing is shared with another thread.
unsafe impl Send for Batch {}

impl Batch {
    /// A batch of `n` slots of `size` bytes.
    pub(crate) fn new(n: usize, size: usize) -> Self {
        Self {
            bufs: vec![0; n * size],
            size,
            lens: vec![0; n],
            // SAFETY: all-zero sockaddr_storage is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            addr_lens: vec![0; n],
            iovs: Vec::with_capacity(n),
            hdrs: Vec::with_capacity(n),
            controls: vec![[0; 4]; n],
            segs: vec![0; n],
            len: 0,
        }
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// The payload of slot `i`.
    pub(crate) fn payload(&self, i: usize) -> &[u8] {
        &self.bufs[i * self.size..i * self.size + self.lens[i]]
    }

    /// The peer address of slot `i` (after a receive).
    pub(crate) fn addr(&self, i: usize) -> Option<SocketAddr> {
        sockaddr_to(&self.addrs[i])
    }

    /// Appends a datagram to send (to `to`, or to the connected peer when `None`). Returns
    /// false when the batch is full or the payload too big.
    pub(crate) fn push(&mut self, payload: &[u8], to: Option<SocketAddr>) -> bool {
        let i = self.len;
        if i >= self.capacity() || payload.len() > self.size {
            return false;
        }
        self.bufs[i * self.size..i * self.size + payload.len()].copy_from_slice(payload);
        self.lens[i] = payload.len();
        match to {
            Some(a) => {
                let (ss, l) = sockaddr_from(a);
                self.addrs[i] = ss;
                self.addr_lens[i] = l;
            }
            None => self.addr_lens[i] = 0,
        }
        self.len += 1;
        true
    }

    fn build(&mut self, n: usize, recv: bool) {
        self.iovs.clear();
        self.hdrs.clear();
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            self.iovs.push(libc::iovec {
                // SAFETY: slot i lies inside `bufs` (n ≤ capacity).
                iov_base: unsafe { base.add(i * self.size) }.cast(),
                iov_len: if recv { self.size } else { self.lens[i] },
            });
        }
        for i in 0..n {
            // SAFETY: an all-zero msghdr is valid; the fields that matter are set below.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_iov = &raw mut self.iovs[i];
            h.msg_iovlen = 1;
            if recv {
                h.msg_control = self.controls[i].as_mut_ptr().cast();
                h.msg_controllen = size_of::<[u64; 4]>();
            }
            if recv || self.addr_lens[i] > 0 {
                h.msg_name = (&raw mut self.addrs[i]).cast();
                h.msg_namelen = if recv {
                    size_of::<libc::sockaddr_storage>() as libc::socklen_t
                } else {
                    self.addr_lens[i]
                };
            }
            self.hdrs.push(libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            });
        }
    }

    /// Receives up to `capacity()` datagrams without blocking; returns how many (slots 0..n).
    /// Datagrams larger than a slot are truncated by the kernel and reported with their full
    /// length clamped to the slot, so callers see at most `size` bytes.
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let cap = self.capacity();
        self.build(cap, true);
        // SAFETY: `hdrs` holds `cap` headers whose iovecs and names point into this batch's
        // buffers, which outlive the call; the fd is borrowed and so open.
        let n = cvt(unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                cap as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        })? as usize;
        for i in 0..n {
            let len = (self.hdrs[i].msg_len as usize).min(self.size);
            self.lens[i] = len;
            self.segs[i] =
                gro_segment(&self.hdrs[i].msg_hdr).map_or(len, |g| g.clamp(1, len.max(1)));
        }
        Ok(n)
    }

    /// The datagram size of slot `i` after a receive: smaller than its length when the kernel
    /// coalesced several datagrams of one sender into it (GRO).
    pub(crate) fn segment(&self, i: usize) -> usize {
        self.segs[i]
    }

    /// Sends slots `from..to` as ONE UDP GSO message (`UDP_SEGMENT`): the kernel cuts the
    /// concatenated payload into datagrams of `seg` bytes (the last may be shorter), so the
    /// whole run crosses the socket layer once. Every slot but the last must be `seg` bytes long
    /// and the run at most 64 slots and 64 KB (callers check). To `dest`, or to the connected
    /// peer when `None`. All or nothing: `Ok` means every datagram was taken.
    pub(crate) fn send_gso(
        &mut self,
        fd: BorrowedFd<'_>,
        from: usize,
        to: usize,
        seg: u16,
        dest: Option<SocketAddr>,
    ) -> io::Result<()> {
        let to = to.min(self.len);
        if from >= to {
            return Ok(());
        }
        self.iovs.clear();
        let base = self.bufs.as_mut_ptr();
        for i in from..to {
            self.iovs.push(libc::iovec {
                // SAFETY: slot i lies inside `bufs` (i < len ≤ capacity).
                iov_base: unsafe { base.add(i * self.size) }.cast(),
                iov_len: self.lens[i],
            });
        }
        // SAFETY: an all-zero msghdr is valid; the fields that matter are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = self.iovs.as_mut_ptr();
        msg.msg_iovlen = self.iovs.len();
        let mut name = dest.map(sockaddr_from);
        if let Some((ss, len)) = name.as_mut() {
            msg.msg_name = std::ptr::from_mut(ss).cast();
            msg.msg_namelen = *len;
        }
        // Room for one cmsghdr carrying a u16, 8-byte aligned.
        let mut control = [0u64; 4];
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
        debug_assert!(space <= size_of_val(&control));
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` writable, aligned bytes, enough for one header
        // and a u16 (checked above), so CMSG_FIRSTHDR is non-null and CMSG_DATA is in bounds.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&raw const msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
        }
        // SAFETY: every pointer in `msg` (iovecs into this batch's buffers, the name, the
        // control buffer) is valid for the call; the fd is borrowed and so open.
        cvt_size(unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) })?;
        Ok(())
    }

    /// The length of slot `i`'s payload.
    pub(crate) fn slot_len(&self, i: usize) -> usize {
        self.lens[i]
    }

    /// Sends slots `from..self.len` without blocking; returns how many the kernel took.
    pub(crate) fn send(&mut self, fd: BorrowedFd<'_>, from: usize) -> io::Result<usize> {
        let n = self.len;
        if from >= n {
            return Ok(0);
        }
        self.build(n, false);
        // SAFETY: headers `from..n` point into this batch's buffers, which outlive the call.
        let sent = cvt(unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr().add(from),
                (n - from) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        })?;
        Ok(sent as usize)
    }
}

/// The `UDP_GRO` segment size a receive reported in its control messages, if any.
fn gro_segment(h: &libc::msghdr) -> Option<usize> {
    if h.msg_controllen == 0 || h.msg_control.is_null() {
        return None;
    }
    // SAFETY: after recvmmsg, msg_control/msg_controllen describe the control messages the
    // kernel wrote into this slot's buffer; CMSG_FIRSTHDR/CMSG_NXTHDR stay within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(v).ok().filter(|&v| v > 0);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Asks the kernel to coalesce datagrams of one sender arriving together into one receive
/// (`UDP_GRO`); their size comes back per receive. Fails on kernels without it.
pub(crate) fn enable_gro(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid int for the option; the fd is borrowed and so open.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// An epoll instance.
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    /// A new epoll instance.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 succeeded, so `fd` is open and ours.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for input, level-triggered, reporting `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid event; closing `fd` later removes it from the set.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` for events; returns the tokens of ready descriptors.
    pub(crate) fn wait(&self, out: &mut Vec<u64>, timeout_ms: i32) -> io::Result<()> {
        let mut evs: [MaybeUninit<libc::epoll_event>; 256] = [MaybeUninit::uninit(); 256];
        // SAFETY: the kernel writes at most 256 events into `evs`.
        let n = unsafe {
            libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr().cast(), 256, timeout_ms)
        };
        out.clear();
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in &evs[..n as usize] {
            // SAFETY: the first n entries were written by epoll_wait.
            let ev = unsafe { ev.assume_init() };
            out.push(ev.u64);
        }
        Ok(())
    }
}
