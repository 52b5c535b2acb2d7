//! `round-robin`: the eligible list rotated by one per response.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Pick, Policy, Scratch};

/// One cursor per address family. The policy object itself is shared (`Arc`) by
/// every snapshot that holds this pool, so that rotation continues across health
/// changes and reloads; the cursors are inline (one allocation per pool, not two).
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: [AtomicUsize; 2],
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

    fn detached(&self) -> Option<Arc<dyn Policy>> {
        let at = |f: usize| AtomicUsize::new(self.cursor[f].load(Ordering::Relaxed));
        Some(Arc::new(RoundRobin { cursor: [at(0), at(1)] }))
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

    #[test]
    fn a_detached_copy_starts_where_the_rotation_is_and_does_not_advance_it() {
        let rr = RoundRobin::default();
        let m = super::super::testutil::members(&[1, 1, 1]);
        let eligible = [0u16, 1, 2];
        let pick = Pick { members: &m, eligible: &eligible, family: 0, client_key: 0, limit: 3, location: None };
        let (mut s, mut out) = (Scratch::new(1), Vec::new());
        rr.order(&pick, &mut s, &mut out);
        let copy = rr.detached().unwrap();
        let mut seen = Vec::new();
        copy.order(&pick, &mut s, &mut seen);
        copy.order(&pick, &mut s, &mut out);
        rr.order(&pick, &mut s, &mut out);
        assert_eq!(seen, out, "the copy showed what the pool answers next");
    }
}
