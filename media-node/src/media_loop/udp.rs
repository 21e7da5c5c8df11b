//! The loop's socket I/O in batches: `recvmmsg` reads up to [`RECV_BATCH`] datagrams per system
//! call, `sendmmsg` sends what one wake-up produced in as few calls as it takes. On loopback the
//! kernel's per-datagram work dominates either way (docs/field-notes.md); a batch saves the
//! system-call entry per datagram. Other systems than Linux: one `recv_from` / `send_to` each.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;

/// Datagrams read per `recvmmsg`.
pub const RECV_BATCH: usize = 32;
/// Largest datagram the loop reads (a media datagram fits a 1500-byte MTU).
const DATAGRAM_MAX: usize = 2048;

/// Datagrams to send, in order, gathered over one wake-up.
#[derive(Default)]
pub struct SendBatch {
    pending: Vec<(BytesMut, SocketAddr)>,
}

/// What a flush did: sent, and dropped (a full send buffer, an unreachable peer).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: u64,
    pub dropped: u64,
}

impl SendBatch {
    pub fn push(&mut self, datagram: BytesMut, to: SocketAddr) {
        self.pending.push((datagram, to));
    }

    /// Sends every pending datagram; a datagram the kernel refuses is dropped (counted), the
    /// rest still go.
    pub fn flush(&mut self, socket: &mio::net::UdpSocket) -> Flushed {
        let mut done = Flushed::default();
        if self.pending.is_empty() {
            return done;
        }
        sys::send_all(socket, &self.pending, &mut done);
        self.pending.clear();
        done
    }
}

/// Buffers for one `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<[u8; DATAGRAM_MAX]>,
    lens: Vec<usize>,
    from: Vec<SocketAddr>,
    n: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            bufs: vec![[0u8; DATAGRAM_MAX]; RECV_BATCH],
            lens: vec![0; RECV_BATCH],
            from: vec![SocketAddr::from(([0, 0, 0, 0], 0)); RECV_BATCH],
            n: 0,
        }
    }
}

impl RecvBatch {
    /// Reads what the socket holds, up to [`RECV_BATCH`] datagrams; `Ok(0)`: nothing more.
    pub fn read(&mut self, socket: &mio::net::UdpSocket) -> io::Result<usize> {
        self.n = 0;
        self.n = sys::recv_batch(socket, self)?;
        Ok(self.n)
    }

    /// The `i`-th datagram of the last read and its sender.
    pub fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
        (self.from[i], &self.bufs[i][..self.lens[i]])
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use bytes::BytesMut;

    use super::{Flushed, RECV_BATCH, RecvBatch};

    /// Datagrams per `sendmmsg` (the kernel's UIO_MAXIOV caps it at 1024).
    const SEND_CHUNK: usize = 64;

    fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid (empty) value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }

    fn from_raw(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in (its family says so).
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    a.sin_addr.s_addr.to_ne_bytes().into(),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6.
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    a.sin6_addr.s6_addr.into(),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    pub fn send_all(
        socket: &mio::net::UdpSocket,
        pending: &[(BytesMut, SocketAddr)],
        done: &mut Flushed,
    ) {
        let fd = socket.as_raw_fd();
        for chunk in pending.chunks(SEND_CHUNK) {
            let mut addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
                chunk.iter().map(|(_, to)| to_raw(to)).collect();
            let mut iovs: Vec<libc::iovec> = chunk
                .iter()
                .map(|(d, _)| libc::iovec {
                    iov_base: d.as_ptr() as *mut libc::c_void,
                    iov_len: d.len(),
                })
                .collect();
            // SAFETY: mmsghdr is plain data; the pointers are filled in below.
            let mut msgs: Vec<libc::mmsghdr> =
                (0..chunk.len()).map(|_| unsafe { zeroed() }).collect();
            for (i, m) in msgs.iter_mut().enumerate() {
                m.msg_hdr.msg_name = &mut addrs[i].0 as *mut _ as *mut libc::c_void;
                m.msg_hdr.msg_namelen = addrs[i].1;
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
            }
            let mut at = 0;
            while at < msgs.len() {
                // SAFETY: every mmsghdr points at live buffers of this function for its call.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        msgs[at..].as_mut_ptr(),
                        (msgs.len() - at) as libc::c_uint,
                        0,
                    )
                };
                if n > 0 {
                    at += n as usize;
                    done.sent += n as u64;
                    continue;
                }
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram was refused (full buffer, ICMP error of an earlier send):
                // drop it, send the rest.
                done.dropped += 1;
                at += 1;
            }
        }
    }

    pub fn recv_batch(socket: &mio::net::UdpSocket, b: &mut RecvBatch) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        // SAFETY: plain data, filled by the kernel.
        let mut addrs: [libc::sockaddr_storage; RECV_BATCH] = unsafe { zeroed() };
        let mut iovs: Vec<libc::iovec> = b
            .bufs
            .iter_mut()
            .map(|buf| libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            })
            .collect();
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { zeroed() };
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = &mut addrs[i] as *mut _ as *mut libc::c_void;
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_iov = &mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        loop {
            // SAFETY: the headers point at this function's buffers and the batch's.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    RECV_BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                let mut kept = 0;
                for i in 0..n as usize {
                    // A datagram from an address we cannot name is skipped.
                    if let Some(from) = from_raw(&addrs[i]) {
                        b.lens[kept] = msgs[i].msg_len as usize;
                        b.from[kept] = from;
                        if kept != i {
                            let (lo, hi) = b.bufs.split_at_mut(i);
                            lo[kept][..b.lens[kept]].copy_from_slice(&hi[0][..b.lens[kept]]);
                        }
                        kept += 1;
                    }
                }
                return Ok(kept);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use bytes::BytesMut;

    use super::{Flushed, RecvBatch};

    pub fn send_all(
        socket: &mio::net::UdpSocket,
        pending: &[(BytesMut, SocketAddr)],
        done: &mut Flushed,
    ) {
        for (d, to) in pending {
            match socket.send_to(d, *to) {
                Ok(_) => done.sent += 1,
                Err(_) => done.dropped += 1,
            }
        }
    }

    pub fn recv_batch(socket: &mio::net::UdpSocket, b: &mut RecvBatch) -> io::Result<usize> {
        let mut n = 0;
        while n < b.bufs.len() {
            match socket.recv_from(&mut b.bufs[n]) {
                Ok((len, from)) => {
                    b.lens[n] = len;
                    b.from[n] = from;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_in_order_and_comes_back_with_its_senders() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let a = mio::net::UdpSocket::from_std(a);
        let b = mio::net::UdpSocket::from_std(b);
        let mut out = SendBatch::default();
        for i in 0..100u8 {
            out.push(BytesMut::from(&[i; 3][..]), b_addr);
        }
        assert_eq!(
            out.flush(&a),
            Flushed {
                sent: 100,
                dropped: 0
            }
        );
        assert_eq!(out.flush(&a), Flushed::default(), "sent once");
        let mut got = Vec::new();
        let mut rx = RecvBatch::default();
        // Loopback delivers at once; a few reads of at most RECV_BATCH each.
        for _ in 0..50 {
            let n = rx.read(&b).unwrap();
            for i in 0..n {
                let (from, d) = rx.get(i);
                assert_eq!(from, a_addr);
                got.push(d.to_vec());
            }
            if got.len() == 100 {
                break;
            }
            if n == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let want: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 3]).collect();
        assert_eq!(got, want);
        assert_eq!(rx.read(&b).unwrap(), 0, "nothing more");
    }
}
