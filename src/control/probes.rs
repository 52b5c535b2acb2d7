//! Health: probe results and other nodes' votes applied to the health table,
//! probes kept in step with the pools in effect, and this node's view handed to
//! the task that shares it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::PoolDef;

use crate::health::PushedView;
use crate::health::{ClusterView, ProbeKey, ProbeResult, ProbeSpec, Votes};

use super::*;

impl Writer {
    pub(super) fn view(&self) -> ClusterView<'_> {
        // Overrides lapse when the writer's timer says so (`expired_until`), so
        // that a state read just before the timer fires is the state before it.
        let pushed = PushedView { overrides: &self.overlay.health, files: &self.files, now: self.expired_until };
        ClusterView { local: &self.health, nodes: &self.nodes, pushed }
    }

    /// Hands this node's current view to the publishing task, if it changed.
    pub(super) fn share_view(&self) {
        if let Some(c) = &self.cluster {
            let view = self.view().votes(self.effective.pools.iter().map(|(p, _)| p));
            c.views.send_if_modified(|v| {
                if *v == view {
                    return false;
                }
                *v = view;
                true
            });
        }
    }

    pub(super) fn set_nodes(&mut self, mut nodes: BTreeMap<String, Votes>) {
        let live: std::collections::BTreeSet<String> = match &self.cluster {
            Some(c) => nodes.keys().filter(|n| **n != c.node && *n != super::share::LEFT).cloned().collect(),
            None => Default::default(),
        };
        let seeds = if live != self.live { self.verdicts() } else { Default::default() };
        if self.shares_probes() {
            let carried = self.carried(&nodes);
            nodes.remove(super::share::LEFT);
            if !carried.is_empty() {
                nodes.insert(super::share::LEFT.to_string(), carried);
            }
        }
        match &self.cluster {
            Some(c) if c.quorum => {
                nodes.remove(&c.node);
                self.nodes = nodes;
            }
            _ => self.nodes.clear(),
        }
        self.note_live(live, seeds);
    }

    /// Probes follow the pools in effect: new members are probed at once,
    /// removed ones stop and are forgotten. Returns the probes started.
    pub(super) fn follow_pools(&mut self) -> usize {
        let keys = self.probe_keys();
        let started = self.prober.sync(&keys, true).len();
        self.health.retain(&keys);
        self.share_view();
        started
    }

    /// Probes follow one pool's change (its definition was `before`, it is at
    /// `at` in effect, and the index of probes to pools already follows it):
    /// its new streams start at once, those no pool needs any more stop and are
    /// forgotten. Every other stream is left alone.
    pub(super) fn follow_pool(&mut self, before: &PoolDef, at: usize) {
        let Some((now, _)) = self.effective.pools.get(at) else { return };
        let now: Vec<ProbeKey> = keys_of(now).filter(|k| self.assigned(k)).collect();
        let gone: Vec<ProbeKey> =
            keys_of(before).filter(|k| !now.contains(k) && self.by_probe.pools_of([k]).is_empty()).collect();
        self.prober.stop(&gone);
        self.health.forget(&gone);
        self.prober.start(&now, true);
        // Votes also follow the members health files name (without a cluster
        // there is no view to share and this costs nothing).
        self.share_view();
    }

    /// Observes `r`'s duration in its stream's histogram, resolved at the
    /// stream's first result (a result then costs no label string and no lookup
    /// in the metric family); the stream observes the results it does not send.
    pub(super) fn observe_probe(&self, r: &ProbeResult) {
        let family = &self.metrics.probe_duration;
        let check = || family.get_or_create(&crate::metrics::CheckLabel { check: r.key.spec.label() }).clone();
        r.last.duration.get_or_init(check).observe(r.took.as_secs_f64());
    }

    pub(super) fn apply_probe(&mut self, r: ProbeResult, changed: &mut HashSet<ProbeKey>) {
        self.observe_probe(&r);
        let from = self.health.members.get(&r.key).map_or("unknown", |h| h.state());
        let days_before = self.health.members.get(&r.key).and_then(|h| h.cert_days);
        let applied = self.health.apply(&r);
        if self.health.members.get(&r.key).and_then(|h| h.cert_days) != days_before {
            self.publish_cert_days();
        }
        if applied.flipped {
            let up = self.health.members.get(&r.key).and_then(|h| h.flap.up).unwrap_or(false);
            let pools = self.pools_with(&r.key);
            let reason = match &r.outcome {
                Ok(_) => format!("{} consecutive passes", r.key.spec.rise),
                Err(e) => e.to_string(),
            };
            let check = r.key.spec.label();
            if up {
                info!(pools = %pools, address = %r.key.addr, %check, %reason, "member up");
            } else {
                warn!(pools = %pools, address = %r.key.addr, %check, %reason, "member down");
            }
            let why = match &r.outcome {
                Ok(_) => "probe passed".to_string(),
                Err(e) => e.to_string(),
            };
            self.record_probe(&r.key, from, &why);
        }
        // A weight change republishes the member's pools as a flip does: only those.
        if applied.flipped || applied.weight {
            changed.insert(r.key);
        }
    }

    /// `lbdns_member_cert_days` of every member with a `tls` check, in every
    /// pool its stream feeds. Called when a value changes (a day passes, a
    /// certificate is renewed) and after the first snapshot, not per probe.
    pub(super) fn publish_cert_days(&self) {
        let snap = self.snapshot.load();
        let mut map = std::collections::HashMap::new();
        for (key, h) in &self.health.members {
            let Some(days) = h.cert_days else { continue };
            for p in self.by_probe.pools_of([key]).into_iter().filter_map(|i| snap.pools.get(i as usize)) {
                map.insert((p.name_text.clone(), key.addr), days);
            }
        }
        self.metrics.cert_days.store(std::sync::Arc::new(map));
    }

    /// The names of the pools `key`'s results feed, for the log.
    pub(super) fn pools_with(&self, key: &ProbeKey) -> String {
        let snap = self.snapshot.load();
        let pools = self.by_probe.pools_of([key]).into_iter().filter_map(|i| snap.pools.get(i as usize));
        pools.map(|p| p.def.name.to_ascii()).collect::<Vec<_>>().join(",")
    }
}

