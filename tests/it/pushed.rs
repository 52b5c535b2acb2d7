//! Health pushed from outside, through the real server: `PUT …/members/{address}/health`
//! overriding real probes of real backends (seen in DNS answers, the API, the
//! status page, metrics, events and explain), an override lapsing by itself,
//! bad bodies refused with the field named, overrides kept across `kill -9`
//! (SQLite), and `lbdns health`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::cli::spawn;
use crate::harness::*;

const TOKEN: &str = "pushed-token-0123456789abcdef0123";

/// Backends on 127.0.0.{first}, … all on one port (the pools' probe port).
pub fn backends(first: u8, n: usize) -> Vec<Backend> {
    for _ in 0..20 {
        let b0 = Backend::http(&format!("127.0.0.{first}"), 0);
        let port = b0.addr.port();
        let mut all = vec![b0];
        for i in 1..n {
            let ip = format!("127.0.0.{}", first as usize + i);
            match std::net::TcpListener::bind((ip.as_str(), port)) {
                Ok(l) => drop(l),
                Err(_) => break,
            }
            all.push(Backend::http(&ip, port));
        }
        if all.len() == n {
            return all;
        }
    }
    panic!("no common free port for {n} backends");
}

/// A pool probed over HTTP every 200 ms (rise 2, fall 2).
pub fn pool(name: &str, port: u16, extra: &str, members: &[&str]) -> String {
    let mut s = format!(
        "[[pool]]\nname=\"{name}\"\n{extra}\n[pool.health]\ncheck=\"http\"\nport={port}\n\
         interval=\"200ms\"\ntimeout=\"300ms\"\nrise=2\nfall=2\n"
    );
    for m in members {
        s.push_str(&format!("[[pool.member]]\naddress=\"{m}\"\n"));
    }
    s
}

fn server(pools: &str, extra: &str, files: &[(&str, &str)]) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n{extra}\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{pools}"
    );
    let mut all = vec![("h.zone", small_zone("")), ("admin.token", format!("{TOKEN}\n"))];
    all.extend(files.iter().map(|(n, t)| (*n, t.to_string())));
    let refs: Vec<(&str, &str)> = all.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Server::start(&cfg, &refs)
}

/// `METHOD path` on `admin` with the token: the status and the JSON body (or text).
pub fn call(admin: std::net::SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("http://{admin}{path}")).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `PUT …/members/{address}/health` with `body`, which must succeed: the member's JSON.
pub fn push(admin: std::net::SocketAddr, pool: &str, address: &str, body: Value) -> Value {
    let path = format!("/v1/pools/{pool}/members/{address}/health");
    let (status, v) = call(admin, "PUT", &path, Some(&body.to_string()));
    assert!(status == 200 || status == 201, "{path} {body}: {status} {v}");
    v
}

fn member(s: &Server, pool: &str, address: &str) -> Value {
    let (status, v) = call(s.admin, "GET", &format!("/v1/pools/{pool}"), None);
    assert_eq!(status, 200, "{v}");
    v["members"].as_array().unwrap().iter().find(|m| m["address"] == address).cloned().unwrap()
}

fn answered(s: &Server, name: &str) -> Vec<String> {
    let mut a = addrs(&s.query(name, RecordType::A));
    a.sort();
    a
}

/// Waits up to 10 s for `name` to be answered with exactly `want`.
fn wait_answers(s: &Server, name: &str, want: &[&str]) {
    let ok = wait_for(Duration::from_secs(10), || answered(s, name) == want);
    assert!(ok, "{name}: want {want:?}, answered {:?}", answered(s, name));
}

/// The newest event of `address`.
fn last_event(s: &Server, address: &str) -> Value {
    let (_, all) = call(s.admin, "GET", "/v1/events", None);
    all.as_array().unwrap().iter().find(|e| e["address"] == address).cloned().unwrap_or(Value::Null)
}

