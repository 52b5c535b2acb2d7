//! `failover`: declared order. The first eligible members answer; later ones only
//! when earlier ones are out.

use super::{Pick, Policy, Scratch};

#[derive(Debug, Default, Clone, Copy)]
pub struct Failover;

impl Policy for Failover {
    fn order(&self, pick: &Pick<'_>, _scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        out.extend(pick.eligible.iter().take(pick.limit));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::first_counts;
    use super::*;

    #[test]
    fn always_declared_order() {
        assert_eq!(first_counts(&Failover, &[1, 5, 1], 50, |_| 0), vec![50, 0, 0]);
    }
}
