//! The watch on the prefix: what other servers change, sent to the writer.

use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::client::{Connector, load_all, short};
use crate::persist::Remote;

/// Watches the prefix from `start` (the revision after the last load; `None` =
/// load everything first) and sends what changes, until `tx` closes.
pub async fn watch_loop(conn: Connector, prefix: String, start: Option<i64>, tx: mpsc::Sender<Remote>) {
    let mut next = start;
    let mut lost = false;
    // Retry soon (the client may have picked a dead member; the next try picks
    // another), then back off to once a second while etcd stays away.
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut client = match conn.get().await {
            Ok(c) => c,
            Err(e) => {
                if !lost {
                    warn!(error = %short(&e), "etcd unreachable; serving the last known state");
                    lost = true;
                    let _ = tx.send(Remote::Lost).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let from = match next {
            Some(n) => n,
            None => match load_all(&mut client, &prefix).await {
                Ok((entries, revision)) => {
                    if tx.send(Remote::Full { entries, revision }).await.is_err() {
                        return;
                    }
                    info!(revision, "state loaded from etcd");
                    revision + 1
                }
                Err(e) => {
                    if !lost {
                        warn!(error = %e, "etcd unreachable; serving the last known state");
                        lost = true;
                        let _ = tx.send(Remote::Lost).await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        next = Some(from);
        let opts = WatchOptions::new().with_prefix().with_start_revision(from).with_progress_notify();
        let mut stream = match client.watch(prefix.clone(), Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                if !lost {
                    warn!(error = %e, "etcd watch failed; serving the last known state");
                    lost = true;
                    let _ = tx.send(Remote::Lost).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                next = None;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    backoff = Duration::from_millis(50);
                    if lost {
                        info!("etcd reachable again");
                        lost = false;
                    }
                    if resp.compact_revision() > 0 || resp.canceled() {
                        warn!(compacted = resp.compact_revision(), "etcd history compacted; loading everything");
                        next = None;
                        break;
                    }
                    let mut changes = Vec::new();
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let Some(key) = std::str::from_utf8(kv.key()).ok().and_then(|k| k.strip_prefix(&prefix)) else {
                            continue;
                        };
                        let value = match ev.event_type() {
                            EventType::Put => Some(kv.value().to_vec()),
                            EventType::Delete => None,
                        };
                        changes.push((key.to_string(), value, kv.mod_revision()));
                        next = Some(next.unwrap_or(0).max(kv.mod_revision() + 1));
                    }
                    if let Some(h) = resp.header() {
                        next = Some(next.unwrap_or(0).max(h.revision() + 1));
                    }
                    if !changes.is_empty() && tx.send(Remote::Changes(changes)).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    if !lost {
                        warn!("etcd watch broken; serving the last known state, resuming when etcd is back");
                        lost = true;
                        let _ = tx.send(Remote::Lost).await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    // Reload rather than resume: the other nodes' health views were
                    // dropped when etcd was lost, and a full load brings them back.
                    next = None;
                    break;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}
