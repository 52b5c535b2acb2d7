//! Pool policies: given a pool's eligible members of one address family, choose the
//! order in which they are answered.
//!
//! Each policy lives in its own file behind the [`Policy`] trait. Policies are pure
//! and synchronous and never allocate: they write member indices into a buffer the
//! caller owns and reuses, draw randomness from the caller's per-worker generator, and
//! keep no state but an atomic cursor (round-robin).
//!
//! Cost: a pool may have tens of thousands of members while a reply holds at most a
//! few thousand, so every policy computes only the first `limit` (k) of its order,
//! never a pass over the members per member answered: affinity scores each member
//! once and selects the k best ([`first_by_key`], O(n + k log k)); weighted and geo
//! draw the k with exponential jumps over a bounded heap when the pool is large
//! (see weighted.rs); random, round-robin and failover touch k members after at
//! most one copy of the list.

mod affinity;
mod failover;
mod geo;
mod random;
mod round_robin;
mod weighted;

pub use affinity::Affinity;
pub use failover::Failover;
pub use geo::Geo;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted::Weighted;

use crate::config::PolicyName;
// The affinity hash; it lives with the client keys it mixes.
pub(crate) use crate::net::mix;

/// What a policy needs to know about a member.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub weight: u32,
    /// A per-member constant mixed into affinity hashes (derived from the address).
    pub seed: u64,
}

/// Per-query input to a policy.
pub struct Pick<'a> {
    /// The pool's members; `eligible` indexes into it.
    pub members: &'a [Candidate],
    /// Eligible member indices, in declared order.
    pub eligible: &'a [u16],
    /// 0 for IPv4 (A), 1 for IPv6 (AAAA).
    pub family: usize,
    /// Hash of the client network (/24 or /56 of the ECS or source address).
    pub client_key: u64,
    /// At most this many indices are wanted (always >= 1): `max_answers`, or what
    /// fits in the reply. The answer is the first `limit` of the policy's order:
    /// for a deterministic policy exactly those, for a random one distributed as
    /// those.
    pub limit: usize,
    /// The client's location, for policies that ask for it (`needs_location`).
    pub location: Option<crate::geoip::Location>,
}

/// Reusable per-worker buffers and randomness, so that picking never allocates
/// once the buffers have grown to the largest pool.
pub struct Scratch {
    pub rng: fastrand::Rng,
    /// Candidate members with their keys.
    pub ranked: Vec<Ranked>,
    pub pool: Vec<u16>,
}

/// A member with its sort key: smaller keys are answered first, equal keys by
/// member index so that the same keys always give the same order.
#[derive(Debug, Clone, Copy)]
pub struct Ranked {
    pub key: f64,
    pub member: u16,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.total_cmp(&other.key).then(self.member.cmp(&other.member))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

impl Scratch {
    pub fn new(seed: u64) -> Self {
        Scratch { rng: fastrand::Rng::with_seed(seed), ranked: Vec::with_capacity(64), pool: Vec::with_capacity(64) }
    }
}

/// Writes into `out` the members of the `k` smallest keys of `ranked`, smallest
/// first. Partial selection then a sort of the k chosen: O(n + k log k), in place.
pub fn first_by_key(ranked: &mut [Ranked], k: usize, out: &mut Vec<u16>) {
    let k = k.min(ranked.len());
    if k == 0 {
        return;
    }
    if k < ranked.len() {
        ranked.select_nth_unstable(k - 1);
    }
    ranked[..k].sort_unstable();
    out.extend(ranked[..k].iter().map(|r| r.member));
}

/// A uniform number in (0, 1), never 0 or 1, from 53 bits of `bits`.
pub(crate) fn unit_open(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Orders eligible members.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// Writes up to `pick.limit` member indices into `out` (cleared first), best first.
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>);

    /// Whether the answer depends on the client address (for the ECS scope).
    fn client_dependent(&self) -> bool {
        false
    }

    /// Whether `Pick::location` must be looked up.
    fn needs_location(&self) -> bool {
        false
    }

    /// The ECS scope prefix of an answer for a client subnet of `source_prefix`
    /// bits (RFC 7871): how much of the address the answer depended on.
    fn ecs_scope(&self, _source_prefix: u8, _family: u16, _location: Option<&crate::geoip::Location>) -> u8 {
        0
    }

    /// A copy that shares no state with this one (`None`: the policy keeps no
    /// state, and is shared as it is). Used to explain an answer without
    /// advancing a rotation.
    fn detached(&self) -> Option<std::sync::Arc<dyn Policy>> {
        None
    }
}

