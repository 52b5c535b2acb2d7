//! Planning an RFC 2136 UPDATE: the zone, prerequisites (section 3.2), the
//! update section's checks (3.4.1), permissions (3.3, the zone's grants) and the
//! updates themselves (3.4.2), against the state in effect. Pure, like the API's
//! planning: the result is the list of stored changes the whole message makes
//! (one transaction, one serial increment), or the RCODE that refuses it, with
//! nothing changed.
//!
//! Each resulting RRset is validated exactly as the admin API's PUT (or DELETE)
//! of it: [`InEffect::plan`] does it, so an UPDATE can store nothing a PUT
//! could not. Adding or deleting A/AAAA at a pool name adds or removes members
//! (weight 1, enabled); removing a member the config file defines is refused.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tracing::debug;

use super::InEffect;
use super::api::{ApiError, ApiRequest};
use super::input::validate_pool;
use super::overlay::{Change, Origin, RRsetSource};
use crate::config::{Grant, MemberConfig};

/// At most this many stored changes per message (etcd takes 128 operations per
/// transaction, and one UPDATE is one transaction).
pub const MAX_CHANGES: usize = 100;

/// An UPDATE message as the wire parser reads it.
#[derive(Debug, Clone)]
pub struct Update {
    /// The zone section's name.
    pub zone: Name,
    pub class: DNSClass,
    /// The TSIG key that signed the message (verified); `None`: unsigned.
    pub key: Option<Name>,
    pub prerequisites: Vec<Record>,
    pub updates: Vec<Record>,
}

/// An RRset being changed: TTL and records.
#[derive(Debug, Clone, PartialEq)]
struct Set {
    ttl: u32,
    data: Vec<RData>,
}

/// What the message refuses with: the RCODE and, for the log, why.
type Refusal = (ResponseCode, String);

/// Plans `u` against `state`: the changes to store (empty when the message
/// changes nothing), or the RCODE to answer.
pub fn plan_update(state: &InEffect, u: &Update) -> Result<Vec<Change>, ResponseCode> {
    plan(state, u).map_err(|(rcode, why)| {
        debug!(zone = %u.zone, %rcode, why, "update refused");
        rcode
    })
}

fn plan(state: &InEffect, u: &Update) -> Result<Vec<Change>, Refusal> {
    let origin = u.zone.to_lowercase();
    if u.class != DNSClass::IN || !state.zones.iter().any(|z| z.origin == origin) {
        return Err((ResponseCode::NotAuth, format!("lbdns is not authoritative for {origin}")));
    }
    let grants = state.grants(&origin);
    let key = u.key.as_ref().ok_or((ResponseCode::Refused, "the update is not signed".into()))?.to_lowercase();
    if !grants.iter().any(|g| g.key == key) {
        return Err((ResponseCode::Refused, format!("key {key} may not update {origin}")));
    }
    check_prerequisites(state, &origin, &u.prerequisites)?;
    prescan(state, &origin, &u.updates)?;
    check_permissions(grants, &key, &u.updates)?;
    check_signer_types(state, &origin, &u.updates)?;
    let mut work = Work { state, origin: origin.clone(), sets: BTreeMap::new(), before: BTreeMap::new() };
    for rr in &u.updates {
        work.apply(rr, grants, &key);
    }
    let changes = work.into_changes()?;
    if changes.len() > MAX_CHANGES {
        return Err((
            ResponseCode::Refused,
            format!("{} changes in one message (at most {MAX_CHANGES})", changes.len()),
        ));
    }
    Ok(changes)
}

fn is_meta(t: RecordType) -> bool {
    crate::zone::is_meta_type(t) || matches!(t, RecordType::TSIG | RecordType::Unknown(253) | RecordType::Unknown(254))
}

