//! The UDP path: one SO_REUSEPORT socket per worker thread, each running a tight
//! receive-answer-send loop over reused buffers. The kernel spreads datagrams over
//! the sockets; nothing is shared between workers except the snapshot pointer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use super::Responder;
use crate::metrics::WorkerStats;
use crate::store::snapshot::Snapshot;

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

/// Starts a worker thread serving `socket` until `stop` is set.
pub fn spawn_worker(
    socket: UdpSocket,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("lbdns-udp".into()).spawn(move || {
        let mut responder = Responder::new(seed);
        let mut inbuf = vec![0u8; 65535];
        let mut outbuf = Vec::with_capacity(65535);
        while !stop.load(Ordering::Relaxed) {
            let (len, peer) = match socket.recv_from(&mut inbuf) {
                Ok(r) => r,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            let snap = snapshot.load();
            stats.query(false);
            let Some(outcome) = responder.respond(&snap, &inbuf[..len], peer.ip(), false, &mut outbuf) else {
                stats.dropped();
                continue;
            };
            stats.response(&outcome);
            if let Err(e) = socket.send_to(&outbuf, peer) {
                debug!(error = %e, %peer, "udp send failed");
            }
        }
    })
}
