//! `GET /v1/explain`: why a client gets the answer it gets.
//!
//! The answer is not re-derived here: the question is put, as a real DNS query,
//! through the query path's own [`Responder`] (and so the very same
//! [`Pool::select`]) on the published snapshot, with every pool replaced by a
//! detached copy ([`Pool::detached`]) so that explaining counts no answer and
//! advances no round-robin rotation. What this module adds is the why: the zone,
//! the node matched, the CNAME chain, and for a pool the client key, the location
//! and every member's eligibility, read from the same snapshot and health table.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use serde_json::{Value, json};

use super::Writer;
use super::render::rfc3339;
use crate::config::{CheckKind, PolicyName};
use crate::dns::answer::Responder;
use crate::snapshot::{Pool, Snapshot, Zone, wire};
use crate::state::api::{ApiError, ExplainQuery, Reply};

/// A question as explained: parsed and checked.
struct Question {
    name: Name,
    rtype: RecordType,
    client: IpAddr,
    ecs: Option<IpNet>,
}

fn parse(q: &ExplainQuery) -> Result<Question, ApiError> {
    let name =
        crate::config::parse_fqdn(&q.name).map_err(|e| ApiError::BadRequest(format!("name {:?}: {e}", q.name)))?;
    let rtype = RecordType::from_str(&q.rtype.to_ascii_uppercase())
        .map_err(|_| ApiError::BadRequest(format!("type {:?}: not a record type", q.rtype)))?;
    let client =
        q.client.parse().map_err(|_| ApiError::BadRequest(format!("client {:?}: not an IP address", q.client)))?;
    let ecs = match &q.ecs {
        None => None,
        Some(e) => Some(e.parse::<IpNet>().map_err(|_| {
            ApiError::BadRequest(format!("ecs {e:?}: not a subnet (ADDRESS/PREFIX, e.g. 192.0.2.0/24)"))
        })?),
    };
    Ok(Question { name, rtype, client, ecs })
}

