//! The state in effect derived from the sources and the stored overlay: in full,
//! or re-deriving only what a change touched; stored changes the files refuse are
//! left out (and logged) rather than stopping the server.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::error;

use crate::persist::State;
use crate::persist::encoding::Touched;
use crate::state::overlay::{self, Overlay};

use crate::sources::Sources;
use crate::state::RRsetKey;
use crate::zone::{self};

use super::*;

/// Sources with the overlay applied, checked.
pub(crate) fn effective(sources: &Sources, overlay: &Overlay) -> Result<Effective, StateError> {
    let mut zones = Vec::with_capacity(sources.zones.len());
    for z in &sources.zones {
        let ez = overlay::effective_zone(z, overlay)?;
        if !Arc::ptr_eq(&ez, z) {
            zone::check_zone(&ez)?;
        }
        zones.push(ez);
    }
    // API pools are placed-checked when written (`plan`), and RRset writes are
    // checked against pools there too, so this stays linear in the data.
    let pools = overlay::effective_pools(sources, overlay);
    Ok(Effective { zones, pools })
}

/// `base` (the state in effect) with `overlay`, re-deriving only what `t`
/// touches: the zones whose RRsets changed (checked), and the pools if any changed.
pub(super) fn derive(
    sources: &Sources,
    base: &Effective,
    overlay: &Overlay,
    t: &Touched,
) -> Result<Effective, StateError> {
    let mut zones = base.zones.clone();
    for slot in zones.iter_mut().filter(|z| t.records.contains(&z.origin)) {
        let Some(file) = sources.zones.iter().find(|z| z.origin == slot.origin) else { continue };
        let ez = overlay::effective_zone(file, overlay)?;
        if !Arc::ptr_eq(&ez, file) {
            zone::check_zone(&ez)?;
        }
        *slot = ez;
    }
    let pools = if t.pools.is_empty() { base.pools.clone() } else { overlay::effective_pools(sources, overlay) };
    Ok(Effective { zones, pools })
}

/// The state in effect from `overlay` over the files. When the files refuse some
/// of it (a zone file changed under a stored API change, or another server's
/// files differ), what fits, each change left out logged: one stale change must
/// not keep a server from starting or from following the others.
pub(super) fn fit(sources: &Sources, overlay: Overlay) -> Result<(Overlay, Effective, Vec<RRsetKey>), StateError> {
    match effective(sources, &overlay) {
        Ok(e) => Ok((overlay, e, Vec::new())),
        Err(e) => {
            error!(error = %e, "stored API changes conflict with the config or zone files, or cannot be served; applying what fits");
            let files = effective(sources, &Overlay::default())?;
            let keys: Vec<(String, Option<Vec<u8>>)> = crate::persist::encoding::entries(&overlay)
                .into_iter()
                .map(|(k, v)| (k, Some(v.into_bytes())))
                .collect();
            let (overlay, e, _, refused) = fit_keys(sources, Overlay::default(), files, &keys);
            Ok((overlay, e, refused))
        }
    }
}

/// Applies stored `keys` to `overlay` (in effect as `base`) one at a time,
/// leaving out each that the config or zone files refuse, or that cannot be
/// served (data stored before it was checked), each logged.
pub(super) fn fit_keys(
    sources: &Sources,
    mut overlay: Overlay,
    mut base: Effective,
    keys: &[(String, Option<Vec<u8>>)],
) -> (Overlay, Effective, Touched, Vec<RRsetKey>) {
    let mut all = Touched::default();
    let mut refused = Vec::new();
    for (k, v) in keys {
        let mut one = State { overlay: overlay.clone(), nodes: BTreeMap::new() };
        if one.apply_key(k, v.as_deref()).is_err() {
            continue;
        }
        let t = Touched::of([k.as_str()]);
        match derive(sources, &base, &one.overlay, &t) {
            Ok(e) => {
                overlay = one.overlay;
                base = e;
                all.add(t);
            }
            Err(e) => {
                error!(key = %k, error = %e, "stored API change not applied: the files refuse it, or it cannot be served");
                let mut alone = State::default();
                if alone.apply_key(k, v.as_deref()).is_ok() {
                    refused.extend(alone.overlay.rrsets.into_keys());
                }
            }
        }
    }
    (overlay, base, all, refused)
}
