//! Hands RFC 2136 UPDATE messages from the transports to the writer and answers
//! them. The TSIG is verified here, on the raw bytes, with the keys of the
//! snapshot (a failure is answered at once: NOTAUTH with the TSIG error, or
//! FORMERR); a verified or unsigned message is read ([`super::update`]) and
//! submitted; the writer plans, stores and publishes it and says the RCODE; the
//! reply is signed when the request was.
//!
//! The UDP workers never wait for the writer: they hand an UPDATE to a task on
//! the runtime and go on answering queries. At most [`IN_FLIGHT`] UPDATEs wait
//! at once; more are dropped (the client retries), so a flood cannot queue
//! unbounded work.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use tokio::sync::{Semaphore, oneshot};
use tracing::debug;

use super::tsig::{self, Tsig, Verdict};
use super::update;
use super::wire::{self, Parsed, Query};
use crate::counters::WorkerStats;
use crate::snapshot::Snapshot;
use crate::state::update::Update;

/// UPDATEs being handled at once, beyond which more are dropped.
pub const IN_FLIGHT: usize = 64;

/// Gives an UPDATE to the writer with the channel its RCODE comes back on;
/// `false` when the writer cannot take it (full, or stopped).
pub type Submit = Arc<dyn Fn(Update, oneshot::Sender<ResponseCode>) -> bool + Send + Sync>;

/// What the transports hand UPDATE messages to.
#[derive(Clone)]
pub struct Updater {
    snapshot: Arc<ArcSwap<Snapshot>>,
    submit: Submit,
    permits: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
}

impl Updater {
    /// Must be called on the runtime the UDP replies are sent from.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, submit: Submit) -> Updater {
        let runtime = tokio::runtime::Handle::current();
        Updater { snapshot, submit, permits: Arc::new(Semaphore::new(IN_FLIGHT)), runtime }
    }

    /// Answers a datagram UPDATE from a UDP worker thread, without waiting: the
    /// reply is sent from `socket` (a clone of the worker's) when ready.
    pub fn spawn_udp(&self, packet: &[u8], peer: SocketAddr, socket: &Arc<UdpSocket>, stats: &Arc<WorkerStats>) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            debug!(%peer, "update dropped: too many in flight");
            return;
        };
        let (me, packet, socket, stats) = (self.clone(), packet.to_vec(), socket.clone(), stats.clone());
        self.runtime.spawn(async move {
            if let Some(reply) = me.answer(&packet).await {
                stats.response(rcode(&reply), false);
                if let Err(e) = socket.send_to(&reply, peer) {
                    debug!(%peer, error = %e, "update reply not sent");
                }
            }
            drop(permit);
        });
    }

    /// The reply to the UPDATE `packet` (`None`: send nothing).
    pub async fn answer(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let mut q = Box::<Query>::default();
        let mut out = Vec::with_capacity(512);
        match wire::parse(packet, &mut q) {
            Ok(()) => {}
            Err(Parsed::Drop) => return None,
            Err(Parsed::Error { .. }) => {
                update::reply(packet, 12, ResponseCode::FormErr, &mut out);
                return Some(out);
            }
        }
        let mut tsig = Tsig::default();
        if q.tsig_start != 0 {
            match tsig.check(&self.snapshot.load().tsig, packet, q.tsig_start, tsig::now()) {
                Verdict::Verified => {}
                Verdict::NotAuth => {
                    tsig::notauth(packet, q.question_end, &mut out);
                    tsig.sign(&mut out, tsig::now());
                    return Some(out);
                }
                Verdict::FormErr => {
                    update::reply(packet, 12, ResponseCode::FormErr, &mut out);
                    return Some(out);
                }
            }
        }
        let key = tsig.key().map(|k| k.name.clone());
        let rcode = match update::parse(packet, key) {
            Ok(u) => self.submit(u).await,
            Err(rcode) => rcode,
        };
        update::reply(packet, q.question_end, rcode, &mut out);
        tsig.sign(&mut out, tsig::now());
        Some(out)
    }

    async fn submit(&self, u: Update) -> ResponseCode {
        let (tx, rx) = oneshot::channel();
        if !(self.submit)(u, tx) {
            return ResponseCode::ServFail;
        }
        rx.await.unwrap_or(ResponseCode::ServFail)
    }
}

/// The RCODE of a reply, with a TSIG error's NOTAUTH as such (for the counters).
pub fn rcode(reply: &[u8]) -> u16 {
    reply.get(3).map_or(0, |b| u16::from(b & 0x0f))
}