/// A DNS query for `q`, with EDNS (the server's UDP size) and ECS when given.
fn query_packet(q: &Question, udp_size: u16) -> Vec<u8> {
    let mut p = vec![0x4c, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(&wire(&q.name));
    p.extend_from_slice(&u16::from(q.rtype).to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    let mut opt = Vec::new();
    if let Some(net) = q.ecs {
        let (family, octets): (u16, Vec<u8>) = match net.network() {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let n = (net.prefix_len() as usize).div_ceil(8);
        opt.extend_from_slice(&8u16.to_be_bytes());
        opt.extend_from_slice(&((4 + n) as u16).to_be_bytes());
        opt.extend_from_slice(&family.to_be_bytes());
        opt.extend_from_slice(&[net.prefix_len(), 0]);
        opt.extend_from_slice(&octets[..n]);
    }
    p.extend_from_slice(&[0, 0, 41]);
    p.extend_from_slice(&udp_size.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    p.extend_from_slice(&opt);
    p
}

impl Writer {
    pub(super) fn explain(&self, q: &ExplainQuery) -> Result<Reply, ApiError> {
        let q = parse(q)?;
        let published = self.snapshot.load_full();
        let pools = published.pools.iter().map(|p| Arc::new(p.detached())).collect();
        let snap = published.with_parts(published.zones.clone(), pools);
        let mut out = Vec::with_capacity(4096);
        let outcome = Responder::new(fastrand::u64(..))
            .respond(&snap, &query_packet(&q, snap.edns_udp_size), q.client, false, &mut out)
            .ok_or_else(|| ApiError::Internal("the query path dropped the question".into()))?;
        let reply =
            Message::from_vec(&out).map_err(|e| ApiError::Internal(format!("the reply does not parse: {e}")))?;
        let zone = find_zone(&snap, &q.name);
        let chain = cname_chain(&reply);
        let last = chain.last().cloned().unwrap_or_else(|| q.name.clone());
        let (result, reason) = result_of(&reply, zone.is_some());
        let pool = outcome.pool.and_then(|i| snap.pools.get(i as usize)).map(|p| self.pool_why(&snap, p, &q, &reply));
        Ok(Reply::Ok(json!({
            "name": q.name.to_ascii(),
            "type": q.rtype.to_string(),
            "client": q.client,
            "ecs": q.ecs.map(|n| n.to_string()),
            "zone": zone.map(|z| z.origin.to_ascii()),
            "node": zone.map(|z| node_match(z, &last)),
            "cname_chain": chain.iter().map(|n| n.to_ascii()).collect::<Vec<_>>(),
            "rcode": rcode_name(reply.metadata.response_code),
            "result": result,
            "reason": reason,
            "answer": records_json(reply.answers.iter()),
            "authority": records_json(reply.authorities.iter()),
            "pool": pool,
            "ecs_scope": ecs_scope(&reply),
            "truncated": outcome.truncated,
        })))
    }

    /// The pool part: policy, client key, location, and each member's eligibility.
    fn pool_why(&self, snap: &Snapshot, pool: &Pool, q: &Question, reply: &Message) -> Value {
        let f =
            usize::from(q.rtype == RecordType::AAAA || (q.rtype == RecordType::ANY && pool.family[0].all.is_empty()));
        let (key, key_source) = match q.ecs {
            Some(n) => (crate::net::ecs_client(n.network(), n.prefix_len()), "ecs"),
            None => (crate::net::canonical(q.client), "source"),
        };
        let location = match (pool.policy.needs_location(), snap.geoip.as_deref()) {
            (true, Some(db)) => Some(db.locate(key)),
            _ => None,
        };
        let code = |c: Option<[u8; 2]>| c.map(|c| String::from_utf8_lossy(&c).into_owned());
        let answered: Vec<IpAddr> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        let members: Vec<Value> =
            pool.members.iter().map(|m| self.member_why(pool, f, m.address, m.enabled, m.healthy, &answered)).collect();
        json!({
            "name": pool.def.name.to_ascii(),
            "policy": pool.def.policy,
            "sample": matches!(pool.def.policy, PolicyName::Random | PolicyName::Weighted | PolicyName::Geo),
            "client_key": if pool.policy.client_dependent() || location.is_some() { Some(format!("{key}")) } else { None },
            "client_key_from": key_source,
            "country": location.and_then(|l| code(l.country)),
            "continent": location.and_then(|l| code(l.continent)),
            "region_order": location.map(|l| region_order(snap, l.country, l.continent)),
            "all_down": pool.family[f].eligible.is_empty() && !pool.family[f].all.is_empty(),
            "all_down_policy": pool.all_down,
            "members": members,
        })
    }

    /// One member: eligible, or why not.
    fn member_why(
        &self,
        pool: &Pool,
        f: usize,
        addr: IpAddr,
        enabled: bool,
        healthy: bool,
        answered: &[IpAddr],
    ) -> Value {
        let def = &pool.def;
        let h = self.health.get(def, addr);
        let reason = if usize::from(addr.is_ipv6()) != f {
            Some("wrong family")
        } else if !enabled {
            Some("drained")
        } else if !healthy {
            Some(self.down_because(def, addr))
        } else {
            None
        };
        // With `health = "quorum"` eligibility is the nodes' vote, which may
        // overrule this node's own probe either way: show every vote.
        let votes = self.votes_json(def, addr);
        json!({
            "address": addr,
            "region": def.members.iter().find(|m| m.address == addr).and_then(|m| m.region.clone()),
            "weight": def.members.iter().find(|m| m.address == addr).map(|m| m.weight),
            "eligible": reason.is_none(),
            "reason": reason,
            "health": match (def.health.check, h) { (CheckKind::None, _) => "none", (_, Some(h)) => h.state(), _ => "unknown" },
            "since": h.and_then(|h| h.last_change).map(rfc3339),
            "last_error": h.and_then(|h| h.last_error.clone()),
            "votes": votes,
            "health_override": self.override_json(def, addr),
            "health_file": self.file_json(def, addr),
            "answered": answered.iter().position(|a| *a == addr),
        })
    }
}

/// The zone the server answers `name` from (the longest origin that ends it).
fn find_zone<'s>(snap: &'s Snapshot, name: &Name) -> Option<&'s Zone> {
    let lower = name.to_lowercase();
    (0..=lower.num_labels()).find_map(|i| {
        let suffix = lower.trim_to(lower.num_labels() as usize - i as usize);
        snap.zones.get(&*wire(&suffix)).map(|z| &**z)
    })
}

/// `exact`, `wildcard` (with the wildcard's name), or `none` (the name does not exist).
fn node_match(zone: &Zone, name: &Name) -> Value {
    let lower = name.to_lowercase();
    if zone.node(&wire(&lower)).is_some() {
        return json!({"name": lower.to_ascii(), "match": "exact"});
    }
    let mut ce = lower.base_name();
    while ce.num_labels() as usize >= zone.labels {
        if zone.node(&wire(&ce)).is_some() {
            let wild = ce.prepend_label("*").ok();
            return match wild.filter(|w| zone.node(&wire(w)).is_some()) {
                Some(w) => json!({"name": w.to_ascii(), "match": "wildcard"}),
                None => json!({"name": lower.to_ascii(), "match": "none"}),
            };
        }
        ce = ce.base_name();
    }
    json!({"name": lower.to_ascii(), "match": "none"})
}

/// The CNAME targets followed, in order.
fn cname_chain(reply: &Message) -> Vec<Name> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        })
        .collect()
}

