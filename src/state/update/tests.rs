//! The UPDATE planner against a small state, without sockets: RFC 2136's
//! prerequisite table (section 3.2.5), its update semantics (3.4.2), the grants,
//! and lbdns's own rules (pools, data it refuses), each case one row.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

use super::{Update, plan_update};
use crate::state::overlay::{Change, RRsetSource};
use crate::state::tests::World;

const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[[tsig]]
name = "up."
secret_file = "up.key"
[[tsig]]
name = "other."
secret_file = "up.key"
[[zone]]
origin = "example.test."
file = "example.test.zone"
update = [{ key = "up.", names = ["*"], types = ["TXT", "A", "AAAA", "CNAME", "MX", "NS"] },
          { key = "other.", names = ["_acme-challenge.*"], types = ["TXT"] }]
[[zone]]
origin = "sub.example.test."
file = "sub.zone"
[[pool]]
name = "www.example.test."
policy = "round-robin"
[[pool.member]]
address = "192.0.2.10"
"#;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 60\n\
@ IN NS ns\n\
ns IN A 192.0.2.53\n\
a IN CNAME b\n\
b IN A 192.0.2.1\n\
t IN TXT \"one\"\n\
t IN TXT \"two\"\n\
t IN MX 10 mail\n\
t IN CAA 0 issue \"ca.example\"\n";