#[test]
fn an_override_decides_over_the_probes_and_is_shown_beside_them() {
    let b = backends(2, 2);
    let pools = pool("www.h.test.", b[0].addr.port(), "all_down=\"empty\"", &["127.0.0.2", "127.0.0.3"]);
    let s = server(&pools, "", &[]);
    let www = "www.h.test.";
    assert_eq!(answered(&s, www), ["127.0.0.2", "127.0.0.3"]);

    // Down over passing probes: out of the very next answer.
    let m = push(s.admin, www, "127.0.0.2", json!({"state": "down", "reason": "kernel upgrade"}));
    assert_eq!((m["state"].as_str(), m["health"].as_str()), (Some("down"), Some("up")), "{m}");
    assert_eq!(m["health_override"], json!({"state": "down", "reason": "kernel upgrade", "expires_at": null}));
    assert_eq!(answered(&s, www), ["127.0.0.3"]);
    let e = last_event(&s, "127.0.0.2");
    assert_eq!((e["from"].as_str(), e["to"].as_str()), (Some("up"), Some("down")), "{e}");
    assert_eq!(e["reason"], "health pushed down through the API: kernel upgrade");
    let metrics = http_get(&format!("http://{}/metrics", s.admin));
    assert!(metrics.contains("lbdns_member_override{pool=\"www.h.test.\",address=\"127.0.0.2\"} 1"), "{metrics}");
    assert!(metrics.contains("lbdns_member_override{pool=\"www.h.test.\",address=\"127.0.0.3\"} 0"), "{metrics}");
    let (_, why) = call(s.admin, "GET", "/v1/explain?name=www.h.test.&type=A&client=192.0.2.1", None);
    let m2 = why["pool"]["members"].as_array().unwrap().iter().find(|m| m["address"] == "127.0.0.2").unwrap();
    assert_eq!((m2["eligible"].as_bool(), m2["reason"].as_str()), (Some(false), Some("pushed down through the API")));
    assert_eq!(m2["health_override"]["reason"], "kernel upgrade");
    let (_, page) = call(s.admin, "GET", "/ui/api/state", None);
    let p = page["pools"].as_array().unwrap().iter().find(|p| p["name"] == www).unwrap();
    let row = p["members"].as_array().unwrap().iter().find(|m| m["address"] == "127.0.0.2").unwrap();
    assert_eq!((row["state"].as_str(), row["probed"].as_str()), (Some("down"), Some("up")), "{row}");
    assert_eq!(row["override"]["state"], "down");

    // Up over failing probes: answered while its probes say down.
    b[1].set_status(503);
    wait_answers(&s, www, &[]);
    let m = push(s.admin, www, "127.0.0.3", json!({"state": "up"}));
    assert_eq!((m["state"].as_str(), m["health"].as_str()), (Some("up"), Some("down")), "{m}");
    assert_eq!(answered(&s, www), ["127.0.0.3"]);
    let metrics = http_get(&format!("http://{}/metrics", s.admin));
    assert!(metrics.contains("lbdns_member_override{pool=\"www.h.test.\",address=\"127.0.0.3\"} 2"), "{metrics}");

    // Auto: both back to what their probes say.
    push(s.admin, www, "127.0.0.3", json!({"state": "auto"}));
    push(s.admin, www, "127.0.0.2", json!({"state": "auto"}));
    assert_eq!(answered(&s, www), ["127.0.0.2"]);
    let m = member(&s, www, "127.0.0.2");
    assert_eq!((m["state"].as_str(), &m["health_override"]), (Some("up"), &Value::Null), "{m}");
    assert_eq!(last_event(&s, "127.0.0.2")["reason"], "health override removed through the API");
    // "auto" again stores nothing and still shows the member.
    let m = push(s.admin, www, "127.0.0.2", json!({"state": "auto"}));
    assert_eq!(m["address"], "127.0.0.2");
}

#[test]
fn an_override_lapses_by_itself_at_its_expiry() {
    let b = backends(5, 2);
    let s = server(&pool("exp.h.test.", b[0].addr.port(), "", &["127.0.0.5", "127.0.0.6"]), "", &[]);
    let m = push(s.admin, "exp.h.test.", "127.0.0.5", json!({"state": "down", "expires_in": "1s"}));
    assert!(m["health_override"]["expires_at"].is_string(), "{m}");
    assert_eq!(answered(&s, "exp.h.test."), ["127.0.0.6"]);
    wait_answers(&s, "exp.h.test.", &["127.0.0.5", "127.0.0.6"]);
    assert_eq!(member(&s, "exp.h.test.", "127.0.0.5")["health_override"], Value::Null);
    let e = last_event(&s, "127.0.0.5");
    assert_eq!((e["to"].as_str(), e["reason"].as_str()), (Some("up"), Some("health override expired")), "{e}");
    let metrics = http_get(&format!("http://{}/metrics", s.admin));
    assert!(metrics.contains("lbdns_member_override{pool=\"exp.h.test.\",address=\"127.0.0.5\"} 0"), "{metrics}");
}