/// The RCODE's mnemonic, as dig prints it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => other.to_string(),
    }
}

/// What kind of answer this is, and why.
fn result_of(reply: &Message, in_zone: bool) -> (&'static str, &'static str) {
    let has_ns = reply.authorities.iter().any(|r| r.record_type() == RecordType::NS);
    match reply.metadata.response_code {
        ResponseCode::Refused if !in_zone => ("refused", "no zone served here contains the name"),
        ResponseCode::Refused => ("refused", "the class or type is not served"),
        ResponseCode::NXDomain => ("nxdomain", "the name does not exist and no wildcard covers it"),
        ResponseCode::ServFail => ("servfail", "the pool has no eligible member and all_down = \"servfail\""),
        ResponseCode::NoError if !reply.metadata.authoritative && has_ns => {
            ("referral", "the name is at or below a zone cut (delegation)")
        }
        ResponseCode::NoError if reply.answers.is_empty() => {
            ("nodata", "the name exists but has no records of this type")
        }
        ResponseCode::NoError => ("answer", "records of this type"),
        _ => ("error", "see rcode"),
    }
}

/// Records as in `GET /v1/zones/{origin}/records`: the canonical presentation
/// form (every character-string quoted, one per string), not hickory's display,
/// which runs the strings of a TXT together.
fn records_json<'a>(records: impl Iterator<Item = &'a hickory_proto::rr::Record>) -> Value {
    Value::Array(
        records
            .map(|r| {
                json!({"name": r.name.to_ascii(), "type": r.record_type().to_string(), "ttl": r.ttl, "data": crate::rdata::render(&r.data)})
            })
            .collect(),
    )
}

/// The ECS scope the reply carries (`null`: the query had no ECS).
fn ecs_scope(reply: &Message) -> Option<u8> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let edns = reply.edns.as_ref()?;
    match edns.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(s.scope_prefix()),
        _ => None,
    }
}

/// The regions a geo pool tries, most preferred first, and the key that chose them.
fn region_order(snap: &Snapshot, country: Option<[u8; 2]>, continent: Option<[u8; 2]>) -> Value {
    let find = |c: Option<[u8; 2]>| {
        let c = String::from_utf8_lossy(&c?).to_ascii_uppercase();
        snap.regions.iter().find(|(k, _)| k.to_ascii_uppercase() == c)
    };
    let (key, list) = find(country)
        .or_else(|| find(continent))
        .or_else(|| snap.regions.get_key_value("default"))
        .map_or((None, Vec::new()), |(k, l)| (Some(k.clone()), l.clone()));
    json!({"key": key, "regions": list})
}
