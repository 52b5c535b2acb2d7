//! How a whole snapshot is built from the state in effect and health, and how the
//! next one is made after a health change.

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::rr::Name;
use rustc_hash::FxHashMap;

use super::{HealthView, Pool, Regions, Snapshot, build_pool, build_zone};
use crate::config::PoolDef;
use crate::problem::Problem;
use crate::zone::ZoneData;

/// Snapshot-wide settings from the config.
pub struct Settings {
    pub edns_udp_size: u16,
    pub regions: Arc<Regions>,
    pub geoip: Option<Arc<crate::geoip::GeoDb>>,
    pub tsig: Arc<crate::tsig::Keys>,
}

/// Builds a complete snapshot. `previous` lends round-robin cursors to pools that
/// keep their policy.
pub fn build(
    zones: &[Arc<ZoneData>],
    pools: &[Arc<PoolDef>],
    health: &dyn HealthView,
    serials: &BTreeMap<Name, u32>,
    settings: Settings,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, Problem> {
    let Settings { edns_udp_size, regions, geoip, tsig } = settings;
    let mut index: BTreeMap<Name, u32> = BTreeMap::new();
    let mut built = Vec::with_capacity(pools.len());
    // Previous pools by name: a reload of 100,000 pools must not search for each.
    let previous_by_name: std::collections::HashMap<&Name, &Arc<Pool>> =
        previous.map(|s| s.pools.iter().map(|p| (&p.def.name, p)).collect()).unwrap_or_default();
    for (i, def) in pools.iter().enumerate() {
        index.insert(def.name.clone(), i as u32);
        let prev = previous_by_name.get(&def.name).copied();
        built.push(Arc::new(build_pool(def.clone(), health, prev.map(|p| &**p), &regions)));
    }
    let mut zone_map = FxHashMap::default();
    for z in zones {
        let bump = serials.get(&z.origin).copied().unwrap_or(0);
        let zone = build_zone(z, bump, &index)?;
        zone_map.insert(zone.origin_wire.clone(), Arc::new(zone));
    }
    Ok(Snapshot { zones: Arc::new(zone_map), pools: built, edns_udp_size, regions: regions.clone(), geoip, tsig })
}

/// The next snapshot after a health change: the pools for which `affected` is true
/// are rebuilt, every other pool and every zone is shared with `prev`.
pub fn rebuild_pools(prev: &Snapshot, health: &dyn HealthView, affected: impl Fn(&PoolDef) -> bool) -> Snapshot {
    let pools = prev
        .pools
        .iter()
        .map(|p| {
            if affected(&p.def) {
                Arc::new(build_pool(p.def.clone(), health, Some(p), &prev.regions))
            } else {
                p.clone()
            }
        })
        .collect();
    prev.with_parts(prev.zones.clone(), pools)
}
