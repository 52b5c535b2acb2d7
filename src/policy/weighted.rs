//! `weighted`: weighted random order without replacement. The first member is drawn
//! with probability weight/total, the next from those left, and so on.
//!
//! Drawn as exponential races (Efraimidis and Spirakis): each member's key is
//! `E / weight` with `E` exponential, and the order is by ascending key. The smallest
//! of independent exponentials with rates w_i is member i with probability
//! w_i / total, and by memorylessness the rest race on the same way, so this is the
//! sequential draw without replacement.
//!
//! Only the first `limit` (k) are wanted. For small pools the draw is done as
//! defined, k passes over those left (O(n k) additions, no floating point). Above
//! that, the k best keys are kept in a bounded heap and the members that cannot
//! beat the worst of them are skipped with exponential jumps (A-ExpJ): the weight
//! to pass before the next member that does is itself exponential, so one draw
//! covers a run of members. Cost: one subtraction per member plus O(k log(n/k))
//! draws and heap updates, instead of a pass over the members per answer.

use std::collections::BinaryHeap;

use super::{Candidate, Pick, Policy, Ranked, Scratch, unit_open};

/// Up to this many steps (members × answers wanted) the passes are cheaper than
/// keys and jumps, whose draws cost a few logarithms each: measured with
/// `cargo bench --bench policies`, the two meet near 64k steps.
const SEQUENTIAL_MAX_STEPS: usize = 32_768;

#[derive(Debug, Default, Clone, Copy)]
pub struct Weighted;

impl Policy for Weighted {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        scratch.pool.clear();
        scratch.pool.extend_from_slice(pick.eligible);
        weighted_order(pick.members, &mut scratch.pool, pick.limit, &mut scratch.rng, &mut scratch.ranked, out);
    }
}

/// An exponential variate of rate 1.
fn exponential(rng: &mut fastrand::Rng) -> f64 {
    -unit_open(rng.u64(..)).ln()
}

/// Appends to `out` up to `limit` of `left` (the caller's reused buffer, consumed)
/// in weighted random order; `ranked` is the caller's reused buffer of keys.
pub(crate) fn weighted_order(
    members: &[Candidate],
    left: &mut Vec<u16>,
    limit: usize,
    rng: &mut fastrand::Rng,
    ranked: &mut Vec<Ranked>,
    out: &mut Vec<u16>,
) {
    let k = limit.min(left.len());
    if left.len().saturating_mul(k) <= SEQUENTIAL_MAX_STEPS {
        sequential(members, left, k, rng, out);
    } else {
        with_jumps(members, left, k, rng, ranked, out);
    }
}

/// The draw as defined: each of `k` passes picks one of those left with
/// probability weight / (total left).
fn sequential(members: &[Candidate], left: &mut Vec<u16>, k: usize, rng: &mut fastrand::Rng, out: &mut Vec<u16>) {
    let weight = |i: u16| members.get(i as usize).map_or(0, |m| m.weight as u64);
    let mut total: u64 = left.iter().map(|&i| weight(i)).sum();
    for _ in 0..k.min(left.len()) {
        let mut r = rng.u64(0..total.max(1));
        // Only if every member left weighs 0 (refused by the config checks).
        let mut chosen = left.len() - 1;
        for (j, &i) in left.iter().enumerate() {
            let w = weight(i);
            if r < w {
                chosen = j;
                break;
            }
            r -= w;
        }
        // The order of those left does not matter to the draw: swap_remove is O(1).
        let i = left.swap_remove(chosen);
        total -= weight(i);
        out.push(i);
    }
}

