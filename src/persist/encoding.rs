//! One encoding of the API state, shared by every store: the keys an entry is
//! known by (`pools/NAME`, `members/POOL/ADDRESS`, `rrsets/ZONE/NAME/TYPE`,
//! `serials/ZONE`, `health/POOL/ADDRESS`; names percent-encode `%` and `/`) and the JSON values stored
//! under them. etcd stores the pairs as they are; SQLite stores the same values
//! in its rows; `lbdns export` writes the pairs as one JSON document.
//! etcd also keeps each node's own IXFR journal under `journal/NODE/ZONE/SEQ`
//! (binary entries, not API state): no other node applies them, full loads
//! leave them out, and export never sees them.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

use super::State;
use crate::config::{ApiPoolConfig, NameError, PoolDef, parse_fqdn};
use crate::health::Votes;
use crate::health::push::{decode_override, encode_override};
use crate::state::overlay::{Change, Overlay, StoredRRset, decode_member, encode_member};

/// A stored key whose value does not decode.
#[derive(Debug, thiserror::Error)]
#[error("etcd key {key}: {reason}")]
pub struct BadKey {
    pub key: String,
    pub reason: String,
}

/// The stored value of an API pool: its JSON, as the API takes it.
pub fn pool_value(def: &PoolDef) -> String {
    serde_json::to_string(&ApiPoolConfig::from_def(def)).unwrap_or_else(|_| "null".into())
}

/// The pool `name` from its stored value.
pub fn decode_pool(name: Name, value: &str) -> Result<PoolDef, serde_json::Error> {
    let cfg: ApiPoolConfig = serde_json::from_str(value)?;
    Ok(cfg.into_def(name))
}

/// The stored value of an RRset override (`None`: deleted, stored as `null`).
pub fn rrset_value(set: Option<&StoredRRset>) -> String {
    serde_json::to_string(&set).unwrap_or_else(|_| "null".into())
}

/// An RRset override from its stored value (`None`: deleted).
pub fn decode_rrset(value: &str) -> Result<Option<StoredRRset>, serde_json::Error> {
    serde_json::from_str(value)
}

// Keys and values.

pub fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

pub fn dec(s: &str) -> String {
    s.replace("%2F", "/").replace("%25", "%")
}

pub fn name(s: &str) -> Result<Name, NameError> {
    parse_fqdn(&dec(s))
}

/// Whether a key holds API state (not a node's health view, write mark or
/// IXFR journal).
pub fn is_api_key(key: &str) -> bool {
    !is_node_key(key) && !key.starts_with("txn/") && !is_journal_key(key)
}

/// Whether a key holds a node's health view (its votes).
pub fn is_node_key(key: &str) -> bool {
    key.starts_with("nodes/")
}

/// Where every node's IXFR journal entries live (etcd only).
pub const JOURNAL: &str = "journal/";

/// Whether a key is a node's IXFR journal entry: only that node reads it, at
/// start, so the watch and the state skip it.
pub fn is_journal_key(key: &str) -> bool {
    key.starts_with(JOURNAL)
}

/// The keys of `node`'s journal entries of `zone` start with this.
pub fn journal_prefix(node: &str, zone: &Name) -> String {
    format!("{JOURNAL}{}/{}/", enc(node), enc(&zone.to_ascii()))
}

/// Where `node` keeps its `seq`-th journal entry of `zone`: zero-padded, so
/// that the keys sort as the entries were written.
pub fn journal_key(node: &str, zone: &Name, seq: u64) -> String {
    format!("{}{seq:020}", journal_prefix(node, zone))
}

/// The zone and sequence number of a key under `journal/NODE/` (the part after it).
pub fn parse_journal_key(rest: &str) -> Option<(Name, u64)> {
    let (zone, seq) = rest.split_once('/')?;
    Some((name(zone).ok()?, seq.parse().ok()?))
}