/// Which pools each probe stream's results feed, by their index in the published
/// snapshot: a health flip rebuilds those pools and walks no other. Made anew with
/// every full build and updated for each pool rebuilt alone, so it describes the
/// pools published.
#[derive(Debug, Default)]
pub(super) struct PoolsByProbe(HashMap<ProbeKey, Vec<u32>>);

impl PoolsByProbe {
    /// The index of `pools`, at their positions (as a full build places them).
    pub(super) fn of<'a>(pools: impl IntoIterator<Item = &'a Arc<PoolDef>>) -> PoolsByProbe {
        let mut index = PoolsByProbe::default();
        for (i, def) in pools.into_iter().enumerate() {
            index.add(i as u32, def);
        }
        index
    }

    /// Pool `i`, defined by `def`, is fed by its members' probes.
    pub(super) fn add(&mut self, i: u32, def: &PoolDef) {
        for key in keys_of(def) {
            self.0.entry(key).or_default().push(i);
        }
    }

    /// Pool `i`, defined by `def`, no longer is.
    pub(super) fn remove(&mut self, i: u32, def: &PoolDef) {
        for key in keys_of(def) {
            if let Entry::Occupied(mut e) = self.0.entry(key) {
                e.get_mut().retain(|&p| p != i);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
    }

    /// The pools fed by any of `keys`, each once, in index order.
    pub(super) fn pools_of<'k>(&self, keys: impl IntoIterator<Item = &'k ProbeKey>) -> BTreeSet<u32> {
        keys.into_iter().filter_map(|k| self.0.get(k)).flatten().copied().collect()
    }

    /// The probe streams whose id (how nodes name them in their votes) is in `ids`.
    pub(super) fn keys_with_ids(&self, ids: &HashSet<String>) -> Vec<ProbeKey> {
        self.0.keys().filter(|k| ids.contains(&k.id())).cloned().collect()
    }
}

/// The probe streams whose results decide `def`'s members (none without a
/// probing check).
fn keys_of(def: &PoolDef) -> impl Iterator<Item = ProbeKey> + '_ {
    let spec = ProbeSpec::of(def).map(Arc::new);
    def.members.iter().filter_map(move |m| {
        Some(ProbeKey { addr: m.address, probe: m.probe.as_deref().copied(), spec: spec.clone()? })
    })
}

/// Probe ids on which some node's vote differs between two sets of node views.
pub(super) fn changed_votes(before: &BTreeMap<String, Votes>, after: &BTreeMap<String, Votes>) -> HashSet<String> {
    let empty = Votes::new();
    let mut ids = HashSet::new();
    for node in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(node).unwrap_or(&empty), after.get(node).unwrap_or(&empty));
        for id in b.keys().chain(a.keys()) {
            if b.get(id) != a.get(id) {
                ids.insert(id.clone());
            }
        }
    }
    ids
}
