//! Reload: new sources (config and zone files) put in effect as one swap, or
//! refused whole with the old state kept.

use std::collections::HashSet;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tracing::{debug, info, warn};

use crate::sources::Sources;
use crate::zone::ZoneData;

use super::effect::effective;
use super::*;

impl Writer {
    /// Replaces the sources (config and zone files) in one swap. On any error the
    /// old state stays in effect.
    pub(super) fn reload(&mut self, sources: Sources) -> Result<(), StateError> {
        let started = std::time::Instant::now();
        let effective = effective(&sources, &self.overlay)?;
        let effective_took = started.elapsed();
        let (unchanged_files, config_unchanged) = (sources.unchanged_zone_files, sources.config_unchanged);
        let old = &self.sources.config;
        let new = &sources.config;
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
        let old_sources = std::mem::replace(&mut self.sources, sources);
        let old_effective = std::mem::replace(&mut self.effective, effective);
        self.follow_health_files();
        if let Err(e) = self.publish() {
            self.sources = old_sources;
            self.effective = old_effective;
            self.follow_health_files();
            return Err(e);
        }
        let published = started.elapsed();
        self.note_file_changes(Some(&old_sources));
        let new_probes = self.follow_pools();
        // What the old sources and the parse freed goes back to the system.
        drop((old_sources, old_effective));
        crate::memory::give_back();
        info!(
            zones = self.effective.zones.len(),
            zone_files_unchanged = unchanged_files,
            config_unchanged,
            pools = self.effective.pools.len(),
            new_probes,
            "reloaded"
        );
        debug!(?effective_took, ?published, took = ?started.elapsed(), "reload applied");
        Ok(())
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
