//! The state in effect derived from the sources and the stored overlay: in full,
//! or re-deriving only what a change touched; stored changes the files refuse are
//! left out (and logged) rather than stopping the server.

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use tracing::error;

use crate::persist::State;
use crate::persist::encoding::Touched;
use crate::snapshot::{EncodedRRset, Zone};
use crate::state::held::check_change;
use crate::state::overlay::{self, Overlay, api_rrset};

use crate::sources::Sources;
use crate::state::RRsetKey;

use super::*;

/// Sources with the overlay applied, checked.
pub(crate) fn effective(sources: &Sources, overlay: &Overlay) -> Result<Effective, StateError> {
    // API pools are placed-checked when written (`plan`), and RRset writes are
    // checked against pools there too, so this stays linear in the data.
    let pools = overlay::effective_pools(sources, overlay);
    let defs: Vec<Arc<PoolDef>> = pools.iter().map(|(p, _)| p.clone()).collect();
    let zones = zones_of(sources, overlay, &defs)?;
    Ok(Effective::new(sources, zones, pools, false))
}

/// Each zone file's zone with the overlay's RRsets laid over it (each checked
/// where it changed) and its serial advanced; pool nodes marked for `pools`.
pub(super) fn zones_of(
    sources: &Sources,
    overlay: &Overlay,
    pools: &[Arc<PoolDef>],
) -> Result<Vec<Arc<Zone>>, StateError> {
    let files = sources.zones.iter().map(|z| &z.zone);
    sources
        .zones
        .iter()
        .zip(crate::snapshot::build_zones(files, pools))
        .map(|(file, built)| with_overlay(sources, overlay, &file.origin, built))
        .collect()
}

/// The zones in effect over `sources` when only zone files changed since
/// `before` (the config's bytes did not: its pools are the same, and so are
/// the pools in effect in `base`, at the same positions). A zone whose file
/// was taken as it was keeps its zone in effect in `base`; any other is
/// derived as [`zones_of`] does, but marked only for the API's pools (its file
/// was loaded marked for the config's). The cost is that of the changed zones.
pub(super) fn zones_for_files(
    sources: &Sources,
    before: &Sources,
    base: &Effective,
    overlay: &Overlay,
) -> Result<Vec<Arc<Zone>>, StateError> {
    use std::collections::HashMap;
    let held: HashMap<&Name, &Arc<crate::zone::ZoneData>> = before.zones.iter().map(|z| (&z.origin, z)).collect();
    let in_effect: HashMap<&Name, &Arc<Zone>> = base.zones.iter().map(|z| (&z.origin, z)).collect();
    let api_pools =
        || base.pools.iter().enumerate().filter(|(_, (_, o))| *o == Origin::Api).map(|(i, (p, _))| (&p.name, i as u32));
    let mut zones = Vec::with_capacity(sources.zones.len());
    for file in &sources.zones {
        let unchanged = held.get(&file.origin).is_some_and(|h| Arc::ptr_eq(h, file));
        match in_effect.get(&file.origin) {
            Some(z) if unchanged => zones.push(Arc::clone(z)),
            _ => zones.push(with_overlay(sources, overlay, &file.origin, file.zone.with_pools_added(api_pools()))?),
        }
    }
    Ok(zones)
}

/// The zone `origin` (`built` from its file, its pools marked) with the
/// overlay's RRsets laid over it, each checked where it changed, and its
/// serial advanced.
fn with_overlay(
    sources: &Sources,
    overlay: &Overlay,
    origin: &Name,
    built: Arc<Zone>,
) -> Result<Arc<Zone>, StateError> {
    let changes: Vec<_> = overlay.rrsets.iter().filter(|((z, _, _), _)| z == origin).collect();
    let mut zone = built;
    for ((_, name, rtype), set) in &changes {
        check_signer_type(sources, origin, name, *rtype, set.is_some())?;
        zone = Arc::new(zone.with_rrset_at(name, *rtype, api_rrset(name, *rtype, set.as_ref(), origin)?));
    }
    for ((_, name, _), _) in &changes {
        check_change(&zone, name, &|t| crate::state::whence(sources, overlay, origin, name, t))?;
    }
    Ok(zone.with_bump(overlay.serials.get(origin).copied().unwrap_or(0))?)
}