fn world() -> World {
    let sub = "$ORIGIN sub.example.test.\n@ 300 IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 60\n\
               @ 300 IN NS ns.example.test.\nx 300 IN TXT \"child\"\n";
    World::with_files(&[
        ("lbdns.toml", CONFIG),
        ("example.test.zone", ZONE),
        ("up.key", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n"),
        ("sub.zone", sub),
    ])
}

impl World {
    /// Plans `u` and, when it passes, applies it as the writer does.
    fn run(&mut self, u: &Update) -> Result<Vec<Change>, ResponseCode> {
        let changes = plan_update(&self.state(), u)?;
        self.overlay.apply_all(&changes, &n("example.test."));
        self.derive();
        Ok(changes)
    }

    /// The `t` RRset at `name` in effect, rendered and sorted.
    fn at(&self, name: &str, t: RecordType) -> Vec<String> {
        let sets = self.state().rrsets_at(&n("example.test."), &fq(name));
        let mut out: Vec<String> = sets
            .into_iter()
            .filter(|(x, _, _)| *x == t)
            .flat_map(|(_, _, d)| d)
            .map(|d| crate::rdata::render(&d))
            .collect();
        out.sort();
        out
    }
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn fq(s: &str) -> Name {
    if s == "@" {
        n("example.test.")
    } else if s.ends_with('.') {
        n(s)
    } else {
        n(&format!("{s}.example.test."))
    }
}

/// An update or prerequisite record: `class` IN with data, or ANY/NONE.
fn rr(class: DNSClass, name: &str, ttl: u32, t: RecordType, data: Option<&str>) -> Record {
    let mut r = match data {
        Some(d) => Record::from_rdata(fq(name), ttl, crate::rdata::parse_text(t, d, &n("example.test.")).unwrap()),
        None => Record::update0(fq(name), ttl, t),
    };
    r.dns_class = class;
    r
}

fn add(name: &str, t: RecordType, d: &str) -> Record {
    rr(DNSClass::IN, name, 60, t, Some(d))
}
fn del_rrset(name: &str, t: RecordType) -> Record {
    rr(DNSClass::ANY, name, 0, t, None)
}
fn del_rr(name: &str, t: RecordType, d: &str) -> Record {
    rr(DNSClass::NONE, name, 0, t, Some(d))
}
/// Prerequisites: the RRset (ANY: the name) exists / does not exist / is exactly.
fn exists(name: &str, t: RecordType) -> Record {
    rr(DNSClass::ANY, name, 0, t, None)
}
fn absent(name: &str, t: RecordType) -> Record {
    rr(DNSClass::NONE, name, 0, t, None)
}
fn value(name: &str, t: RecordType, d: &str) -> Record {
    rr(DNSClass::IN, name, 0, t, Some(d))
}

fn update(key: &str, prerequisites: Vec<Record>, updates: Vec<Record>) -> Update {
    Update { zone: n("example.test."), class: DNSClass::IN, key: Some(n(key)), prerequisites, updates }
}

use RecordType::{A, ANY, CAA, CNAME, NS, SOA, TXT};

/// Section 3.2.5's table: each prerequisite passing and failing, with its RCODE.
#[test]
fn prerequisites_answer_with_the_rfc_rcodes() {
    let rows: Vec<(&str, Vec<Record>, Result<(), ResponseCode>)> = vec![
        ("name in use", vec![exists("t", ANY)], Ok(())),
        ("name in use (a pool)", vec![exists("www", ANY)], Ok(())),
        ("name in use fails", vec![exists("nope", ANY)], Err(ResponseCode::NXDomain)),
        ("rrset exists", vec![exists("t", TXT)], Ok(())),
        ("rrset exists fails", vec![exists("t", A)], Err(ResponseCode::NXRRSet)),
        ("name not in use", vec![absent("nope", ANY)], Ok(())),
        ("name not in use fails", vec![absent("b", ANY)], Err(ResponseCode::YXDomain)),
        ("rrset absent", vec![absent("t", A)], Ok(())),
        ("rrset absent fails", vec![absent("t", TXT)], Err(ResponseCode::YXRRSet)),
        ("value-dependent", vec![value("t", TXT, "\"two\""), value("t", TXT, "\"one\"")], Ok(())),
        ("value-dependent, one missing", vec![value("t", TXT, "\"one\"")], Err(ResponseCode::NXRRSet)),
        (
            "value-dependent, one more",
            vec![value("b", A, "192.0.2.1"), value("b", A, "192.0.2.2")],
            Err(ResponseCode::NXRRSet),
        ),
        ("pool members as the A RRset", vec![value("www", A, "192.0.2.10")], Ok(())),
        ("ttl not 0", vec![rr(DNSClass::ANY, "t", 5, TXT, None)], Err(ResponseCode::FormErr)),
        ("rdata with ANY", vec![rr(DNSClass::ANY, "t", 0, TXT, Some("\"x\""))], Err(ResponseCode::FormErr)),
        ("class CH", vec![rr(DNSClass::CH, "t", 0, TXT, None)], Err(ResponseCode::FormErr)),
        ("outside the zone", vec![exists("x.other.test.", ANY)], Err(ResponseCode::NotZone)),
    ];
    for (what, prereqs, want) in rows {
        let mut w = world();
        let got = w.run(&update("up.", prereqs, vec![add("new", TXT, "\"x\"")])).map(|_| ());
        assert_eq!(got, want, "{what}");
        assert_eq!(w.at("new", TXT).len(), usize::from(want.is_ok()), "{what}: applied only when it held");
    }
}

/// Section 3.4: adds, RRset and name deletions, RR deletions, and what is ignored.
#[test]
fn updates_follow_rfc_2136() {
    type Check = (&'static str, RecordType, &'static [&'static str]);
    let rows: Vec<(&str, Vec<Record>, Check)> = vec![
        ("add to an RRset", vec![add("t", TXT, "\"three\"")], ("t", TXT, &["\"one\"", "\"three\"", "\"two\""])),
        ("add a duplicate", vec![add("t", TXT, "\"one\"")], ("t", TXT, &["\"one\"", "\"two\""])),
        ("delete an RR", vec![del_rr("t", TXT, "\"one\"")], ("t", TXT, &["\"two\""])),
        ("delete the last RR", vec![del_rr("b", A, "192.0.2.1")], ("b", A, &[])),
        ("delete an RRset", vec![del_rrset("t", TXT)], ("t", TXT, &[])),
        ("delete a name", vec![rr(DNSClass::ANY, "t", 0, ANY, None)], ("t", TXT, &[])),
        (
            "delete a name keeps ungranted types",
            vec![rr(DNSClass::ANY, "t", 0, ANY, None)],
            ("t", CAA, &["0 issue \"ca.example\""]),
        ),
        (
            "delete a name keeps the apex NS",
            vec![rr(DNSClass::ANY, "@", 0, ANY, None)],
            ("@", NS, &["ns.example.test."]),
        ),
        ("add then delete in one message", vec![add("n", TXT, "\"a\""), del_rrset("n", TXT)], ("n", TXT, &[])),
        ("a CNAME beside data is ignored", vec![add("b", CNAME, "t")], ("b", CNAME, &[])),
        ("data beside a CNAME is ignored", vec![add("a", TXT, "\"x\"")], ("a", TXT, &[])),
        ("a CNAME replaces a CNAME", vec![add("a", CNAME, "t")], ("a", CNAME, &["t.example.test."])),
        (
            "an SOA is ignored",
            vec![add("@", SOA, "ns h 9 1 1 1 1")],
            ("@", SOA, &["ns.example.test. h.example.test. 1 7200 3600 1209600 60"]),
        ),
        ("the apex NS stays", vec![del_rrset("@", NS)], ("@", NS, &["ns.example.test."])),
        ("the last apex NS stays", vec![del_rr("@", NS, "ns")], ("@", NS, &["ns.example.test."])),
        ("a member joins a pool", vec![add("www", A, "192.0.2.11")], ("www", A, &["192.0.2.10", "192.0.2.11"])),
    ];
    for (what, updates, (name, t, want)) in rows {
        let mut w = world();
        w.run(&update("up.", vec![], updates)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(w.at(name, t), *want, "{what}");
    }
}

/// Grants, signatures, zones and data lbdns refuses: REFUSED (or NOTAUTH, or
/// FORMERR), and nothing planned.
#[test]
fn refusals() {
    let rows: Vec<(&str, Update, ResponseCode)> = vec![
        (
            "unsigned",
            Update { key: None, ..update("up.", vec![], vec![add("x", TXT, "\"x\"")]) },
            ResponseCode::Refused,
        ),
        ("a key without a grant here", update("nokey.", vec![], vec![add("x", TXT, "\"x\"")]), ResponseCode::Refused),
        ("a name outside the grant", update("other.", vec![], vec![add("x", TXT, "\"x\"")]), ResponseCode::Refused),
        (
            "a type outside the grant",
            update("other.", vec![], vec![add("_acme-challenge.x", A, "192.0.2.1")]),
            ResponseCode::Refused,
        ),
        ("another zone", Update { zone: n("other.test."), ..update("up.", vec![], vec![]) }, ResponseCode::NotAuth),
        ("class CH", Update { class: DNSClass::CH, ..update("up.", vec![], vec![]) }, ResponseCode::NotAuth),
        (
            "a name outside the zone",
            update("up.", vec![], vec![add("x.other.test.", TXT, "\"x\"")]),
            ResponseCode::NotZone,
        ),
        ("a name in a child zone", update("up.", vec![], vec![add("x.sub", TXT, "\"x\"")]), ResponseCode::NotZone),
        ("a prerequisite in a child zone", update("up.", vec![exists("x.sub", TXT)], vec![]), ResponseCode::NotZone),
        ("ANY added", update("up.", vec![], vec![rr(DNSClass::IN, "x", 60, ANY, None)]), ResponseCode::FormErr),
        (
            "a deletion with a TTL",
            update("up.", vec![], vec![rr(DNSClass::ANY, "t", 60, TXT, None)]),
            ResponseCode::FormErr,
        ),
        (
            "an RR deletion with a TTL",
            update("up.", vec![], vec![rr(DNSClass::NONE, "t", 60, TXT, Some("\"one\""))]),
            ResponseCode::FormErr,
        ),
        (
            "TTL over 2^31-1",
            update("up.", vec![], vec![rr(DNSClass::IN, "x", 1 << 31, TXT, Some("\"x\""))]),
            ResponseCode::Refused,
        ),
        ("NS at a pool", update("up.", vec![], vec![add("www", NS, "ns")]), ResponseCode::Refused),
        ("a CNAME at a pool", update("up.", vec![], vec![add("www", CNAME, "t")]), ResponseCode::NoError),
        (
            "removing a config member",
            update("up.", vec![], vec![del_rr("www", A, "192.0.2.10")]),
            ResponseCode::Refused,
        ),
        ("a CNAME loop", update("up.", vec![], vec![del_rrset("b", A), add("b", CNAME, "a")]), ResponseCode::Refused),
    ];
    for (what, u, want) in rows {
        let mut w = world();
        let before = w.overlay.clone();
        match w.run(&u) {
            Ok(_) => assert_eq!(want, ResponseCode::NoError, "{what}: planned"),
            Err(rc) => {
                assert_eq!(rc, want, "{what}");
                assert_eq!(w.overlay, before, "{what}: nothing changed");
            }
        }
    }
}

/// One message is one change: its RRsets stored together, an UPDATE's RRsets
/// marked as such, and nothing when nothing changes.
#[test]
fn one_message_plans_every_rrset_it_changes() {
    let mut w = world();
    let changes = w
        .run(&update("up.", vec![], vec![add("x", TXT, "\"1\""), add("y", TXT, "\"2\""), add("x", TXT, "\"3\"")]))
        .unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().all(|c| matches!(c, Change::PutRRset { set, .. } if set.source == RRsetSource::Update)));
    assert_eq!(w.overlay.serials[&n("example.test.")], 1, "one serial increment for the message");
    assert_eq!(w.at("x", TXT), ["\"1\"", "\"3\""]);
    let again = w.run(&update("up.", vec![], vec![add("x", TXT, "\"1\"")])).unwrap();
    assert!(again.is_empty(), "already true: nothing to store");
    let gone =
        w.run(&update("up.", vec![], vec![add("www", A, "192.0.2.12"), del_rr("www", A, "192.0.2.12")])).unwrap();
    assert!(gone.is_empty(), "added and removed: nothing to store");
}
