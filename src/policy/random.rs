//! `random`: a uniform shuffle (partial Fisher-Yates, only as far as `limit`).

use super::{Pick, Policy, Scratch};

#[derive(Debug, Default, Clone, Copy)]
pub struct Random;

impl Policy for Random {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        out.extend_from_slice(pick.eligible);
        let n = out.len();
        for i in 0..pick.limit.min(n) {
            let j = scratch.rng.usize(i..n);
            out.swap(i, j);
        }
        out.truncate(pick.limit);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::first_counts;
    use super::*;

    #[test]
    fn every_member_comes_first() {
        let counts = first_counts(&Random, &[1, 1, 1, 1], 4000, |_| 0);
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
