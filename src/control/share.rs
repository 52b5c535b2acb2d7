//! `[cluster] probe_share = K`: each member (each probe stream) is probed by K
//! of the live nodes, those with the highest rendezvous hash of the stream's id
//! and the node's name, so that every node computes the same K without talking,
//! and a node leaving moves only its own streams. The live nodes are those with
//! a health view in etcd (under a lease: a node that dies leaves within the
//! lease time); with etcd out of reach every node probes everything again.
//! Quorum is then taken over the K probers' votes (see `health::ClusterView`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;

use crate::health::{MemberHealth, ProbeKey, Votes};

use super::*;

/// Where the votes of nodes that left are held among the nodes' votes (a name
/// no node can have: node names have no `/`).
pub(super) const LEFT: &str = "/left";

/// The rendezvous score of `node` for the stream `id`: SipHash-1-3 with fixed
/// keys, the same on every node and every build.
fn score(node: &str, id: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write(node.as_bytes());
    h.write_u8(0xff);
    h.write(id.as_bytes());
    h.finish()
}

/// The `k` nodes of `nodes` that probe the stream `id`.
pub(super) fn probers<'n>(id: &str, nodes: impl IntoIterator<Item = &'n str>, k: usize) -> Vec<&'n str> {
    let mut scored: Vec<(u64, &str)> = nodes.into_iter().map(|n| (score(n, id), n)).collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(k).map(|(_, n)| n).collect()
}

impl Writer {
    /// Whether this node probes `key`: always, unless `probe_share` is set and
    /// this node is not among the stream's probers.
    pub(super) fn assigned(&self, key: &ProbeKey) -> bool {
        let Some((me, k)) = self.cluster.as_ref().and_then(|c| Some((c.node.as_str(), c.probe_share? as usize))) else {
            return true;
        };
        if self.live.len() < k {
            return true; // K or fewer nodes in all: each probes everything
        }
        let id = key.id();
        let nodes = self.live.iter().map(String::as_str).chain(std::iter::once(me));
        probers(&id, nodes, k).contains(&me)
    }

    /// The other live nodes are now `live`: with `probe_share`, probes follow
    /// the new shares, and the pools whose streams this node stopped probing
    /// are rebuilt (its results for them no longer vote).
    /// A stream this node starts probing takes the state the votes gave it
    /// (`seeds`, from before the change), so that a member handed over from a
    /// node that left stays as it was until this node's own `rise`/`fall`
    /// results move it, rather than be unknown until the first one.
    pub(super) fn note_live(&mut self, live: BTreeSet<String>, seeds: HashMap<ProbeKey, bool>) {
        if self.live == live {
            return;
        }
        self.live = live;
        if !self.shares_probes() {
            return;
        }
        let before: Vec<ProbeKey> = self.health.members.keys().cloned().collect();
        self.follow_pools();
        for key in self.probe_keys() {
            if let (Some(&up), Entry::Vacant(e)) = (seeds.get(&key), self.health.members.entry(key)) {
                e.insert(MemberHealth::new()).flap.up = Some(up);
            }
        }
        self.share_view();
        let changed: Vec<ProbeKey> = before.into_iter().filter(|k| !self.health.members.contains_key(k)).collect();
        let seeded = seeds.keys().filter(|k| self.health.members.contains_key(*k));
        let changed: Vec<ProbeKey> = changed.into_iter().chain(seeded.cloned()).collect();
        if !changed.is_empty() {
            self.republish_members(&changed);
        }
    }

    /// The votes of nodes that left (`LEFT`'s before, and those of nodes in
    /// `self.nodes` but not in `next`) on streams no node in `next` and not this
    /// node has a result for: held until a prober reports, so that a member
    /// does not leave the answers between its prober's death and its new
    /// prober's first vote reaching this node.
    pub(super) fn carried(&self, next: &BTreeMap<String, Votes>) -> Votes {
        let mut carried = self.nodes.get(LEFT).cloned().unwrap_or_default();
        for (node, votes) in &self.nodes {
            if node != LEFT && !next.contains_key(node) {
                carried.extend(votes.iter().map(|(id, v)| (id.clone(), *v)));
            }
        }
        if carried.is_empty() {
            return carried;
        }
        let local: std::collections::HashSet<String> = self.health.members.keys().map(ProbeKey::id).collect();
        carried.retain(|id, _| !local.contains(id) && !next.iter().any(|(n, v)| n != LEFT && v.contains_key(id)));
        carried
    }

    pub(super) fn shares_probes(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.probe_share.is_some())
    }

    /// What the nodes' votes say of each stream now (streams without a vote
    /// are left out): the seeds of [`Writer::note_live`]. Empty without `probe_share`.
    pub(super) fn verdicts(&self) -> HashMap<ProbeKey, bool> {
        let mut out = HashMap::new();
        if !self.shares_probes() {
            return out;
        }
        let view = self.view();
        for (def, _) in &self.effective.pools {
            for key in crate::health::keys_of(std::iter::once(def)) {
                let votes: Vec<bool> = view.ballots(def, key.addr).filter_map(|(_, v)| v).collect();
                if !votes.is_empty() {
                    let down = votes.iter().filter(|v| !**v).count();
                    out.insert(key, down * 2 <= votes.len());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_computes_the_same_probers_and_a_leaving_node_moves_only_its_own() {
        let nodes = ["a", "b", "c", "d"];
        let ids: Vec<String> = (0..400).map(|i| format!("192.0.2.{} http port=80", i % 250)).collect();
        let mut count = std::collections::HashMap::new();
        for id in &ids {
            let two = probers(id, nodes, 2);
            assert_eq!(two, probers(id, nodes.iter().rev().copied(), 2), "order of the list does not matter");
            for n in &two {
                *count.entry(*n).or_insert(0) += 1;
            }
            // Without "d", the streams "d" did not probe keep their probers.
            let without: Vec<&str> = probers(id, ["a", "b", "c"], 2);
            if !two.contains(&"d") {
                assert_eq!(without, two);
            } else {
                assert!(two.iter().filter(|n| **n != "d").all(|n| without.contains(n)));
            }
        }
        // 800 shares over 4 nodes: each gets a fair part.
        assert!(count.values().all(|&c| (120..=280).contains(&c)), "{count:?}");
    }
}
