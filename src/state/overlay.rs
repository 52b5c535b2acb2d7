//! API changes over the config and zone files, and what results from both.
//!
//! Precedence: config and zone files are the base and are never rewritten; the
//! [`Overlay`] (every override the admin API has stored) is laid over them. For
//! each item the value in effect is the file's value with the override's set
//! fields over it: a member override records only the fields that were set
//! through the API ([`MemberFields`]), so a field it does not set follows the
//! config across reloads. A stored deletion (`None`) hides the file's item until
//! the override is removed (a `Revert…` change). An item the files do not have
//! exists only through its override. An overlay entry that no longer applies
//! after a reload (an override on a pool that left the config) is kept but
//! ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use crate::config::{MemberConfig, PoolDef};
use crate::health::push::{HealthOverride, Overrides};
use crate::rdata::RecordError;
use crate::snapshot::EncodedRRset;
use crate::sources::Sources;

/// One stored change, as the admin API makes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace an API pool.
    PutPool(Box<PoolDef>),
    DeletePool(Name),
    /// Set fields of a member of a config pool (an override; the member is
    /// added when the config does not have it).
    PutMember {
        pool: Name,
        address: IpAddr,
        fields: MemberFields,
    },
    /// Hide a member of a config pool (an override).
    DeleteMember {
        pool: Name,
        address: IpAddr,
    },
    /// Remove a member's override: the member is what the config says again.
    RevertMember {
        pool: Name,
        address: IpAddr,
    },
    /// Remove every override of a pool: its API definition and the overrides
    /// of its `members` (those stored when the change was planned).
    RevertPool {
        pool: Name,
        members: Vec<IpAddr>,
    },
    /// Replace an RRset (presentation-format data, validated).
    PutRRset {
        zone: Name,
        name: Name,
        rtype: RecordType,
        set: StoredRRset,
    },
    /// Hide an RRset (an override).
    DeleteRRset {
        zone: Name,
        name: Name,
        rtype: RecordType,
    },
    /// Remove an RRset's override: the RRset is what the zone file says again.
    RevertRRset {
        zone: Name,
        name: Name,
        rtype: RecordType,
    },
    /// Push a member's health over its probes (`PUT …/health` up or down).
    PutHealth {
        pool: Name,
        address: IpAddr,
        over: HealthOverride,
    },
    /// Hand a member's health back to its probes (`PUT …/health` auto).
    ClearHealth {
        pool: Name,
        address: IpAddr,
    },
}

/// An RRset as the API stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRRset {
    pub ttl: u32,
    pub data: Vec<String>,
    /// What wrote it; absent in what older versions stored (the API).
    #[serde(default, skip_serializing_if = "RRsetSource::is_api")]
    pub source: RRsetSource,
}

impl StoredRRset {
    /// An RRset written through the admin API.
    pub fn api(ttl: u32, data: Vec<String>) -> StoredRRset {
        StoredRRset { ttl, data, source: RRsetSource::Api }
    }
}

/// What wrote a stored RRset: the admin API or an RFC 2136 UPDATE (both are
/// API-layer changes over the zone file; the API shows which as `source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RRsetSource {
    #[default]
    Api,
    Update,
}

impl RRsetSource {
    pub fn is_api(&self) -> bool {
        *self == RRsetSource::Api
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RRsetSource::Api => "api",
            RRsetSource::Update => "update",
        }
    }
}

/// The fields of a member that an override sets (also the body of `PUT
/// /v1/pools/{name}/members/{address}`). A field left `None` shows the config's
/// value, or the default (weight 1, enabled, no region) for a member the config
/// does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<std::net::SocketAddr>,
}

impl MemberFields {
    /// These fields with those `patch` sets replaced.
    pub fn merged(&self, patch: &MemberFields) -> MemberFields {
        MemberFields {
            weight: patch.weight.or(self.weight),
            region: patch.region.clone().or_else(|| self.region.clone()),
            enabled: patch.enabled.or(self.enabled),
            probe: patch.probe.or(self.probe),
        }
    }

    /// The member in effect: `file` (or the defaults when the config does not
    /// have the member) with these fields over it.
    pub fn over(&self, address: IpAddr, file: Option<&MemberConfig>) -> MemberConfig {
        let base =
            file.cloned().unwrap_or(MemberConfig { address, weight: 1, region: None, enabled: true, probe: None });
        MemberConfig {
            address,
            weight: self.weight.unwrap_or(base.weight),
            region: self.region.clone().map(Into::into).or(base.region),
            enabled: self.enabled.unwrap_or(base.enabled),
            probe: self.probe.map(Box::new).or(base.probe),
        }
    }
}

