//! Health: probe results and other nodes' votes applied to the health table,
//! probes kept in step with the pools in effect, and this node's view handed to
//! the task that shares it.

use std::collections::{BTreeMap, HashSet};

use tracing::{info, warn};

use crate::health::{ClusterView, ProbeKey, ProbeResult, ProbeSpec, Votes};

use super::*;

impl Writer {
    pub(super) fn view(&self) -> ClusterView<'_> {
        ClusterView { local: &self.health, nodes: &self.nodes }
    }

    /// Hands this node's current view to the publishing task, if it changed.
    pub(super) fn share_view(&self) {
        if let Some(c) = &self.cluster {
            let view = self.health.view();
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
        match &self.cluster {
            Some(c) if c.quorum => {
                nodes.remove(&c.node);
                self.nodes = nodes;
            }
            _ => self.nodes.clear(),
        }
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

    pub(super) fn observe_probe(&self, r: &ProbeResult) {
        let check = crate::metrics::CheckLabel { check: r.key.spec.check.as_str().to_string() };
        self.metrics.probe_duration.get_or_create(&check).observe(r.took.as_secs_f64());
    }

    pub(super) fn apply_probe(&mut self, r: ProbeResult, changed: &mut HashSet<ProbeKey>) {
        self.observe_probe(&r);
        let from = self.health.members.get(&r.key).map_or("unknown", |h| h.state());
        if self.health.apply(&r) {
            let up = self.health.members.get(&r.key).and_then(|h| h.flap.up).unwrap_or(false);
            let pools = self.pools_with(&r.key);
            let reason = match &r.outcome {
                Ok(()) => format!("{} consecutive passes", r.key.spec.rise),
                Err(e) => e.to_string(),
            };
            if up {
                info!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member up");
            } else {
                warn!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member down");
            }
            let why = match &r.outcome {
                Ok(()) => "probe passed".to_string(),
                Err(e) => e.to_string(),
            };
            self.record_probe(&r.key, from, &why);
            changed.insert(r.key);
        }
    }

    pub(super) fn pools_with(&self, key: &ProbeKey) -> String {
        let names: Vec<String> = self
            .pool_defs()
            .iter()
            .filter(|p| p.members.iter().any(|m| m.address == key.addr) && ProbeSpec::of(p) == *key.spec)
            .map(|p| p.name.to_ascii())
            .collect();
        names.join(",")
    }
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
