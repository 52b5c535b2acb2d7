//! The state in effect as plain data, and planning API writes against it.
//!
//! [`InEffect`] borrows what the writer holds (the sources, the stored overlay,
//! the zones and pools in effect, the stored RRsets the files refuse); [`plan`]
//! turns an [`ApiRequest`] into the [`Planned`] change to store, or the
//! [`ApiError`] to answer, without touching storage, sockets or the runtime.
//! Storing, applying and publishing a plan is the writer's job.

pub mod api;
pub mod cname;
mod health;
pub mod held;
mod index;
mod input;
pub mod overlay;
mod plan;
#[cfg(test)]
mod tests;
pub mod update;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};

pub use index::PoolIndex;
pub use input::{name_in_zone, pool_name, validate_pool};

use crate::config::{MemberConfig, PoolDef, parse_fqdn};
use crate::snapshot::Zone;
use crate::sources::Sources;
use crate::state::api::{ApiError, ApiRequest};
use crate::zone;
use overlay::{Change, MemberFields, Origin, Overlay};

/// A member address as the record it answers with.
fn address_rdata(address: IpAddr) -> RData {
    match address {
        IpAddr::V4(a) => RData::A(a.into()),
        IpAddr::V6(a) => RData::AAAA(a.into()),
    }
}

/// Zone, owner name and type of an RRset.
pub type RRsetKey = (Name, Name, RecordType);

/// Where pools are, by name: those in effect and the config's.
#[derive(Debug, Clone, Default)]
pub struct PoolIndices {
    pub pools: PoolIndex,
    pub config: PoolIndex,
}

impl PoolIndices {
    pub fn of(sources: &Sources, pools: &[(Arc<PoolDef>, Origin)]) -> PoolIndices {
        PoolIndices {
            pools: PoolIndex::of(pools.iter().map(|(p, _)| &p.name)),
            config: PoolIndex::of(sources.pools.iter().map(|p| &p.name)),
        }
    }
}

/// What is in effect, as planning sees it.
#[derive(Clone, Copy)]
pub struct InEffect<'a> {
    pub sources: &'a Sources,
    pub overlay: &'a Overlay,
    /// The zones with the overlay applied: each zone file's records with the
    /// API's RRsets laid over them, read per name.
    pub zones: &'a [Arc<Zone>],
    /// The pools with the overlay applied, each with where it comes from.
    pub pools: &'a [(Arc<PoolDef>, Origin)],
    /// Where each of `pools` is, by name (`None`: found by a scan, for callers
    /// with a handful of pools). The writer keeps one, so that a member write
    /// finds its pool without walking 100,000.
    pub index: Option<&'a PoolIndices>,
    /// Stored RRset changes the files refuse (not in effect); they can be deleted.
    pub refused: &'a BTreeSet<RRsetKey>,
}

/// A validated write.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// What to store.
    pub change: Change,
    /// The zone whose serial the change advances.
    pub zone: Name,
    /// Whether it makes something new (201 rather than 200).
    pub created: bool,
}

impl Planned {
    fn new(change: Change, zone: Name, created: bool) -> Planned {
        Planned { change, zone, created }
    }
}

/// Validates a write against `state` and says what to store; `Ok(None)` when
/// there is nothing to store (a DELETE of what is already deleted).
pub fn plan(state: &InEffect, req: ApiRequest) -> Result<Option<Planned>, ApiError> {
    state.plan(req)
}

