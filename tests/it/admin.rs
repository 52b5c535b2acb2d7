//! The admin API over real HTTP, each change checked by real DNS queries right
//! after the response (no sleeps), durability across restarts and `kill -9`.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::harness::*;

const TOKEN: &str = "test-token-123";

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
    assert_eq!(www["source"], "config");
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
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"members":[{"address":"192.0.2.999"}]}"#.into()), 400, "address"),
        (
            "PUT",
            "/v1/pools/x.a.test.",
            Some(r#"{"members":[{"address":"192.0.2.1","weight":0}]}"#.into()),
            422,
            "weight must be at least 1",
        ),
        ("PUT", "/v1/pools/x.a.test.", Some(r#"{"policy":"fastest"}"#.into()), 400, "fastest"),
        ("PUT", "/v1/pools/x.elsewhere.test.", Some(r#"{"members":[]}"#.into()), 422, "not inside any zone"),
        ("PUT", "/v1/pools/static.a.test.", Some(r#"{"members":[]}"#.into()), 422, "also has A records"),
        ("PUT", "/v1/pools/www.a.test.", Some(r#"{"members":[]}"#.into()), 409, "defined in the config file"),
        ("DELETE", "/v1/pools/www.a.test.", None, 409, "defined in the config file"),
        ("DELETE", "/v1/pools/nope.a.test.", None, 404, "no pool"),
        ("PUT", "/v1/pools/www.a.test./members/not-an-ip", Some("{}".into()), 422, "not an IP address"),
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
        ("DELETE", "/v1/zones/a.test./records/a.test./NS", None, 409, "no NS record at its apex"),
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

#[test]
fn failed_authentications_are_rate_limited_per_source() {
    let s = server();
    let api = Api::new(s.admin);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(api.send("GET", "/v1/pools", None, Some("guess")).0);
    }
    assert!(statuses[..20].iter().all(|&st| st == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|&st| st == 429), "{statuses:?}");
    // Even the right token waits out the window: a guesser cannot tell.
    assert_eq!(api.get("/v1/pools").0, 429);
    // DNS and the unauthenticated endpoints are unaffected.
    assert_eq!(api.send("GET", "/healthz", None, None).0, 200);
    assert_eq!(addrs(&s.query("static.a.test.", RecordType::A)), vec!["192.0.2.100"]);
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
                    assert!(st == 401 || st == 429, "{st}");
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
