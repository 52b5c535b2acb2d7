//! The admin API over real HTTP, each change checked by real DNS queries right
//! after the response (no sleeps), durability across restarts and `kill -9`.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::harness::*;

/// 32 characters: the shortest token lbdns accepts.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn config(extra_admin: &str) -> String {
    format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n{extra_admin}\n\
         [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
         [[pool]]\nname=\"www.a.test.\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n"
    )
}

fn zone() -> String {
    small_zone("static IN A 192.0.2.100\nstatic IN TXT \"hello\"\n")
}

fn server() -> Server {
    Server::start(&config("token_file=\"admin.token\""), &[("a.zone", &zone()), ("admin.token", &format!("{TOKEN}\n"))])
}

struct Api {
    base: String,
    http: Client,
}

impl Api {
    fn new(addr: std::net::SocketAddr) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            base: format!("http://{addr}"),
            http: Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
        }
    }
    fn send(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, Some(TOKEN))
    }
    fn put(&self, path: &str, body: &str) -> (u16, Value) {
        self.send("PUT", path, Some(body), Some(TOKEN))
    }
    fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None, Some(TOKEN))
    }
}

fn sorted_addrs(s: &Server, name: &str) -> Vec<String> {
    let mut a = addrs(&s.query(name, RecordType::A));
    a.sort();
    a
}