/// Exponential keys for the first k members, then jumps over the rest; the k
/// smallest keys are the first k of the order.
fn with_jumps(
    members: &[Candidate],
    left: &[u16],
    k: usize,
    rng: &mut fastrand::Rng,
    ranked: &mut Vec<Ranked>,
    out: &mut Vec<u16>,
) {
    // A weight of 0 (refused by the config checks) gives an infinite key: last.
    let weight = |i: u16| members.get(i as usize).map_or(0.0, |m| m.weight as f64);
    let (head, rest) = left.split_at(k.min(left.len()));
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

    type Draw = fn(&[Candidate], &mut Vec<u16>, usize, &mut fastrand::Rng, &mut Vec<Ranked>, &mut Vec<u16>);
    const DRAWS: [(&str, Draw); 2] = [
        ("sequential", |m, left, k, rng, _, out| sequential(m, left, k, rng, out)),
        ("with jumps", |m, left, k, rng, ranked, out| with_jumps(m, left, k, rng, ranked, out)),
    ];

    /// `limit` of a pool of `weights` drawn `n` times by `draw`, each draw's order
    /// passed to `tally`.
    fn draws(weights: &[u32], limit: usize, n: usize, draw: Draw, mut tally: impl FnMut(&[u16])) {
        let m = super::super::testutil::members(weights);
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut left, mut ranked, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            left.clear();
            left.extend(0..weights.len() as u16);
            out.clear();
            draw(&m, &mut left, limit, &mut rng, &mut ranked, &mut out);
            assert_eq!(out.len(), limit);
            tally(&out);
        }
    }

    /// The second member is drawn from those left with probability weight/(total
    /// left): P(a then b) = w_a/W * w_b/(W - w_a), checked by chi-square on the six
    /// ordered pairs of three members, for both ways of drawing.
    #[test]
    fn second_place_is_drawn_from_those_left() {
        for (name, draw) in DRAWS {
            let n = 60_000;
            let mut counts = [[0usize; 3]; 3];
            draws(&[3, 2, 1], 2, n, draw, |o| counts[o[0] as usize][o[1] as usize] += 1);
            let w = [3.0, 2.0, 1.0];
            let mut chi2 = 0.0;
            for a in 0..3 {
                for b in (0..3).filter(|&b| b != a) {
                    let expected = n as f64 * w[a] / 6.0 * w[b] / (6.0 - w[a]);
                    chi2 += (counts[a][b] as f64 - expected).powi(2) / expected;
                }
            }
            // Critical value of chi-square with 5 degrees of freedom at p = 0.001.
            assert!(chi2 < 20.515, "{name}: chi2 = {chi2}, counts {counts:?}");
        }
    }

    /// Over a larger pool, the first three drawn with jumps are distributed as the
    /// first three drawn as defined, and the first as weight/total.
    #[test]
    fn the_first_k_with_jumps_are_distributed_as_the_sequential_draw() {
        let weights: Vec<u32> = (0..40).map(|i| [1, 2, 5, 10][i % 4]).collect();
        let total: u32 = weights.iter().sum();
        let n = 40_000;
        let mut shares = [(vec![0.0; 40], vec![0.0; 40]), (vec![0.0; 40], vec![0.0; 40])];
        for ((_, draw), (first, within)) in DRAWS.into_iter().zip(shares.iter_mut()) {
            draws(&weights, 3, n, draw, |o| {
                first[o[0] as usize] += 1.0 / n as f64;
                o.iter().for_each(|&i| within[i as usize] += 1.0 / n as f64);
            });
        }
        // Five standard deviations of a share estimated from n draws.
        let sd = |p: f64| 5.0 * (p * (1.0 - p) / n as f64).sqrt();
        let [(first_seq, within_seq), (first_jump, within_jump)] = &shares;
        for i in 0..weights.len() {
            let p = weights[i] as f64 / total as f64;
            assert!((first_seq[i] - p).abs() < sd(p), "member {i} first: {} vs {p}", first_seq[i]);
            assert!((first_jump[i] - p).abs() < sd(p), "member {i} first with jumps: {} vs {p}", first_jump[i]);
            let q = within_seq[i];
            assert!((within_jump[i] - q).abs() < 1.5 * sd(q), "member {i} in the first 3: {} vs {q}", within_jump[i]);
        }
    }

    /// Large pools take the jumps; what comes out is still every member at most once.
    #[test]
    fn a_large_pool_gives_distinct_members() {
        let weights: Vec<u32> = (0..5_000).map(|i| 1 + i % 5).collect();
        let m = super::super::testutil::members(&weights);
        let eligible: Vec<u16> = (0..5_000).collect();
        let mut s = Scratch::new(2);
        let mut out = Vec::new();
        for limit in [1, 74, 4_093, 5_000] {
            let pick = Pick { members: &m, eligible: &eligible, family: 0, client_key: 0, limit, location: None };
            Weighted.order(&pick, &mut s, &mut out);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!((out.len(), sorted.len()), (limit, limit));
        }
    }
}
