//! Remote changes: what other servers stored (the etcd watch), applied so that
//! only the zones and pools a change touched are derived and published again.

use hickory_proto::rr::Name;
use tracing::{error, info, warn};

use crate::persist::encoding::Touched;
use crate::persist::{Observed, Remote, State};
use crate::state::overlay::Overlay;

use super::effect::{derive, fit, fit_keys};
use super::probes::changed_votes;
use super::*;

impl Writer {
    /// Applies what another server changed (or what a reconnect loaded).
    pub(super) fn remote(&mut self, r: Remote) {
        match self.store.observe(r) {
            Observed::Nothing => {}
            Observed::Lost => {
                // No other node is known to be alive: this one probes everything.
                let seeds = self.verdicts();
                let before = std::mem::take(&mut self.nodes);
                self.note_live(Default::default(), seeds);
                if !before.is_empty() {
                    warn!("etcd out of reach: health decided by this node's probes alone");
                    let votes = changed_votes(&before, &self.nodes);
                    self.republish_members(&self.by_probe.keys_with_ids(&votes));
                }
            }
            Observed::Full(state) => {
                self.set_nodes(state.nodes);
                match fit(&self.sources, state.overlay) {
                    Ok((overlay, e, refused)) => {
                        self.refused = refused.into_iter().collect();
                        let before = self.overlay.serials.clone();
                        self.put_in_effect(overlay, e);
                        let after = &self.overlay.serials;
                        let moved: Vec<Name> = before
                            .keys()
                            .chain(after.keys())
                            .filter(|z| before.get(*z) != after.get(*z))
                            .cloned()
                            .collect();
                        self.changed(moved, ChangeSource::Etcd);
                    }
                    Err(e) => error!(error = %e, "cannot derive the state from the files alone"),
                }
            }
            Observed::Changes(list) => self.remote_changes(list),
        }
    }

    /// Applies keys another server changed: API changes re-derive what they
    /// touch, node views move the votes (each looked at only when a key of its
    /// kind is in `list`, so a member write costs its pool, not every vote).
    fn remote_changes(&mut self, list: Vec<(String, Option<Vec<u8>>)>) {
        // Health views and write marks change nothing served by themselves.
        let api = list.iter().any(|(k, _)| crate::persist::encoding::is_api_key(k));
        let views = list.iter().any(|(k, _)| crate::persist::encoding::is_node_key(k));
        // Applied to a copy: what is served and the overlay it comes from
        // stay one, even when this server's files refuse a change.
        let overlay = if api { self.overlay.clone() } else { Overlay::default() };
        // The nodes' votes stay in place until `set_nodes`: a member a
        // node that left probed takes the verdict they gave (see `share`).
        let before = if views { self.nodes.clone() } else { Default::default() };
        let mut st = State { overlay, nodes: before.clone() };
        for (k, v) in &list {
            if let Err(e) = st.apply_key(k, v.as_deref()) {
                warn!("{e}");
            }
        }
        if views {
            self.set_nodes(st.nodes);
        }
        if api {
            info!(keys = list.len(), "applying changes from etcd");
            self.apply_remote(st.overlay, &list);
        }
        if views {
            let votes = changed_votes(&before, &self.nodes);
            if !votes.is_empty() {
                self.republish_members(&self.by_probe.keys_with_ids(&votes));
            }
        }
    }

    /// Puts another server's API changes (`overlay`, made from `list`) in effect,
    /// re-deriving and rebuilding only what they touch.
    pub(super) fn apply_remote(&mut self, overlay: Overlay, list: &[(String, Option<Vec<u8>>)]) {
        let api_keys = || list.iter().filter(|(k, _)| crate::persist::encoding::is_api_key(k));
        let touched = Touched::of(api_keys().map(|(k, _)| k.as_str()));
        match self.derive(&overlay, &touched) {
            Ok(e) => self.put_in_effect_touched(overlay, e, &touched),
            Err(e) => {
                // Another server accepted a change that this server's config or
                // zone files refuse (they differ). Take the changes one key at a
                // time and leave out only what does not fit, so that later changes
                // keep arriving.
                error!(error = %e, "a change from etcd conflicts with this server's config or zone files");
                let keys: Vec<(String, Option<Vec<u8>>)> = api_keys().cloned().collect();
                let (overlay, e, touched, refused) =
                    fit_keys(&self.sources, self.overlay.clone(), self.effective.clone(), &keys);
                self.refused.extend(refused);
                self.put_in_effect_touched(overlay, e, &touched);
            }
        }
    }

    /// The state in effect with `overlay`, re-deriving only what `t` touches.
    pub(super) fn derive(&self, overlay: &Overlay, t: &Touched) -> Result<Effective, StateError> {
        derive(&self.sources, &self.effective, overlay, t)
    }

    /// Makes `overlay` and `effective` (derived from it, differing from the state
    /// in effect only in what `t` touches) the state in effect, and publishes it
    /// rebuilding only the touched zones and pools.
    pub(super) fn put_in_effect_touched(&mut self, overlay: Overlay, effective: Effective, t: &Touched) {
        // The published pools are those in effect, at the same positions, unless
        // the list moved (a pool created or deleted): then every zone's pool
        // index changes, and all is built again.
        if effective.pools_moved {
            return self.put_in_effect(overlay, effective);
        }
        let before: Vec<(usize, Arc<PoolDef>)> = t
            .pools
            .iter()
            .filter_map(|n| self.effective.position(n))
            .filter_map(|i| Some((i, self.effective.pools.get(i)?.0.clone())))
            .collect();
        self.overlay = overlay;
        self.effective = effective;
        self.changed(t.records.iter().chain(&t.serials).cloned(), ChangeSource::Etcd);
        if !t.pools.is_empty() {
            self.publish_pools(t.pools.iter());
            // As an API write does: each pool's probes follow it alone.
            for (i, def) in &before {
                self.follow_pool(def, *i);
            }
        }
        for z in &t.records {
            if let Err(e) = self.publish_zone(z) {
                error!(zone = %z, error = %e, "cannot publish the zone from etcd");
            }
        }
        for z in t.serials.difference(&t.records) {
            if let Err(e) = self.publish_serial(z) {
                error!(zone = %z, error = %e, "cannot publish the serial from etcd");
            }
        }
    }
}
