//! The TCP path: length-prefixed messages (RFC 1035 4.2.2, RFC 7766), answered by
//! the same engine as UDP with a 64 KiB limit.
//!
//! Limits, so that a client holding connections open cannot shut others out:
//! - at most `max_tcp_connections` at once; when full, a new connection evicts the
//!   one that has gone longest without completing a query (RFC 7766 section 6.2.3),
//!   so idle and slow connections make room for real clients instead of the
//!   listener refusing everyone;
//! - each message (length and body) must arrive within `tcp_idle_timeout` of the
//!   previous answer (or of the accept): a client sending one byte per second is cut
//!   off at the deadline however long it keeps trickling;
//! - queries on one connection are read and answered one at a time, so a connection
//!   has at most one query in progress and pipelined queries wait in the socket
//!   buffer (TCP flow control pushes back on the sender).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::debug;

use super::Responder;
use super::cookie::Cookies;
use super::update;
use super::updater::Updater;
use crate::counters::WorkerStats;
use crate::journal::Journals;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;

pub struct TcpSettings {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub cookies: Option<Arc<Cookies>>,
    /// Where UPDATE messages go (`None`: answered NOTIMP like other opcodes).
    pub updater: Option<Updater>,
    /// The IXFR journals, for zone transfers.
    pub journals: Arc<Journals>,
}

/// One open connection, as the table sees it.
struct Conn {
    id: u64,
    /// Milliseconds since the table's start at which the last query completed.
    last_active: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

/// The open connections: a small list scanned only when full (to find the one to
/// evict); a connection touches only its own atomic while it runs.
struct Table {
    start: Instant,
    max: usize,
    conns: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registration {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut conns = self.table.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = conns.iter().position(|c| c.id == self.id) {
            conns.swap_remove(i);
        }
    }
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Registers a new connection, first evicting the longest-idle one if full.
    fn register(self: &Arc<Self>) -> (Registration, Arc<AtomicU64>, Arc<Notify>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let last_active = Arc::new(AtomicU64::new(self.now_ms()));
        let evict = Arc::new(Notify::new());
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.len() >= self.max {
            let oldest =
                conns.iter().enumerate().min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed)).map(|(i, _)| i);
            if let Some(i) = oldest {
                // notify_one keeps a permit if the task is not waiting right now.
                conns.swap_remove(i).evict.notify_one();
            }
        }
        conns.push(Conn { id, last_active: last_active.clone(), evict: evict.clone() });
        (Registration { table: self.clone(), id }, last_active, evict)
    }
}

/// Accepts connections until the server stops; open connections end then too.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    settings: TcpSettings,
    mut shutdown: Shutdown,
) {
    let table = Arc::new(Table {
        start: Instant::now(),
        max: settings.max_connections.max(1),
        conns: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(0),
    });
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, most often: back off briefly.
                    debug!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        let (registration, last_active, evict) = table.register();
        let conn = Connection {
            snapshot: snapshot.clone(),
            stats: stats.clone(),
            deadline: settings.idle_timeout,
            cookies: settings.cookies.clone(),
            updater: settings.updater.clone(),
            journals: settings.journals.clone(),
            table: table.clone(),
            last_active,
        };
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn.run(stream, peer) => {}
                _ = evict.notified() => debug!(%peer, "tcp connection evicted (longest idle)"),
                _ = shutdown.recv() => {}
            }
            drop(registration);
        });
    }
}

/// What [`answer_stream`] answers with.
pub struct StreamCtx<'a> {
    pub peer: IpAddr,
    pub snapshot: &'a ArcSwap<Snapshot>,
    pub stats: &'a WorkerStats,
    /// Each message must arrive, and each reply be written, within this.
    pub deadline: Duration,
    pub updater: Option<&'a Updater>,
    /// The IXFR journals, for zone transfers.
    pub journals: &'a Journals,
}

struct Connection {
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<WorkerStats>,
    deadline: Duration,
    cookies: Option<Arc<Cookies>>,
    updater: Option<Updater>,
    journals: Arc<Journals>,
    table: Arc<Table>,
    last_active: Arc<AtomicU64>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let mut responder = Responder::new(fastrand::u64(..)).with_cookies(self.cookies.clone());
        let ctx = StreamCtx {
            peer: peer.ip(),
            snapshot: &self.snapshot,
            stats: &self.stats,
            deadline: self.deadline,
            updater: self.updater.as_ref(),
            journals: &self.journals,
        };
        answer_stream(stream, ctx, &mut responder, || self.last_active.store(self.table.now_ms(), Ordering::Relaxed))
            .await;
    }
}

/// Answers length-prefixed queries from `stream` in order until the client closes
/// it, a message misses `deadline`, a query is not worth answering, or a write
/// fails. `answered` is called after each answer is written. (Generic over the
/// stream so that the fuzz target drives exactly this loop.)
pub async fn answer_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    ctx: StreamCtx<'_>,
    responder: &mut Responder,
    mut answered: impl FnMut(),
) {
    let StreamCtx { peer, snapshot, stats, deadline, updater, journals } = ctx;
    let mut inbuf = vec![0u8; 65535];
    let mut outbuf = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    loop {
        // The whole message, length and body, within one deadline.
        let read = async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let len = u16::from_be_bytes(len) as usize;
            stream.read_exact(&mut inbuf[..len]).await?;
            std::io::Result::Ok(len)
        };
        let len = match tokio::time::timeout(deadline, read).await {
            Ok(Ok(len)) if len > 0 => len,
            _ => return,
        };
        stats.query(true);
        if let (true, Some(u)) = (update::is_update(&inbuf[..len]), updater) {
            // The connection waits for the writer: its next message is read after.
            let Some(reply) = u.answer(&inbuf[..len]).await else { return };
            stats.response(super::updater::rcode(&reply), false);
            framed.clear();
            framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
            framed.extend_from_slice(&reply);
            match tokio::time::timeout(deadline, stream.write_all(&framed)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
            answered();
            continue;
        }
        let (outcome, transfer) = {
            let snap = snapshot.load();
            let outcome = responder.respond(&snap, &inbuf[..len], peer, true, &mut outbuf);
            let refused = outcome.is_some_and(|o| o.rcode == super::wire::RCODE_REFUSED as u16);
            (outcome, refused.then(|| responder.transfer(&snap, peer)).flatten())
        };
        if let Some(req) = transfer {
            stats.response(0, false);
            let (query, tsig) = responder.request();
            let asked = super::xfr::Asked { peer, packet: &inbuf[..len], query, tsig };
            if super::xfr::send(&mut stream, snapshot.load_full(), asked, journals, req, deadline).await.is_err() {
                return;
            }
            answered();
            continue;
        }
        responder.sign(&mut outbuf);
        let Some(outcome) = outcome else {
            stats.dropped();
            return;
        };
        stats.response(outcome.rcode, outcome.truncated);
        // One reused buffer for length + message: no allocation per query.
        framed.clear();
        framed.extend_from_slice(&(outbuf.len() as u16).to_be_bytes());
        framed.extend_from_slice(&outbuf);
        match tokio::time::timeout(deadline, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        answered();
    }
}