/// A member override as stored (SQLite body, etcd value, export): the JSON of
/// the fields it sets; `null` is a stored deletion.
pub fn encode_member(o: &Option<MemberFields>) -> String {
    serde_json::to_string(o).unwrap_or_else(|_| "null".into())
}

/// Reads a stored member override. The previous version stored the whole member
/// (with its `address`); such an entry is read as an override of its weight and
/// `enabled` (and of its region when it had one), so an upgrade changes nothing
/// that is served, and `DELETE …/override` undoes it.
pub fn decode_member(text: &str) -> Result<Option<MemberFields>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Stored {
        #[serde(default)]
        address: Option<IpAddr>,
        #[serde(default)]
        weight: Option<u32>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        enabled: Option<bool>,
        #[serde(default)]
        probe: Option<std::net::SocketAddr>,
    }
    let Some(s) = serde_json::from_str::<Option<Stored>>(text)? else { return Ok(None) };
    let whole = s.address.is_some();
    Ok(Some(MemberFields {
        weight: if whole { Some(s.weight.unwrap_or(1)) } else { s.weight },
        region: s.region,
        enabled: if whole { Some(s.enabled.unwrap_or(true)) } else { s.enabled },
        probe: s.probe,
    }))
}

/// Everything the admin API has changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// Pools created through the API.
    pub pools: BTreeMap<Name, PoolDef>,
    /// Member overrides on config pools: `Some` = fields set (or a member
    /// added), `None` = removed.
    pub members: BTreeMap<(Name, IpAddr), Option<MemberFields>>,
    /// RRset overrides: `Some` = replaced, `None` = deleted.
    pub rrsets: BTreeMap<(Name, Name, RecordType), Option<StoredRRset>>,
    /// Serial increments per zone, one per change.
    pub serials: BTreeMap<Name, u32>,
    /// Health overrides, lapsed ones included (inert until replaced).
    pub health: Overrides,
}

impl Overlay {
    /// Applies `change` (already validated) for `zone`, one serial increment.
    pub fn apply(&mut self, change: &Change, zone: &Name) {
        self.apply_all(std::slice::from_ref(change), zone);
    }

    /// Applies `changes` (already validated, one UPDATE message) for `zone`:
    /// one serial increment for them all.
    pub fn apply_all(&mut self, changes: &[Change], zone: &Name) {
        for c in changes {
            self.apply_one(c);
        }
        *self.serials.entry(zone.clone()).or_insert(0) += 1;
    }

    fn apply_one(&mut self, change: &Change) {
        match change {
            Change::PutPool(def) => {
                self.pools.insert(def.name.clone(), (**def).clone());
            }
            Change::DeletePool(name) => {
                self.pools.remove(name);
            }
            Change::PutMember { pool, address, fields } => {
                self.members.insert((pool.clone(), *address), Some(fields.clone()));
            }
            Change::DeleteMember { pool, address } => {
                self.members.insert((pool.clone(), *address), None);
            }
            Change::RevertMember { pool, address } => {
                self.members.remove(&(pool.clone(), *address));
            }
            Change::RevertPool { pool, .. } => {
                self.pools.remove(pool);
                self.members.retain(|(p, _), _| p != pool);
            }
            Change::PutRRset { zone, name, rtype, set } => {
                self.rrsets.insert((zone.clone(), name.clone(), *rtype), Some(set.clone()));
            }
            Change::DeleteRRset { zone, name, rtype } => {
                self.rrsets.insert((zone.clone(), name.clone(), *rtype), None);
            }
            Change::RevertRRset { zone, name, rtype } => {
                self.rrsets.remove(&(zone.clone(), name.clone(), *rtype));
            }
            Change::PutHealth { pool, address, over } => {
                self.health.insert((pool.clone(), *address), over.clone());
            }
            Change::ClearHealth { pool, address } => {
                self.health.remove(&(pool.clone(), *address));
            }
        }
    }

