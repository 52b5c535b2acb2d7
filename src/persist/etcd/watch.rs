//! The watch on the prefix: what other servers change, sent to the writer.

use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchResponse, WatchStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::client::{Connector, load_all, short};
use crate::persist::Remote;
use crate::persist::encoding::is_journal_key;

/// Watches the prefix from `start` (the revision after the last load; `None` =
/// load everything first) and sends what changes, until `tx` closes.
pub async fn watch_loop(conn: Connector, prefix: String, start: Option<i64>, tx: mpsc::Sender<Remote>) {
    let mut watch = Watch { conn, prefix, tx, next: start, lost: false, backoff: FIRST_RETRY };
    while let Ended::Retry = watch.once().await {
        if watch.tx.is_closed() {
            return;
        }
    }
}

/// Retry soon (the client may have picked a dead member; the next try picks
/// another), then back off to once a second while etcd stays away.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(1);

/// What the watch keeps from one try to the next.
struct Watch {
    conn: Connector,
    prefix: String,
    tx: mpsc::Sender<Remote>,
    /// The revision to watch from; `None`: load everything first.
    next: Option<i64>,
    /// Whether the writer has been told etcd is lost (once per outage).
    lost: bool,
    backoff: Duration,
}

/// How one try ended.
enum Ended {
    /// etcd went away or the history was compacted: try again.
    Retry,
    /// The writer is gone.
    Closed,
}

impl Watch {
    /// Connects, loads everything when there is no revision to resume from, and
    /// follows the watch until it breaks.
    async fn once(&mut self) -> Ended {
        let mut client = match self.conn.get().await {
            Ok(c) => c,
            Err(e) => return self.lose("etcd unreachable; serving the last known state", Some(short(&e))).await,
        };
        let from = match self.next {
            Some(n) => n,
            None => match load_all(&mut client, &self.prefix).await {
                Ok((entries, revision)) => {
                    if self.tx.send(Remote::Full { entries, revision }).await.is_err() {
                        return Ended::Closed;
                    }
                    info!(revision, "state loaded from etcd");
                    revision + 1
                }
                Err(e) => {
                    return self.lose("etcd unreachable; serving the last known state", Some(e.to_string())).await;
                }
            },
        };
        self.next = Some(from);
        // Fragmented: a watch catching up on several nodes' IXFR journal entries
        // (each up to etcd's request limit) would otherwise get them in one
        // response over the client's 4 MiB message limit, and break.
        let opts = WatchOptions::new().with_prefix().with_start_revision(from).with_progress_notify().with_fragment();
        match client.watch(self.prefix.clone(), Some(opts)).await {
            Ok(mut stream) => self.follow(&mut stream).await,
            Err(e) => {
                let ended = self.lose("etcd watch failed; serving the last known state", Some(e.to_string())).await;
                self.next = None;
                ended
            }
        }
    }

    /// Sends each change the watch reports until it breaks.
    async fn follow(&mut self, stream: &mut WatchStream) -> Ended {
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) | Err(_) => {
                    let why = "etcd watch broken; serving the last known state, resuming when etcd is back";
                    let ended = self.lose(why, None).await;
                    // Reload rather than resume: the other nodes' health views were
                    // dropped when etcd was lost, and a full load brings them back.
                    self.next = None;
                    return ended;
                }
            };
            self.backoff = FIRST_RETRY;
            if self.lost {
                info!("etcd reachable again");
                self.lost = false;
            }
            if resp.compact_revision() > 0 || resp.canceled() {
                warn!(compacted = resp.compact_revision(), "etcd history compacted; loading everything");
                self.next = None;
                return Ended::Retry;
            }
            let changes = self.changes(&resp);
            if !changes.is_empty() && self.tx.send(Remote::Changes(changes)).await.is_err() {
                return Ended::Closed;
            }
        }
    }

    /// The keys a response changed (relative key, value or `None` when deleted,
    /// revision), moving the revision to resume from past them.
    fn changes(&mut self, resp: &WatchResponse) -> Vec<(String, Option<Vec<u8>>, i64)> {
        let mut changes = Vec::new();
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            self.next = Some(self.next.unwrap_or(0).max(kv.mod_revision() + 1));
            let Some(key) = std::str::from_utf8(kv.key()).ok().and_then(|k| k.strip_prefix(&self.prefix)) else {
                continue;
            };
            // Another node's IXFR journal (or this one's): nothing to apply, and
            // its value is not copied.
            if is_journal_key(key) {
                continue;
            }
            let value = match ev.event_type() {
                EventType::Put => Some(kv.value().to_vec()),
                EventType::Delete => None,
            };
            changes.push((key.to_string(), value, kv.mod_revision()));
        }
        if let Some(h) = resp.header() {
            self.next = Some(self.next.unwrap_or(0).max(h.revision() + 1));
        }
        changes
    }

    /// Tells the writer, once per outage, that etcd is lost (its view of other
    /// nodes can no longer be trusted), then waits before the next try.
    async fn lose(&mut self, why: &str, error: Option<String>) -> Ended {
        if !self.lost {
            match error {
                Some(e) => warn!(error = %e, "{why}"),
                None => warn!("{why}"),
            }
            self.lost = true;
            let _ = self.tx.send(Remote::Lost).await;
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
        Ended::Retry
    }
}
