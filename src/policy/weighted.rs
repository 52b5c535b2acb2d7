//! `weighted`: weighted random order without replacement. The first member is drawn
//! with probability weight/total, the next from those left, and so on.
//!
//! Drawn as exponential races (Efraimidis and Spirakis): each member's key is
//! `E / weight` with `E` exponential, and the order is by ascending key. The smallest
//! of independent exponentials with rates w_i is member i with probability
//! w_i / total, and by memorylessness the rest race on the same way, so this is the
//! sequential draw without replacement.
//!
//! Only the first `limit` are wanted, so the k best keys are kept in a bounded heap
//! and the members that cannot beat the worst of them are skipped with exponential
//! jumps (A-ExpJ): the weight to pass before the next member that does is itself
//! exponential, so one draw covers a run of members. Cost: one subtraction per
//! member plus O(k log(n/k)) draws and heap updates, instead of a pass over the
//! members per answer.

use std::collections::BinaryHeap;

use super::{Candidate, Pick, Policy, Ranked, Scratch, unit_open};

#[derive(Debug, Default, Clone, Copy)]
pub struct Weighted;

impl Policy for Weighted {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        weighted_order(pick.members, pick.eligible, pick.limit, &mut scratch.rng, &mut scratch.ranked, out);
    }
}

/// An exponential variate of rate 1.
fn exponential(rng: &mut fastrand::Rng) -> f64 {
    -unit_open(rng.u64(..)).ln()
}

/// Appends to `out` up to `limit` of `from` in weighted random order; `ranked` is
/// the caller's reused buffer (it holds the k best keys, never more).
pub(crate) fn weighted_order(
    members: &[Candidate],
    from: &[u16],
    limit: usize,
    rng: &mut fastrand::Rng,
    ranked: &mut Vec<Ranked>,
    out: &mut Vec<u16>,
) {
    // A weight of 0 (refused by the config checks) gives an infinite key: last.
    let weight = |i: u16| members.get(i as usize).map_or(0.0, |m| m.weight as f64);
    let k = limit.min(from.len());
    let (head, rest) = from.split_at(k);
    ranked.clear();
    ranked.extend(head.iter().map(|&i| Ranked { key: exponential(rng) / weight(i), member: i }));
    // A max-heap: the worst key kept is on top. Built in place, no allocation.
    let mut heap = BinaryHeap::from(std::mem::take(ranked));
    jump(rest, &mut heap, weight, rng);
    *ranked = heap.into_vec();
    ranked.sort_unstable();
    out.extend(ranked.iter().map(|r| r.member));
}

/// Lets each member of `rest` replace the worst key in `heap` when its own key
/// would be smaller, drawing keys only for the members that do.
fn jump(rest: &[u16], heap: &mut BinaryHeap<Ranked>, weight: impl Fn(u16) -> f64, rng: &mut fastrand::Rng) {
    let Some(mut worst) = heap.peek().map(|r| r.key) else { return };
    // Weight still to pass before a member beats `worst`: P(no member of total
    // weight W does) = exp(-worst * W), so that weight is exponential of rate `worst`.
    let mut gap = exponential(rng) / worst;
    for &i in rest {
        let w = weight(i);
        if w <= 0.0 {
            continue;
        }
        gap -= w;
        if gap > 0.0 {
            continue;
        }
        // Its key is exponential of rate w given that it is below `worst`:
        // -ln(1 - u(1 - e^(-w worst))) / w, computed without cancellation.
        let below = -(-w * worst).exp_m1();
        let key = -(-unit_open(rng.u64(..)) * below).ln_1p() / w;
        if let Some(mut top) = heap.peek_mut() {
            *top = Ranked { key, member: i };
        }
        worst = heap.peek().map_or(f64::INFINITY, |r| r.key);
        gap = exponential(rng) / worst;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::first_counts;
    use super::*;

    #[test]
    fn first_share_follows_weights() {
        let counts = first_counts(&Weighted, &[3, 1, 1], 20_000, |_| 0);
        let share = |c: usize| c as f64 / 20_000.0;
        assert!((share(counts[0]) - 0.6).abs() < 0.02, "{counts:?}");
        assert!((share(counts[1]) - 0.2).abs() < 0.02, "{counts:?}");
    }

    /// The second member is drawn from those left with probability weight/(total
    /// left): P(a then b) = w_a/W * w_b/(W - w_a), checked by chi-square on the six
    /// ordered pairs of three members.
    #[test]
    fn second_place_is_drawn_from_those_left() {
        let m = super::super::testutil::members(&[3, 2, 1]);
        let eligible = [0u16, 1, 2];
        let mut s = Scratch::new(11);
        let mut out = Vec::new();
        let n = 60_000;
        let mut counts = [[0usize; 3]; 3];
        for _ in 0..n {
            let pick = Pick { members: &m, eligible: &eligible, family: 0, client_key: 0, limit: 2, location: None };
            Weighted.order(&pick, &mut s, &mut out);
            counts[out[0] as usize][out[1] as usize] += 1;
        }
        let w = [3.0, 2.0, 1.0];
        let mut chi2 = 0.0;
        for a in 0..3 {
            for b in (0..3).filter(|&b| b != a) {
                let expected = n as f64 * w[a] / 6.0 * w[b] / (6.0 - w[a]);
                chi2 += (counts[a][b] as f64 - expected).powi(2) / expected;
            }
        }
        // Critical value of chi-square with 5 degrees of freedom at p = 0.001.
        assert!(chi2 < 20.515, "chi2 = {chi2}, counts {counts:?}");
    }

    /// How often each member comes first and how often among the first `limit`,
    /// over `n` draws from a pool of `weights`.
    fn shares(weights: &[u32], limit: usize, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let m = super::super::testutil::members(weights);
        let eligible: Vec<u16> = (0..weights.len() as u16).collect();
        let mut s = Scratch::new(seed);
        let mut out = Vec::new();
        let (mut first, mut within) = (vec![0.0; weights.len()], vec![0.0; weights.len()]);
        for _ in 0..n {
            let pick = Pick { members: &m, eligible: &eligible, family: 0, client_key: 0, limit, location: None };
            Weighted.order(&pick, &mut s, &mut out);
            first[out[0] as usize] += 1.0 / n as f64;
            for &i in &out[..3] {
                within[i as usize] += 1.0 / n as f64;
            }
        }
        (first, within)
    }

    /// The first three drawn with jumps over a larger pool are distributed as the
    /// first three of the whole order, and the first as weight/total.
    #[test]
    fn the_first_k_with_jumps_are_distributed_as_the_whole_order() {
        let weights: Vec<u32> = (0..40).map(|i| [1, 2, 5, 10][i % 4]).collect();
        let total: u32 = weights.iter().sum();
        let n = 40_000;
        let (first_k, within_k) = shares(&weights, 3, n, 3);
        let (first_all, within_all) = shares(&weights, weights.len(), n, 4);
        for i in 0..weights.len() {
            let p = weights[i] as f64 / total as f64;
            // Five standard deviations of a share estimated from n draws.
            let sd = |p: f64| 5.0 * (p * (1.0 - p) / n as f64).sqrt();
            assert!((first_k[i] - p).abs() < sd(p), "member {i} first: {} vs {p}", first_k[i]);
            assert!((first_all[i] - p).abs() < sd(p), "member {i} first (all): {} vs {p}", first_all[i]);
            let q = within_all[i];
            assert!((within_k[i] - q).abs() < 1.5 * sd(q), "member {i} in the first 3: {} vs {q}", within_k[i]);
        }
    }
}