fn serial(s: &Server) -> u32 {
    match &s.query("a.test.", RecordType::SOA).answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_endpoint_takes_effect_in_dns_at_once() {
    let s = server();
    let api = Api::new(s.admin);
    let serial0 = serial(&s);

    // API pool: create, read, change a member, remove a member, delete.
    let (st, body) = api.put(
        "/v1/pools/cdn.a.test.",
        r#"{"policy":"failover","ttl":15,"max_answers":1,"members":[{"address":"198.51.100.1"},{"address":"198.51.100.2"}]}"#,
    );
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["source"], "api");
    let r = s.query("cdn.a.test.", RecordType::A);
    assert_eq!(addrs(&r), vec!["198.51.100.1"]);
    assert_eq!(r.answers[0].ttl, 15);
    let (st, body) = api.get("/v1/pools/cdn.a.test");
    assert_eq!(st, 200);
    assert_eq!(body["policy"], "failover");
    assert_eq!(body["members"][0]["address"], "198.51.100.1");

    let (st, _) = api.put("/v1/pools/cdn.a.test./members/198.51.100.1", r#"{"enabled":false}"#);
    assert_eq!(st, 200);
    assert_eq!(addrs(&s.query("cdn.a.test.", RecordType::A)), vec!["198.51.100.2"]);
    let (st, _) = api.put("/v1/pools/cdn.a.test./members/198.51.100.3", r#"{"weight":2}"#);
    assert_eq!(st, 201);
    let (st, _) = api.delete("/v1/pools/cdn.a.test./members/198.51.100.2");
    assert_eq!(st, 204);
    assert_eq!(addrs(&s.query("cdn.a.test.", RecordType::A)), vec!["198.51.100.3"]);
    let (st, _) = api.delete("/v1/pools/cdn.a.test.");
    assert_eq!(st, 204);
    assert_eq!(s.query("cdn.a.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(api.get("/v1/pools/cdn.a.test.").0, 404);

    // Config pool: member overrides (drain, add, remove), shown with their source.
    let (st, _) = api.put("/v1/pools/www.a.test./members/192.0.2.1", r#"{"enabled":false}"#);
    assert_eq!(st, 200);
    assert_eq!(sorted_addrs(&s, "www.a.test."), vec!["192.0.2.2"]);
    let (st, _) = api.put("/v1/pools/www.a.test./members/192.0.2.3", "{}");
    assert_eq!(st, 201);
    assert_eq!(sorted_addrs(&s, "www.a.test."), vec!["192.0.2.2", "192.0.2.3"]);
    let (st, _) = api.delete("/v1/pools/www.a.test./members/192.0.2.2");
    assert_eq!(st, 204);
    assert_eq!(sorted_addrs(&s, "www.a.test."), vec!["192.0.2.3"]);
    let (_, pools) = api.get("/v1/pools");
    let www = pools.as_array().unwrap().iter().find(|p| p["name"] == "www.a.test.").unwrap();
    // A config pool with overrides is no longer exactly what the config says.
    assert_eq!(www["source"], "api");
    assert_eq!(www["file"]["members"].as_array().unwrap().len(), 2);
    let members: Vec<(String, String, bool)> = www["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().into(),
                m["source"].as_str().unwrap().into(),
                m["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(members, vec![("192.0.2.1".into(), "api".into(), false), ("192.0.2.3".into(), "api".into(), true)]);

    // RRsets: create, replace, delete; a zone-file RRset replaced and deleted.
    let (st, _) = api.put("/v1/zones/a.test./records/new.a.test./A", r#"{"ttl":60,"data":["192.0.2.7"]}"#);
    assert_eq!(st, 201);
    let r = s.query("new.a.test.", RecordType::A);
    assert_eq!(addrs(&r), vec!["192.0.2.7"]);
    assert_eq!(r.answers[0].ttl, 60);
    let (st, _) =
        api.put("/v1/zones/a.test/records/static.a.test/a", r#"{"ttl":30,"data":["192.0.2.101","192.0.2.102"]}"#);
    assert_eq!(st, 200);
    assert_eq!(sorted_addrs(&s, "static.a.test."), vec!["192.0.2.101", "192.0.2.102"]);
    let (st, _) =
        api.put("/v1/zones/a.test/records/mail.a.test/MX", r#"{"ttl":300,"data":["10 mx1", "20 mx2.a.test."]}"#);
    assert_eq!(st, 201);
    let mx = lines(&s.query("mail.a.test.", RecordType::MX).answers);
    assert_eq!(mx, vec!["mail.a.test. MX 10 mx1.a.test.", "mail.a.test. MX 20 mx2.a.test."]);
    let (st, recs) = api.get("/v1/zones/a.test./records");
    assert_eq!(st, 200);
    let find = |n: &str, t: &str| {
        recs["records"].as_array().unwrap().iter().find(|r| r["name"] == n && r["type"] == t).cloned()
    };
    assert_eq!(find("static.a.test.", "A").unwrap()["source"], "api");
    assert_eq!(find("static.a.test.", "TXT").unwrap()["source"], "zone");
    assert_eq!(find("new.a.test.", "A").unwrap()["data"], json!(["192.0.2.7"]));
    let (st, _) = api.delete("/v1/zones/a.test./records/new.a.test./A");
    assert_eq!(st, 204);
    assert_eq!(s.query("new.a.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    let (st, _) = api.delete("/v1/zones/a.test./records/static.a.test./TXT");
    assert_eq!(st, 204);
    let r = s.query("static.a.test.", RecordType::TXT);
    assert_eq!((r.metadata.response_code, r.answers.len()), (ResponseCode::NoError, 0));

    // Every change above bumped the serial by one: 5 API pool + 3 config pool + 5 RRset changes.
    assert_eq!(serial(&s), serial0 + 13);
    assert_eq!(api.get("/v1/zones/a.test./records").1["serial"], json!(serial0 + 13));
}

#[test]
fn bad_requests_get_their_status_and_change_nothing() {
    let s = server();
    let api = Api::new(s.admin);
    let before_pools = api.get("/v1/pools").1;
    let before_records = api.get("/v1/zones/a.test./records").1;
    let serial0 = serial(&s);
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        ("PUT", "/v1/pools/x.a.test.", Some("{not json".into()), 400, "invalid JSON"),
        (
            "PUT",
            "/v1/pools/x.a.test.",
            Some(r#"{"members":[{"address":"192.0.2.1","weigth":2}]}"#.into()),
            400,
            "weigth",
        ),
        (
            "PUT",
            "/v1/pools/x.a.test.",
            Some(r#"{"members":[{"address":"192.0.2.999"}]}"#.into()),
            400,
            "members[0].address: invalid IP address syntax",
        ),
        ("PUT", "/v1/pools/x.a.test.", None, 400, "the request has no body: a JSON object is needed"),
        ("PUT", "/v1/pools/x.a.test.", Some("{} x".into()), 400, "invalid JSON body: trailing characters"),
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"ttl":"soon"}"#.into()), 400, "ttl: invalid type: string"),
        ("POST", "/v1/pools", Some("{}".into()), 405, "method POST is not allowed here"),
        ("PATCH", "/v1/zones/a.test./records", None, 405, "method PATCH is not allowed here"),
        (
            "PUT",
            "/v1/pools/x.a.test.",
            Some(r#"{"members":[{"address":"192.0.2.1","weight":0}]}"#.into()),
            422,
            "weight must be at least 1",
        ),
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"policy":"fastest"}"#.into()), 400, "fastest"),
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"ttl":4294967295}"#.into()), 422, "ttl 4294967295 is above 2^31-1"),
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"ttl":2147483648}"#.into()), 422, "above 2^31-1"),
        ("PUT", "/v1/pools/x.elsewhere.test.", Some(r#"{"members":[]}"#.into()), 422, "not inside any zone"),
        ("PUT", "/v1/pools/static.a.test.", Some(r#"{"members":[]}"#.into()), 422, "also has A records"),
        ("PUT", "/v1/pools/www.a.test.", Some(r#"{"members":[]}"#.into()), 409, "defined in the config file"),
        ("DELETE", "/v1/pools/www.a.test.", None, 409, "defined in the config file"),
        ("DELETE", "/v1/pools/nope.a.test.", None, 404, "no pool"),
        (
            "PUT",
            "/v1/pools/www.a.test./members/not-an-ip",
            Some("{}".into()),
            400,
            "address: invalid IP address syntax",
        ),
        ("PUT", "/v1/pools/www.a.test./members/192.0.2.1", None, 400, "the request has no body"),
        ("PUT", "/v1/pools/www.a.test./members/192.0.2.1", Some(r#"{"weight":0}"#.into()), 422, "weight"),
        ("DELETE", "/v1/pools/www.a.test./members/192.0.2.77", None, 404, "no member"),
        (
            "PUT",
            "/v1/zones/a.test./records/x.a.test./BOGUS",
            Some(r#"{"ttl":1,"data":["1"]}"#.into()),
            422,
            "unknown record type",
        ),
        ("PUT", "/v1/zones/a.test./records/x.a.test./A", Some(r#"{"ttl":1,"data":["nope"]}"#.into()), 422, "data[0]"),
        (
            "PUT",
            "/v1/zones/a.test./records/x.other.test./A",
            Some(r#"{"ttl":1,"data":["192.0.2.1"]}"#.into()),
            422,
            "not inside zone",
        ),
        (
            "PUT",
            "/v1/zones/nozone.test./records/x.nozone.test./A",
            Some(r#"{"ttl":1,"data":["192.0.2.1"]}"#.into()),
            404,
            "no zone",
        ),
        (
            "PUT",
            "/v1/zones/a.test./records/www.a.test./A",
            Some(r#"{"ttl":1,"data":["192.0.2.1"]}"#.into()),
            409,
            "is a pool",
        ),
        (
            "PUT",
            "/v1/zones/a.test./records/static.a.test./CNAME",
            Some(r#"{"ttl":1,"data":["www"]}"#.into()),
            409,
            "beside other data",
        ),
        ("PUT", "/v1/zones/a.test./records/a.test./SOA", Some(r#"{"ttl":1,"data":["x"]}"#.into()), 422, "SOA"),
        ("PUT", "/v1/zones/a.test./records/x.a.test./A", Some(r#"{"ttl":1,"data":[],"extra":1}"#.into()), 400, "extra"),
        ("DELETE", "/v1/zones/a.test./records/nothing.a.test./A", None, 404, "no A records"),
        (
            "DELETE",
            "/v1/zones/a.test./records/@/NS",
            None,
            409,
            "refused: deleting the NS RRset at the apex of a.test. would leave the zone without name servers",
        ),
        ("PUT", "/v1/pools/big.a.test.", Some("x".repeat((1 << 20) + 10)), 413, "over"),
    ];
    for (method, path, body, status, needle) in &cases {
        let (st, v) = api.send(method, path, body.as_deref(), Some(TOKEN));
        assert_eq!(st, *status, "{method} {path}: {v}");
        let err = v["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: no error field in {v}"));
        assert!(err.contains(needle), "{method} {path}: {err:?} lacks {needle:?}");
    }
    // Authentication.
    let (st, v) = api.send("GET", "/v1/pools", None, None);
    assert_eq!(st, 401, "{v}");
    let (st, _) = api.send("PUT", "/v1/pools/x.a.test.", Some("{}"), Some("wrong-token"));
    assert_eq!(st, 401);
    // Nothing changed.
    assert_eq!(api.get("/v1/pools").1, before_pools);
    assert_eq!(api.get("/v1/zones/a.test./records").1, before_records);
    assert_eq!(serial(&s), serial0);
    assert_eq!(s.query("x.a.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
}

/// One placement rule for zone files and the API: an NS at a pool's name (a cut
/// at or above the pool) is refused by both; the pool keeps answering.
#[test]
fn ns_at_a_pool_name_is_refused_as_in_a_zone_file() {
    let s = server();
    let api = Api::new(s.admin);
    let serial0 = serial(&s);
    let (st, v) = api.put("/v1/zones/a.test./records/www.a.test./NS", r#"{"ttl":60,"data":["ns1.elsewhere.test."]}"#);
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("would put pool www.a.test. at or below a zone cut"), "{v}");
    let r = s.query("www.a.test.", RecordType::A);
    assert!(r.metadata.authoritative, "not a referral: {r:?}");
    assert_eq!(r.answers.len(), 2);
    assert_eq!(serial(&s), serial0);
    // An NS elsewhere is still a delegation.
    assert_eq!(api.put("/v1/zones/a.test./records/sub.a.test./NS", r#"{"ttl":60,"data":["ns1.sub"]}"#).0, 201);
    // The zone file with the same line is refused the same way.
    let e = Server::try_start(
        &config("token_file=\"admin.token\""),
        &[("a.zone", &format!("{}www IN NS ns1.elsewhere.test.\n", zone())), ("admin.token", TOKEN)],
    )
    .err()
    .expect("the zone file's NS at the pool name was accepted");
    assert!(e.contains("pool www.a.test. is at or below the zone cut www.a.test."), "{e}");
}

/// A write that would close a CNAME loop (a→b→a, a→a) is refused with 422 naming
/// the chain; chains that end are accepted.
#[test]
fn cname_loops_are_refused() {
    let s = server();
    let api = Api::new(s.admin);
    let put = |name: &str, target: &str| {
        api.put(&format!("/v1/zones/a.test./records/{name}/CNAME"), &format!(r#"{{"ttl":60,"data":["{target}"]}}"#))
    };
    assert_eq!(put("a.a.test.", "b").0, 201);
    assert_eq!(put("b.a.test.", "static").0, 201);
    let serial0 = serial(&s);
    let (st, v) = put("static2.a.test.", "static2");
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"], "data[0]: this CNAME would make a loop: static2.a.test. -> static2.a.test.");
    let (st, v) = put("b.a.test.", "a");
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"], "data[0]: this CNAME would make a loop: b.a.test. -> a.a.test. -> b.a.test.");
    assert_eq!(serial(&s), serial0);
    // Through a wildcard: c -> x.w, which only *.w answers.
    assert_eq!(put("*.w.a.test.", "static").0, 201);
    assert_eq!(put("c.a.test.", "x.w").0, 201);
    let serial0 = serial(&s);
    let (st, v) = put("*.w", "c");
    assert_eq!(st, 422, "{v}");
    assert_eq!(
        v["error"],
        "data[0]: this CNAME would make a loop: *.w.a.test. -> c.a.test. -> x.w.a.test. -> c.a.test."
    );
    assert_eq!(serial(&s), serial0);
    // Nothing changed: a -> b -> static still answers once each.
    let r = s.query("a.a.test.", RecordType::A);
    assert_eq!(
        lines(&r.answers),
        vec!["a.a.test. CNAME b.a.test.", "b.a.test. CNAME static.a.test.", "static.a.test. A 192.0.2.100"]
    );
}

/// Names in record URLs: `@` is the apex; a final dot, or the zone's origin at
/// the end, makes a name absolute; any other name is relative to the zone.
#[test]
fn names_in_record_urls_are_relative_to_the_zone() {
    let s = server();
    let api = Api::new(s.admin);
    let body = r#"{"ttl":60,"data":["192.0.2.44"]}"#;
    assert_eq!(api.put("/v1/zones/a.test./records/rel/A", body).0, 201);
    assert_eq!(addrs(&s.query("rel.a.test.", RecordType::A)), vec!["192.0.2.44"]);
    // The same RRset written absolute, with and without the final dot.
    assert_eq!(api.put("/v1/zones/a.test./records/rel.a.test/A", body).0, 200);
    assert_eq!(api.put("/v1/zones/a.test/records/REL.A.TEST./A", body).0, 200);
    // A name that only looks like another zone is inside this one.
    assert_eq!(api.put("/v1/zones/a.test./records/x.other.test/A", body).0, 201);
    assert_eq!(addrs(&s.query("x.other.test.a.test.", RecordType::A)), vec!["192.0.2.44"]);
    let (st, v) = api.put("/v1/zones/a.test./records/@/TXT", r#"{"ttl":60,"data":["\"apex\""]}"#);
    assert_eq!((st, v["name"].as_str()), (201, Some("a.test.")), "{v}");
    assert_eq!(s.query("a.test.", RecordType::TXT).answers.len(), 1);
    assert_eq!(api.delete("/v1/zones/a.test./records/rel/A").0, 204);
    assert_eq!(s.query("rel.a.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
}

/// `GET /v1/zones` lists every zone with its served serial, its number of RRsets
/// and its last change; the records listing shows the SOA as served.
#[test]
fn zones_are_listed_and_the_listed_soa_is_the_served_one() {
    let s = server();
    let api = Api::new(s.admin);
    let serial0 = serial(&s);
    let (st, zones) = api.get("/v1/zones");
    assert_eq!(st, 200, "{zones}");
    let z = &zones.as_array().unwrap()[..];
    assert_eq!(z.len(), 1, "{zones}");
    let keys: Vec<&String> = z[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["last_change", "origin", "rrsets", "serial"], "{zones}");
    assert_eq!((z[0]["origin"].as_str(), z[0]["serial"].as_u64()), (Some("a.test."), Some(serial0 as u64)));
    assert_eq!(z[0]["rrsets"], 5, "SOA, NS, ns1 A, static A, static TXT");
    assert_eq!(z[0]["last_change"]["source"], "file");
    let started = humantime::parse_rfc3339(z[0]["last_change"]["time"].as_str().unwrap()).unwrap();

    assert_eq!(api.put("/v1/zones/a.test./records/new/A", r#"{"ttl":60,"data":["192.0.2.7"]}"#).0, 201);
    let (_, zones) = api.get("/v1/zones");
    assert_eq!(zones[0]["serial"], serial0 + 1);
    assert_eq!(zones[0]["rrsets"], 6);
    assert_eq!(zones[0]["last_change"]["source"], "api");
    let changed = humantime::parse_rfc3339(zones[0]["last_change"]["time"].as_str().unwrap()).unwrap();
    assert!(changed >= started);

    // The listing's SOA carries the serial dig sees, not the zone file's.
    let (_, recs) = api.get("/v1/zones/a.test./records");
    let soa = recs["records"].as_array().unwrap().iter().find(|r| r["type"] == "SOA").unwrap();
    let served = lines(&s.query("a.test.", RecordType::SOA).answers)[0].clone();
    assert_eq!(soa["data"][0].as_str().unwrap().split(' ').nth(2), Some(&*(serial0 + 1).to_string()), "{soa}");
    assert!(served.ends_with(soa["data"][0].as_str().unwrap()), "{served} vs {soa}");
    assert_eq!(recs["serial"], serial0 + 1);
}

/// A conflict names where the other record came from: its zone-file line, or
/// the API (never "line 0").
#[test]
fn a_conflict_with_an_api_record_says_it_was_set_through_the_api() {
    let s = server();
    let api = Api::new(s.admin);
    let (st, v) = api.put("/v1/zones/a.test./records/n/TXT", r#"{"ttl":60,"data":["\"x\""]}"#);
    assert_eq!(st, 201, "{v}");
    let (st, v) = api.put("/v1/zones/a.test./records/n/CNAME", r#"{"ttl":60,"data":["www"]}"#);
    assert_eq!(st, 409, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("beside other data (TXT set through the API)"), "{err}");
    let (st, v) = api.put("/v1/zones/a.test./records/static/CNAME", r#"{"ttl":60,"data":["www"]}"#);
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains(" at line "), "{v}");
}

/// Undoing an override shows the zone file's RRset again; it is held to the
/// rules of a PUT: a CNAME that would now close a loop, or an NS that would now
/// put a pool behind a cut, is refused and nothing changes.
#[test]
fn a_revert_that_would_make_a_loop_or_hide_a_pool_is_refused() {
    let zone = small_zone("static IN A 192.0.2.100\nb IN CNAME a\nsub IN NS ns1.elsewhere.test.\n");
    let s = Server::start(&config("token_file=\"admin.token\""), &[("a.zone", &zone), ("admin.token", TOKEN)]);
    let api = Api::new(s.admin);
    assert_eq!(api.delete("/v1/zones/a.test./records/b/CNAME").0, 204);
    assert_eq!(api.put("/v1/zones/a.test./records/a/CNAME", r#"{"ttl":60,"data":["b"]}"#).0, 201);
    assert_eq!(api.delete("/v1/zones/a.test./records/sub/NS").0, 204);
    assert_eq!(api.put("/v1/pools/x.sub.a.test.", r#"{"members":[{"address":"192.0.2.9"}]}"#).0, 201);
    let serial0 = serial(&s);

    let (st, v) = api.delete("/v1/zones/a.test./records/b/CNAME/override");
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"], "the zone file's CNAME at b.a.test. would make a loop: b.a.test. -> a.a.test. -> b.a.test.");
    let (st, v) = api.delete("/v1/zones/a.test./records/sub/NS/override");
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("would put pool x.sub.a.test. at or below a zone cut"), "{v}");

    assert_eq!(serial(&s), serial0);
    let a = s.query("a.a.test.", RecordType::A);
    assert_eq!(
        (lines(&a.answers), a.metadata.response_code),
        (vec!["a.a.test. CNAME b.a.test.".to_string()], ResponseCode::NXDomain)
    );
    assert_eq!(addrs(&s.query("x.sub.a.test.", RecordType::A)), vec!["192.0.2.9"]);
}

#[test]
fn without_a_token_file_the_api_is_forbidden() {
    let s = Server::start(&config(""), &[("a.zone", &zone())]);
    let api = Api::new(s.admin);
    let (st, v) = api.send("GET", "/v1/pools", None, Some("anything"));
    assert_eq!(st, 403);
    assert!(v["error"].as_str().unwrap().contains("token_file"), "{v}");
    assert_eq!(api.send("GET", "/healthz", None, None).0, 200);
    assert_eq!(api.send("GET", "/readyz", None, None).0, 200);
}

#[test]
fn added_members_are_probed_at_once_and_removed_ones_stop() {
    let b = Backend::http("127.0.0.21", 0);
    let s = server();
    let api = Api::new(s.admin);
    let body = json!({
        "all_down": "empty",
        "health": {"check": "http", "port": b.addr.port(), "interval": "100ms", "timeout": "300ms"},
        "members": [{"address": "127.0.0.21"}]
    });
    let (st, v) = api.put("/v1/pools/probed.a.test.", &body.to_string());
    assert_eq!(st, 201, "{v}");
    // Unknown health is not answered; the first probe runs at once and brings it up.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while addrs(&s.query("probed.a.test.", RecordType::A)).is_empty() {
        assert!(std::time::Instant::now() < deadline, "new member never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(api.get("/v1/pools/probed.a.test.").1["members"][0]["health"], "up");
    let (st, _) = api.delete("/v1/pools/probed.a.test./members/127.0.0.21");
    assert_eq!(st, 204);
    std::thread::sleep(Duration::from_millis(150));
    let n = b.requests();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.requests(), n, "a removed member is still probed");
}

fn binary_config(dir: &std::path::Path) -> std::path::PathBuf {
    write(&dir.join("lbdns.toml"), &config("token_file=\"admin.token\"\nstate_dir=\"state\""));
    write(&dir.join("a.zone"), &zone());
    write(&dir.join("admin.token"), TOKEN);
    dir.join("lbdns.toml")
}

fn durable_writes(kill: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = binary_config(dir.path());
    let r = crate::cli::spawn(&cfg);
    let api = Api::new(r.admin);
    let serial0 = serial_at(r.dns);
    for i in 0..200 {
        let path = format!("/v1/zones/a.test./records/h{i}.a.test./A");
        let (st, v) = api.put(&path, &format!(r#"{{"ttl":60,"data":["10.0.{}.{}"]}}"#, i / 256, i % 256));
        assert_eq!(st, 201, "{v}");
    }
    let mut r = r;
    if kill {
        r.child.kill().unwrap(); // SIGKILL
    } else {
        let pid = r.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    }
    let status = r.child.wait().unwrap();
    assert_eq!(status.success(), !kill, "{status}");
    drop(r);

    let r = crate::cli::spawn(&cfg);
    let api = Api::new(r.admin);
    for i in 0..200 {
        let got = addrs(&udp(r.dns, &msg(&format!("h{i}.a.test."), RecordType::A)));
        assert_eq!(got, vec![format!("10.0.{}.{}", i / 256, i % 256)], "write {i} lost");
    }
    let recs = api.get("/v1/zones/a.test./records").1;
    let api_sets = recs["records"].as_array().unwrap().iter().filter(|r| r["source"] == "api").count();
    assert_eq!(api_sets, 200);
    assert_eq!(serial_at(r.dns), serial0 + 200);
}

fn serial_at(dns: std::net::SocketAddr) -> u32 {
    match &udp(dns, &msg("a.test.", RecordType::SOA)).answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    durable_writes(true);
}

#[test]
fn acknowledged_writes_survive_a_restart() {
    durable_writes(false);
}

/// The names of the server's threads (`top -H`, `/proc/PID/task`).
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).map(|c| c.trim().into()).collect()
}

/// As the README says (Architecture): API writes are committed to SQLite on the
/// writer's own thread `lbdns-writer`; there is no thread of the store's own
/// (`lbdns-sqlite`, which each write used to wake and wait for), and the writes
/// are still answered and served.
#[test]
fn api_writes_are_committed_on_the_writers_own_thread() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = binary_config(dir.path());
    let r = crate::cli::spawn(&cfg);
    let api = Api::new(r.admin);
    let (st, v) = api.put("/v1/zones/a.test./records/t.a.test./A", r#"{"ttl":60,"data":["192.0.2.9"]}"#);
    assert_eq!(st, 201, "{v}");
    let names = thread_names(r.child.id());
    assert_eq!(names.iter().filter(|n| *n == "lbdns-writer").count(), 1, "{names:?}");
    assert!(!names.iter().any(|n| n == "lbdns-sqlite"), "{names:?}");
    assert_eq!(addrs(&udp(r.dns, &msg("t.a.test.", RecordType::A))), vec!["192.0.2.9"]);
}

/// Wrong tokens never lock out the right one: each gets 401, is counted, and is
/// logged once per source per 10 s (no flood of log lines, no lockout).
#[test]
fn wrong_tokens_never_lock_out_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = binary_config(dir.path());
    let log = dir.path().join("stderr.log");
    let r = crate::cli::spawn_logging(&cfg, &log);
    let api = Api::new(r.admin);
    for i in 0..25 {
        let (st, v) = api.send("GET", "/v1/pools", None, Some("guess"));
        assert_eq!(st, 401, "guess {i}: {v}");
        assert_eq!(v["error"], "missing or wrong bearer token");
    }
    // The right token from the same address works at once.
    assert_eq!(api.get("/v1/pools").0, 200);
    let metrics = http_get(&format!("http://{}/metrics", r.admin));
    assert!(metrics.lines().any(|l| l == "lbdns_admin_requests_total{status=\"401\"} 25"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "lbdns_admin_requests_total{status=\"200\"} 1"), "{metrics}");
    assert_eq!(addrs(&udp(r.dns, &msg("static.a.test.", RecordType::A))), vec!["192.0.2.100"]);
    drop(r);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("wrong bearer token").count(), 1, "{text}");
}

#[test]
fn a_thousand_concurrent_bad_requests_do_not_stop_dns() {
    let s = server();
    let admin = s.admin;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let api = Api::new(admin);
                let mut n = 0;
                while n < 125 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (st, _) = api.send("PUT", "/v1/pools/x.a.test.", Some("{not json"), Some("wrong"));
                    assert_eq!(st, 401);
                    n += 1;
                }
            })
        })
        .collect();
    // Every DNS query during the flood is answered (the client waits at most 2 s).
    for _ in 0..200 {
        assert_eq!(addrs(&s.query("static.a.test.", RecordType::A)), vec!["192.0.2.100"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
}

/// Sends raw bytes to the admin port and returns the status code of the reply
/// (0 when the connection closed without one).
fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(request);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn oversized_request_heads_are_refused_with_431() {
    let s = server();
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    assert_eq!(raw_status(s.admin, big.as_bytes()), 431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(raw_status(s.admin, many.as_bytes()), 431);
    // A normal request on the same server, and DNS, are fine.
    assert_eq!(raw_status(s.admin, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 200);
    assert_eq!(addrs(&s.query("static.a.test.", RecordType::A)), vec!["192.0.2.100"]);
}

/// A zone file edited under a stored API change so that it refuses it (a CNAME
/// where the API wrote an A record): the server still starts, serves everything
/// else including the other API changes, and the refused change can be deleted.
#[test]
fn a_stored_change_the_edited_zone_file_refuses_does_not_stop_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = binary_config(dir.path());
    let r = crate::cli::spawn(&cfg);
    let api = Api::new(r.admin);
    assert_eq!(api.put("/v1/zones/a.test./records/x.a.test./A", r#"{"ttl":60,"data":["192.0.2.81"]}"#).0, 201);
    assert_eq!(api.put("/v1/zones/a.test./records/y.a.test./A", r#"{"ttl":60,"data":["192.0.2.82"]}"#).0, 201);
    drop(r);
    // The operator now puts a CNAME at x in the zone file.
    let zone = std::fs::read_to_string(dir.path().join("a.zone")).unwrap();
    write(&dir.path().join("a.zone"), &format!("{zone}x IN CNAME y\n"));
    // `lbdns check` agrees that it starts (exit 0) and warns about what start-up leaves out.
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_lbdns")).args(["check", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: API changes stored in") && err.contains("will be left out at start"), "{err}");
    assert!(err.contains("CNAME at x.a.test. beside other data"), "{err}");
    let r = crate::cli::spawn(&cfg);
    let api = Api::new(r.admin);
    assert_eq!(addrs(&udp(r.dns, &msg("y.a.test.", RecordType::A))), ["192.0.2.82"]);
    let x = udp(r.dns, &msg("x.a.test.", RecordType::A));
    assert_eq!(x.answers[0].record_type(), RecordType::CNAME, "the zone file's CNAME, then y");
    assert_eq!(addrs(&x), ["192.0.2.82"]);
    // Dropped through the API; then it is gone for good.
    assert_eq!(api.delete("/v1/zones/a.test./records/x.a.test./A").0, 204);
    assert_eq!(api.delete("/v1/zones/a.test./records/x.a.test./A").0, 404);
    drop(r);
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_lbdns")).args(["check", "--config"]).arg(&cfg).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "nothing is left out any more");
    let r = crate::cli::spawn(&cfg);
    assert_eq!(addrs(&udp(r.dns, &msg("x.a.test.", RecordType::A))), ["192.0.2.82"]);
    // The deletion was stored: nothing is left out (and deletable) any more.
    assert_eq!(Api::new(r.admin).delete("/v1/zones/a.test./records/x.a.test./A").0, 404);
}

/// A geo member in a region no `[regions]` list names would never be chosen:
/// the API refuses it, as `lbdns check` does in the config file.
#[test]
fn a_geo_member_in_an_unlisted_region_is_refused() {
    let s = server();
    let api = Api::new(s.admin);
    let pool = r#"{"policy":"geo","members":[{"address":"192.0.2.9","region":"mars"}]}"#;
    let (st, body) = api.put("/v1/pools/geo.a.test.", pool);
    assert_eq!(st, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("region \"mars\" is in no [regions] list"), "{body}");
    assert_eq!(api.get("/v1/pools/geo.a.test.").0, 404, "nothing was stored");
}
