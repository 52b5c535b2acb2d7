//! How a whole snapshot is built from the state in effect and health, and how the
//! next one is made after a health change.

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::rr::Name;
use rustc_hash::FxHashMap;

use super::{HealthView, Pool, Regions, Snapshot, Zone, build_pool};
use crate::config::PoolDef;
use crate::problem::Problem;

/// Snapshot-wide settings from the config.
pub struct Settings {
    pub edns_udp_size: u16,
    pub regions: Arc<Regions>,
    pub geoip: Option<Arc<crate::geoip::GeoDb>>,
    pub tsig: Arc<crate::tsig::Keys>,
    pub transfer: Arc<super::transfer::TransferTable>,
    pub dnssec: Arc<crate::dnssec::Signing>,
}

/// The pool index zones mark their pool nodes with: each pool's position.
pub fn pool_index(pools: &[Arc<PoolDef>]) -> BTreeMap<Name, u32> {
    pools.iter().enumerate().map(|(i, def)| (def.name.clone(), i as u32)).collect()
}

/// The zones of the zone files `files` with their pool nodes marked for `pools`
/// (in that order): each shares its file's base.
pub fn build_zones<'a>(files: impl IntoIterator<Item = &'a Arc<Zone>>, pools: &[Arc<PoolDef>]) -> Vec<Arc<Zone>> {
    let index = pool_index(pools);
    files.into_iter().map(|z| z.with_pools(&index)).collect()
}

/// Builds a complete snapshot of `zones` (their pool nodes marked for `pools`,
/// in that order). `previous` lends round-robin cursors to pools that keep their
/// policy.
pub fn build(
    zones: &[Arc<Zone>],
    pools: &[Arc<PoolDef>],
    health: &dyn HealthView,
    settings: Settings,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, Problem> {
    let Settings { edns_udp_size, regions, geoip, tsig, transfer, dnssec } = settings;
    let mut built = Vec::with_capacity(pools.len());
    // Previous pools by name: a reload of 100,000 pools must not search for each.
    let previous_by_name: std::collections::HashMap<&Name, &Arc<Pool>> =
        previous.map(|s| s.pools.iter().map(|p| (&p.def.name, p)).collect()).unwrap_or_default();
    // `geo` pools are built from the regions: with other regions none is kept.
    let same_regions = previous.is_some_and(|s| s.regions == regions);
    for def in pools {
        let prev = previous_by_name.get(&def.name).copied();
        built.push(match prev {
            Some(p) if same_regions && unchanged(p, def, health) => p.clone(),
            _ => Arc::new(build_pool(def.clone(), health, prev.map(|p| &**p), &regions)),
        });
    }
    let zone_map: FxHashMap<Box<[u8]>, Arc<Zone>> = zones.iter().map(|z| (z.origin_wire.clone(), z.clone())).collect();
    let pools = built.into_iter().collect();
    Ok(Snapshot {
        zones: Arc::new(zone_map),
        pools,
        edns_udp_size,
        regions: regions.clone(),
        geoip,
        tsig,
        transfer,
        dnssec,
    })
}

/// Whether `pool` is what building `def` with `health` would make: the same
/// definition (wherever it now is in the config) and the same health of every
/// member. Such a pool is kept whole, its policy state and counters with it.
fn unchanged(pool: &Pool, def: &PoolDef, health: &dyn HealthView) -> bool {
    same_definition(&pool.def, def)
        && pool
            .members
            .iter()
            .zip(&def.members)
            .all(|(m, d)| m.healthy == health.is_up(def, d) && m.weight == health.weight(def, d))
}

/// Whether two definitions define the same pool; where each was written does not
/// count (a pool above it that grew moves it down the config file).
fn same_definition(a: &PoolDef, b: &PoolDef) -> bool {
    // Destructured so that a new field cannot be forgotten here.
    let PoolDef { name, policy, ttl, max_answers, all_down, fallback, health, members, line: _ } = a;
    (name, policy, ttl, max_answers, all_down, fallback, health, members)
        == (&b.name, &b.policy, &b.ttl, &b.max_answers, &b.all_down, &b.fallback, &b.health, &b.members)
}

/// The next snapshot after a health change: the pools at the indices `which`
/// are rebuilt, every other pool and every zone is shared with `prev`. The cost
/// is that of the pools rebuilt, whatever the number of pools.
pub fn rebuild_pools(prev: &Snapshot, health: &dyn HealthView, which: impl IntoIterator<Item = u32>) -> Snapshot {
    let rebuilt = which.into_iter().filter_map(|i| {
        let p = prev.pools.get(i as usize)?;
        Some((i, Arc::new(build_pool(p.def.clone(), health, Some(p), &prev.regions))))
    });
    prev.with_parts(prev.zones.clone(), prev.pools.with_replaced(rebuilt))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use super::*;

    /// Every member up but those listed.
    struct Down(Vec<IpAddr>);
    impl HealthView for Down {
        fn is_up(&self, _: &PoolDef, member: &crate::config::MemberConfig) -> bool {
            !self.0.contains(&member.address)
        }
    }

    fn snapshot(pools: &str, health: &dyn HealthView, previous: Option<&Snapshot>) -> Snapshot {
        let text = format!("[[zone]]\norigin = \"e.test.\"\nfile = \"/z\"\n{pools}");
        let config = crate::config::parse(Path::new("/lbdns.toml"), &text).unwrap();
        let zone =
            crate::zone::parse_str(&config.zones[0].origin, Path::new("/z"), "@ 60 SOA ns h 1 2 3 4 30\n@ 60 NS ns\n");
        let defs: Vec<Arc<PoolDef>> = config.pools.into_iter().map(Arc::new).collect();
        let settings = Settings {
            edns_udp_size: 1232,
            regions: Arc::default(),
            geoip: None,
            tsig: Arc::default(),
            transfer: Arc::default(),
            dnssec: Arc::default(),
        };
        let zones = build_zones([&zone.unwrap().zone], &defs);
        build(&zones, &defs, health, settings, previous).unwrap()
    }

    /// A full build keeps the previous pool whole when its definition (wherever it
    /// moved in the config) and its members' health are the same, and builds it
    /// again when either changed.
    #[test]
    fn a_full_build_keeps_unchanged_pools_whole() {
        let pool = |name: &str, address: &str| {
            format!("[[pool]]\nname = \"{name}.e.test.\"\n[[pool.member]]\naddress = \"{address}\"\n")
        };
        let before = [pool("a", "192.0.2.1"), pool("b", "192.0.2.2"), pool("c", "192.0.2.3")].concat();
        let first = snapshot(&before, &Down(vec![]), None);
        // A comment above moves every pool down the file; b changes; c's member goes down.
        let after = ["# moved\n", &pool("a", "192.0.2.1"), &pool("b", "192.0.2.9"), &pool("c", "192.0.2.3")].concat();
        let down: IpAddr = "192.0.2.3".parse().unwrap();
        let next = snapshot(&after, &Down(vec![down]), Some(&first));
        let same = |i: usize| Arc::ptr_eq(first.pools.get(i).unwrap(), next.pools.get(i).unwrap());
        assert!(same(0), "a is unchanged");
        assert!(!same(1), "b has another member");
        assert!(!same(2), "c's member is down");
        assert!(!next.pools.get(2).unwrap().members[0].healthy);
        assert!(Arc::ptr_eq(&first.pools.get(1).unwrap().counters, &next.pools.get(1).unwrap().counters));
    }
}
