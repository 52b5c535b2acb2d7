//! `geo`: the client's location (GeoIP of the ECS or source address) picks a list
//! of regions from `[regions]`: the country's key, else the continent's, else
//! `default`. Members of the first listed region that has eligible members answer,
//! in weighted order. If no listed region has any, every eligible member answers
//! in weighted order (better a far answer than none).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::weighted::weighted_order;
use super::{Pick, Policy, Scratch};
use crate::geoip::Location;

#[derive(Debug)]
pub struct Geo {
    /// Country or continent code -> region ids, most preferred first.
    by_key: FxHashMap<[u8; 2], Box<[u16]>>,
    default: Box<[u16]>,
    /// Region id of each member (by member index); `u16::MAX` when none.
    member_region: Box<[u16]>,
}

impl Geo {
    /// `regions`: the `[regions]` table; `members`: each member's region name.
    pub fn new(regions: &BTreeMap<String, Vec<String>>, members: &[Option<&str>]) -> Geo {
        fn id(name: &str, ids: &mut BTreeMap<String, u16>) -> u16 {
            let next = ids.len() as u16;
            *ids.entry(name.to_string()).or_insert(next)
        }
        let mut names: BTreeMap<String, u16> = BTreeMap::new();
        let mut by_key = FxHashMap::default();
        let mut default: Box<[u16]> = Box::new([]);
        for (key, list) in regions {
            let list: Box<[u16]> = list.iter().map(|r| id(r, &mut names)).collect();
            let k = key.as_bytes();
            if key == "default" {
                default = list;
            } else if k.len() == 2 {
                by_key.insert([k[0].to_ascii_uppercase(), k[1].to_ascii_uppercase()], list);
            }
        }
        let member_region = members.iter().map(|r| r.and_then(|r| names.get(r).copied()).unwrap_or(u16::MAX)).collect();
        Geo { by_key, default, member_region }
    }

    fn regions_for(&self, loc: Option<&Location>) -> &[u16] {
        let Some(loc) = loc else { return &self.default };
        loc.country
            .and_then(|c| self.by_key.get(&c))
            .or_else(|| loc.continent.and_then(|c| self.by_key.get(&c)))
            .unwrap_or(&self.default)
    }
}

impl Policy for Geo {
    fn order(&self, pick: &Pick<'_>, scratch: &mut Scratch, out: &mut Vec<u16>) {
        out.clear();
        let Scratch { rng, ranked, pool } = scratch;
        for &region in self.regions_for(pick.location.as_ref()) {
            pool.clear();
            pool.extend(pick.eligible.iter().filter(|&&i| self.member_region.get(i as usize) == Some(&region)));
            if !pool.is_empty() {
                weighted_order(pick.members, pool, pick.limit, rng, ranked, out);
                return;
            }
        }
        pool.clear();
        pool.extend_from_slice(pick.eligible);
        weighted_order(pick.members, pool, pick.limit, rng, ranked, out);
    }

    fn client_dependent(&self) -> bool {
        true
    }

    fn needs_location(&self) -> bool {
        true
    }

    /// The matched database network's prefix, at most the part of the source
    /// prefix that was used (/24 or /56: longer client subnets are truncated).
    fn ecs_scope(&self, source_prefix: u8, family: u16, location: Option<&Location>) -> u8 {
        let used = source_prefix.min(if family == 1 { 24 } else { 56 });
        location.map(|l| l.prefix.min(used)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::members;
    use super::*;

    fn regions() -> BTreeMap<String, Vec<String>> {
        [("JP", vec!["ap", "us"]), ("EU", vec!["eu", "us"]), ("default", vec!["us", "eu", "ap"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect()
    }

    fn first(g: &Geo, eligible: &[u16], loc: Option<Location>) -> u16 {
        let m = members(&[1, 1, 1, 1]);
        let mut s = Scratch::new(3);
        let mut out = Vec::new();
        g.order(&Pick { members: &m, eligible, family: 0, client_key: 0, limit: 4, location: loc }, &mut s, &mut out);
        out[0]
    }

    #[test]
    fn country_then_continent_then_default_then_next_region() {
        let g = Geo::new(&regions(), &[Some("us"), Some("eu"), Some("ap"), Some("eu")]);
        let jp = Location { country: Some(*b"JP"), continent: Some(*b"AS"), prefix: 24 };
        let de = Location { country: Some(*b"DE"), continent: Some(*b"EU"), prefix: 24 };
        let br = Location { country: Some(*b"BR"), continent: Some(*b"SA"), prefix: 24 };
        assert_eq!(first(&g, &[0, 1, 2, 3], Some(jp)), 2);
        assert!([1, 3].contains(&first(&g, &[0, 1, 2, 3], Some(de))));
        assert_eq!(first(&g, &[0, 1, 2, 3], Some(br)), 0);
        assert_eq!(first(&g, &[0, 1, 2, 3], None), 0);
        // ap is out: JP falls to us.
        assert_eq!(first(&g, &[0, 1, 3], Some(jp)), 0);
        // Nothing listed is eligible: any eligible member.
        let only_ap = Geo::new(&regions(), &[Some("zz"), Some("zz"), Some("zz"), Some("zz")]);
        assert!([0, 1].contains(&first(&only_ap, &[0, 1], Some(jp))));
    }
}
