//! API overrides a user can reason about and undo, against the built binary with
//! its SQLite store: an override records only the fields it set (the others
//! follow the config across SIGHUP), a DELETE of a file item is a stored deletion
//! (repeatable), `DELETE …/override` returns an item to what the files say, and
//! all of it holds across `kill -9` and a new start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::cli::{Running, spawn};
use crate::harness::*;

const TOKEN: &str = "override-token-0123456789abcdef01";

/// A config whose pool member 192.0.2.1 has `weight`.
fn config(weight: u32) -> String {
    format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         state_dir=\"state\"\n\
         [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
         [[pool]]\nname=\"www.a.test.\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\nweight={weight}\n[[pool.member]]\naddress=\"192.0.2.2\"\n"
    )
}

fn zone(static_a: &str) -> String {
    small_zone(&format!("static IN A {static_a}\nstatic IN TXT \"hello\"\n"))
}

fn setup(dir: &Path) -> PathBuf {
    write(&dir.join("lbdns.toml"), &config(1));
    write(&dir.join("a.zone"), &zone("192.0.2.100"));
    write(&dir.join("admin.token"), TOKEN);
    dir.join("lbdns.toml")
}

/// `METHOD path` with the token; the status and the JSON body (or text).
fn call(r: &Running, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("http://{}{path}", r.admin)).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn member(r: &Running, address: &str) -> Value {
    let (st, pool) = call(r, "GET", "/v1/pools/www.a.test.", None);
    assert_eq!(st, 200, "{pool}");
    pool["members"].as_array().unwrap().iter().find(|m| m["address"] == address).cloned().unwrap_or(Value::Null)
}

fn rrset(r: &Running, name: &str, t: &str) -> Value {
    let (st, recs) = call(r, "GET", "/v1/zones/a.test./records", None);
    assert_eq!(st, 200, "{recs}");
    let all = recs["records"].as_array().unwrap();
    all.iter().find(|x| x["name"] == name && x["type"] == t).cloned().unwrap_or(Value::Null)
}

fn www(r: &Running) -> Vec<String> {
    let mut a = addrs(&udp(r.dns, &msg("www.a.test.", RecordType::A)));
    a.sort();
    a
}

fn serial(r: &Running) -> u32 {
    match &udp(r.dns, &msg("a.test.", RecordType::SOA)).answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

fn reloads(r: &Running) -> u64 {
    let text = http_get(&format!("http://{}/metrics", r.admin));
    let line = text.lines().find(|l| l.starts_with("lbdns_reloads_total{result=\"ok\"}"));
    line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64
}

/// Sends SIGHUP and waits until the reload is done.
fn reload(r: &Running) {
    let before = reloads(r);
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads(r) == before {
        assert!(Instant::now() < deadline, "no reload within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -9`, then a new start from the same files and state.
fn kill_and_start(r: Running, cfg: &Path) -> Running {
    let mut r = r;
    r.child.kill().unwrap();
    r.child.wait().unwrap();
    drop(r);
    spawn(cfg)
}

#[test]
fn drain_then_undrain_overrides_only_enabled_so_config_weights_show_through() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let path = "/v1/pools/www.a.test./members/192.0.2.1";
    assert_eq!(call(&r, "PUT", path, Some(r#"{"enabled":false}"#)).0, 200);
    assert_eq!(www(&r), ["192.0.2.2"]);
    assert_eq!(call(&r, "PUT", path, Some(r#"{"enabled":true}"#)).0, 200);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["source"].as_str(), m["weight"].as_u64()), (Some("api"), Some(1)));

    // The config's weight changes: it shows through the override, across SIGHUP
    // and across kill -9.
    write(&dir.path().join("lbdns.toml"), &config(5));
    reload(&r);
    let m = member(&r, "192.0.2.1");
    assert_eq!(m["weight"], 5, "{m}");
    assert_eq!(m["override"], json!({"enabled": true}), "{m}");
    assert_eq!(m["file"], json!({"weight": 5, "region": null, "enabled": true}), "{m}");
    let r = kill_and_start(r, &cfg);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["weight"].as_u64(), &m["override"]), (Some(5), &json!({"enabled": true})), "{m}");
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);

    // A weight set through the API is the one frozen field.
    assert_eq!(call(&r, "PUT", path, Some(r#"{"weight":3}"#)).0, 200);
    write(&dir.path().join("lbdns.toml"), &config(9));
    reload(&r);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["weight"].as_u64(), &m["override"]), (Some(3), &json!({"enabled": true, "weight": 3})), "{m}");
    assert_eq!(m["file"]["weight"], 9);

    // Its override deleted: the config's values, for good.
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 204);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["weight"].as_u64(), &m["override"], m["source"].as_str()), (Some(9), &Value::Null, Some("config")));
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 404);
    let r = kill_and_start(r, &cfg);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["weight"].as_u64(), &m["override"]), (Some(9), &Value::Null), "{m}");
}

#[test]
fn deleting_a_config_member_is_a_stored_deletion_that_its_override_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let serial0 = serial(&r);
    let path = "/v1/pools/www.a.test./members/192.0.2.2";
    assert_eq!(call(&r, "DELETE", path, None).0, 204);
    assert_eq!(www(&r), ["192.0.2.1"]);
    // Repeating it answers 204 and stores nothing.
    assert_eq!(call(&r, "DELETE", path, None).0, 204);
    assert_eq!(serial(&r), serial0 + 1);
    let (_, pool) = call(&r, "GET", "/v1/pools/www.a.test.", None);
    assert_eq!(pool["override"], json!({"members": [{"address": "192.0.2.2", "deleted": true}]}), "{pool}");
    assert_eq!(pool["source"], "api");
    assert_eq!(pool["file"]["members"].as_array().unwrap().len(), 2, "{pool}");

    // The config still lists it: the deletion holds across SIGHUP and kill -9.
    write(&dir.path().join("lbdns.toml"), &config(2));
    reload(&r);
    assert_eq!(www(&r), ["192.0.2.1"]);
    let r = kill_and_start(r, &cfg);
    assert_eq!(www(&r), ["192.0.2.1"]);
    assert_eq!(call(&r, "DELETE", path, None).0, 204);

    // Its override deleted: the member is what the config says again.
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 204);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(member(&r, "192.0.2.2")["source"], "config");
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 404);
    let r = kill_and_start(r, &cfg);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    let (_, pool) = call(&r, "GET", "/v1/pools/www.a.test.", None);
    assert_eq!((&pool["override"], pool["source"].as_str()), (&Value::Null, Some("config")), "{pool}");
}

