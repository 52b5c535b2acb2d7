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
    let Settings { edns_udp_size, regions, geoip } = settings;
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
    let pools = built.into_iter().collect();
    Ok(Snapshot { zones: Arc::new(zone_map), pools, edns_udp_size, regions: regions.clone(), geoip })
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
