//! Planning API writes against a small state: no store, no sockets, no runtime.
//! Each test plans a request, and where it matters applies the plan to the overlay
//! and plans again, as the writer does after storing it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use hickory_proto::rr::{Name, RecordType};

use super::{InEffect, Planned, RRsetKey, plan};
use crate::config::PoolDef;
use crate::snapshot::Zone;
use crate::sources::Sources;
use crate::state::api::{ApiError, ApiRequest};
use crate::state::overlay::{self, Change, Origin, Overlay};

const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[[zone]]
origin = "example.test."
file = "example.test.zone"
[[pool]]
name = "www.example.test."
policy = "round-robin"
[[pool.member]]
address = "192.0.2.10"
[[pool.member]]
address = "192.0.2.11"
"#;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 60\n\
@ IN NS ns\n\
ns IN A 192.0.2.53\n\
a IN CNAME b\n\
b IN A 192.0.2.1\n";

/// The files, the overlay laid over them, and what is in effect (the UPDATE
/// planner's tests use it too).
pub(super) struct World {
    sources: Sources,
    pub(super) overlay: Overlay,
    zones: Vec<Arc<Zone>>,
    pools: Vec<(Arc<PoolDef>, Origin)>,
    refused: BTreeSet<RRsetKey>,
}

impl World {
    fn new() -> World {
        World::with_files(&[("lbdns.toml", CONFIG), ("example.test.zone", ZONE)])
    }

    /// The state in effect from `files` (name, text), `lbdns.toml` among them.
    pub(super) fn with_files(files: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let sources = Sources::load(&dir.path().join("lbdns.toml")).unwrap();
        let mut w =
            World { sources, overlay: Overlay::default(), zones: vec![], pools: vec![], refused: BTreeSet::new() };
        w.derive();
        w
    }

    /// The zones and pools in effect from the files and the overlay, as the writer derives them.
    pub(super) fn derive(&mut self) {
        self.pools = overlay::effective_pools(&self.sources, &self.overlay);
        let defs: Vec<Arc<PoolDef>> = self.pools.iter().map(|(p, _)| p.clone()).collect();
        self.zones = crate::snapshot::build_zones(self.sources.zones.iter().map(|z| &z.zone), &defs);
        for ((z, name, rtype), set) in &self.overlay.rrsets {
            let slot = self.zones.iter_mut().find(|x| x.origin == *z).unwrap();
            let set = overlay::api_rrset(name, *rtype, set.as_ref(), z).unwrap();
            *slot = Arc::new(slot.with_rrset_at(name, *rtype, set));
        }
    }

    pub(super) fn state(&self) -> InEffect<'_> {
        InEffect {
            sources: &self.sources,
            overlay: &self.overlay,
            zones: &self.zones,
            pools: &self.pools,
            index: None,
            refused: &self.refused,
        }
    }

    fn plan(&self, req: ApiRequest) -> Result<Option<Planned>, ApiError> {
        plan(&self.state(), req)
    }

    /// Plans `req` (it must store something) and applies it as the writer would.
    fn apply(&mut self, req: ApiRequest) -> Planned {
        let p = self.plan(req).unwrap().expect("a change to store");
        self.overlay.apply(&p.change, &p.zone);
        self.derive();
        p
    }

    fn pool(&self, name: &str) -> &PoolDef {
        &self.pools.iter().find(|(p, _)| p.name == name_of(name)).unwrap().0
    }
}