/// What a changed key touches in the state in effect, so that applying another
/// server's change costs what the change touches, as applying one's own does.
#[derive(Debug, Default, PartialEq)]
pub struct Touched {
    /// Zones whose RRsets changed.
    pub records: std::collections::BTreeSet<Name>,
    /// The RRsets that changed (each laid over its zone; the zone is not rebuilt).
    pub rrsets: std::collections::BTreeSet<crate::state::RRsetKey>,
    /// Zones whose serial counter changed.
    pub serials: std::collections::BTreeSet<Name>,
    /// Pools that were put, deleted, or had a member changed.
    pub pools: std::collections::BTreeSet<Name>,
}

impl Touched {
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a str>) -> Touched {
        let mut t = Touched::default();
        for key in keys {
            let parts: Vec<&str> = key.split('/').collect();
            match parts.as_slice() {
                ["rrsets", z, n, rt] => {
                    t.records.extend(name(z).ok());
                    if let (Ok(z), Ok(n), Ok(rt)) = (name(z), name(n), rt.parse::<RecordType>()) {
                        t.rrsets.insert((z, n, rt));
                    }
                }
                ["serials", z] => t.serials.extend(name(z).ok()),
                ["pools", p] | ["members", p, _] | ["health", p, _] => t.pools.extend(name(p).ok()),
                _ => {}
            }
        }
        t
    }

    pub fn add(&mut self, other: Touched) {
        self.records.extend(other.records);
        self.rrsets.extend(other.rrsets);
        self.serials.extend(other.serials);
        self.pools.extend(other.pools);
    }
}

/// The keys and values (`None` = delete the key) a change is stored as.
pub fn change_entries(change: &Change) -> Vec<(String, Option<String>)> {
    let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
    match change {
        Change::PutPool(def) => {
            vec![(pool_key(&def.name), Some(json(serde_json::to_string(&ApiPoolConfig::from_def(def)))))]
        }
        Change::DeletePool(n) => vec![(pool_key(n), None)],
        Change::PutMember { pool, address, fields } => {
            vec![(member_key(pool, address), Some(encode_member(&Some(fields.clone()))))]
        }
        Change::DeleteMember { pool, address } => vec![(member_key(pool, address), Some("null".into()))],
        Change::RevertMember { pool, address } => vec![(member_key(pool, address), None)],
        Change::RevertPool { pool, members } => {
            std::iter::once((pool_key(pool), None)).chain(members.iter().map(|a| (member_key(pool, a), None))).collect()
        }
        Change::PutRRset { zone, name, rtype, set } => {
            vec![(rrset_key(zone, name, *rtype), Some(json(serde_json::to_string(set))))]
        }
        Change::DeleteRRset { zone, name, rtype } => vec![(rrset_key(zone, name, *rtype), Some("null".into()))],
        Change::RevertRRset { zone, name, rtype } => vec![(rrset_key(zone, name, *rtype), None)],
        Change::PutHealth { pool, address, over } => vec![(health_key(pool, address), Some(encode_override(over)))],
        Change::ClearHealth { pool, address } => vec![(health_key(pool, address), None)],
    }
}

/// Where a member's health override is stored.
pub fn health_key(pool: &Name, address: &IpAddr) -> String {
    format!("health/{}/{address}", enc(&pool.to_ascii()))
}

pub fn pool_key(pool: &Name) -> String {
    format!("pools/{}", enc(&pool.to_ascii()))
}

pub fn member_key(pool: &Name, address: &IpAddr) -> String {
    format!("members/{}/{address}", enc(&pool.to_ascii()))
}

pub fn rrset_key(zone: &Name, name: &Name, rtype: RecordType) -> String {
    format!("rrsets/{}/{}/{rtype}", enc(&zone.to_ascii()), enc(&name.to_ascii()))
}

pub fn serial_key(zone: &Name) -> String {
    format!("serials/{}", enc(&zone.to_ascii()))
}

