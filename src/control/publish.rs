//! Publishing: the only code that swaps the snapshot ([`Writer::swap`]). Each
//! change rebuilds what it touched (a zone, some pools, a serial) and shares the
//! rest with the snapshot before it; a full build is for changes to the pool list.
//! Every publish keeps `Writer::by_probe` in step with the pools it publishes.

use std::sync::Arc;

use hickory_proto::rr::Name;
use tracing::error;

use crate::state::overlay::Overlay;

use crate::health::ProbeKey;
use crate::snapshot::{Pool, Pools, Snapshot, Zone};

use super::probes::PoolsByProbe;
use super::*;

impl Writer {
    /// Builds and publishes a full snapshot of the effective state: every pool
    /// (those unchanged are kept), the zones as they are in effect (built again
    /// only when the pool list changed, as they mark pool nodes by position).
    pub(super) fn publish(&mut self) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let pools = self.pool_defs();
        if self.effective.pools_moved {
            self.effective.zones = super::effect::zones_of(&self.sources, &self.overlay, &pools)?;
            self.effective.pools_moved = false;
        }
        for i in 0..self.effective.zones.len() {
            self.effective.zones[i] = self.bumped(&self.effective.zones[i])?;
        }
        let next = crate::snapshot::build(&self.effective.zones, &pools, &self.view(), self.settings(), Some(&prev))?;
        self.swap(next);
        self.by_probe = PoolsByProbe::of(&pools);
        Ok(())
    }

    /// Publishes the zones in effect and the config's settings (its secrets
    /// and GeoIP database read again) with the published pools kept whole:
    /// for a reload whose pools in effect are those published, at the same
    /// positions (the config's bytes did not change). The zones in effect are
    /// already derived (and their serials advanced); only the map of them is
    /// made again, and no pool is looked at.
    pub(super) fn publish_zones(&mut self) {
        let prev = self.snapshot.load_full();
        let zones = self.effective.zones.iter().map(|z| (z.origin_wire.clone(), z.clone())).collect();
        let settings = self.settings();
        self.swap(Snapshot {
            zones: Arc::new(zones),
            pools: prev.pools.clone(),
            edns_udp_size: settings.edns_udp_size,
            regions: settings.regions,
            geoip: settings.geoip,
            tsig: settings.tsig,
            transfer: settings.transfer,
            dnssec: settings.dnssec,
        });
    }

    /// The snapshot-wide settings of the config in effect.
    fn settings(&self) -> crate::snapshot::Settings {
        let config = &self.sources.config;
        crate::snapshot::Settings {
            edns_udp_size: config.dns.edns_udp_size,
            regions: Arc::new(config.regions.clone()),
            geoip: self.sources.geoip.clone(),
            tsig: config.tsig.clone(),
            transfer: Arc::new(crate::snapshot::transfer::table(&config.zones)),
            dnssec: config.dnssec.clone(),
        }
    }

    /// `zone` with the serial its overlay counter gives.
    fn bumped(&self, zone: &Arc<Zone>) -> Result<Arc<Zone>, StateError> {
        Ok(zone.with_bump(self.overlay.serials.get(&zone.origin).copied().unwrap_or(0))?)
    }

    /// Publishes the pools named rebuilt; zones are shared. The published
    /// pools must be those in effect, at the same positions.
    pub(super) fn publish_pools<'n>(&mut self, names: impl IntoIterator<Item = &'n Name>) {
        let prev = self.snapshot.load_full();
        let at: Vec<u32> = names.into_iter().filter_map(|n| self.effective.position(n)).map(|i| i as u32).collect();
        let pools = self.pools_rebuilt(&prev, &at);
        self.swap(prev.with_parts(prev.zones.clone(), pools));
    }

    /// Publishes the zone `origin` as it is in effect (an RRset change already
    /// laid over it), its serial advanced: every other zone is shared, and the
    /// zone's base with it. Nothing is rebuilt.
    pub(super) fn publish_zone(&mut self, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let zones = self.zones_with_serial(&prev, origin)?;
        self.swap(prev.with_parts(Arc::new(zones), prev.pools.clone()));
        Ok(())
    }

    /// Publishes a change to one pool whose name set is unchanged: the pool is
    /// rebuilt and its zone's serial advanced, in one swap; every node is
    /// shared, and no other pool is looked at.
    pub(super) fn publish_pool(&mut self, pool: &Name, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let at = self.effective.position(pool).ok_or(StateError::NoPool)? as u32;
        let pools = self.pools_rebuilt(&prev, &[at]);
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

    /// `prev`'s zones with `origin`'s as it is in effect, its SOA serial
    /// re-encoded from its counter (the zone in effect follows).
    pub(super) fn zones_with_serial(&mut self, prev: &Snapshot, origin: &Name) -> Result<ZoneMap, StateError> {
        let mut zones = (*prev.zones).clone();
        if let Some(i) = self.effective.zones.iter().position(|z| z.origin == *origin) {
            let z = self.bumped(&self.effective.zones[i])?;
            self.effective.zones[i] = z.clone();
            zones.insert(z.origin_wire.clone(), z);
        }
        Ok(zones)
    }

    /// The published pools with those at positions `at` rebuilt from their
    /// definitions in effect (and this node's view of health); the index of
    /// probes to pools follows their new definitions. A position whose pool in
    /// effect has another name than the published one is left as it is.
    pub(super) fn pools_rebuilt(&mut self, prev: &Snapshot, at: &[u32]) -> Pools {
        let view = self.view();
        let rebuilt: Vec<(u32, Arc<Pool>)> = at
            .iter()
            .filter_map(|&i| {
                let p = prev.pools.get(i as usize)?;
                let (def, _) = self.effective.pools.get(i as usize).filter(|(d, _)| d.name == p.def.name)?;
                Some((i, Arc::new(crate::snapshot::build_pool(def.clone(), &view, Some(p), &prev.regions))))
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
        // The signed zones' static RRsets are signed ahead, in the background.
        let bases =
            next.zones.values().map(|z| (&*z.origin_wire, z.base.clone() as Arc<dyn crate::dnssec::RRsetSource>));
        next.dnssec.presign(bases);
        // The transfer task (on another thread) follows the zones transferred:
        // with none before or now it would wake for every write to do nothing.
        let follow = !next.transfer.is_empty() || !self.snapshot.load().transfer.is_empty();
        self.snapshot.store(Arc::new(next));
        if follow {
            self.published.notify_one();
        }
    }
}
