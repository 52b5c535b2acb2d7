//! API reads rendered as JSON values: pools and zones as in effect, beside what
//! the files say and what the API laid over them. No HTTP: `admin` adds the status.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

use crate::state::overlay::{MemberFields, Origin};

use crate::config::{ApiPoolConfig, MemberConfig, PoolDef, parse_fqdn};
use crate::snapshot::Zone;

use super::*;

impl Writer {
    /// A pool for `GET`: the values in effect, and beside them what the config
    /// file says (`file`, `null` for an API pool) and what the API laid over it
    /// (`override`: the member overrides of a config pool, `null` without any;
    /// the whole definition of an API pool). `source` is `config` when the pool
    /// is exactly as the config says, `api` otherwise.
    pub(super) fn pool_json(&self, (def, origin): &(Arc<PoolDef>, Origin)) -> Value {
        let file = match origin {
            Origin::Config => self.in_effect().config_pool(&def.name),
            Origin::Api => None,
        };
        let members: Vec<Value> = def.members.iter().map(|m| self.member_json(def, m, file)).collect();
        let over = match file {
            None => serde_json::to_value(ApiPoolConfig::from_def(def)).unwrap_or(Value::Null),
            Some(_) => {
                let list: Vec<Value> = self
                    .overlay
                    .member_overrides(&def.name)
                    .map(|(a, o)| match o {
                        Some(f) => member_fields_json(a, f),
                        None => json!({"address": a, "deleted": true}),
                    })
                    .collect();
                if list.is_empty() { Value::Null } else { json!({ "members": list }) }
            }
        };
        let mut v = serde_json::to_value(ApiPoolConfig::from_def(def)).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("name".into(), json!(def.name.to_ascii()));
            map.insert("source".into(), json!(if file.is_some() && over.is_null() { "config" } else { "api" }));
            map.insert("members".into(), Value::Array(members));
            let file = file.map(|f| serde_json::to_value(ApiPoolConfig::from_def(f)).unwrap_or(Value::Null));
            map.insert("file".into(), file.unwrap_or(Value::Null));
            map.insert("override".into(), over);
            let since = self.all_down.get(&def.name.to_ascii()).map(|d| rfc3339(d.since));
            map.insert("all_down_since".into(), json!(since));
        }
        v
    }

    /// The SOA serial served for `origin` now.
    pub(super) fn served_serial(&self, origin: &Name) -> Option<u32> {
        self.snapshot.load().zones.get(&*crate::snapshot::wire(origin)).map(|zz| zz.serial)
    }

    /// One zone for `GET /v1/zones`.
    pub(super) fn zone_summary_json(&self, z: &Zone) -> Value {
        let last = self.last_change.get(&z.origin);
        json!({
            "origin": z.origin.to_ascii(),
            "serial": self.served_serial(&z.origin),
            "rrsets": z.rrset_count(),
            "last_change": last.map(|l| json!({"time": rfc3339(l.time), "source": l.source})),
        })
    }

    /// A member for `GET`, with its `file` and `override` values (see
    /// [`Writer::pool_json`]); `file_pool` is the pool in the config, if there.
    pub(super) fn member_json(&self, def: &PoolDef, m: &MemberConfig, file_pool: Option<&Arc<PoolDef>>) -> Value {
        let h = self.health.get(def, m);
        let (effective_weight, weight_source) = self.health.weight(def, m);
        let state = match (def.health.probes(), h) {
            (false, _) => "none",
            (true, Some(h)) => h.state(),
            (true, None) => "unknown",
        };
        let file = file_pool.and_then(|p| p.members.iter().find(|f| f.address == m.address));
        let over = match file_pool {
            // A member of an API pool is all override.
            None => member_own_json(m),
            Some(_) => match self.overlay.members.get(&(def.name.clone(), m.address)) {
                Some(Some(f)) => serde_json::to_value(f).unwrap_or(Value::Null),
                _ => Value::Null,
            },
        };
        json!({
            "address": m.address,
            "weight": m.weight,
            "region": m.region,
            "enabled": m.enabled,
            "probe": m.probe,
            "source": if file.is_some() && over.is_null() { "config" } else { "api" },
            "file": file.map(member_own_json),
            "override": over,
            "health": state,
            "state": self.member_state(def, m),
            "health_override": self.override_json(def, m.address),
            "health_file": self.file_json(def, m.address),
            "last_change": h.and_then(|h| h.last_change).map(rfc3339),
            "last_error": h.and_then(|h| h.last_error.clone()),
            "last_rtt_ms": h.and_then(|h| h.last_rtt()).map(|d| d.as_secs_f64() * 1000.0),
            "cert_days": h.and_then(|h| h.cert_days),
            "effective_weight": (effective_weight * 100.0).round() / 100.0,
            "weight_source": weight_source,
            "weight_error": h.and_then(|h| h.weight_error.clone()),
            "votes": self.votes_json(def, m),
        })
    }

    /// With `[cluster] health = "quorum"`, how the nodes see a member: `up` of
    /// `of` nodes that have a result, and each node's view by name (`null`: no
    /// result yet); `null` otherwise and for a pool without health checks.
    pub(super) fn votes_json(&self, def: &PoolDef, member: &MemberConfig) -> Value {
        let Some(cluster) = self.cluster.as_ref().filter(|c| c.quorum) else { return Value::Null };
        if !def.health.probes() {
            return Value::Null;
        }
        let (mut up, mut of, mut nodes) = (0u32, 0u32, serde_json::Map::new());
        for (node, vote) in self.view().ballots(def, member) {
            of += u32::from(vote.is_some());
            up += u32::from(vote == Some(true));
            nodes.insert(node.unwrap_or(&cluster.node).to_string(), json!(vote));
        }
        json!({"up": up, "of": of, "nodes": nodes})
    }

    /// The zone file's RRset `name`/`rtype` as `GET` shows it (`null` if none).
    pub(super) fn file_rrset_json(&self, origin: &Name, name: &Name, rtype: RecordType) -> Value {
        let Some(z) = self.in_effect().zone(origin) else { return Value::Null };
        match z.file_node_at(name).and_then(|n| n.rrset(u16::from(rtype))) {
            Some(set) => {
                let (ttl, data) = crate::snapshot::decode_rrset(set);
                json!({"ttl": ttl, "data": data.iter().map(crate::rdata::render).collect::<Vec<_>>()})
            }
            None => Value::Null,
        }
    }

    /// A zone's RRsets in effect for `GET`, each with what the zone file says
    /// (`file`, `null` when it has no such RRset) and the API's replacement
    /// (`override`, `null` without one). `source` is `zone` without an override,
    /// `api` with one written by the API, `update` with one written by UPDATE.
    /// Stored deletions are listed apart (`deleted`), with the zone file's RRset
    /// they hide. The SOA shows the serial served, which counts the API changes
    /// too, rather than the zone file's.
    pub(super) fn records_json(&self, z: &Zone) -> Value {
        let serial = self.served_serial(&z.origin);
        let mut file_sets = z.texts(true, 0);
        let served = z.texts(false, serial.unwrap_or(z.serial));
        let records: Vec<Value> = served
            .into_iter()
            .map(|(key, (ttl, data))| {
                let stored = parse_fqdn(&key.0)
                    .ok()
                    .zip(key.1.parse::<RecordType>().ok())
                    .and_then(|(n, rt)| self.overlay.rrsets.get(&(z.origin.clone(), n, rt)));
                // An RRset an UPDATE wrote shows `update`, one the API wrote `api`.
                let source = match stored {
                    None => "zone",
                    Some(set) => set.as_ref().map_or("api", |s| s.source.as_str()),
                };
                let over = stored.map(|o| json!(o));
                let file = file_sets.remove(&key).map(|(ttl, data)| json!({"ttl": ttl, "data": data}));
                let (name, t) = key;
                json!({"name": name, "type": t, "ttl": ttl, "data": data,
                       "source": source,
                       "file": file, "override": over})
            })
            .collect();
        // Stored deletions, so that what hides a zone file's RRset can be seen.
        let deleted: Vec<Value> = self
            .overlay
            .rrsets
            .iter()
            .filter(|((o, _, _), set)| *o == z.origin && set.is_none())
            .map(|((_, name, rtype), _)| {
                let key = (name.to_ascii(), rtype.to_string());
                let file = file_sets.remove(&key).map(|(ttl, data)| json!({"ttl": ttl, "data": data}));
                json!({"name": key.0, "type": key.1, "file": file})
            })
            .collect();
        json!({"zone": z.origin.to_ascii(), "serial": serial, "records": records, "deleted": deleted})
    }
}

/// A member's own fields (`probe` only when set), as its `file` or an API
/// pool member's `override` shows them.
fn member_own_json(m: &MemberConfig) -> Value {
    let mut v = json!({"weight": m.weight, "region": m.region, "enabled": m.enabled});
    if let (Some(p), Value::Object(map)) = (m.probe.as_deref(), &mut v) {
        map.insert("probe".into(), json!(p));
    }
    v
}

/// A member override's set fields, with the member's address.
pub(super) fn member_fields_json(address: IpAddr, f: &MemberFields) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("address".into(), json!(address));
    }
    v
}

pub(super) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