fn name_of(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn body(json: &str) -> Bytes {
    Bytes::from(json.to_string())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn put_rrset(name: &str, rtype: &str, json: &str) -> ApiRequest {
    ApiRequest::PutRRset("example.test.".into(), name.into(), rtype.into(), body(json))
}

#[test]
fn a_new_pool_is_created_in_its_zone() {
    let w = World::new();
    let req = ApiRequest::PutPool(
        "api.example.test.".into(),
        body(r#"{"policy": "random", "members": [{"address": "192.0.2.30"}]}"#),
    );
    let p = w.plan(req).unwrap().unwrap();
    assert!(p.created);
    assert_eq!(p.zone, name_of("example.test."));
    let Change::PutPool(def) = p.change else { panic!("{:?}", p.change) };
    assert_eq!(def.name, name_of("api.example.test."));
    assert_eq!(def.members.iter().map(|m| m.address).collect::<Vec<_>>(), [ip("192.0.2.30")]);
}

#[test]
fn a_config_pool_is_not_replaced_whole() {
    let w = World::new();
    let req = ApiRequest::PutPool("www.example.test.".into(), body(r#"{"members": []}"#));
    assert!(matches!(w.plan(req), Err(ApiError::Conflict(m)) if m.contains("defined in the config file")));
}

#[test]
fn a_member_of_a_config_pool_is_an_override_of_the_fields_set() {
    let mut w = World::new();
    let p = w.apply(ApiRequest::PutMember("www.example.test.".into(), "192.0.2.10".into(), body(r#"{"weight": 5}"#)));
    assert!(!p.created, "the member exists in the config");
    let Change::PutMember { pool, address, fields } = &p.change else { panic!("{:?}", p.change) };
    assert_eq!((pool, *address), (&name_of("www.example.test."), ip("192.0.2.10")));
    assert_eq!(fields.weight, Some(5));
    assert_eq!(fields.enabled, None, "fields never set follow the config");
    let member = w.pool("www.example.test.").members.iter().find(|m| m.address == ip("192.0.2.10")).unwrap();
    assert_eq!(member.weight, 5);
    // A second PUT adds to the override rather than replacing it.
    let p =
        w.plan(ApiRequest::PutMember("www.example.test.".into(), "192.0.2.10".into(), body(r#"{"enabled": false}"#)));
    let Change::PutMember { fields, .. } = p.unwrap().unwrap().change else { panic!() };
    assert_eq!((fields.weight, fields.enabled), (Some(5), Some(false)));
}

#[test]
fn deleting_a_config_member_stores_a_deletion_once() {
    let mut w = World::new();
    let req = || ApiRequest::DeleteMember("www.example.test.".into(), "192.0.2.11".into());
    let p = w.apply(req());
    assert_eq!(p.change, Change::DeleteMember { pool: name_of("www.example.test."), address: ip("192.0.2.11") });
    assert_eq!(w.overlay.members.get(&(name_of("www.example.test."), ip("192.0.2.11"))), Some(&None));
    assert!(!w.pool("www.example.test.").members.iter().any(|m| m.address == ip("192.0.2.11")));
    assert_eq!(w.plan(req()), Ok(None), "deleting it again stores nothing");
}

#[test]
fn reverting_a_member_override_brings_back_the_config() {
    let mut w = World::new();
    let file = w.pool("www.example.test.").clone();
    w.apply(ApiRequest::PutMember("www.example.test.".into(), "192.0.2.10".into(), body(r#"{"weight": 9}"#)));
    w.apply(ApiRequest::DeleteMember("www.example.test.".into(), "192.0.2.11".into()));
    assert_ne!(*w.pool("www.example.test."), file);
    let p = w.apply(ApiRequest::DeletePoolOverride("www.example.test.".into()));
    assert!(matches!(p.change, Change::RevertPool { .. }));
    assert_eq!(*w.pool("www.example.test."), file);
    assert!(w.overlay.members.is_empty());
    let again = w.plan(ApiRequest::DeleteMemberOverride("www.example.test.".into(), "192.0.2.10".into()));
    assert!(matches!(again, Err(ApiError::NotFound(_))));
}

#[test]
fn an_rrset_is_stored_in_canonical_form() {
    let w = World::new();
    let p = w.plan(put_rrset("txt", "txt", r#"{"ttl": 60, "data": ["\"hello\"  \"world\""]}"#)).unwrap().unwrap();
    assert!(p.created);
    let Change::PutRRset { name, rtype, set, .. } = p.change else { panic!() };
    assert_eq!((name, rtype), (name_of("txt.example.test."), RecordType::TXT));
    assert_eq!(set.ttl, 60);
    assert_eq!(set.data, ["\"hello\" \"world\""]);
    let relative = w.plan(put_rrset("cn", "CNAME", r#"{"ttl": 60, "data": ["Target"]}"#)).unwrap().unwrap();
    let Change::PutRRset { set, .. } = relative.change else { panic!() };
    assert_eq!(set.data, ["Target.example.test."], "names are made absolute");
}

#[test]
fn an_rrset_at_a_pool_name_conflicts() {
    let w = World::new();
    let r = w.plan(put_rrset("www", "A", r#"{"ttl": 60, "data": ["192.0.2.99"]}"#));
    assert!(matches!(&r, Err(ApiError::Conflict(m)) if m.contains("is a pool")), "{r:?}");
}

#[test]
fn a_cname_that_closes_a_loop_is_unprocessable() {
    let w = World::new();
    let r = w.plan(put_rrset("b", "CNAME", r#"{"ttl": 60, "data": ["a"]}"#));
    assert!(matches!(&r, Err(ApiError::Unprocessable(m)) if m.contains("loop")), "{r:?}");
}

#[test]
fn deleting_the_apex_ns_is_refused() {
    let w = World::new();
    let r = w.plan(ApiRequest::DeleteRRset("example.test.".into(), "@".into(), "NS".into()));
    assert!(matches!(&r, Err(ApiError::Conflict(m)) if m.contains("apex")), "{r:?}");
}

#[test]
fn an_rrset_override_reverts_to_the_file() {
    let mut w = World::new();
    w.apply(put_rrset("b", "A", r#"{"ttl": 60, "data": ["192.0.2.2"]}"#));
    let key = (name_of("example.test."), name_of("b.example.test."), RecordType::A);
    assert!(w.overlay.rrsets.contains_key(&key));
    let p = w.apply(ApiRequest::DeleteRRsetOverride("example.test.".into(), "b".into(), "A".into()));
    assert_eq!(p.change, Change::RevertRRset { zone: key.0.clone(), name: key.1.clone(), rtype: RecordType::A });
    assert!(w.overlay.rrsets.is_empty());
    let (_, file) = w.zones[0].rrset_at(&key.1, RecordType::A).unwrap();
    assert_eq!(file.iter().map(|r| r.to_string()).collect::<Vec<_>>(), ["192.0.2.1"]);
    // A file RRset deleted through the API is a stored deletion; its revert shows it again.
    w.apply(ApiRequest::DeleteRRset("example.test.".into(), "b".into(), "A".into()));
    assert_eq!(w.overlay.rrsets.get(&key), Some(&None));
    w.apply(ApiRequest::DeleteRRsetOverride("example.test.".into(), "b".into(), "A".into()));
    assert!(w.zones[0].rrset_at(&key.1, RecordType::A).is_some());
}

#[test]
fn reads_are_not_planned() {
    let w = World::new();
    assert!(matches!(w.plan(ApiRequest::ListPools), Err(ApiError::NotAllowed(_))));
}