/// The policy object for a configured policy name. `geo` is built with its region
/// table by the snapshot builder, not here. The policies that keep no state are
/// one object each, shared by every pool (100,000 pools held an allocation each).
pub fn build(name: PolicyName) -> Option<std::sync::Arc<dyn Policy>> {
    use std::sync::{Arc, LazyLock};
    static STATELESS: LazyLock<[Arc<dyn Policy>; 4]> =
        LazyLock::new(|| [Arc::new(Random), Arc::new(Weighted), Arc::new(Failover), Arc::new(Affinity)]);
    Some(match name {
        PolicyName::RoundRobin => Arc::new(RoundRobin::default()),
        PolicyName::Random => STATELESS[0].clone(),
        PolicyName::Weighted => STATELESS[1].clone(),
        PolicyName::Failover => STATELESS[2].clone(),
        PolicyName::Affinity => STATELESS[3].clone(),
        PolicyName::Geo => return None,
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    pub fn members(weights: &[u32]) -> Vec<Candidate> {
        weights.iter().enumerate().map(|(i, &w)| Candidate { weight: w, seed: mix(i as u64 + 1) }).collect()
    }

    /// How often each member came first over `n` picks.
    pub fn first_counts(p: &dyn Policy, weights: &[u32], n: usize, key: impl Fn(usize) -> u64) -> Vec<usize> {
        let m = members(weights);
        let eligible: Vec<u16> = (0..m.len() as u16).collect();
        let mut scratch = Scratch::new(7);
        let mut out = Vec::new();
        let mut counts = vec![0; m.len()];
        for i in 0..n {
            let pick = Pick {
                members: &m,
                eligible: &eligible,
                family: 0,
                client_key: key(i),
                limit: m.len(),
                location: None,
            };
            p.order(&pick, &mut scratch, &mut out);
            assert_eq!(out.len(), m.len());
            let mut sorted = out.clone();
            sorted.sort();
            assert_eq!(sorted, eligible, "every member exactly once");
            counts[out[0] as usize] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::members;
    use super::*;

    #[test]
    fn first_by_key_picks_the_smallest_in_order_ties_by_index() {
        let mut out = Vec::new();
        let mut ranked: Vec<Ranked> = [(3.0, 0), (1.0, 1), (2.0, 2), (1.0, 3), (0.5, 4)]
            .into_iter()
            .map(|(key, member)| Ranked { key, member })
            .collect();
        first_by_key(&mut ranked, 3, &mut out);
        assert_eq!(out, [4, 1, 3]);
        out.clear();
        first_by_key(&mut ranked, 99, &mut out);
        assert_eq!(out, [4, 1, 3, 2, 0]);
        out.clear();
        first_by_key(&mut [], 3, &mut out);
        assert!(out.is_empty());
    }

    /// Asking for the first k gives the first k of the whole order (same randomness),
    /// so a reply cut to what fits is the head of the policy's order. (weighted and
    /// geo draw the first k differently from the whole order: their distribution is
    /// checked in weighted.rs.)
    #[test]
    fn the_first_k_are_the_head_of_the_whole_order() {
        let n = 3_000;
        let m = members(&(0..n).map(|i| 1 + i % 7).collect::<Vec<u32>>());
        let eligible: Vec<u16> = (0..n as u16).collect();
        let policies: [&dyn Policy; 3] = [&Affinity, &Random, &Failover];
        for p in policies {
            for k in [1, 2, 64, 1_000] {
                let pick =
                    |limit| Pick { members: &m, eligible: &eligible, family: 0, client_key: 42, limit, location: None };
                let (mut head, mut all) = (Vec::new(), Vec::new());
                p.order(&pick(k), &mut Scratch::new(5), &mut head);
                p.order(&pick(n as usize), &mut Scratch::new(5), &mut all);
                assert_eq!(head.len(), k, "{p:?}");
                assert_eq!(head, all[..k], "{p:?} k = {k}");
            }
        }
    }

    /// Affinity over a large pool is the order of scores, highest first.
    #[test]
    fn affinity_top_k_matches_a_full_sort() {
        let n = 20_000u16;
        let m = members(&(0..n as u32).map(|i| 1 + i % 3).collect::<Vec<u32>>());
        let eligible: Vec<u16> = (0..n).collect();
        let mut s = Scratch::new(1);
        let mut out = Vec::new();
        for client in 0..20u64 {
            let key = mix(client);
            let pick = Pick { members: &m, eligible: &eligible, family: 0, client_key: key, limit: 50, location: None };
            Affinity.order(&pick, &mut s, &mut out);
            let mut all: Vec<u16> = eligible.clone();
            all.sort_by(|&a, &b| {
                let score = |i: u16| {
                    -(m[i as usize].weight as f64) / unit_open(mix(m[i as usize].seed ^ key.rotate_left(17))).ln()
                };
                score(b).total_cmp(&score(a)).then(a.cmp(&b))
            });
            assert_eq!(out, all[..50], "client {client}");
        }
    }
}