    /// The member overrides stored for `pool`, by address.
    pub fn member_overrides<'a>(&'a self, pool: &Name) -> impl Iterator<Item = (IpAddr, &'a Option<MemberFields>)> {
        let pool = pool.clone();
        self.members
            .range((pool.clone(), IpAddr::from([0u8; 4]))..)
            .take_while(move |((p, _), _)| *p == pool)
            .map(|((_, a), m)| (*a, m))
    }
}

/// Where a pool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The config file (member overrides may be laid over it).
    Config,
    /// The API alone.
    Api,
}

/// `base` (a config pool) with member `overrides` laid over it.
pub fn pool_with_overrides<'a>(
    base: &PoolDef,
    overrides: impl IntoIterator<Item = (IpAddr, &'a Option<MemberFields>)>,
) -> PoolDef {
    let mut def = base.clone();
    for (addr, o) in overrides {
        let pos = def.members.iter().position(|x| x.address == addr);
        match (pos, o) {
            (Some(i), Some(f)) => def.members[i] = f.over(addr, base.members.iter().find(|m| m.address == addr)),
            (Some(i), None) => {
                def.members.remove(i);
            }
            (None, Some(f)) => def.members.push(f.over(addr, None)),
            (None, None) => {}
        }
    }
    def
}

/// The config pool `base` in effect: shared as it is when it has no member
/// overrides, else a copy with them laid over it.
fn config_pool(base: &Arc<PoolDef>, overlay: &Overlay) -> Arc<PoolDef> {
    let mut overrides = overlay.member_overrides(&base.name).peekable();
    if overrides.peek().is_none() {
        return base.clone();
    }
    Arc::new(pool_with_overrides(base, overrides))
}

/// The pools in effect: config pools with member overrides, then API pools.
pub fn effective_pools(sources: &Sources, overlay: &Overlay) -> Vec<(Arc<PoolDef>, Origin)> {
    let mut out = Vec::with_capacity(sources.pools.len() + overlay.pools.len());
    for base in &sources.pools {
        out.push((config_pool(base, overlay), Origin::Config));
    }
    let config: std::collections::HashSet<&Name> =
        if overlay.pools.is_empty() { Default::default() } else { sources.pools.iter().map(|p| &p.name).collect() };
    for def in overlay.pools.values() {
        if config.contains(&def.name) {
            continue; // a config pool now has this name: config wins
        }
        out.push((Arc::new(def.clone()), Origin::Api));
    }
    out
}

/// The pool `name` as [`effective_pools`] has it (`None`: not in effect),
/// deriving that pool alone (`config`: the config's pool of that name).
pub fn effective_pool(config: Option<&Arc<PoolDef>>, overlay: &Overlay, name: &Name) -> Option<(Arc<PoolDef>, Origin)> {
    match config {
        Some(base) => Some((config_pool(base, overlay), Origin::Config)),
        None => overlay.pools.get(name).map(|def| (Arc::new(def.clone()), Origin::Api)),
    }
}

/// A record of an RRset stored through the API that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name} {rtype}: data[{index}]: {source}")]
pub struct ApiRecordError {
    pub name: String,
    pub rtype: RecordType,
    pub index: usize,
    pub source: Box<RecordError>,
}

