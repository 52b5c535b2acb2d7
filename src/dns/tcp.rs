//! The TCP path: length-prefixed messages (RFC 1035 4.2.2, RFC 7766), answered by
//! the same engine as UDP with a 64 KiB limit. Connections are bounded in number and
//! closed when idle; queries on one connection are answered in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::debug;

use super::Responder;
use crate::metrics::WorkerStats;
use crate::store::snapshot::Snapshot;

pub struct TcpSettings {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    settings: TcpSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached, closing");
            drop(stream);
            continue;
        };
        let snapshot = snapshot.clone();
        let stats = stats.clone();
        let idle = settings.idle_timeout;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connection(stream, peer, snapshot, stats, idle, shutdown).await;
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut responder = Responder::new(fastrand::u64(..));
    let mut inbuf = vec![0u8; 65535];
    let mut outbuf = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    loop {
        let mut len = [0u8; 2];
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => r,
            _ = shutdown.changed() => return,
        };
        match read {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let len = u16::from_be_bytes(len) as usize;
        if len == 0 {
            return;
        }
        match tokio::time::timeout(idle, stream.read_exact(&mut inbuf[..len])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        stats.query(true);
        let outcome = {
            let snap = snapshot.load();
            responder.respond(&snap, &inbuf[..len], peer.ip(), true, &mut outbuf)
        };
        let Some(outcome) = outcome else {
            stats.dropped();
            return;
        };
        stats.response(&outcome);
        // One reused buffer for length + message: no allocation per query.
        framed.clear();
        framed.extend_from_slice(&(outbuf.len() as u16).to_be_bytes());
        framed.extend_from_slice(&outbuf);
        match tokio::time::timeout(idle, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
