//! Planning an API write: parse its path and body, check it against the state in
//! effect, and say what to store. Pure: no I/O, no runtime, no HTTP; the same
//! state and request always give the same plan or the same refusal.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

use super::input::{RRsetBody, member_address, parse_json, pool_name, validate_pool};
use super::{InEffect, Planned};
use crate::config::ApiPoolConfig;
use crate::snapshot::{Zone, decode_rrset};
use crate::sources::{Clash, clash};
use crate::state::api::{ApiError, ApiRequest};
use crate::state::cname;
use crate::state::overlay::{Change, MemberFields, Origin, StoredRRset};

impl InEffect<'_> {
    /// Validates a write and turns it into a stored change, the zone it belongs
    /// to, and whether it creates something; `None` when there is nothing to
    /// store (a DELETE of what is already deleted).
    pub fn plan(&self, req: ApiRequest) -> Result<Option<Planned>, ApiError> {
        match req {
            ApiRequest::PutPool(name, body) => self.plan_put_pool(&name, &body).map(Some),
            ApiRequest::DeletePool(name) => {
                let name = pool_name(&name)?;
                let (_, origin) =
                    self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
                if *origin == Origin::Config {
                    return Err(ApiError::conflict(format!(
                        "pool {name} is defined in the config file; remove it there and reload"
                    )));
                }
                Ok(Some(Planned::new(Change::DeletePool(name.clone()), self.pool_zone(&name), false)))
            }
            ApiRequest::DeletePoolOverride(name) => self.plan_revert_pool(&name).map(Some),
            ApiRequest::PutMember(pool, address, body) => self.plan_put_member(&pool, &address, &body).map(Some),
            ApiRequest::DeleteMember(pool, address) => self.plan_delete_member(&pool, &address),
            ApiRequest::DeleteMemberOverride(pool, address) => self.plan_revert_member(&pool, &address).map(Some),
            ApiRequest::PutMemberHealth(pool, address, body, now) => {
                self.plan_member_health(&pool, &address, &body, now)
            }
            ApiRequest::PutRRset(origin, name, rtype, body) => {
                self.plan_put_rrset(&origin, &name, &rtype, &body).map(Some)
            }
            ApiRequest::DeleteRRset(origin, name, rtype) => self.plan_delete_rrset(&origin, &name, &rtype),
            ApiRequest::DeleteRRsetOverride(origin, name, rtype) => {
                self.plan_revert_rrset(&origin, &name, &rtype).map(Some)
            }
            ApiRequest::ListPools
            | ApiRequest::GetPool(_)
            | ApiRequest::ListZones
            | ApiRequest::GetRecords(_)
            | ApiRequest::Explain(_) => Err(ApiError::NotAllowed("not a write".into())),
        }
    }

    /// A zone file RRset that a revert shows again is held to the rules of a PUT:
    /// no pool behind it, no CNAME loop through it (the file was checked without
    /// the API changes made since).
    pub fn check_restored(&self, z: &Zone, name: &Name, rtype: RecordType) -> Result<(), ApiError> {
        let Some(restored) = z.node_at(name).and_then(|n| n.rrset(u16::from(rtype))) else { return Ok(()) };
        self.check_pools_clash(z, name, rtype)?;
        if let Some(hickory_proto::rr::RData::CNAME(target)) = decode_rrset(restored).1.first() {
            if let Some(chain) = cname::loop_closed_by(z, name, &target.0) {
                return Err(ApiError::unprocessable(format!(
                    "the zone file's CNAME at {name} would make a loop: {}",
                    cname::show(&chain)
                )));
            }
        }
        Ok(())
    }

    /// In a signed zone, the DNSSEC records are lbdns's to make: a write of one
    /// is refused (a revert of one stored before the zone was signed is not).
    pub fn check_signer_type(&self, origin: &Name, rtype: RecordType) -> Result<(), ApiError> {
        if crate::dnssec::is_signer_type(rtype) && self.sources.config.is_signed(origin) {
            return Err(ApiError::conflict(format!(
                "refused: zone {origin} is signed ([zone.dnssec]), and lbdns makes its {rtype} records \
                 itself; they cannot be set or deleted through the API or UPDATE"
            )));
        }
        Ok(())
    }

    /// An RRset write keeps every pool of the zone placed as the zone file must
    /// (one rule for both: [`clash`]).
    fn check_pools_clash(&self, z: &Zone, name: &Name, rtype: RecordType) -> Result<(), ApiError> {
        // Only NS (a cut above pools) can clash with a pool at another name; A,
        // AAAA and CNAME only with the pool at `name`; other types with none.
        let pools: Vec<&(std::sync::Arc<crate::config::PoolDef>, Origin)> = match rtype {
            RecordType::NS => self.pools.iter().collect(),
            RecordType::A | RecordType::AAAA | RecordType::CNAME => self.find_pool(name).into_iter().collect(),
            _ => Vec::new(),
        };
        for (def, _) in pools {
            let Some(c) = clash(&def.name, name, rtype, &z.origin) else { continue };
            if self.zone_of(&def.name).is_none_or(|pz| pz.origin != z.origin) {
                continue; // the pool is in a zone below this one
            }
            return Err(ApiError::conflict(match c {
                Clash::Answers => format!("{name} is a pool: its {rtype} answers come from its members"),
                Clash::Cut => format!(
                    "refused: NS at {name} would put pool {} at or below a zone cut, where it would \
                     answer with a referral (a zone file may not do this either); delete the pool first",
                    def.name
                ),
            }));
        }
        Ok(())
    }

    fn plan_put_pool(&self, name: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let name = pool_name(name)?;
        if self.config_pool(&name).is_some() {
            return Err(ApiError::conflict(format!(
                "pool {name} is defined in the config file; change its members with PUT /v1/pools/{name}/members/ADDRESS"
            )));
        }
        let cfg: ApiPoolConfig = parse_json(body)?;
        let def = cfg.into_def(name.clone());
        if def.health.health_file().is_some() {
            // A path on the server is the config file's to name, not an API client's.
            return Err(ApiError::unprocessable(
                "health.health_file: set only in the config file, not through the API",
            ));
        }
        validate_pool(&def, &self.sources.config.regions)?;
        let answers =
            |z: &Zone, rtype: RecordType| match self.overlay.rrsets.get(&(z.origin.clone(), name.clone(), rtype)) {
                Some(Some(_)) => ("(api)".to_string(), 0),
                _ => crate::state::file_line(self.sources, &z.origin, &name, rtype).unwrap_or_default(),
            };
        crate::state::held::check_placement(&def.name, self.zones, &answers)
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let created = self.find_pool(&name).is_none();
        Ok(Planned::new(Change::PutPool(Box::new(def)), self.pool_zone(&name), created))
    }

    fn plan_put_member(&self, pool: &str, address: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let (def, origin) = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
        let patch: MemberFields = parse_json(body)?;
        let created = !def.members.iter().any(|m| m.address == address);
        let zone = self.pool_zone(&name);
        if *origin == Origin::Api {
            let mut next = (**def).clone();
            let member = patch.over(address, def.members.iter().find(|m| m.address == address));
            match next.members.iter_mut().find(|m| m.address == address) {
                Some(m) => *m = member,
                None => next.members.push(member),
            }
            validate_pool(&next, &self.sources.config.regions)?;
            return Ok(Planned::new(Change::PutPool(Box::new(next)), zone, created));
        }
        // The override records only the fields ever set through the API (a
        // stored deletion is replaced): the others follow the config.
        let stored = match self.overlay.members.get(&(name.clone(), address)) {
            Some(Some(f)) => f.clone(),
            _ => MemberFields::default(),
        };
        let fields = stored.merged(&patch);
        if let Some(next) = self.config_pool_with(&name, address, Some(&Some(fields.clone()))) {
            validate_pool(&next, &self.sources.config.regions)?;
        }
        Ok(Planned::new(Change::PutMember { pool: name, address, fields }, zone, created))
    }

    /// A member of a config pool that the config has is hidden by a stored
    /// deletion (repeating it stores nothing); one that exists only through the
    /// API loses its override.
    fn plan_delete_member(&self, pool: &str, address: &str) -> Result<Option<Planned>, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let (def, origin) = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
        let zone = self.pool_zone(&name);
        if *origin == Origin::Config && self.overlay.members.get(&(name.clone(), address)) == Some(&None) {
            return Ok(None);
        }
        if !def.members.iter().any(|m| m.address == address) {
            return Err(ApiError::not_found(format!("pool {name} has no member {address}")));
        }
        let mut next = (**def).clone();
        next.members.retain(|m| m.address != address);
        validate_pool(&next, &self.sources.config.regions)?;
        let change = match origin {
            Origin::Api => Change::PutPool(Box::new(next)),
            Origin::Config if self.file_member(&name, address).is_some() => {
                Change::DeleteMember { pool: name, address }
            }
            Origin::Config => Change::RevertMember { pool: name, address },
        };
        Ok(Some(Planned::new(change, zone, false)))
    }

    /// `DELETE /v1/pools/{name}/members/{address}/override`: the member as the
    /// config has it (gone if it does not). A member of an API pool has no file
    /// version: it is removed.
    fn plan_revert_member(&self, pool: &str, address: &str) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let zone = self.pool_zone(&name);
        if let Some((def, Origin::Api)) = self.find_pool(&name) {
            if !def.members.iter().any(|m| m.address == address) {
                return Err(ApiError::not_found(format!("pool {name} has no member {address}")));
            }
            let mut next = (**def).clone();
            next.members.retain(|m| m.address != address);
            validate_pool(&next, &self.sources.config.regions)?;
            return Ok(Planned::new(Change::PutPool(Box::new(next)), zone, false));
        }
        if !self.overlay.members.contains_key(&(name.clone(), address)) {
            return Err(ApiError::not_found(format!("member {address} of pool {name} has no override")));
        }
        if let Some(next) = self.config_pool_with(&name, address, None) {
            validate_pool(&next, &self.sources.config.regions)?;
        }
        Ok(Planned::new(Change::RevertMember { pool: name, address }, zone, false))
    }

    /// `DELETE /v1/pools/{name}/override`: the pool as the config has it (every
    /// member override removed), or gone if it exists only through the API.
    fn plan_revert_pool(&self, pool: &str) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let members: Vec<IpAddr> = self.overlay.member_overrides(&name).map(|(a, _)| a).collect();
        if members.is_empty() && !self.overlay.pools.contains_key(&name) {
            return Err(ApiError::not_found(format!("pool {name} has no override")));
        }
        Ok(Planned::new(Change::RevertPool { pool: name.clone(), members }, self.pool_zone(&name), false))
    }

    fn plan_put_rrset(&self, origin: &str, name: &str, rtype: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        self.check_signer_type(&z.origin, rtype)?;
        let set: RRsetBody = parse_json(body)?;
        if set.data.is_empty() {
            return Err(ApiError::unprocessable("data: at least one record is needed (DELETE removes an RRset)"));
        }
        if set.ttl > i32::MAX as u32 {
            return Err(ApiError::unprocessable("ttl: above 2^31-1"));
        }
        // Stored and shown in the one presentation form GET renders, so a
        // read-then-write gives back the same octets.
        let data =
            crate::rdata::canonical(rtype, &set.data, &z.origin).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        self.check_pools_clash(&z, &name, rtype)?;
        if rtype == RecordType::CNAME {
            let target = data
                .first()
                .map(|d| crate::rdata::parse_text(rtype, d, &z.origin))
                .transpose()
                .map_err(|e| ApiError::unprocessable(format!("data[0]: {e}")))?;
            if let Some(hickory_proto::rr::RData::CNAME(target)) = target {
                if let Some(chain) = cname::loop_closed_by(&z, &name, &target.0) {
                    return Err(ApiError::unprocessable(format!(
                        "data[0]: this CNAME would make a loop: {}",
                        cname::show(&chain)
                    )));
                }
            }
        }
        let created = z.rrset_at(&name, rtype).is_none();
        let change = Change::PutRRset { zone: z.origin.clone(), name, rtype, set: StoredRRset::api(set.ttl, data) };
        Ok(Planned::new(change, z.origin.clone(), created))
    }

    /// A zone file's RRset is hidden by a stored deletion (repeating it stores
    /// nothing); one that exists only through the API loses its override (also
    /// one the files refuse, which is not in effect).
    fn plan_delete_rrset(&self, origin: &str, name: &str, rtype: &str) -> Result<Option<Planned>, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        self.check_signer_type(&z.origin, rtype)?;
        if rtype == RecordType::NS && name == z.origin {
            return Err(ApiError::conflict(format!(
                "refused: deleting the NS RRset at the apex of {name} would leave the zone without \
                 name servers, and a zone must have NS records at its apex; replace it with PUT instead"
            )));
        }
        let key = (z.origin.clone(), name.clone(), rtype);
        let stored = self.overlay.rrsets.get(&key);
        if stored == Some(&None) {
            return Ok(None);
        }
        let overridden = stored.is_some() || self.refused.contains(&key);
        let (zone, name) = (z.origin.clone(), name);
        let change = if self.file_has_rrset(&zone, &name, rtype) {
            Change::DeleteRRset { zone: zone.clone(), name, rtype }
        } else if overridden {
            Change::RevertRRset { zone: zone.clone(), name, rtype }
        } else {
            return Err(ApiError::not_found(format!("no {rtype} records at {name}")));
        };
        Ok(Some(Planned::new(change, zone, false)))
    }

    /// `DELETE /v1/zones/{origin}/records/{name}/{type}/override`: the RRset as
    /// the zone file has it (gone if it does not).
    fn plan_revert_rrset(&self, origin: &str, name: &str, rtype: &str) -> Result<Planned, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        let key = (z.origin.clone(), name.clone(), rtype);
        if !self.overlay.rrsets.contains_key(&key) && !self.refused.contains(&key) {
            return Err(ApiError::not_found(format!("the {rtype} RRset at {name} has no override")));
        }
        Ok(Planned::new(Change::RevertRRset { zone: z.origin.clone(), name, rtype }, z.origin.clone(), false))
    }
}