/// An RRset stored through the API, encoded as the zone serves it (data parsed
/// relative to `origin`); `None` for a stored deletion.
pub fn api_rrset(
    name: &Name,
    rtype: RecordType,
    set: Option<&StoredRRset>,
    origin: &Name,
) -> Result<Option<EncodedRRset>, ApiRecordError> {
    let Some(set) = set else { return Ok(None) };
    let bad = |index: usize, source: RecordError| ApiRecordError {
        name: name.to_string(),
        rtype,
        index,
        source: Box::new(source),
    };
    let mut records = Vec::with_capacity(set.data.len());
    for (i, d) in set.data.iter().enumerate() {
        let rdata = crate::zone::parse_rdata(rtype, d, origin).map_err(|e| bad(i, e))?;
        records.push(crate::snapshot::encode_record(set.ttl, &rdata).map_err(|e| bad(i, e))?);
    }
    Ok(Some(EncodedRRset::new(records.iter().map(|r| &r[..]))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllDown, PolicyName};

    fn member(a: &str, weight: u32) -> MemberConfig {
        MemberConfig { address: a.parse().unwrap(), weight, region: Some("eu".into()), enabled: true, probe: None }
    }

    fn pool(members: Vec<MemberConfig>) -> PoolDef {
        PoolDef {
            name: Name::from_ascii("www.example.test.").unwrap(),
            policy: PolicyName::Weighted,
            ttl: 5,
            max_answers: 0,
            all_down: AllDown::Empty,
            fallback: vec![],
            health: Default::default(),
            members,
            line: 1,
        }
    }

    /// Drain then undrain sets `enabled` only: the file's weight shows through,
    /// whatever the file says now.
    #[test]
    fn unset_fields_follow_the_file() {
        let drained = MemberFields::default().merged(&MemberFields { enabled: Some(false), ..Default::default() });
        let undrained = drained.merged(&MemberFields { enabled: Some(true), ..Default::default() });
        assert_eq!(undrained, MemberFields { enabled: Some(true), ..Default::default() });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for w in [1, 5] {
            let file = pool(vec![member("192.0.2.1", w)]);
            let got = pool_with_overrides(&file, [(a, &Some(undrained.clone()))]);
            assert_eq!(got.members, vec![member("192.0.2.1", w)]);
        }
        // A weight set through the API stays, whatever the file says.
        let weighted = Some(undrained.merged(&MemberFields { weight: Some(7), ..Default::default() }));
        let got = pool_with_overrides(&pool(vec![member("192.0.2.1", 5)]), [(a, &weighted)]);
        assert_eq!(got.members[0].weight, 7);
        assert_eq!(got.members[0].region.as_deref(), Some("eu"));
    }

    /// A stored deletion hides the file's member; an override of a member the
    /// file lacks adds it with the defaults under its set fields.
    #[test]
    fn deletions_hide_and_api_members_take_defaults() {
        let file = pool(vec![member("192.0.2.1", 2), member("192.0.2.2", 3)]);
        let new: IpAddr = "192.0.2.9".parse().unwrap();
        let gone: IpAddr = "192.0.2.1".parse().unwrap();
        let set = Some(MemberFields { weight: Some(4), ..Default::default() });
        let got = pool_with_overrides(&file, [(gone, &None), (new, &set)]);
        let want = vec![
            member("192.0.2.2", 3),
            MemberConfig { address: new, weight: 4, region: None, enabled: true, probe: None },
        ];
        assert_eq!(got.members, want);
        // A deletion of a member the file does not have changes nothing.
        assert_eq!(pool_with_overrides(&file, [(new, &None)]).members, file.members);
    }

    /// Reverting removes the override (and a pool revert every override of the
    /// pool), so the file's version is in effect again.
    #[test]
    fn reverts_remove_overrides() {
        let zone = Name::from_ascii("example.test.").unwrap();
        let www = Name::from_ascii("www.example.test.").unwrap();
        let other = Name::from_ascii("other.example.test.").unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut o = Overlay::default();
        o.apply(&Change::DeleteMember { pool: www.clone(), address: a }, &zone);
        o.apply(&Change::PutMember { pool: www.clone(), address: b, fields: MemberFields::default() }, &zone);
        o.apply(&Change::DeleteMember { pool: other.clone(), address: a }, &zone);
        o.apply(&Change::RevertMember { pool: www.clone(), address: a }, &zone);
        assert_eq!(o.member_overrides(&www).map(|(x, _)| x).collect::<Vec<_>>(), [b]);
        o.apply(&Change::RevertPool { pool: www.clone(), members: vec![b] }, &zone);
        assert_eq!(o.member_overrides(&www).count(), 0);
        assert_eq!(o.member_overrides(&other).count(), 1);
        assert_eq!(o.serials[&zone], 5);
    }

    #[test]
    fn stored_members_encode_only_set_fields() {
        let f = Some(MemberFields { enabled: Some(false), ..Default::default() });
        assert_eq!(encode_member(&f), r#"{"enabled":false}"#);
        assert_eq!(decode_member(&encode_member(&f)).unwrap(), f);
        assert_eq!(decode_member("null").unwrap(), None);
        assert_eq!(decode_member("{}").unwrap(), Some(MemberFields::default()));
        let old = r#"{"address":"192.0.2.1","weight":2,"region":"eu","enabled":true}"#;
        let all = MemberFields { weight: Some(2), region: Some("eu".into()), enabled: Some(true), probe: None };
        assert_eq!(decode_member(old).unwrap(), Some(all));
        assert!(decode_member(r#"{"weigth":2}"#).is_err());
    }
}
