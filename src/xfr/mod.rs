//! The transfer task: keeps the IXFR journal and sends NOTIFY. It wakes after
//! each snapshot swap (the writer tells it) and, for every zone that is
//! transferred or notified, compares the zone with the version it last
//! journaled: when the serial moved, the difference is a journal entry (in
//! memory at once, then stored by the writer) and every `notify` target is told;
//! when the serial did not move but a pool's transferred RRset did (a health
//! change, `transfer_pools = "healthy"`), it asks the writer to advance the
//! serial, at most about once a second per zone, which brings it back here.
//! It never blocks the writer (commands are `try_send`) nor the query path.

mod diff;
pub mod notify;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::{TransferPools, TransferSettings};
use crate::control::Command;
use crate::journal::{self, Change, Journals};
use crate::shutdown::Shutdown;
use crate::snapshot::{RRsetView, Snapshot, Zone};
use diff::{Version, diff, pools_differ};

/// The shortest time between two serial bumps of one zone for health changes.
const BUMP_EVERY: Duration = Duration::from_secs(1);

/// What the task needs; see the module docs.
pub struct TransferTask {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub published: Arc<tokio::sync::Notify>,
    pub journals: Arc<Journals>,
    pub writer: mpsc::Sender<Command>,
}

/// One zone as the task follows it.
struct Followed {
    /// The snapshot holding the version last journaled.
    base: Arc<Snapshot>,
    last_bump: Option<Instant>,
    /// A health change waits for this time to advance the serial.
    bump_due: Option<Instant>,
    /// NOTIFY generations by target: a newer one stops an older's retries.
    notifies: HashMap<std::net::SocketAddr, Arc<AtomicU64>>,
}

impl TransferTask {
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut zones: HashMap<Box<[u8]>, Followed> = HashMap::new();
        loop {
            let due = zones.values().filter_map(|f| f.bump_due).min();
            let wake = async {
                match due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.published.notified() => {}
                _ = wake => {}
                _ = shutdown.recv() => return,
            }
            let snap = self.snapshot.load_full();
            zones.retain(|origin, _| snap.transfer.contains_key(origin));
            for (origin, settings) in snap.transfer.iter() {
                let Some(zone) = snap.zones.get(origin) else { continue };
                match zones.get_mut(origin) {
                    Some(f) => self.follow(f, &snap, zone, settings),
                    None => {
                        self.first_sight(zone);
                        let f =
                            Followed { base: snap.clone(), last_bump: None, bump_due: None, notifies: HashMap::new() };
                        zones.insert(origin.clone(), f);
                    }
                }
            }
        }
    }

    /// A zone seen for the first time (at start, or added by a reload): the
    /// journal stored before is kept only if it ends at the serial served now.
    fn first_sight(&self, zone: &Zone) {
        let changes = self.journals.changes(&zone.origin_wire);
        if changes.last().is_some_and(|c| c.to != zone.serial) {
            info!(zone = %zone.origin, serial = zone.serial, "the stored IXFR journal ends at another serial: dropped");
            self.journals.set(&zone.origin_wire, Vec::new());
        }
    }

    fn follow(&self, f: &mut Followed, snap: &Arc<Snapshot>, zone: &Zone, settings: &Arc<TransferSettings>) {
        let Some(old) = f.base.zones.get(&zone.origin_wire).cloned() else {
            f.base = snap.clone();
            return;
        };
        let (before, now) = (Version { snap: &f.base, zone: &old }, Version { snap, zone });
        if old.serial != zone.serial {
            let (removed, added) = diff(before, now, settings.pools);
            let change = Change {
                from: old.serial,
                to: zone.serial,
                from_soa: soa(&old).into(),
                to_soa: soa(zone).into(),
                removed,
                added,
                at: journal::now(),
            };
            self.record(zone, change, settings);
            f.base = snap.clone();
            f.bump_due = None;
            self.notify(f, snap, zone, settings);
        } else if settings.pools == TransferPools::Healthy && pools_differ(before, now, settings.pools) {
            let earliest = f.last_bump.map_or_else(Instant::now, |t| t + BUMP_EVERY);
            let due = *f.bump_due.get_or_insert(earliest.max(Instant::now()));
            if due <= Instant::now() {
                f.bump_due = None;
                f.last_bump = Some(Instant::now());
                debug!(zone = %zone.origin, "a pool's transferred records changed: advancing the serial");
                if self.writer.try_send(Command::BumpSerial(zone.origin.clone())).is_err() {
                    warn!(zone = %zone.origin, "the writer is busy: the serial will move with the next change");
                }
            }
        }
    }

    /// Puts `change` in the journal, and has the writer store it.
    fn record(&self, zone: &Zone, change: Change, settings: &TransferSettings) {
        let entry = change.encode();
        info!(zone = %zone.origin, from = change.from, to = change.to, removed = change.removed.len(), added = change.added.len(), "zone changed");
        self.journals.push(&zone.origin_wire, change, settings.journal_max_bytes, settings.journal_max_age);
        let keep = self.journals.changes(&zone.origin_wire).len();
        let cmd = Command::Journal { zone: zone.origin.clone(), entry, keep };
        if self.writer.try_send(cmd).is_err() {
            warn!(zone = %zone.origin, "the writer is busy: this IXFR journal entry is kept in memory only");
        }
    }

    /// Tells every `notify` target about the zone's serial now.
    fn notify(&self, f: &mut Followed, snap: &Snapshot, zone: &Zone, settings: &TransferSettings) {
        let key = settings.notify_key().and_then(|k| snap.tsig.named(k)).cloned();
        for &target in &settings.notify {
            let generation = f.notifies.entry(target).or_default().clone();
            let mine = generation.fetch_add(1, Ordering::Relaxed) + 1;
            let n = notify::Notify {
                target,
                origin: zone.origin_wire.clone(),
                origin_text: zone.origin.to_ascii(),
                serial: zone.serial,
                key: key.clone(),
            };
            tokio::spawn(n.run(generation, mine));
        }
    }
}

/// The zone's SOA record, TYPE to the end of RDATA.
fn soa(zone: &Zone) -> &[u8] {
    let rs: RRsetView<'_> = zone.soa();
    rs.records().next().unwrap_or_default()
}

/// Loads the stored journals into `journals` (at start, before the task runs):
/// entries that do not decode or do not chain are dropped, with a warning.
pub fn restore(journals: &Journals, stored: crate::persist::StoredJournals) {
    for (zone, entries) in stored {
        let mut list: Vec<Arc<Change>> = Vec::new();
        for e in entries {
            match Change::decode(&e) {
                Ok(c) if list.last().is_none_or(|l| l.to == c.from) => list.push(Arc::new(c)),
                Ok(c) => {
                    warn!(zone = %zone, from = c.from, "stored IXFR journal has a gap: older entries dropped");
                    list = vec![Arc::new(c)];
                }
                Err(e) => warn!(zone = %zone, error = %e, "stored IXFR journal entry dropped"),
            }
        }
        journals.set(&crate::snapshot::wire(&zone), list);
    }
}
