//! Reload: new sources (config and zone files) put in effect as one swap, or
//! refused whole with the old state kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use tracing::{debug, info, warn};

use crate::sources::Sources;
use crate::zone::ZoneData;

use super::effect::{effective, zones_for_files};
use super::*;

impl Writer {
    /// Replaces the sources (config and zone files) in one swap. On any error the
    /// old state stays in effect. When the config's bytes did not change (its
    /// pools are those in effect before, at the same positions) only the zones
    /// whose files changed are derived and published again: the pools, their
    /// probes and the health files stay as they are.
    pub(super) fn reload(&mut self, sources: Sources) -> Result<(), StateError> {
        let started = Instant::now();
        let same_pools = sources.config_unchanged && !self.effective.pools_moved;
        let (unchanged_files, config_unchanged) = (sources.unchanged_zone_files, sources.config_unchanged);
        let (old_sources, effective_took) =
            if same_pools { self.reload_zones(sources, started)? } else { self.reload_all(sources, started)? };
        let published = started.elapsed();
        self.note_file_changes(Some(&old_sources));
        let new_probes = if same_pools { 0 } else { self.follow_pools() };
        // What the old sources and the parse freed goes back to the system.
        drop(old_sources);
        crate::memory::give_back();
        info!(
            zones = self.effective.zones.len(),
            zone_files_unchanged = unchanged_files,
            config_unchanged,
            pools = self.effective.pools.len(),
            pools_kept = same_pools,
            new_probes,
            "reloaded"
        );
        debug!(?effective_took, ?published, took = ?started.elapsed(), "reload applied");
        Ok(())
    }

    /// Puts `sources` in effect when only zone files changed (the pools in
    /// effect, and their health files, stay as they are): the changed zones
    /// derived and published, the rest shared. Returns the old sources and when
    /// the state in effect was derived.
    fn reload_zones(&mut self, sources: Sources, started: Instant) -> Result<(Sources, Duration), StateError> {
        let zones = zones_for_files(&sources, &self.sources, &self.effective, &self.overlay)?;
        let derived = started.elapsed();
        self.warn_restart_only(&sources);
        let old_sources = std::mem::replace(&mut self.sources, sources);
        self.effective.zones = zones;
        self.publish_zones();
        Ok((old_sources, derived))
    }

    /// Puts `sources` in effect in full: every pool and zone derived again and
    /// a full snapshot built (unchanged pools kept whole). On an error the old
    /// state stays in effect.
    fn reload_all(&mut self, sources: Sources, started: Instant) -> Result<(Sources, Duration), StateError> {
        let effective = effective(&sources, &self.overlay)?;
        let derived = started.elapsed();
        self.warn_restart_only(&sources);
        let old_sources = std::mem::replace(&mut self.sources, sources);
        let old_effective = std::mem::replace(&mut self.effective, effective);
        self.follow_health_files();
        if let Err(e) = self.publish() {
            self.sources = old_sources;
            self.effective = old_effective;
            self.follow_health_files();
            return Err(e);
        }
        Ok((old_sources, derived))
    }

    /// Warns of what the new config changes that only a restart puts in effect.
    fn warn_restart_only(&self, sources: &Sources) {
        let (old, new) = (&self.sources.config, &sources.config);
        if old.dns.listen != new.dns.listen
            || old.admin.listen != new.admin.listen
            || old.dns.threads != new.dns.threads
        {
            warn!("listen addresses and threads change only on restart; the rest of the new config is in effect");
        }
        if old.admin.state_dir != new.admin.state_dir {
            warn!("state_dir changes only on restart");
        }
        if old.admin.ui_public != new.admin.ui_public {
            warn!("[admin] ui_public changes only on restart");
        }
    }

    /// Notes as changed by their files the zones whose file content differs from
    /// `before`'s (every zone at start), and forgets zones no longer served.
    pub(super) fn note_file_changes(&mut self, before: Option<&Sources>) {
        let differs = |z: &ZoneData| {
            let Some(old) = before.and_then(|b| b.zones.iter().find(|o| o.origin == z.origin)) else { return true };
            // A zone taken unchanged from its file is the same zone.
            if std::ptr::eq(&**old, z) {
                return false;
            }
            if old.zone.soa().bytes() != z.zone.soa().bytes() {
                return true;
            }
            // A reload that laid the changes over the held zone shares its base.
            if Arc::ptr_eq(&old.zone.base, &z.zone.base) {
                return old.zone.layer != z.zone.layer;
            }
            !(old.zone.layer.is_empty() && z.zone.layer.is_empty() && old.zone.base.same_records(&z.zone.base))
        };
        let changed: Vec<Name> = self.sources.zones.iter().filter(|z| differs(z)).map(|z| z.origin.clone()).collect();
        let served: HashSet<&Name> = self.sources.zones.iter().map(|z| &z.origin).collect();
        self.last_change.retain(|z, _| served.contains(z));
        self.changed(changed, ChangeSource::File);
    }
}