#[test]
fn rrset_overrides_and_deletions_hide_the_zone_file_until_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let path = "/v1/zones/a.test./records/static.a.test./A";
    let (st, put) = call(&r, "PUT", path, Some(r#"{"ttl":30,"data":["192.0.2.101"]}"#));
    assert_eq!((st, &put["file"]["data"]), (200, &json!(["192.0.2.100"])), "{put}");
    let set = rrset(&r, "static.a.test.", "A");
    assert_eq!(set["file"], json!({"ttl": 300, "data": ["192.0.2.100"]}), "{set}");
    assert_eq!(set["override"], json!({"ttl": 30, "data": ["192.0.2.101"]}), "{set}");
    assert_eq!((set["source"].as_str(), &set["data"]), (Some("api"), &json!(["192.0.2.101"])));
    assert_eq!(rrset(&r, "static.a.test.", "TXT")["override"], Value::Null);

    // A DELETE hides the zone file's RRset; repeating it answers 204.
    assert_eq!(call(&r, "DELETE", path, None).0, 204);
    assert_eq!(call(&r, "DELETE", path, None).0, 204);
    let nodata = |r: &Running| {
        let m = udp(r.dns, &msg("static.a.test.", RecordType::A));
        (m.metadata.response_code, m.answers.len())
    };
    assert_eq!(nodata(&r), (ResponseCode::NoError, 0));
    let (_, recs) = call(&r, "GET", "/v1/zones/a.test./records", None);
    let hidden = json!([{"name": "static.a.test.", "type": "A", "file": {"ttl": 300, "data": ["192.0.2.100"]}}]);
    assert_eq!((&recs["deleted"], rrset(&r, "static.a.test.", "A")), (&hidden, Value::Null), "{recs}");
    // Even a new version in the zone file, across SIGHUP and kill -9.
    write(&dir.path().join("a.zone"), &zone("192.0.2.200"));
    reload(&r);
    assert_eq!(nodata(&r), (ResponseCode::NoError, 0));
    let r = kill_and_start(r, &cfg);
    assert_eq!(nodata(&r), (ResponseCode::NoError, 0));
    assert_eq!(call(&r, "DELETE", path, None).0, 204);

    // Its override deleted: the zone file's RRset again.
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 204);
    assert_eq!(addrs(&udp(r.dns, &msg("static.a.test.", RecordType::A))), ["192.0.2.200"]);
    let set = rrset(&r, "static.a.test.", "A");
    assert_eq!((set["source"].as_str(), &set["override"]), (Some("zone"), &Value::Null), "{set}");
    assert_eq!(call(&r, "GET", "/v1/zones/a.test./records", None).1["deleted"], json!([]));
    assert_eq!(call(&r, "DELETE", &format!("{path}/override"), None).0, 404);

    // An RRset only the API has: `file` is null, and a DELETE removes it for good.
    let new = "/v1/zones/a.test./records/new.a.test./A";
    assert_eq!(call(&r, "PUT", new, Some(r#"{"ttl":60,"data":["192.0.2.7"]}"#)).0, 201);
    assert_eq!(rrset(&r, "new.a.test.", "A")["file"], Value::Null);
    assert_eq!(call(&r, "DELETE", new, None).0, 204);
    assert_eq!(call(&r, "DELETE", new, None).0, 404);
    assert_eq!(call(&r, "PUT", new, Some(r#"{"ttl":60,"data":["192.0.2.7"]}"#)).0, 201);
    assert_eq!(call(&r, "DELETE", &format!("{new}/override"), None).0, 204);
    let gone = udp(r.dns, &msg("new.a.test.", RecordType::A));
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    let r = kill_and_start(r, &cfg);
    assert_eq!(addrs(&udp(r.dns, &msg("static.a.test.", RecordType::A))), ["192.0.2.200"]);
    assert_eq!(udp(r.dns, &msg("new.a.test.", RecordType::A)).metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn a_pool_override_deleted_returns_the_pool_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let m = |a: &str| format!("/v1/pools/www.a.test./members/{a}");
    assert_eq!(call(&r, "PUT", &m("192.0.2.1"), Some(r#"{"weight":4}"#)).0, 200);
    assert_eq!(call(&r, "DELETE", &m("192.0.2.2"), None).0, 204);
    assert_eq!(call(&r, "PUT", &m("192.0.2.3"), Some("{}")).0, 201);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.3"]);
    let added = member(&r, "192.0.2.3");
    assert_eq!((&added["file"], &added["override"], added["source"].as_str()), (&Value::Null, &json!({}), Some("api")));
    let (_, pool) = call(&r, "GET", "/v1/pools/www.a.test.", None);
    assert_eq!(pool["override"]["members"].as_array().unwrap().len(), 3, "{pool}");

    assert_eq!(call(&r, "DELETE", "/v1/pools/www.a.test./override", None).0, 204);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    let (_, pool) = call(&r, "GET", "/v1/pools/www.a.test.", None);
    assert_eq!((&pool["override"], pool["source"].as_str()), (&Value::Null, Some("config")), "{pool}");
    assert_eq!(pool["members"][0]["weight"], 1);
    assert_eq!(call(&r, "DELETE", "/v1/pools/www.a.test./override", None).0, 404);

    // A pool only the API has: its override is the pool, and deleting it removes it.
    let body = r#"{"members":[{"address":"198.51.100.1"}]}"#;
    assert_eq!(call(&r, "PUT", "/v1/pools/cdn.a.test.", Some(body)).0, 201);
    let (_, cdn) = call(&r, "GET", "/v1/pools/cdn.a.test.", None);
    assert_eq!((&cdn["file"], cdn["override"]["members"][0]["address"].as_str()), (&Value::Null, Some("198.51.100.1")));
    assert_eq!(call(&r, "DELETE", "/v1/pools/cdn.a.test./override", None).0, 204);
    let gone = udp(r.dns, &msg("cdn.a.test.", RecordType::A));
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    let r = kill_and_start(r, &cfg);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(call(&r, "GET", "/v1/pools/cdn.a.test.", None).0, 404);
}

/// A state database written by the previous version, whose member override is
/// the whole member: it loads as an override of every field it had (nothing
/// served changes), and deleting the override undoes it.
#[test]
fn a_whole_member_override_of_the_previous_version_loads_and_can_be_undone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let db = rusqlite::Connection::open(state.join("lbdns.sqlite3")).unwrap();
    db.execute_batch(
        "CREATE TABLE members (pool TEXT NOT NULL, address TEXT NOT NULL, body TEXT, PRIMARY KEY (pool, address));
         INSERT INTO members VALUES ('www.a.test.', '192.0.2.1',
             '{\"address\":\"192.0.2.1\",\"weight\":3,\"region\":null,\"enabled\":false}');",
    )
    .unwrap();
    drop(db);
    let r = spawn(&cfg);
    assert_eq!(www(&r), ["192.0.2.2"]);
    let m = member(&r, "192.0.2.1");
    assert_eq!((m["weight"].as_u64(), m["enabled"].as_bool()), (Some(3), Some(false)), "{m}");
    assert_eq!(m["override"], json!({"weight": 3, "enabled": false}), "{m}");
    let (_, pool) = call(&r, "GET", "/v1/pools/www.a.test.", None);
    let want = json!({"members": [{"address": "192.0.2.1", "weight": 3, "enabled": false}]});
    assert_eq!(pool["override"], want, "{pool}");
    assert_eq!(call(&r, "DELETE", "/v1/pools/www.a.test./members/192.0.2.1/override", None).0, 204);
    assert_eq!(www(&r), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(member(&r, "192.0.2.1")["weight"], 1);
}
