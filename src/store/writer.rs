//! The one writer: the only task that publishes snapshots.
//!
//! Inputs arrive on bounded channels (probe results now; API changes and reloads
//! join them). The writer applies everything already queued as one batch and
//! publishes at most one new snapshot per batch, so a burst of health changes is a
//! single swap.

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::health::{HealthTable, ProbeKey, ProbeResult, ProbeSpec, Prober};
use crate::sources::Sources;
use crate::store::snapshot::Snapshot;

/// Requests other tasks make of the writer.
pub enum Command {
    /// A copy of the health table (for the admin API and metrics).
    Health(oneshot::Sender<HealthTable>),
}

pub struct Writer {
    pub sources: Sources,
    pub health: HealthTable,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub prober: Prober,
}

impl Writer {
    pub async fn run(
        mut self,
        mut probes: mpsc::Receiver<ProbeResult>,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let keys = crate::health::keys_of(&self.sources.pools);
        self.prober.sync(&keys, false);
        loop {
            tokio::select! {
                r = probes.recv() => {
                    let Some(first) = r else { return };
                    let mut changed: HashSet<ProbeKey> = HashSet::new();
                    self.apply_probe(first, &mut changed);
                    while let Ok(more) = probes.try_recv() {
                        self.apply_probe(more, &mut changed);
                    }
                    if !changed.is_empty() {
                        self.publish_health(&changed);
                    }
                }
                c = commands.recv() => match c {
                    Some(Command::Health(reply)) => { let _ = reply.send(self.health.clone()); }
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    fn apply_probe(&mut self, r: ProbeResult, changed: &mut HashSet<ProbeKey>) {
        if self.health.apply(&r) {
            let up = self.health.members.get(&r.key).and_then(|h| h.flap.up).unwrap_or(false);
            let pools = self.pools_with(&r.key);
            let reason = match &r.outcome {
                Ok(()) => format!("{} consecutive passes", r.key.spec.rise),
                Err(e) => e.clone(),
            };
            if up {
                info!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member up");
            } else {
                warn!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member down");
            }
            changed.insert(r.key);
        }
    }

    fn pools_with(&self, key: &ProbeKey) -> String {
        let names: Vec<String> = self
            .sources
            .pools
            .iter()
            .filter(|p| p.members.iter().any(|m| m.address == key.addr) && ProbeSpec::of(p) == *key.spec)
            .map(|p| p.name.to_ascii())
            .collect();
        names.join(",")
    }

    fn publish_health(&mut self, changed: &HashSet<ProbeKey>) {
        let prev = self.snapshot.load_full();
        let next = super::rebuild_pools(&prev, &self.health, |def| {
            if def.health.check == crate::config::CheckKind::None {
                return false;
            }
            let spec = ProbeSpec::of(def);
            def.members.iter().any(|m| {
                changed.contains(&ProbeKey {
                    addr: m.address,
                    spec: Arc::new(spec.clone()),
                })
            })
        });
        self.snapshot.store(Arc::new(next));
    }
}
