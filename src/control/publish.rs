//! Publishing: the only code that swaps the snapshot ([`Writer::swap`]). Each
//! change rebuilds what it touched (a zone, some pools, a serial) and shares the
//! rest with the snapshot before it; a full build is for changes to the pool list.
//! Every publish keeps `Writer::by_probe` in step with the pools it publishes.

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use tracing::error;

use crate::state::overlay::Overlay;

use crate::config::PoolDef;
use crate::health::ProbeKey;
use crate::snapshot::{EncodedRRset, Pool, Pools, Snapshot};
use crate::zone::ZoneRecord;

use super::probes::PoolsByProbe;
use super::*;

impl Writer {
    /// Builds and publishes a full snapshot of the effective state.
    pub(super) fn publish(&mut self) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let pools = self.pool_defs();
        let next = crate::snapshot::build(
            &self.effective.zones,
            &pools,
            &self.view(),
            &self.overlay.serials,
            crate::snapshot::Settings {
                edns_udp_size: self.sources.config.dns.edns_udp_size,
                regions: Arc::new(self.sources.config.regions.clone()),
                geoip: self.sources.geoip.clone(),
                tsig: self.sources.config.tsig.clone(),
                dnssec: self.sources.config.dnssec.clone(),
            },
            Some(&prev),
        )?;
        self.swap(next);
        self.by_probe = PoolsByProbe::of(&pools);
        Ok(())
    }

    /// Publishes the pools `which` names rebuilt; zones are shared.
    pub(super) fn publish_pools(&mut self, which: impl Fn(&Name) -> bool) {
        let prev = self.snapshot.load_full();
        let pools = self.pools_rebuilt(&prev, which);
        self.swap(prev.with_parts(prev.zones.clone(), pools));
    }

    /// Publishes a change to one zone's records: that zone is rebuilt, the rest shared.
    pub(super) fn publish_zone(&mut self, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let index: std::collections::BTreeMap<Name, u32> =
            prev.pools.iter().enumerate().map(|(i, p)| (p.def.name.clone(), i as u32)).collect();
        let data = self.effective.zones.iter().find(|z| z.origin == *origin).ok_or(StateError::NoZone)?;
        let bump = self.overlay.serials.get(origin).copied().unwrap_or(0);
        let zone = crate::snapshot::build_zone(data, bump, &index)?;
        let mut zones = (*prev.zones).clone();
        zones.insert(zone.origin_wire.clone(), Arc::new(zone));
        self.swap(prev.with_parts(Arc::new(zones), prev.pools.clone()));
        Ok(())
    }

    /// Publishes one RRset change (`records`: the RRset now, none if it is gone):
    /// the zone's layer gets the node and its SOA serial is re-encoded; its base,
    /// every other node and every other zone are shared. The zone is not rebuilt.
    pub(super) fn publish_rrset(
        &mut self,
        origin: &Name,
        name: &Name,
        rtype: RecordType,
        records: &[ZoneRecord],
    ) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let key = crate::snapshot::wire(origin);
        let Some(zone) = prev.zones.get(&key) else { return self.publish_zone(origin) };
        let encoded =
            records.iter().map(|r| crate::snapshot::encode_record(r.ttl, &r.rdata)).collect::<Result<Vec<_>, _>>()?;
        let set = (!encoded.is_empty()).then(|| EncodedRRset::new(encoded.iter().map(|r| &r[..])));
        let changed = zone.with_rrset(&crate::snapshot::wire(name), u16::from(rtype), set);
        let bump = self.overlay.serials.get(origin).copied().unwrap_or(0);
        let next = changed.with_serial_bump(self.file_serial(origin), bump)?;
        let mut zones = (*prev.zones).clone();
        zones.insert(key, Arc::new(next));
        self.swap(prev.with_parts(Arc::new(zones), prev.pools.clone()));
        Ok(())
    }

    /// The SOA serial in `origin`'s zone data (before the API's bumps).
    fn file_serial(&self, origin: &Name) -> u32 {
        let data = self.effective.zones.iter().find(|z| z.origin == *origin);
        // The SOA is found at once: the loader reads it first in every zone file
        // that starts with it, and it is never changed through the API.
        let soa = data.and_then(|d| {
            d.records.iter().find_map(|r| match &r.rdata {
                hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
        });
        soa.unwrap_or(0)
    }

    /// Publishes a change to one pool whose name set is unchanged: the pool is
    /// rebuilt and its zone's serial advanced, in one swap; every node is shared.
    pub(super) fn publish_pool(&mut self, pool: &Name, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        self.in_effect().find_pool(pool).ok_or(StateError::NoPool)?;
        let pools = self.pools_rebuilt(&prev, |name| name == pool);
        let zones = self.zones_with_serial(&prev, origin)?;
        self.swap(prev.with_parts(Arc::new(zones), pools));
        Ok(())
    }

    /// Publishes the zone's current serial (its counter of changes); the zone's
    /// nodes are shared.
    pub(super) fn publish_serial(&mut self, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let zones = self.zones_with_serial(&prev, origin)?;
        self.swap(prev.with_parts(Arc::new(zones), prev.pools.clone()));
        Ok(())
    }

    /// `prev`'s zones with `origin`'s SOA serial re-encoded from its counter.
    pub(super) fn zones_with_serial(&self, prev: &Snapshot, origin: &Name) -> Result<ZoneMap, StateError> {
        let mut zones = (*prev.zones).clone();
        let key = crate::snapshot::wire(origin);
        if let Some(z) = zones.get(&key).filter(|_| self.effective.zones.iter().any(|z| z.origin == *origin)) {
            let bump = self.overlay.serials.get(origin).copied().unwrap_or(0);
            let next = z.with_serial_bump(self.file_serial(origin), bump)?;
            zones.insert(key, Arc::new(next));
        }
        Ok(zones)
    }

    /// The published pools with those `which` names rebuilt from their
    /// definitions in effect (and this node's view of health); the index of
    /// probes to pools follows their new definitions.
    pub(super) fn pools_rebuilt(&mut self, prev: &Snapshot, which: impl Fn(&Name) -> bool) -> Pools {
        let view = self.view();
        let defs: std::collections::HashMap<&Name, &Arc<PoolDef>> =
            self.effective.pools.iter().map(|(p, _)| (&p.name, p)).collect();
        let rebuilt: Vec<(u32, Arc<Pool>)> = prev
            .pools
            .iter()
            .enumerate()
            .filter(|(_, p)| which(&p.def.name))
            .filter_map(|(i, p)| {
                let def = (*defs.get(&p.def.name)?).clone();
                Some((i as u32, Arc::new(crate::snapshot::build_pool(def, &view, Some(p), &prev.regions))))
            })
            .collect();
        for (i, pool) in &rebuilt {
            if let Some(old) = prev.pools.get(*i as usize) {
                self.by_probe.remove(*i, &old.def);
            }
            self.by_probe.add(*i, &pool.def);
        }
        prev.pools.with_replaced(rebuilt)
    }

    /// Rebuilds the pools fed by the probe streams `changed` (their results
    /// here, or another node's votes); every other pool and every zone is shared.
    /// The work is that of the pools rebuilt, whatever the number of pools.
    /// Returns the indices of the pools rebuilt.
    pub(super) fn republish_members<'k>(
        &mut self,
        changed: impl IntoIterator<Item = &'k ProbeKey>,
    ) -> std::collections::BTreeSet<u32> {
        let prev = self.snapshot.load_full();
        let which = self.by_probe.pools_of(changed);
        let next = crate::snapshot::rebuild_pools(&prev, &self.view(), which.iter().copied());
        self.swap(next);
        which
    }

    /// Makes `overlay` (with `effective`, derived from it) the state in effect:
    /// probes follow its pools, and it is published.
    pub(super) fn put_in_effect(&mut self, overlay: Overlay, effective: Effective) {
        self.overlay = overlay;
        self.effective = effective;
        self.follow_pools();
        if let Err(e) = self.publish() {
            error!(error = %e, "cannot publish the state from etcd");
        }
    }

    /// The one place a snapshot is published: every change ends here.
    pub(super) fn swap(&self, next: Snapshot) {
        self.snapshot.store(Arc::new(next));
    }
}