impl<'a> InEffect<'a> {
    pub fn find_pool(&self, name: &Name) -> Option<&'a (Arc<PoolDef>, Origin)> {
        match self.index {
            Some(index) => index.pools.find(name, |i| self.pools.get(i).map(|(p, _)| &p.name)).map(|i| &self.pools[i]),
            None => self.pools.iter().find(|(p, _)| p.name == *name),
        }
    }

    /// The config's pool `name`, as its file has it.
    pub fn config_pool(&self, name: &Name) -> Option<&'a Arc<PoolDef>> {
        let pools = &self.sources.pools;
        match self.index {
            Some(index) => index.config.in_config(pools, name).map(|i| &pools[i]),
            None => pools.iter().find(|p| p.name == *name),
        }
    }

    /// The pool `name` as it is in effect with the overlay, derived alone
    /// (`None`: not in effect): what a member write derives again.
    pub fn derive_pool(&self, name: &Name) -> Option<(Arc<PoolDef>, Origin)> {
        overlay::effective_pool(self.config_pool(name), self.overlay, name)
    }

    pub fn find_zone(&self, origin: &str) -> Result<Arc<Zone>, ApiError> {
        let origin = parse_fqdn(origin).map_err(|e| ApiError::unprocessable(format!("zone: {e}")))?;
        self.zones
            .iter()
            .find(|z| z.origin == origin)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no zone {origin}")))
    }

    pub fn zone_of(&self, name: &Name) -> Option<&'a Arc<Zone>> {
        self.zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels())
    }

    /// The zone a pool's changes count in (its serial advances).
    pub fn pool_zone(&self, pool: &Name) -> Name {
        self.zone_of(pool).map(|z| z.origin.clone()).unwrap_or(pool.clone())
    }

    /// The config pool `pool` with its stored member overrides, the one of
    /// `address` replaced by `next` (`None`: no override): what a member change
    /// would put in effect.
    pub fn config_pool_with(
        &self,
        pool: &Name,
        address: IpAddr,
        next: Option<&Option<MemberFields>>,
    ) -> Option<PoolDef> {
        let file = self.config_pool(pool)?;
        let others = self.overlay.member_overrides(pool).filter(|(a, _)| *a != address);
        let mut all: Vec<(IpAddr, &Option<MemberFields>)> = others.collect();
        all.extend(next.map(|o| (address, o)));
        Some(overlay::pool_with_overrides(file, all))
    }

    /// The member `address` as the config file has it.
    pub fn file_member(&self, pool: &Name, address: IpAddr) -> Option<&'a MemberConfig> {
        let file = self.config_pool(pool)?;
        file.members.iter().find(|m| m.address == address)
    }

    /// The zone `origin` in effect.
    pub fn zone(&self, origin: &Name) -> Option<&'a Arc<Zone>> {
        self.zones.iter().find(|z| z.origin == *origin)
    }

    /// Whether the zone file of `origin` has an RRset `name`/`rtype`.
    pub fn file_has_rrset(&self, origin: &Name, name: &Name, rtype: RecordType) -> bool {
        let node = self.zone(origin).and_then(|z| z.file_node_at(name));
        node.is_some_and(|n| n.rrset(u16::from(rtype)).is_some())
    }

    /// The RRsets in effect at `name` in the zone `origin` (the SOA too, at the
    /// apex), in type order: the zone's records with API and UPDATE changes, and
    /// a pool's members as its A and AAAA RRsets (with the pool's TTL). What
    /// UPDATE prerequisites are checked against and its changes start from. A
    /// lookup, whatever the zone's size.
    pub fn rrsets_at(&self, origin: &Name, name: &Name) -> Vec<(RecordType, u32, Vec<RData>)> {
        let mut out = self.zone(origin).map(|z| z.rrsets_at(name)).unwrap_or_default();
        if let Some((def, _)) = self.find_pool(name).filter(|_| self.pool_zone(name) == *origin) {
            for (rtype, v4) in [(RecordType::A, true), (RecordType::AAAA, false)] {
                let data: Vec<RData> = def
                    .members
                    .iter()
                    .filter(|m| m.address.is_ipv4() == v4)
                    .map(|m| address_rdata(m.address))
                    .collect();
                if !data.is_empty() {
                    out.push((rtype, def.ttl, data));
                }
            }
        }
        out
    }

    /// Whether `name` owns anything in the zone `origin` (a record or a pool; an
    /// empty non-terminal owns nothing, as RFC 2136's "name is in use" reads).
    pub fn name_exists(&self, origin: &Name, name: &Name) -> bool {
        !self.rrsets_at(origin, name).is_empty()
    }

    /// Who may change the zone `origin` by UPDATE.
    pub fn grants(&self, origin: &Name) -> &'a [crate::config::Grant] {
        self.sources.config.zones.iter().find(|z| z.origin == *origin).map_or(&[], |z| &z.update)
    }

    /// Where the RRset of a type at `name` in `origin` in effect comes from, for
    /// messages: set through the API, or its zone file line.
    pub fn whence(&self, origin: &Name, name: &Name, rtype: RecordType) -> String {
        whence(self.sources, self.overlay, origin, name, rtype)
    }

    pub fn rrset_key(&self, z: &Zone, name: &str, rtype: &str) -> Result<(Name, RecordType), ApiError> {
        let name = name_in_zone(name, &z.origin).map_err(|e| ApiError::unprocessable(format!("name: {e}")))?;
        if !z.origin.zone_of(&name) {
            return Err(ApiError::unprocessable(format!("name: {name} is not inside zone {}", z.origin)));
        }
        let rtype: RecordType = rtype
            .to_ascii_uppercase()
            .parse()
            .ok()
            .filter(|t| !matches!(t, RecordType::Unknown(_)))
            .ok_or_else(|| ApiError::unprocessable(format!("type: unknown record type {rtype:?}")))?;
        if zone::is_meta_type(rtype) || rtype == RecordType::SOA {
            return Err(ApiError::unprocessable(format!(
                "type: {rtype} cannot be changed through the API (the SOA serial is managed by lbdns)"
            )));
        }
        Ok((name, rtype))
    }
}

/// Where the RRset `rtype` at `name` in `origin` comes from, for messages: "A set
/// through the API", or "A at line 7" of its zone file. Read from the file's
/// records only when a message needs it.
pub fn whence(sources: &Sources, overlay: &Overlay, origin: &Name, name: &Name, rtype: RecordType) -> String {
    if matches!(overlay.rrsets.get(&(origin.clone(), name.clone(), rtype)), Some(Some(_))) {
        return format!("{rtype} set through the API");
    }
    match file_line(sources, origin, name, rtype) {
        Some((_, line)) => format!("{rtype} at line {line}"),
        None => format!("{rtype} in the zone file"),
    }
}

/// The file and line of the first record of the RRset `rtype` at `name` in the
/// zone file of `origin` (for messages only).
pub fn file_line(sources: &Sources, origin: &Name, name: &Name, rtype: RecordType) -> Option<(String, usize)> {
    let file = sources.zones.iter().find(|z| z.origin == *origin)?;
    let (path, line) = file.file_line(name, rtype)?;
    Some((path.display().to_string(), line))
}
