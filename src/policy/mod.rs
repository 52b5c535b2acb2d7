//! Pool policies: given a pool's eligible members of one address family, choose the
//! order in which they are answered.
//!
//! Each policy lives in its own file behind the [`Policy`] trait. Policies are pure
//! and synchronous and never allocate: they write member indices into a buffer the
//! caller owns and reuses, draw randomness from the caller's per-worker generator, and
//! keep no state but an atomic cursor (round-robin).

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
    /// At most this many indices are wanted (always >= 1).
    pub limit: usize,
    /// The client's location, for policies that ask for it (`needs_location`).
    pub location: Option<crate::geoip::Location>,
}

/// Reusable per-worker buffers and randomness, so that picking never allocates
/// once the buffers have grown to the largest pool.
pub struct Scratch {
    pub rng: fastrand::Rng,
    pub keys: Vec<f64>,
    pub pool: Vec<u16>,
}

impl Scratch {
    pub fn new(seed: u64) -> Self {
        Scratch { rng: fastrand::Rng::with_seed(seed), keys: Vec::with_capacity(64), pool: Vec::with_capacity(64) }
    }
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
}

/// The policy object for a configured policy name. `geo` is built with its region
/// table by the snapshot builder, not here.
pub fn build(name: PolicyName) -> Option<Box<dyn Policy>> {
    Some(match name {
        PolicyName::RoundRobin => Box::new(RoundRobin::default()),
        PolicyName::Random => Box::new(Random),
        PolicyName::Weighted => Box::new(Weighted),
        PolicyName::Failover => Box::new(Failover),
        PolicyName::Affinity => Box::new(Affinity),
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