/// Drained wins over an override; a member pushed down is still served by
/// `all_down = "serve-all"` (it is enabled).
#[test]
fn drained_wins_and_serve_all_still_serves_a_member_pushed_down() {
    let b = backends(7, 2);
    let pools = pool("all.h.test.", b[0].addr.port(), "all_down=\"serve-all\"", &["127.0.0.7", "127.0.0.8"]);
    let s = server(&pools, "", &[]);
    let all = "all.h.test.";
    push(s.admin, all, "127.0.0.7", json!({"state": "down"}));
    assert_eq!(answered(&s, all), ["127.0.0.8"]);
    push(s.admin, all, "127.0.0.8", json!({"state": "down"}));
    assert_eq!(answered(&s, all), ["127.0.0.7", "127.0.0.8"], "serve-all serves every enabled member");
    let (status, v) = call(s.admin, "PUT", "/v1/pools/all.h.test./members/127.0.0.8", Some(r#"{"enabled": false}"#));
    assert_eq!(status, 200, "{v}");
    push(s.admin, all, "127.0.0.8", json!({"state": "up"}));
    assert_eq!(member(&s, all, "127.0.0.8")["state"], "drained");
    assert_eq!(answered(&s, all), ["127.0.0.7"], "the drained member is out whatever is pushed");
}

#[test]
fn bad_bodies_are_refused_with_the_field_named_and_store_nothing() {
    let b = backends(9, 1);
    let s = server(&pool("bad.h.test.", b[0].addr.port(), "", &["127.0.0.9"]), "", &[]);
    let path = "/v1/pools/bad.h.test./members/127.0.0.9/health";
    let cases: [(&str, u16, &str); 9] = [
        ("", 400, "no body"),
        ("{}", 400, "state"),
        (r#"{"state": "sideways"}"#, 422, "state"),
        (r#"{"state": "down", "ttl": 5}"#, 400, "ttl"),
        (r#"{"state": "down", "expires_in": "soon"}"#, 422, "expires_in"),
        (r#"{"state": "down", "expires_in": "0s"}"#, 422, "expires_in"),
        (r#"{"state": "auto", "expires_in": "5s"}"#, 422, "expires_in"),
        (r#"{"state": "down", "reason": 5}"#, 400, "reason"),
        (r#"{"state": "down""#, 400, "JSON"),
    ];
    for (body, want, field) in cases {
        let (status, v) = call(s.admin, "PUT", path, Some(body));
        let msg = v["error"].as_str().unwrap_or_default();
        assert_eq!(status, want, "{body}: {v}");
        assert!(msg.contains(field), "{body}: {msg:?} does not name {field}");
    }
    let long = json!({"state": "down", "reason": "x".repeat(300)}).to_string();
    assert_eq!(call(s.admin, "PUT", path, Some(&long)).0, 422);
    let down = Some(r#"{"state": "down"}"#);
    assert_eq!(call(s.admin, "PUT", "/v1/pools/bad.h.test./members/127.0.0.99/health", down).0, 404);
    assert_eq!(call(s.admin, "PUT", "/v1/pools/none.h.test./members/127.0.0.9/health", down).0, 404);
    assert_eq!(call(s.admin, "PUT", "/v1/pools/bad.h.test./members/not-an-ip/health", down).0, 400);
    assert_eq!(member(&s, "bad.h.test.", "127.0.0.9")["health_override"], Value::Null);
    assert_eq!(answered(&s, "bad.h.test."), ["127.0.0.9"]);
}

/// `lbdns health` sets overrides on the built binary; they stay across `kill -9`
/// and a new start (SQLite), a lapsed one included as lapsed, and `lbdns export`
/// carries them.
#[test]
fn overrides_set_with_the_client_survive_kill_9() {
    let (dir, cfg) = stored_pool_dir();
    let token = dir.path().join("admin.token");
    let health = |admin: std::net::SocketAddr, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
            .arg("health")
            .args(args)
            .args(["--server", &format!("http://{admin}"), "--token-file", token.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let mut r = spawn(&cfg);
    let out = health(r.admin, &["www.a.test", "192.0.2.1", "down", "--reason", "disk full"]);
    assert!(out.contains("down (pushed)") && out.contains("disk full"), "{out}");
    let out = health(r.admin, &["www.a.test", "192.0.2.2", "down", "--for", "1h"]);
    assert!(out.contains("until "), "{out}");
    let answers = |r: &crate::cli::Running| {
        let mut a = addrs(&udp(r.dns, &msg("www.a.test.", RecordType::A)));
        a.sort();
        a
    };
    assert_eq!(answers(&r), ["192.0.2.3"]);
    r.child.kill().unwrap();
    r.child.wait().unwrap();
    drop(r);
    let r = spawn(&cfg);
    assert_eq!(answers(&r), ["192.0.2.3"], "the overrides were kept");
    let (_, pool) = call(r.admin, "GET", "/v1/pools/www.a.test.", None);
    let one = pool["members"].as_array().unwrap().iter().find(|m| m["address"] == "192.0.2.1").unwrap().clone();
    assert_eq!(one["health_override"]["reason"], "disk full");
    health(r.admin, &["www.a.test", "192.0.2.1", "auto"]);
    assert_eq!(answers(&r), ["192.0.2.1", "192.0.2.3"]);
    drop(r);
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns")).arg("export").arg("--config").arg(&cfg).output().unwrap();
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(export.contains("health/www.a.test./192.0.2.2"), "{export}");
    assert!(!export.contains("health/www.a.test./192.0.2.1"), "auto removed it: {export}");
    import_into_fresh_store(&export);
}

/// A directory with a config (SQLite in `state/`, a token file made 0600) of
/// zone a.test. and pool www.a.test. of three members; returns it and the config.
fn stored_pool_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lbdns.toml");
    write(
        &cfg,
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         state_dir=\"state\"\n[[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
         [[pool]]\nname=\"www.a.test.\"\n[[pool.member]]\naddress=\"192.0.2.1\"\n\
         [[pool.member]]\naddress=\"192.0.2.2\"\n[[pool.member]]\naddress=\"192.0.2.3\"\n",
    );
    write(&dir.path().join("a.zone"), &small_zone(""));
    write(&dir.path().join("admin.token"), TOKEN);
    chmod_600(&dir.path().join("admin.token"));
    (dir, cfg)
}

/// An export with an override imports into an empty store and loads from it.
fn import_into_fresh_store(export: &str) {
    let (dir, cfg) = stored_pool_dir();
    let file = dir.path().join("export.json");
    write(&file, export);
    import(&cfg, &file);
    let r = spawn(&cfg);
    let mut a = addrs(&udp(r.dns, &msg("www.a.test.", RecordType::A)));
    a.sort();
    assert_eq!(a, ["192.0.2.1", "192.0.2.3"], "the imported override is in effect");
}

fn chmod_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn import(cfg: &Path, file: &Path) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_lbdns")).arg("import").arg("--config").arg(cfg).arg(file).output().unwrap();
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
}

/// `[health] health_file` read at start and watched: lines take effect, bad
/// ones are reported with FILE:LINE and ignored, a removed file hands every
/// member back to the probes, and a pool's own file replaces the global one.
#[test]
fn a_health_file_drives_members_and_reports_bad_lines() {
    let b = backends(11, 3);
    let port = b[0].addr.port();
    let own = pool("own.h.test.", port, "all_down=\"empty\"", &["127.0.0.11"]);
    let own = own.replace("fall=2\n", "fall=2\nhealth_file=\"own.txt\"\n");
    let pools = pool("www.h.test.", port, "all_down=\"empty\"", &["127.0.0.11", "127.0.0.12", "127.0.0.13"]) + &own;
    let s = server(&pools, "[health]\nhealth_file=\"health.txt\"", &[("health.txt", "127.0.0.12 down maintenance\n")]);
    let file = s.dir.path().join("health.txt");
    assert_eq!(answered(&s, "www.h.test."), ["127.0.0.11", "127.0.0.13"], "read before the first answer");
    let m = member(&s, "www.h.test.", "127.0.0.12");
    assert_eq!((m["state"].as_str(), m["health"].as_str()), (Some("down"), Some("up")), "{m}");
    assert_eq!(
        (m["health_file"]["reason"].as_str(), m["health_file"]["line"].as_u64()),
        (Some("maintenance"), Some(1))
    );

    write(&file, "127.0.0.12 up\nthis is not a line\n127.0.0.11 down draining for deploy\n");
    wait_answers(&s, "www.h.test.", &["127.0.0.12", "127.0.0.13"]);
    assert_eq!(answered(&s, "own.h.test."), ["127.0.0.11"], "a pool's own (missing) file replaces the global one");
    let (_, page) = call(s.admin, "GET", "/ui/api/state", None);
    let problems = page["health_file_problems"].as_array().unwrap();
    let want = format!("{}:2: ", file.display());
    assert!(problems.len() == 1 && problems[0].as_str().unwrap().starts_with(&want), "{problems:?}");
    let e = last_event(&s, "127.0.0.11");
    assert_eq!(e["reason"], format!("health file {}:3: draining for deploy", file.display()), "{e}");

    // File up over failing probes; an override over the file; drained over both.
    b[2].set_status(503);
    write(&file, "127.0.0.13 up\n");
    wait_answers(&s, "www.h.test.", &["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    let m = member(&s, "www.h.test.", "127.0.0.13");
    assert_eq!((m["state"].as_str(), m["health"].as_str()), (Some("up"), Some("down")), "{m}");
    push(s.admin, "www.h.test.", "127.0.0.13", json!({"state": "down"}));
    assert_eq!(answered(&s, "www.h.test."), ["127.0.0.11", "127.0.0.12"]);
    push(s.admin, "www.h.test.", "127.0.0.13", json!({"state": "auto"}));
    assert_eq!(answered(&s, "www.h.test."), ["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    let drain = Some(r#"{"enabled": false}"#);
    assert_eq!(call(s.admin, "PUT", "/v1/pools/www.h.test./members/127.0.0.13", drain).0, 200);
    assert_eq!(answered(&s, "www.h.test."), ["127.0.0.11", "127.0.0.12"]);

    // Without the file, the probes decide again.
    std::fs::remove_file(&file).unwrap();
    b[2].set_status(200);
    assert_eq!(call(s.admin, "PUT", "/v1/pools/www.h.test./members/127.0.0.13", Some(r#"{"enabled": true}"#)).0, 200);
    wait_answers(&s, "www.h.test.", &["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    assert_eq!(member(&s, "www.h.test.", "127.0.0.11")["health_file"], Value::Null);
}

/// `lbdns check` names a health file's bad lines as start-up does (FILE:LINE, a
/// warning: the other lines apply), and refuses a `probe_share` it cannot use.
#[test]
fn check_reports_health_file_lines_and_a_bad_probe_share() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n";
    write(&dir.path().join("a.zone"), &small_zone(""));
    write(&dir.path().join("health"), "192.0.2.1 down\n192.0.2.2 maybe\n");
    write(&dir.path().join("lbdns.toml"), &format!("{base}[health]\nhealth_file=\"health\"\n"));
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_lbdns"))
            .arg("check")
            .arg("--config")
            .arg(dir.path().join("lbdns.toml"))
            .output()
            .unwrap()
    };
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("{}:2: \"maybe\" is not up or down", dir.path().join("health").display())), "{err}");
    for (cluster, why) in
        [("probe_share=0", "at least 1"), ("probe_share=1\nhealth=\"local\"", "needs health = \"quorum\"")]
    {
        let cfg =
            format!("{base}[cluster]\nstore=\"etcd\"\nendpoints=[\"http://127.0.0.1:1\"]\nnode=\"a\"\n{cluster}\n");
        write(&dir.path().join("lbdns.toml"), &cfg);
        let out = check();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why) && err.contains("probe_share"), "{cluster}: {err}");
    }
}