/// Every entry of an overlay, as stored (for export and import).
pub fn entries(o: &Overlay) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for def in o.pools.values() {
        let kvs = change_entries(&Change::PutPool(Box::new(def.clone())));
        out.extend(kvs.into_iter().filter_map(|(k, v)| Some((k, v?))));
    }
    for ((pool, addr), m) in &o.members {
        out.push((member_key(pool, addr), encode_member(m)));
    }
    for ((zone, name, rtype), set) in &o.rrsets {
        out.push((rrset_key(zone, name, *rtype), serde_json::to_string(set).unwrap_or_else(|_| "null".into())));
    }
    for (zone, bumps) in &o.serials {
        out.push((serial_key(zone), bumps.to_string()));
    }
    for ((pool, addr), over) in &o.health {
        out.push((health_key(pool, addr), encode_override(over)));
    }
    out
}

impl State {
    /// Applies one stored key (`value` `None` = the key was deleted). Keys this
    /// version does not know are ignored; a value that does not decode is an error.
    pub fn apply_key(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), BadKey> {
        if is_journal_key(key) {
            return Ok(());
        }
        let parts: Vec<&str> = key.split('/').collect();
        let text = value.map(|v| String::from_utf8_lossy(v).into_owned());
        let text = text.as_deref();
        let bad = |e: &dyn std::fmt::Display| BadKey { key: key.to_string(), reason: e.to_string() };
        let o = &mut self.overlay;
        match parts.as_slice() {
            ["pools", n] => {
                let n = name(n).map_err(|e| bad(&e))?;
                set(&mut o.pools, n.clone(), text, |t| serde_json::from_str::<ApiPoolConfig>(t).map(|c| c.into_def(n)))
            }
            ["members", p, a] => {
                let key = (name(p).map_err(|e| bad(&e))?, a.parse::<IpAddr>().map_err(|e| bad(&e))?);
                set(&mut o.members, key, text, decode_member)
            }
            ["rrsets", z, n, t] => {
                let z = name(z).map_err(|e| bad(&e))?;
                let n = name(n).map_err(|e| bad(&e))?;
                let t: RecordType = t.parse().map_err(|e| bad(&e))?;
                set(&mut o.rrsets, (z, n, t), text, |b| serde_json::from_str::<Option<StoredRRset>>(b))
            }
            ["serials", z] => {
                let z = name(z).map_err(|e| bad(&e))?;
                set(&mut o.serials, z, text, |t| t.trim().parse::<u32>())
            }
            ["health", p, a] => {
                let key = (name(p).map_err(|e| bad(&e))?, a.parse::<IpAddr>().map_err(|e| bad(&e))?);
                set(&mut o.health, key, text, decode_override)
            }
            ["nodes", node] => set(&mut self.nodes, dec(node), text, |t| serde_json::from_str::<Votes>(t)),
            _ => Ok(()),
        }
        .map_err(|e| bad(&e))
    }
}