/// Section 3.2: every prerequisite holds, or the RCODE of the first that fails.
fn check_prerequisites(state: &InEffect, origin: &Name, prereqs: &[Record]) -> Result<(), Refusal> {
    let mut values: BTreeMap<(Name, RecordType), Vec<RData>> = BTreeMap::new();
    for rr in prereqs {
        let (name, t) = (rr.name.to_lowercase(), rr.record_type());
        let formerr = |why: &str| (ResponseCode::FormErr, format!("prerequisite {name} {t}: {why}"));
        if rr.ttl != 0 {
            return Err(formerr("TTL must be 0"));
        }
        if !in_zone(state, origin, &name) {
            return Err((ResponseCode::NotZone, format!("prerequisite {name} is outside {origin}")));
        }
        let empty = matches!(rr.data, RData::Update0(_));
        let exists = |t: RecordType| state.rrsets_at(origin, &name).iter().any(|(x, _, _)| *x == t);
        match rr.dns_class {
            DNSClass::ANY if !empty => return Err(formerr("RDATA must be empty")),
            DNSClass::ANY if t == RecordType::ANY && !state.name_exists(origin, &name) => {
                return Err((ResponseCode::NXDomain, format!("{name} does not exist")));
            }
            DNSClass::ANY if t != RecordType::ANY && !exists(t) => {
                return Err((ResponseCode::NXRRSet, format!("no {t} RRset at {name}")));
            }
            DNSClass::ANY => {}
            DNSClass::NONE if !empty => return Err(formerr("RDATA must be empty")),
            DNSClass::NONE if t == RecordType::ANY && state.name_exists(origin, &name) => {
                return Err((ResponseCode::YXDomain, format!("{name} exists")));
            }
            DNSClass::NONE if t != RecordType::ANY && exists(t) => {
                return Err((ResponseCode::YXRRSet, format!("a {t} RRset exists at {name}")));
            }
            DNSClass::NONE => {}
            DNSClass::IN if is_meta(t) || empty => return Err(formerr("not a record")),
            DNSClass::IN => values.entry((name, t)).or_default().push(rr.data.clone()),
            _ => return Err(formerr("class must be IN, ANY or NONE")),
        }
    }
    // Value-dependent: each RRset exactly as given (order and TTL aside).
    for ((name, t), want) in values {
        let have = state.rrsets_at(origin, &name).into_iter().find(|(x, _, _)| *x == t).map(|(_, _, d)| d);
        if !have.is_some_and(|have| same_records(&have, &want)) {
            return Err((ResponseCode::NXRRSet, format!("the {t} RRset at {name} differs")));
        }
    }
    Ok(())
}

/// Whether `name` is in the zone `origin`: at or below it, and not in a zone
/// below it that lbdns also serves (that zone's names are changed there).
fn in_zone(state: &InEffect, origin: &Name, name: &Name) -> bool {
    state.zone_of(name).is_some_and(|z| z.origin == *origin)
}