/// A stored RRset of a type the signer makes (DNSKEY, RRSIG, ...) in a zone
/// that is signed now (it was stored before `[zone.dnssec]` was added, or by a
/// node whose config did not sign the zone) is not put in effect: it is left
/// out and logged like any stored change the files refuse; a revert (`DELETE
/// .../override`) removes it from the store.
fn check_signer_type(
    sources: &Sources,
    origin: &Name,
    name: &Name,
    rtype: RecordType,
    stored: bool,
) -> Result<(), StateError> {
    if stored && crate::dnssec::is_signer_type(rtype) && sources.config.is_signed(origin) {
        return Err(StateError::Zone(ZoneCheckError(crate::problem::Problem::new(
            std::path::Path::new(""),
            0,
            format!(
                "{rtype} at {name}, stored through the API or UPDATE: zone {origin} is signed, and lbdns \
                 makes its {rtype} records itself"
            ),
        ))));
    }
    Ok(())
}

/// The zone file's RRset `rtype` at `name` (the base of the zone in effect).
pub(super) fn file_rrset(zone: &Zone, name: &Name, rtype: RecordType) -> Option<EncodedRRset> {
    let set = zone.file_node_at(name)?.rrset(u16::from(rtype))?;
    Some(EncodedRRset::new(set.records()))
}

/// `base` (the state in effect) with `overlay`, re-deriving only what `t`
/// touches: each RRset it names is laid over its zone and checked there, and
/// the pools are derived again if any changed. The cost is that of the RRsets
/// touched, whatever the size of their zones.
pub(super) fn derive(
    sources: &Sources,
    base: &Effective,
    overlay: &Overlay,
    t: &Touched,
) -> Result<Effective, StateError> {
    let mut zones = base.zones.clone();
    for (origin, name, rtype) in &t.rrsets {
        let Some(slot) = zones.iter_mut().find(|z| z.origin == *origin) else { continue };
        let set = match overlay.rrsets.get(&(origin.clone(), name.clone(), *rtype)) {
            Some(stored) => {
                check_signer_type(sources, origin, name, *rtype, stored.is_some())?;
                api_rrset(name, *rtype, stored.as_ref(), origin)?
            }
            None => file_rrset(slot, name, *rtype),
        };
        *slot = Arc::new(slot.with_rrset_at(name, *rtype, set));
    }
    for (origin, name, _) in &t.rrsets {
        if let Some(z) = zones.iter().find(|z| z.origin == *origin) {
            check_change(z, name, &|rt| crate::state::whence(sources, overlay, origin, name, rt))?;
        }
    }
    let mut e = base.clone();
    e.zones = zones;
    if !t.pools.is_empty() && !derive_pools_alone(sources, &mut e, overlay, &t.pools) {
        let pools = overlay::effective_pools(sources, overlay);
        let moved = base.pools_moved || !same_names(&pools, &base.pools);
        return Ok(Effective::new(sources, e.zones, pools, moved));
    }
    Ok(e)
}

/// Derives each of the pools `names` again alone, in place in `e`, as an API
/// member write does: found through the name indices, nothing else looked at.
/// False (and `e` to be derived in full) when the pool list itself changes:
/// a pool created or deleted moves the positions the zones mark.
fn derive_pools_alone(
    sources: &Sources,
    e: &mut Effective,
    overlay: &Overlay,
    names: &std::collections::BTreeSet<Name>,
) -> bool {
    if e.pools_moved {
        return false;
    }
    for name in names {
        let config = e.index.config.in_config(&sources.pools, name).map(|i| &sources.pools[i]);
        match (e.position(name), overlay::effective_pool(config, overlay, name)) {
            (Some(i), Some(now)) => e.pools[i] = now,
            (None, None) => {}
            _ => return false,
        }
    }
    true
}

/// Whether two pool lists have the same names in the same order (zones mark
/// their pool nodes by position).
pub(super) fn same_names(a: &[(Arc<PoolDef>, Origin)], b: &[(Arc<PoolDef>, Origin)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((x, _), (y, _))| x.name == y.name)
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
