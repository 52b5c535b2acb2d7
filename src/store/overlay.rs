//! API changes over the config and zone files, and what results from both.
//!
//! Precedence: config and zone files are the base; the [`Overlay`] (every change the
//! admin API has stored) is applied over them. Config files are never rewritten.
//! An overlay entry that no longer applies after a reload (an override on a pool
//! that left the config) is kept but ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use crate::config::{MemberConfig, PoolDef};
use crate::sources::Sources;
use crate::zone::{ZoneData, ZoneRecord};

/// One stored change, as the admin API makes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace an API pool.
    PutPool(Box<PoolDef>),
    DeletePool(Name),
    /// Add or change a member of a config pool (an override).
    PutMember {
        pool: Name,
        member: MemberConfig,
    },
    /// Remove a member of a config pool (an override).
    DeleteMember {
        pool: Name,
        address: IpAddr,
    },
    /// Replace an RRset (presentation-format data, validated).
    PutRRset {
        zone: Name,
        name: Name,
        rtype: RecordType,
        set: StoredRRset,
    },
    DeleteRRset {
        zone: Name,
        name: Name,
        rtype: RecordType,
    },
}

/// An RRset as the API stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRRset {
    pub ttl: u32,
    pub data: Vec<String>,
}

/// Everything the admin API has changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// Pools created through the API.
    pub pools: BTreeMap<Name, PoolDef>,
    /// Member overrides on config pools: `Some` = added or changed, `None` = removed.
    pub members: BTreeMap<(Name, IpAddr), Option<MemberConfig>>,
    /// RRset overrides: `Some` = replaced, `None` = deleted.
    pub rrsets: BTreeMap<(Name, Name, RecordType), Option<StoredRRset>>,
    /// Serial increments per zone, one per change.
    pub serials: BTreeMap<Name, u32>,
}

impl Overlay {
    /// Applies `change` (already validated) for `zone`.
    pub fn apply(&mut self, change: &Change, zone: &Name) {
        match change {
            Change::PutPool(def) => {
                self.pools.insert(def.name.clone(), (**def).clone());
            }
            Change::DeletePool(name) => {
                self.pools.remove(name);
            }
            Change::PutMember { pool, member } => {
                self.members.insert((pool.clone(), member.address), Some(member.clone()));
            }
            Change::DeleteMember { pool, address } => {
                self.members.insert((pool.clone(), *address), None);
            }
            Change::PutRRset { zone, name, rtype, set } => {
                self.rrsets.insert((zone.clone(), name.clone(), *rtype), Some(set.clone()));
            }
            Change::DeleteRRset { zone, name, rtype } => {
                self.rrsets.insert((zone.clone(), name.clone(), *rtype), None);
            }
        }
        *self.serials.entry(zone.clone()).or_insert(0) += 1;
    }
}

/// Where a pool or member comes from, for `GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
}

/// The pools in effect: config pools with member overrides, then API pools.
/// Returns each pool with its origin and each member's origin.
pub fn effective_pools(sources: &Sources, overlay: &Overlay) -> Vec<(Arc<PoolDef>, Origin, Vec<Origin>)> {
    let mut out = Vec::new();
    for base in &sources.pools {
        let overrides: Vec<(&IpAddr, &Option<MemberConfig>)> = overlay
            .members
            .range((base.name.clone(), IpAddr::from([0u8; 4]))..)
            .take_while(|((p, _), _)| *p == base.name)
            .map(|((_, a), m)| (a, m))
            .collect();
        if overrides.is_empty() {
            let n = base.members.len();
            out.push((base.clone(), Origin::Config, vec![Origin::Config; n]));
            continue;
        }
        let mut def = (**base).clone();
        let mut origins = vec![Origin::Config; def.members.len()];
        for (addr, m) in overrides {
            let pos = def.members.iter().position(|x| x.address == *addr);
            match (pos, m) {
                (Some(i), Some(m)) => {
                    def.members[i] = m.clone();
                    origins[i] = Origin::Api;
                }
                (Some(i), None) => {
                    def.members.remove(i);
                    origins.remove(i);
                }
                (None, Some(m)) => {
                    def.members.push(m.clone());
                    origins.push(Origin::Api);
                }
                (None, None) => {}
            }
        }
        out.push((Arc::new(def), Origin::Config, origins));
    }
    for def in overlay.pools.values() {
        if sources.pools.iter().any(|p| p.name == def.name) {
            continue; // a config pool now has this name: config wins
        }
        out.push((Arc::new(def.clone()), Origin::Api, vec![Origin::Api; def.members.len()]));
    }
    out
}

/// The zone with API RRsets applied (records parsed with the zone origin).
pub fn effective_zone(zone: &Arc<ZoneData>, overlay: &Overlay) -> Result<Arc<ZoneData>, String> {
    let origin = &zone.origin;
    let changes: Vec<_> = overlay.rrsets.iter().filter(|((z, _, _), _)| z == origin).collect();
    if changes.is_empty() {
        return Ok(zone.clone());
    }
    let replaced: std::collections::HashSet<(&Name, RecordType)> =
        changes.iter().map(|((_, name, rtype), _)| (name, *rtype)).collect();
    let mut z = ZoneData {
        origin: zone.origin.clone(),
        file: zone.file.clone(),
        records: zone.records.iter().filter(|r| !replaced.contains(&(&r.name, r.rtype()))).cloned().collect(),
    };
    for ((_, name, rtype), set) in changes {
        if let Some(set) = set {
            z.records.extend(api_records(name, *rtype, set, origin)?);
        }
    }
    Ok(Arc::new(z))
}

/// The records of an RRset stored through the API (data parsed relative to `origin`).
pub fn api_records(
    name: &Name,
    rtype: RecordType,
    set: &StoredRRset,
    origin: &Name,
) -> Result<Vec<ZoneRecord>, String> {
    let file: Arc<std::path::Path> = Arc::from(std::path::Path::new("(api)"));
    set.data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let rdata =
                crate::zone::parse_rdata(rtype, d, origin).map_err(|e| format!("{name} {rtype}: data[{i}]: {e}"))?;
            Ok(ZoneRecord { name: name.clone(), ttl: set.ttl, rdata, file: file.clone(), line: 0 })
        })
        .collect()
}
