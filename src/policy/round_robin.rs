//! `round-robin`: the eligible list rotated by one per response.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Pick, Policy, Scratch};

/// One cursor per address family, shared by every snapshot that holds this pool so
/// that rotation continues across health changes and reloads.
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    cursor: Arc<[AtomicUsize; 2]>,
}

impl Policy for RoundRobin {
    fn order(&self, pick: &Pick<'_>, _scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        let n = pick.eligible.len();
        if n == 0 {
            return;
        }
        let start = self.cursor[pick.family & 1].fetch_add(1, Ordering::Relaxed) % n;
        out.extend(pick.eligible[start..].iter().chain(&pick.eligible[..start]).take(pick.limit));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::first_counts;
    use super::*;

    #[test]
    fn each_member_first_exactly_k_times() {
        let counts = first_counts(&RoundRobin::default(), &[1, 1, 1, 1, 1], 5 * 7, |_| 0);
        assert_eq!(counts, vec![7; 5]);
    }
}