fn same_records(a: &[RData], b: &[RData]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Section 3.4.1: names inside the zone, classes and types an update can carry.
fn prescan(state: &InEffect, origin: &Name, updates: &[Record]) -> Result<(), Refusal> {
    for rr in updates {
        let (name, t) = (rr.name.to_lowercase(), rr.record_type());
        let formerr = |why: &str| Err((ResponseCode::FormErr, format!("update {name} {t}: {why}")));
        if !in_zone(state, origin, &name) {
            return Err((ResponseCode::NotZone, format!("update {name} is outside {origin}")));
        }
        let empty = matches!(rr.data, RData::Update0(_));
        match rr.dns_class {
            DNSClass::IN if is_meta(t) || empty => return formerr("not a record"),
            DNSClass::ANY if rr.ttl != 0 || !empty => return formerr("a deletion has TTL 0 and no RDATA"),
            DNSClass::ANY if t != RecordType::ANY && is_meta(t) => return formerr("not a record type"),
            DNSClass::NONE if rr.ttl != 0 || empty || is_meta(t) => return formerr("a record deletion has TTL 0"),
            DNSClass::IN | DNSClass::ANY | DNSClass::NONE => {}
            _ => return formerr("class must be IN, ANY or NONE"),
        }
    }
    Ok(())
}

/// Section 3.3: each update is allowed by a grant of `key` (a deletion of all
/// RRsets at a name needs a grant of the name; it then touches only granted
/// types). An SOA update needs none: it is ignored (section 3.4.2.2).
fn check_permissions(grants: &[Grant], key: &Name, updates: &[Record]) -> Result<(), Refusal> {
    for rr in updates {
        let (name, t) = (rr.name.to_lowercase(), rr.record_type());
        if t == RecordType::SOA {
            continue; // ignored whoever sends it: lbdns keeps the serial
        }
        let allowed = if rr.dns_class == DNSClass::ANY && t == RecordType::ANY {
            grants.iter().any(|g| g.key == *key && g.names.iter().any(|p| p.matches(&name)))
        } else {
            grants.iter().any(|g| g.allows(key, &name, t))
        };
        if !allowed {
            return Err((ResponseCode::Refused, format!("key {key} may not change {t} at {name}")));
        }
    }
    Ok(())
}

/// RFC 3007 section 4.3 in spirit: in a signed zone the DNSSEC records are the
/// signer's, so an update that adds or deletes one is refused whole. Logged at
/// info: the sender holds a key granted the type, so this is an operator's
/// mistake to show, not noise.
fn check_signer_types(state: &InEffect, origin: &Name, updates: &[Record]) -> Result<(), Refusal> {
    for rr in updates {
        let t = rr.record_type();
        if let Err(e) = state.check_signer_type(origin, t) {
            let name = rr.name.to_lowercase();
            tracing::info!(zone = %origin, %name, rtype = %t, error = %e, "update refused");
            return Err((ResponseCode::Refused, format!("{t} at {name}: {e}")));
        }
    }
    Ok(())
}

/// The RRsets an UPDATE touches, as it changes them in order (section 3.4.2).
struct Work<'s, 'a> {
    state: &'s InEffect<'a>,
    origin: Name,
    /// Every RRset at each name touched, as changed so far.
    sets: BTreeMap<Name, BTreeMap<RecordType, Set>>,
    /// The same before the message.
    before: BTreeMap<Name, BTreeMap<RecordType, Set>>,
}

impl Work<'_, '_> {
    fn at(&mut self, name: &Name) -> &mut BTreeMap<RecordType, Set> {
        if !self.sets.contains_key(name) {
            let now: BTreeMap<RecordType, Set> = self
                .state
                .rrsets_at(&self.origin, name)
                .into_iter()
                .map(|(t, ttl, data)| (t, Set { ttl, data }))
                .collect();
            self.before.insert(name.clone(), now.clone());
            self.sets.insert(name.clone(), now);
        }
        self.sets.entry(name.clone()).or_default()
    }

    fn apply(&mut self, rr: &Record, grants: &[Grant], key: &Name) {
        let (name, t) = (rr.name.to_lowercase(), rr.record_type());
        let apex = name == self.origin;
        let sets = self.at(&name);
        match rr.dns_class {
            DNSClass::IN => add(sets, t, rr),
            DNSClass::ANY if t == RecordType::ANY => {
                sets.retain(|x, _| {
                    let kept = apex && matches!(x, RecordType::SOA | RecordType::NS);
                    kept || !grants.iter().any(|g| g.allows(key, &name, *x))
                });
            }
            DNSClass::ANY if apex && matches!(t, RecordType::SOA | RecordType::NS) => {}
            DNSClass::ANY => {
                sets.remove(&t);
            }
            _ if t == RecordType::SOA => {}
            _ => {
                let Some(set) = sets.get_mut(&t) else { return };
                // The last NS at the apex stays (section 3.4.2.4).
                if apex && t == RecordType::NS && set.data.len() == 1 {
                    return;
                }
                set.data.retain(|d| *d != rr.data);
                if set.data.is_empty() {
                    sets.remove(&t);
                }
            }
        }
    }

    /// The stored changes that make each touched RRset what the message left.
    fn into_changes(self) -> Result<Vec<Change>, Refusal> {
        let mut changes = Vec::new();
        for (name, after) in &self.sets {
            let before = &self.before[name];
            let mut types: Vec<RecordType> = before.keys().chain(after.keys()).copied().collect();
            types.sort();
            types.dedup();
            let pool = self.state.find_pool(name).filter(|_| self.state.pool_zone(name) == self.origin);
            let mut members_touched = false;
            for t in types {
                let (b, a) = (before.get(&t), after.get(&t));
                if same_set(b, a) {
                    continue;
                }
                if pool.is_some() && matches!(t, RecordType::A | RecordType::AAAA) {
                    members_touched = true;
                    continue;
                }
                changes.extend(self.rrset_change(name, t, a)?);
            }
            if let (Some((def, origin)), true) = (pool, members_touched) {
                changes.extend(self.member_changes(def, *origin, after)?);
            }
        }
        Ok(changes)
    }

    /// The change that makes the `t` RRset at `name` `after` (gone: `None`),
    /// planned as the API's PUT or DELETE of it.
    fn rrset_change(&self, name: &Name, t: RecordType, after: Option<&Set>) -> Result<Option<Change>, Refusal> {
        let origin = self.origin.to_ascii();
        let req = match after {
            None => ApiRequest::DeleteRRset(origin, name.to_ascii(), t.to_string()),
            Some(set) => {
                let data: Vec<String> = set.data.iter().map(crate::rdata::render).collect();
                let body = serde_json::json!({"ttl": set.ttl, "data": data}).to_string();
                ApiRequest::PutRRset(origin, name.to_ascii(), t.to_string(), body.into())
            }
        };
        let refused = |e: ApiError| (ResponseCode::Refused, format!("{t} at {name}: {e}"));
        let planned = self.state.plan(req).map_err(refused)?;
        Ok(planned.map(|p| match p.change {
            Change::PutRRset { zone, name, rtype, mut set } => {
                set.source = RRsetSource::Update;
                Change::PutRRset { zone, name, rtype, set }
            }
            other => other,
        }))
    }

    /// The member changes that make pool `def`'s members the A and AAAA records
    /// `after` has: new ones with weight 1, enabled; a member the config file
    /// defines cannot be removed.
    fn member_changes(
        &self,
        def: &crate::config::PoolDef,
        origin: Origin,
        after: &BTreeMap<RecordType, Set>,
    ) -> Result<Vec<Change>, Refusal> {
        let wanted: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
            .iter()
            .filter_map(|t| after.get(t))
            .flat_map(|s| s.data.iter())
            .filter_map(|d| match d {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        let name = &def.name;
        let removed: Vec<IpAddr> = def.members.iter().map(|m| m.address).filter(|a| !wanted.contains(a)).collect();
        let added: Vec<IpAddr> =
            wanted.iter().copied().filter(|a| !def.members.iter().any(|m| m.address == *a)).collect();
        if let Some(a) = removed.iter().find(|a| self.state.file_member(name, **a).is_some()) {
            return Err((ResponseCode::Refused, format!("member {a} of pool {name} is defined in the config file")));
        }
        let refused = |e: ApiError| (ResponseCode::Refused, format!("pool {name}: {e}"));
        if origin == Origin::Api {
            let mut next = def.clone();
            next.members.retain(|m| !removed.contains(&m.address));
            next.members.extend(added.iter().map(|&address| MemberConfig {
                address,
                weight: 1,
                region: None,
                enabled: true,
                probe: None,
            }));
            validate_pool(&next, &self.state.sources.config.regions).map_err(refused)?;
            return Ok(vec![Change::PutPool(Box::new(next))]);
        }
        let mut changes = Vec::new();
        let pool = name.to_ascii();
        for a in added {
            let body = br#"{"weight":1,"enabled":true}"#.as_slice();
            let req = ApiRequest::PutMember(pool.clone(), a.to_string(), body.into());
            changes.extend(self.state.plan(req).map_err(refused)?.map(|p| p.change));
        }
        for a in removed {
            let req = ApiRequest::DeleteMember(pool.clone(), a.to_string());
            changes.extend(self.state.plan(req).map_err(refused)?.map(|p| p.change));
        }
        Ok(changes)
    }
}

fn same_set(a: Option<&Set>, b: Option<&Set>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.ttl == b.ttl && same_records(&a.data, &b.data),
        _ => false,
    }
}

/// Section 3.4.2.2: an added record joins its RRset (TTL taken from it), except
/// an SOA (lbdns keeps the serial) and the CNAME conflicts, which are ignored.
fn add(sets: &mut BTreeMap<RecordType, Set>, t: RecordType, rr: &Record) {
    let has_cname = sets.contains_key(&RecordType::CNAME);
    let has_other = sets.keys().any(|x| *x != RecordType::CNAME);
    match t {
        RecordType::SOA => {}
        RecordType::CNAME if has_other => {}
        RecordType::CNAME => {
            sets.insert(t, Set { ttl: rr.ttl, data: vec![rr.data.clone()] });
        }
        _ if has_cname => {}
        _ => {
            let set = sets.entry(t).or_insert(Set { ttl: rr.ttl, data: Vec::new() });
            set.ttl = rr.ttl;
            if !set.data.contains(&rr.data) {
                set.data.push(rr.data.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
