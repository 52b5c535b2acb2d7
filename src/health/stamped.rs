//! A kept plain-HTTP connection whose answers are read on the tick, timed by
//! the kernel (issue 21). A socket in tokio's reactor wakes its thread for every
//! answer: epoll reports each arrival, whether or not a task waits for it, so
//! 1,000 members probed every second woke the probe thread 1,000 times a second.
//! A [`Stamped`] connection stays out of the reactor: the request is written
//! without waiting, the probe sleeps to the next tick of the grid (every stream
//! of the thread wakes at that one turn) and reads what arrived with one
//! non-blocking `recvmsg`. How long the answer took comes from the kernel's
//! receive time of the last segment read (`SO_TIMESTAMPNS`, on the same clock as
//! [`SystemTime`]), not from the tick, so it is not rounded up to the grid. An
//! answer not (all) there at the tick is awaited as before: the socket joins the
//! reactor when more must be read, and leaves it after the answer.
//!
//! The kernel stamps arriving packets only while some socket asks for it, and
//! starts doing so a moment after the first one does: an answer in that moment
//! has no time and is timed when read. So that this happens once per process
//! and not after every reconnection, one socket asking for it is kept open.

use std::io::{self, IoSliceMut, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// What is read per `recvmsg`: a whole usual answer, so that one call reads it.
const READ: usize = 4096;

thread_local! {
    /// What a read takes before it is copied onto the exchange's buffer.
    static SCRATCH: std::cell::RefCell<[u8; READ]> = const { std::cell::RefCell::new([0; READ]) };
}

/// Where the socket is.
enum Sock {
    /// Out of the reactor, non-blocking: nothing wakes the thread for it.
    Out(std::net::TcpStream),
    /// In the reactor, while an answer is awaited.
    In(TcpStream),
    /// Lost in a failed move (the connection is then dropped).
    Gone,
}

/// A kept connection read on the tick.
pub struct Stamped {
    sock: Sock,
    /// Room for the timestamp's control message, allocated once.
    cmsg: Vec<u8>,
    /// When the last request was sent, on both clocks.
    sent: (Instant, SystemTime),
    /// The kernel's time for the last segment read since, while the answer
    /// came whole before it was awaited; `None` once it had to be awaited.
    arrived: Option<SystemTime>,
}

impl Stamped {
    /// Takes `s` out of the reactor and asks the kernel to time what arrives.
    pub fn new(s: TcpStream) -> io::Result<Stamped> {
        let sock = s.into_std()?;
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true)?;
        keep_stamping();
        let now = (Instant::now(), SystemTime::now());
        Ok(Stamped { sock: Sock::Out(sock), cmsg: nix::cmsg_space!(TimeSpec), sent: now, arrived: None })
    }

    /// Writes `request`, at once when the socket takes it whole (it does, but
    /// for a full send buffer), and notes the time.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.sent = (Instant::now(), SystemTime::now());
        self.arrived = None;
        let n = match &self.sock {
            Sock::Out(s) => match (&*s).write(request) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                r => r?,
            },
            _ => 0,
        };
        if n < request.len() {
            self.join()?.write_all(&request[n..]).await?;
        }
        Ok(())
    }

    /// Reads what has arrived onto the end of `buf`, up to `limit` bytes in
    /// all, without waiting, and notes the kernel's time of its last segment.
    pub fn read_arrived(&mut self, buf: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        let Sock::Out(s) = &self.sock else { return Ok(()) };
        let fd = s.as_raw_fd();
        // Read into the thread's scratch and copied: the answer's few hundred
        // bytes, rather than zeroing 4 KiB of `buf` for each read (2.4% of the
        // probe thread's time in the profile).
        SCRATCH.with_borrow_mut(|scratch| {
            while buf.len() < limit {
                let want = READ.min(limit - buf.len());
                let iov = &mut [IoSliceMut::new(&mut scratch[..want])];
                match recvmsg::<()>(fd, iov, Some(&mut self.cmsg), MsgFlags::MSG_DONTWAIT) {
                    Ok(m) => {
                        let (n, at) = (m.bytes, kernel_time(&m));
                        buf.extend_from_slice(&scratch[..n]);
                        self.arrived = at.or(self.arrived);
                        // Less than asked for: the socket is empty (TCP hands over all
                        // it holds), and its end or more of the answer is for later.
                        if n < want {
                            return Ok(());
                        }
                    }
                    Err(Errno::EAGAIN) => return Ok(()),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }

    /// When the answer arrived, if it was read whole on the tick: its time
    /// since the request on the kernel's clock, laid on the monotonic one
    /// (and never later than now, should the wall clock have been stepped).
    pub fn answered(&self) -> Option<Instant> {
        let took = self.arrived?.duration_since(self.sent.1).unwrap_or(Duration::ZERO);
        Some((self.sent.0 + took).min(Instant::now()))
    }

    /// Takes the socket out of the reactor again, after an awaited answer.
    pub fn leave(&mut self) -> io::Result<()> {
        self.sock = match std::mem::replace(&mut self.sock, Sock::Gone) {
            Sock::In(s) => Sock::Out(s.into_std()?),
            other => other,
        };
        Ok(())
    }

    /// Puts the socket in the reactor (more must be awaited): the answer is
    /// then timed when it is read, as on any connection.
    fn join(&mut self) -> io::Result<&mut TcpStream> {
        self.arrived = None;
        self.sock = match std::mem::replace(&mut self.sock, Sock::Gone) {
            Sock::Out(s) => Sock::In(TcpStream::from_std(s)?),
            other => other,
        };
        match &mut self.sock {
            Sock::In(s) => Ok(s),
            _ => Err(io::Error::new(io::ErrorKind::NotConnected, "probe connection lost")),
        }
    }
}

/// Keeps the kernel stamping arrivals for the life of the process (see the
/// module's note): an unbound UDP socket that asks for timestamps.
fn keep_stamping() {
    static KEEPER: OnceLock<Option<socket2::Socket>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).ok()?;
        setsockopt(&s, sockopt::ReceiveTimestampns, &true).ok()?;
        Some(s)
    });
}

