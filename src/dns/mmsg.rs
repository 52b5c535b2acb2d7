//! Batched UDP I/O with `recvmmsg(2)` and `sendmmsg(2)`: one system call receives
//! up to [`BATCH`] queries, and one sends all their answers.
//!
//! With `memory`, the only module with `unsafe` code (the crate denies it elsewhere), for a
//! measured gain: the reference benchmark showed the kernel taking about 65% of the
//! time per query with one syscall per datagram (see bench/RESULTS.md). The message
//! headers point into buffers owned by [`Batch`], allocated once; boxed slices never
//! move their contents, so the pointers stay valid for the life of the `Batch`.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: larger queries arrive truncated and are dropped.
pub const RECV_SIZE: usize = 4096;

pub struct Batch {
    bufs: Box<[[u8; RECV_SIZE]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    /// Held only so that the headers' iovec pointers stay valid.
    _iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    out_iovs: Box<[libc::iovec]>,
    out_hdrs: Box<[libc::mmsghdr]>,
}

// SAFETY: the raw pointers inside point only into this struct's own heap buffers.
unsafe impl Send for Batch {}

impl Batch {
    pub fn new() -> Batch {
        let mut bufs = vec![[0u8; RECV_SIZE]; BATCH].into_boxed_slice();
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut addrs: Box<[libc::sockaddr_storage]> = (0..BATCH).map(|_| unsafe { zeroed() }).collect();
        let mut iovs: Box<[libc::iovec]> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: RECV_SIZE }).collect();
        let hdrs: Box<[libc::mmsghdr]> = (0..BATCH)
            .map(|i| {
                // SAFETY: as above.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let out_iovs: Box<[libc::iovec]> =
            (0..BATCH).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect();
        // SAFETY: as above.
        let out_hdrs: Box<[libc::mmsghdr]> = (0..BATCH).map(|_| unsafe { zeroed() }).collect();
        Batch { bufs, addrs, _iovs: iovs, hdrs, out_iovs, out_hdrs }
    }

    /// Waits for at least one datagram and takes up to `BATCH`. Returns the count.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs` holds BATCH headers whose name and iovec pointers point into
        // `addrs`, `iovs` and `bufs`, all alive and unaliased for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last receive, or `None` if it was truncated.
    pub fn packet(&self, i: usize) -> Option<&[u8]> {
        let h = &self.hdrs[i];
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        Some(&self.bufs[i][..(h.msg_len as usize).min(RECV_SIZE)])
    }

    /// The sender of datagram `i`.
    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        let ss = &self.addrs[i];
        match ss.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET), and
                // sockaddr_storage is large and aligned enough for it.
                let sin = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Sends `answers[k].1` to the sender of datagram `answers[k].0`, all in as few
    /// `sendmmsg` calls as the kernel allows. Errors on one datagram skip it.
    pub fn send(&mut self, fd: RawFd, answers: &[(usize, &[u8])]) {
        let count = answers.len().min(BATCH);
        for (k, (i, bytes)) in answers.iter().take(count).enumerate() {
            self.out_iovs[k] = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
            let h = &mut self.out_hdrs[k];
            h.msg_hdr.msg_name = (&mut self.addrs[*i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = self.hdrs[*i].msg_hdr.msg_namelen;
            h.msg_hdr.msg_iov = &mut self.out_iovs[k];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
        }
        let mut sent = 0usize;
        while sent < count {
            // SAFETY: headers [sent, count) point at addresses in `addrs` and at iovecs
            // whose buffers are borrowed from `answers` for the duration of this call.
            let n =
                unsafe { libc::sendmmsg(fd, self.out_hdrs[sent..].as_mut_ptr(), (count - sent) as libc::c_uint, 0) };
            if n <= 0 {
                // Skip the datagram the kernel refused (e.g. an unreachable peer).
                sent += 1;
            } else {
                sent += n as usize;
            }
        }
    }

    /// The client address of datagram `i` (for policies and limits).
    pub fn peer_ip(&self, i: usize) -> Option<IpAddr> {
        self.peer(i).map(|a| a.ip())
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}
