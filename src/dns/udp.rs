//! The UDP path: one SO_REUSEPORT socket per worker thread, each running a tight
//! receive-answer-send loop over reused buffers, batched with recvmmsg/sendmmsg
//! (up to 32 datagrams per system call). The kernel spreads datagrams over
//! the sockets; nothing is shared between workers except the snapshot pointer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use super::Responder;
use super::cookie::{CookieCheck, Cookies};
use super::mmsg::{BATCH, Batch};
use super::rrl::{Rrl, Verdict};
use super::update;
use super::updater::Updater;
use crate::counters::WorkerStats;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;
use std::os::fd::AsRawFd;

/// Binds one UDP socket with SO_REUSEPORT at `addr`.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    // Generous buffers absorb bursts while a worker is busy.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// What a worker answers with besides the snapshot: rate limiting, cookies, and
/// where UPDATE messages go.
#[derive(Clone, Default)]
pub struct UdpSettings {
    pub rrl: Option<Arc<Rrl>>,
    pub cookies: Option<Arc<Cookies>>,
    /// `None`: UPDATE is answered NOTIMP like any opcode not served.
    pub updater: Option<Updater>,
}

/// Starts a worker thread serving `socket` until the server stops.
pub fn spawn_worker(
    socket: UdpSocket,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    shutdown: Shutdown,
    seed: u64,
    settings: UdpSettings,
) -> io::Result<JoinHandle<()>> {
    let UdpSettings { rrl, cookies, updater } = settings;
    // UPDATE replies are sent by the task that waits for the writer.
    let reply_socket = Arc::new(socket.try_clone()?);
    std::thread::Builder::new().name("lbdns-udp".into()).spawn(move || {
        let fd = socket.as_raw_fd();
        let mut responder = Responder::new(seed).with_cookies(cookies);
        let mut batch = Batch::new();
        let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(4096)).collect();
        let mut answered = [false; BATCH];
        while !shutdown.is_shutdown() {
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            let snap = snapshot.load();
            for i in 0..n {
                stats.query(false);
                answered[i] = false;
                let (Some(packet), Some(peer)) = (batch.packet(i), batch.peer_ip(i)) else {
                    stats.dropped();
                    continue;
                };
                if let (true, Some(u), Some(from)) = (update::is_update(packet), &updater, batch.peer(i)) {
                    // Answered later, by the writer's reply; never waited for here.
                    u.spawn_udp(packet, from, &reply_socket, &stats);
                    continue;
                }
                match responder.respond(&snap, packet, peer, false, &mut outs[i]) {
                    Some(outcome) => {
                        answered[i] = finish(&mut responder, outcome, rrl.as_deref(), peer, &stats, &mut outs[i]);
                    }
                    None => stats.dropped(),
                }
            }
            let mut list: [(usize, &[u8]); BATCH] = [(0, &[]); BATCH];
            let mut m = 0;
            for i in 0..n {
                if answered[i] {
                    list[m] = (i, &outs[i]);
                    m += 1;
                }
            }
            batch.send(fd, &list[..m]);
        }
    })
}

/// Applies rate limiting to the reply `respond` wrote into `out` (sent whole,
/// slipped, made BADCOOKIE or dropped), then signs it if the query was signed.
/// Whether a reply is to be sent.
fn finish(
    responder: &mut Responder,
    outcome: super::Outcome,
    rrl: Option<&Rrl>,
    peer: std::net::IpAddr,
    stats: &WorkerStats,
    out: &mut Vec<u8>,
) -> bool {
    // A valid server cookie proves the address is not spoofed.
    let verdict = match rrl {
        Some(r) if outcome.cookie != CookieCheck::Valid => r.check(peer),
        _ => Verdict::Send,
    };
    match verdict {
        Verdict::Send => stats.response(outcome.rcode, outcome.truncated),
        Verdict::Slip if outcome.cookie == CookieCheck::ClientOnly => {
            // It speaks cookies: BADCOOKIE hands it one to retry with.
            responder.badcookie(out);
            stats.rrl(false);
        }
        Verdict::Slip => {
            responder.slip(out);
            stats.rrl(false);
        }
        Verdict::Drop => {
            stats.rrl(true);
            return false;
        }
    }
    responder.sign(out);
    true
}