/// The kernel's receive time in a `recvmsg`'s control messages.
fn kernel_time<S>(m: &nix::sys::socket::RecvMsg<'_, '_, S>) -> Option<SystemTime> {
    m.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => {
            let (secs, nanos) = (u64::try_from(ts.tv_sec()).ok()?, u32::try_from(ts.tv_nsec()).ok()?);
            Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
        }
        _ => None,
    })
}

/// More of an answer than came on the tick: read in the reactor.
impl AsyncRead for Stamped {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let s = this.join()?;
        Pin::new(s).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::grid::TICK;
    use tokio::io::AsyncReadExt;

    /// A connected pair on loopback: ours (stamped) and the backend's.
    async fn pair() -> (Stamped, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (theirs, _) = listener.accept().await.unwrap();
        (Stamped::new(ours).unwrap(), theirs)
    }

    #[tokio::test]
    async fn an_answer_read_ticks_later_is_timed_when_it_arrived() {
        let (mut ours, mut theirs) = pair().await;
        // The kernel may start stamping a moment after it is first asked to.
        ours.send(b"warm").await.unwrap();
        theirs.read_exact(&mut [0u8; 4]).await.unwrap();
        theirs.write_all(b"up").await.unwrap();
        tokio::time::sleep(TICK).await;
        ours.read_arrived(&mut Vec::new(), 1024).unwrap();
        ours.send(b"ping").await.unwrap();
        let mut req = [0u8; 4];
        theirs.read_exact(&mut req).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        theirs.write_all(b"pong").await.unwrap();
        let written = Instant::now();
        // Read two ticks after the answer was written, as a late tick would.
        tokio::time::sleep(2 * TICK).await;
        let mut buf = Vec::new();
        ours.read_arrived(&mut buf, 1024).unwrap();
        let read = Instant::now();
        assert_eq!(buf, b"pong");
        let answered = ours.answered().expect("the kernel's receive time");
        assert!(answered <= written + TICK, "timed by the kernel, not the read: {:?}", read - answered);
        assert!(answered >= ours.sent.0 + Duration::from_millis(1), "{:?}", answered - ours.sent.0);
        assert!(read - answered >= TICK, "{:?}", read - answered);
    }

    #[tokio::test]
    async fn an_answer_not_all_there_is_awaited_and_timed_when_read() {
        let (mut ours, mut theirs) = pair().await;
        ours.send(b"ping").await.unwrap();
        theirs.read_exact(&mut [0u8; 4]).await.unwrap();
        theirs.write_all(b"po").await.unwrap();
        let mut buf = Vec::new();
        while buf.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await; // loopback delivers within the write
            ours.read_arrived(&mut buf, 1024).unwrap();
        }
        let backend = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            theirs.write_all(b"ng").await.unwrap();
            theirs
        });
        let mut rest = [0u8; 2];
        ours.read_exact(&mut rest).await.unwrap();
        assert_eq!((&buf[..], &rest), (&b"po"[..], b"ng"));
        assert!(ours.answered().is_none(), "an awaited answer is timed when it is read");
        // Out of the reactor again, the connection carries the next exchange.
        ours.leave().unwrap();
        let mut theirs = backend.await.unwrap();
        ours.send(b"again").await.unwrap();
        let mut req = [0u8; 5];
        theirs.read_exact(&mut req).await.unwrap();
        assert_eq!(&req, b"again");
        drop(theirs);
        let mut buf = Vec::new();
        assert_eq!(ours.read(&mut [0u8; 8]).await.unwrap(), 0, "the backend's close is seen");
        ours.read_arrived(&mut buf, 1024).unwrap();
        assert!(buf.is_empty());
    }
}