/// Sets one entry of a stored map to its decoded `text`, or removes it when
/// the key was deleted (`None`).
fn set<K: Ord, V, E: std::fmt::Display>(
    map: &mut std::collections::BTreeMap<K, V>,
    key: K,
    text: Option<&str>,
    decode: impl FnOnce(&str) -> Result<V, E>,
) -> Result<(), String> {
    match text {
        Some(t) => {
            map.insert(key, decode(t).map_err(|e| e.to_string())?);
        }
        None => {
            map.remove(&key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::overlay::MemberFields;

    /// A changed RRset key names its RRset (another server's RRset change is
    /// laid over its zone, not a rebuild of the zone); other keys name a zone's
    /// serial or a pool.
    #[test]
    fn touched_names_each_rrset() {
        let n = |s: &str| parse_fqdn(s).unwrap();
        let rrset = rrset_key(&n("example.test."), &n("_a.b.example.test."), RecordType::TXT);
        let t = Touched::of([rrset.as_str(), "serials/example.test.", "members/www.example.test./192.0.2.1"]);
        let key = (n("example.test."), n("_a.b.example.test."), RecordType::TXT);
        assert_eq!(t.rrsets.into_iter().collect::<Vec<_>>(), [key]);
        assert_eq!(t.records.into_iter().collect::<Vec<_>>(), [n("example.test.")]);
        assert_eq!(t.serials.into_iter().collect::<Vec<_>>(), [n("example.test.")]);
        assert_eq!(t.pools.into_iter().collect::<Vec<_>>(), [n("www.example.test.")]);
    }

    /// A node's journal keys sort as written, name their zone and number, and
    /// are neither API state nor anything the state applies (whatever the value).
    #[test]
    fn journal_keys_are_not_state() {
        let zone = parse_fqdn("b.test.").unwrap();
        let (k9, k10) = (journal_key("n/1", &zone, 9), journal_key("n/1", &zone, 10));
        assert_eq!(k9, "journal/n%2F1/b.test./00000000000000000009");
        assert!(k9 < k10 && k10.starts_with(&journal_prefix("n/1", &zone)));
        assert_eq!(parse_journal_key(k10.strip_prefix("journal/n%2F1/").unwrap()), Some((zone, 10)));
        assert!(!is_api_key(&k9) && is_journal_key(&k9) && !is_journal_key("serials/a.test."));
        let mut s = State::default();
        s.apply_key(&k9, Some(b"\x00\xff not json")).unwrap();
        s.apply_key(&k9, None).unwrap();
        assert_eq!(s, State::default());
        assert_eq!(Touched::of([k9.as_str()]), Touched::default());
    }

    /// Every kind of change survives the trip through keys and values.
    #[test]
    fn entries_round_trip() {
        let zone = parse_fqdn("example.test.").unwrap();
        let mut o = Overlay::default();
        let changes = vec![
            Change::PutPool(Box::new(super::super::test_pool())),
            Change::PutMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "2001:db8::9".parse().unwrap(),
                fields: MemberFields { weight: None, region: Some("eu".into()), enabled: Some(false), probe: None },
            },
            Change::DeleteMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.10".parse().unwrap(),
            },
            Change::PutRRset {
                zone: zone.clone(),
                name: parse_fqdn("new.example.test.").unwrap(),
                rtype: RecordType::TXT,
                set: StoredRRset::api(60, vec!["\"a/b%c\"".into()]),
            },
            Change::DeleteRRset {
                zone: zone.clone(),
                name: parse_fqdn("static.example.test.").unwrap(),
                rtype: RecordType::AAAA,
            },
            Change::PutHealth {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.10".parse().unwrap(),
                over: crate::health::push::HealthOverride {
                    state: crate::health::push::Pushed::Down,
                    reason: Some("a/b".into()),
                    expires_at: Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_800_000_000_500)),
                },
            },
        ];
        for c in &changes {
            o.apply(c, &zone);
        }
        let mut s = State::default();
        for (k, v) in entries(&o) {
            s.apply_key(&k, Some(v.as_bytes())).unwrap();
        }
        assert_eq!(s.overlay, o);
        // A deleted pool key removes the pool.
        s.apply_key("pools/api.example.test.", None).unwrap();
        assert!(s.overlay.pools.is_empty());
        assert!(s.apply_key("pools/api.example.test.", Some(b"{not json")).is_err());
        // A reverted override deletes its key; a pool's, every key of the pool.
        let www = parse_fqdn("www.example.test.").unwrap();
        let revert = Change::RevertPool {
            pool: www.clone(),
            members: vec!["2001:db8::9".parse().unwrap(), "192.0.2.10".parse().unwrap()],
        };
        for (k, v) in change_entries(&revert) {
            assert_eq!(v, None);
            s.apply_key(&k, None).unwrap();
        }
        assert!(s.overlay.members.keys().all(|(p, _)| *p != www), "{:?}", s.overlay.members);
        // The previous version's whole member reads as every field set.
        let old = r#"{"address":"192.0.2.1","weight":3,"region":null,"enabled":false}"#;
        s.apply_key("members/www.example.test./192.0.2.1", Some(old.as_bytes())).unwrap();
        let set = MemberFields { weight: Some(3), region: None, enabled: Some(false), probe: None };
        assert_eq!(s.overlay.members[&(www, "192.0.2.1".parse().unwrap())], Some(set));
        assert_eq!(enc("a/b%c"), "a%2Fb%25c");
        assert_eq!(dec(&enc("a/b%c")), "a/b%c");
    }
}
