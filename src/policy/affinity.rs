//! `affinity`: weighted rendezvous (highest random weight) hashing of the client
//! network. Each member scores `-weight / ln(u)` with `u` a hash of (member, client)
//! in (0, 1); members are answered by descending score. A client keeps its first
//! answer while the eligible set is unchanged, and removing a member moves only the
//! clients whose first answer it was.

use super::{Pick, Policy, Ranked, Scratch, first_by_key, mix, unit_open};

#[derive(Debug, Default, Clone, Copy)]
pub struct Affinity;

fn score(weight: u32, seed: u64, client: u64) -> f64 {
    let h = mix(seed ^ client.rotate_left(17));
    -(weight as f64) / unit_open(h).ln()
}

impl Policy for Affinity {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        let ranked = &mut scratch.ranked;
        ranked.clear();
        // Negated so that the highest score comes first; negation is exact, so the
        // order is the same as sorting the scores downwards.
        ranked.extend(pick.eligible.iter().map(|&i| {
            let score =
                pick.members.get(i as usize).map_or(f64::NEG_INFINITY, |m| score(m.weight, m.seed, pick.client_key));
            Ranked { key: -score, member: i }
        }));
        first_by_key(ranked, pick.limit, out);
    }

    fn client_dependent(&self) -> bool {
        true
    }

    /// The answer depends on the client's /24 (IPv4) or /56 (IPv6).
    fn ecs_scope(&self, source_prefix: u8, family: u16, _location: Option<&crate::geoip::Location>) -> u8 {
        source_prefix.min(if family == 1 { 24 } else { 56 })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{first_counts, members};
    use super::super::{Pick, Scratch, mix};
    use super::*;

    #[test]
    fn spread_follows_weights() {
        let counts = first_counts(&Affinity, &[2, 1, 1], 20_000, |i| mix(i as u64));
        let share = |c: usize| c as f64 / 20_000.0;
        assert!((share(counts[0]) - 0.5).abs() < 0.02, "{counts:?}");
        assert!((share(counts[1]) - 0.25).abs() < 0.02, "{counts:?}");
    }

    #[test]
    fn removing_a_member_moves_only_its_clients() {
        let m = members(&[1, 1, 1, 1]);
        let all: Vec<u16> = vec![0, 1, 2, 3];
        let without: Vec<u16> = vec![0, 2, 3];
        let mut s = Scratch::new(1);
        let mut out = Vec::new();
        for c in 0..2000u64 {
            let key = mix(c);
            let first = |e: &[u16], s: &mut Scratch, out: &mut Vec<u16>| {
                Affinity.order(
                    &Pick { members: &m, eligible: e, family: 0, client_key: key, limit: 1, location: None },
                    s,
                    out,
                );
                out[0]
            };
            let before = first(&all, &mut s, &mut out);
            let after = first(&without, &mut s, &mut out);
            if before != 1 {
                assert_eq!(before, after, "client {c} moved");
            }
        }
    }
}
