//! `weighted`: weighted random order without replacement. The first member is drawn
//! with probability weight/total, the next from those left, and so on.

use super::{Pick, Policy, Scratch};

#[derive(Debug, Default, Clone, Copy)]
pub struct Weighted;

impl Policy for Weighted {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        scratch.pool.clear();
        scratch.pool.extend_from_slice(pick.eligible);
        weighted_order(pick.members, &mut scratch.pool, pick.limit, &mut scratch.rng, out);
    }
}

/// Draws up to `limit` of `left` (consumed) into `out`, each with probability
/// proportional to its weight among those left.
pub(crate) fn weighted_order(
    members: &[super::Candidate],
    left: &mut Vec<u16>,
    limit: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u16>,
) {
    let mut total: u64 = left.iter().map(|&i| members[i as usize].weight as u64).sum();
    while out.len() < limit && !left.is_empty() {
        let mut r = rng.u64(0..total.max(1));
        let mut chosen = left.len() - 1;
        for (k, &i) in left.iter().enumerate() {
            let w = members[i as usize].weight as u64;
            if r < w {
                chosen = k;
                break;
            }
            r -= w;
        }
        let i = left.remove(chosen);
        total -= members[i as usize].weight as u64;
        out.push(i);
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
}
