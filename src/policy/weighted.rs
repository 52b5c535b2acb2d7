//! `weighted`: weighted random order without replacement. The first member is drawn
//! with probability weight/total, the next from those left, and so on.
//!
//! Drawn as exponential races (Efraimidis and Spirakis): each member gets the key
//! `E / weight` with `E` exponential, and the order is by ascending key. The smallest
//! of independent exponentials with rates w_i is member i with probability
//! w_i / total, and by memorylessness the rest race on the same way, so this is the
//! sequential draw without replacement at one key per member plus a partial
//! selection of the first `limit`, instead of one pass over the members per answer.

use super::{Candidate, Pick, Policy, Scratch, first_by_key, unit_open};

#[derive(Debug, Default, Clone, Copy)]
pub struct Weighted;

impl Policy for Weighted {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        weighted_order(pick.members, pick.eligible, pick.limit, &mut scratch.rng, &mut scratch.ranked, out);
    }
}

/// Appends to `out` up to `limit` of `from` in weighted random order; `ranked` is
/// the caller's reused buffer of keys.
pub(crate) fn weighted_order(
    members: &[Candidate],
    from: &[u16],
    limit: usize,
    rng: &mut fastrand::Rng,
    ranked: &mut Vec<(f64, u16)>,
    out: &mut Vec<u16>,
) {
    ranked.clear();
    ranked.extend(from.iter().map(|&i| {
        // A weight of 0 (refused by the config checks) gives an infinite key: last.
        let w = members.get(i as usize).map_or(0.0, |m| m.weight as f64);
        (-unit_open(rng.u64(..)).ln() / w, i)
    }));
    first_by_key(ranked, limit, out);
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
}
