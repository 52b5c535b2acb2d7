//! The richer health checks against real backends on loopback: what an http(s)
//! probe sends (method, headers, User-Agent), body regexes, keep-alive, probing
//! another address than the one answered, and several checks per member.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::Backend;
use crate::harness::*;
use crate::health::{answered, backends};

const TOKEN: &str = "checks-token-0123456789abcdef0123";

/// A server with `pools` (and `files`), an admin token, in zone h.test.
pub(crate) fn server_with(pools: &str, files: &[(&str, &str)]) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{pools}"
    );
    let zone = small_zone("");
    let mut all = vec![("h.zone", zone.as_str()), ("admin.token", TOKEN)];
    all.extend_from_slice(files);
    Server::start(&cfg, &all)
}

/// A pool with one health table of `health` lines (fast timing added) and `members`.
pub(crate) fn pool(name: &str, health: &str, extra_pool: &str, members: &[&str]) -> String {
    let mut s = format!(
        "[[pool]]\nname=\"{name}\"\n{extra_pool}\n[pool.health]\n{health}\ninterval=\"200ms\"\ntimeout=\"300ms\"\nrise=2\nfall=2\n"
    );
    for m in members {
        s.push_str(&format!("[[pool.member]]\n{m}\n"));
    }
    s
}

pub(crate) fn api(s: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://{}{path}", s.admin);
    let c = reqwest::blocking::Client::new();
    let mut req = c.request(method.parse().unwrap(), url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// The member `addr` of `pool` as `GET /v1/pools/{pool}` shows it.
pub(crate) fn member(s: &Server, pool: &str, addr: &str) -> Value {
    let (_, p) = api(s, "GET", &format!("/v1/pools/{pool}"), None);
    p["members"].as_array().unwrap().iter().find(|m| m["address"] == addr).cloned().unwrap_or(Value::Null)
}

pub(crate) const LONG: Duration = Duration::from_secs(5);

#[test]
fn method_headers_and_user_agent_reach_the_backend() {
    let b = Backend::http("127.0.0.2", 0);
    let port = b.addr.port();
    let health = format!(
        "check=\"http\"\nport={port}\npath=\"/healthz\"\nmethod=\"HEAD\"\n\
         headers={{ Authorization=\"Bearer inline\" }}\nheaders_file=\"probe.headers\""
    );
    let s = server_with(
        &pool("www.h.test.", &health, "", &["address=\"127.0.0.2\""]),
        &[("probe.headers", "# sent by every probe\nX-Probe-Secret: from-file\n")],
    );
    assert_eq!(answered(&s, "www.h.test."), vec!["127.0.0.2"]);
    let head = b.last_request().to_ascii_lowercase();
    assert!(head.starts_with("head /healthz http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nauthorization: bearer inline\r\n"), "{head}");
    assert!(head.contains("\r\nx-probe-secret: from-file\r\n"), "{head}");
    let ua = format!("\r\nuser-agent: lbdns/{} health-check\r\n", env!("CARGO_PKG_VERSION"));
    assert!(head.contains(&ua), "{head}");
    // The file's header is never shown by the API; the inline one is config.
    let (_, p) = api(&s, "GET", "/v1/pools/www.h.test.", None);
    assert!(!p.to_string().contains("from-file"), "{p}");
    assert_eq!(p["health"]["method"], "HEAD", "{p}");
}

#[test]
fn a_bad_headers_file_is_reported_with_file_and_line_by_check_and_at_start() {
    let health = "check=\"http\"\nport=9\nheaders_file=\"probe.headers\"";
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{}",
        pool("www.h.test.", health, "", &["address=\"127.0.0.2\""])
    );
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &cfg);
    write(&dir.path().join("h.zone"), &small_zone(""));
    write(&dir.path().join("probe.headers"), "X-Ok: 1\nAuthorization Bearer missing-colon\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["check", "--config"])
        .arg(dir.path().join("lbdns.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:2: expected `Name: value`", dir.path().join("probe.headers").display());
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains(&want), "{err}");
    let at_start = lbdns::Sources::load(&dir.path().join("lbdns.toml")).map(|_| ()).unwrap_err().to_string();
    assert!(at_start.contains(&want), "{at_start}");
}

#[test]
fn expect_body_regex_passes_and_fails() {
    let b = backends(2);
    let port = b[0].addr.port();
    b[0].set_body("status: ok 12 requests");
    b[1].set_body("status: degraded");
    let health = format!("check=\"http\"\nport={port}\nexpect_body_regex=\"ok [0-9]+\"");
    let s = server_with(&pool("re.h.test.", &health, "", &["address=\"127.0.0.2\"", "address=\"127.0.0.3\""]), &[]);
    assert_eq!(answered(&s, "re.h.test."), vec!["127.0.0.2"]);
    let m = member(&s, "re.h.test.", "127.0.0.3");
    assert_eq!(m["last_error"], "body does not match /ok [0-9]+/", "{m}");
    b[1].set_body("ok 1");
    assert!(wait_for(LONG, || answered(&s, "re.h.test.").len() == 2), "a matching body never brought it up");
}

#[test]
fn keepalive_reuses_one_connection_per_member_and_drops_it_after_a_failure() {
    let b = backends(2);
    let port = b[0].addr.port();
    for x in &b {
        x.set_keepalive(true);
    }
    let kept = format!("check=\"http\"\nport={port}");
    let fresh = format!("check=\"http\"\nport={port}\nkeepalive=false");
    let s = server_with(
        &[
            pool("kept.h.test.", &kept, "", &["address=\"127.0.0.2\""]),
            pool("fresh.h.test.", &fresh, "", &["address=\"127.0.0.3\""]),
        ]
        .concat(),
        &[],
    );
    assert!(wait_for(LONG, || b[0].requests() >= 5 && b[1].requests() >= 5), "too few probes");
    // The first round's connection, then the stream's one.
    assert!(b[0].connections() <= 2, "{} connections for {} probes", b[0].connections(), b[0].requests());
    assert_eq!(b[1].connections(), b[1].requests(), "keepalive = false opens one per probe");
    assert!(b[1].last_request().to_ascii_lowercase().contains("\r\nconnection: close\r\n"));

    let before = b[0].connections();
    b[0].set_status(500);
    assert!(wait_for(LONG, || answered(&s, "kept.h.test.").is_empty() || b[0].connections() >= before + 2));
    assert!(b[0].connections() >= before + 2, "a failed probe's connection was reused");
    b[0].set_status(200);
    assert!(wait_for(LONG, || answered(&s, "kept.h.test.") == ["127.0.0.2"]));
}

#[test]
fn a_member_is_probed_at_its_probe_address_from_the_config_and_the_api() {
    // Only 127.0.0.3 runs the health endpoint; the answered members have none.
    let health_ep = Backend::http("127.0.0.3", 0);
    let port = health_ep.addr.port();
    let probe = format!("address=\"127.0.0.2\"\nprobe=\"127.0.0.3:{port}\"");
    let s = server_with(&pool("vip.h.test.", "check=\"tcp\"\nport=9", "", &[&probe]), &[]);
    assert_eq!(answered(&s, "vip.h.test."), vec!["127.0.0.2"], "probed at 127.0.0.3, not at 127.0.0.2:9");
    assert_eq!(member(&s, "vip.h.test.", "127.0.0.2")["probe"], format!("127.0.0.3:{port}"));

    // An API member body takes `probe` too, and shows it.
    let body = format!(r#"{{"probe":"127.0.0.3:{port}"}}"#);
    let (st, v) = api(&s, "PUT", "/v1/pools/vip.h.test./members/127.0.0.4", Some(&body));
    assert_eq!(st, 201, "{v}");
    assert!(wait_for(LONG, || answered(&s, "vip.h.test.") == ["127.0.0.2", "127.0.0.4"]), "the API member never up");
    let m = member(&s, "vip.h.test.", "127.0.0.4");
    assert_eq!(m["probe"], format!("127.0.0.3:{port}"), "{m}");
    assert_eq!(m["override"]["probe"], format!("127.0.0.3:{port}"), "{m}");
    let (st, v) = api(&s, "PUT", "/v1/pools/vip.h.test./members/127.0.0.5", Some(r#"{"probe":"127.0.0.3:0"}"#));
    assert_eq!(st, 422, "{v}");

    // The probe address going away takes both members down.
    drop(health_ep);
    assert!(wait_for(LONG, || member(&s, "vip.h.test.", "127.0.0.2")["health"] == "down"), "never down");
}

#[test]
fn several_checks_must_all_pass_and_the_reason_names_the_failing_one() {
    let b = backends(2);
    let port = b[0].addr.port();
    // The tcp check's port listens on 127.0.0.2 only.
    let tcp = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let cfg = format!(
        "[[pool]]\nname=\"two.h.test.\"\nall_down=\"empty\"\n\
         [[pool.health]]\ncheck=\"tcp\"\nport={tcp_port}\ninterval=\"200ms\"\ntimeout=\"300ms\"\nrise=2\nfall=2\n\
         [[pool.health]]\ncheck=\"http\"\nport={port}\ntimeout=\"300ms\"\n\
         [[pool.member]]\naddress=\"127.0.0.2\"\n[[pool.member]]\naddress=\"127.0.0.3\"\n"
    );
    let s = server_with(&cfg, &[]);
    assert_eq!(answered(&s, "two.h.test."), vec!["127.0.0.2"]);
    let m = member(&s, "two.h.test.", "127.0.0.3");
    let err = m["last_error"].as_str().unwrap_or_default().to_string();
    assert!(err.starts_with(&format!("check 1 (tcp): connect 127.0.0.3:{tcp_port}")), "{m}");

    // The second check failing takes the member down too, and says so.
    b[0].set_status(503);
    assert!(wait_for(LONG, || answered(&s, "two.h.test.").is_empty()), "still answered with its http check failing");
    let m = member(&s, "two.h.test.", "127.0.0.2");
    assert_eq!(m["last_error"], "check 2 (http): status 503, expected [200]", "{m}");

    // The API shows the checks as a list, and takes one.
    let (_, p) = api(&s, "GET", "/v1/pools/two.h.test.", None);
    assert_eq!(p["health"].as_array().map(Vec::len), Some(2), "{p}");
    let health = json!([{"check": "tcp", "port": tcp_port, "interval": "200ms", "timeout": "300ms"},
                        {"check": "http", "port": port, "timeout": "300ms"}]);
    let body = json!({"members": [{"address": "127.0.0.2"}], "all_down": "empty", "health": health}).to_string();
    assert_eq!(api(&s, "PUT", "/v1/pools/api.h.test.", Some(&body)).0, 201);
    assert!(wait_for(LONG, || member(&s, "api.h.test.", "127.0.0.2")["health"] == "down"));
    b[0].set_status(200);
    assert!(wait_for(LONG, || answered(&s, "api.h.test.") == ["127.0.0.2"]), "never up with both checks passing");
    drop(tcp);
}

#[test]
fn with_keepalive_start_up_opens_one_connection_per_member() {
    // The first round's connection is the one the member's stream goes on with:
    // a backend sees one connection per member, not a second one at start-up.
    let b = backends(1);
    b[0].set_keepalive(true);
    let port = b[0].addr.port();
    let _s =
        server_with(&pool("one.h.test.", &format!("check=\"http\"\nport={port}"), "", &["address=\"127.0.0.2\""]), &[]);
    assert!(wait_for(LONG, || b[0].requests() >= 5), "too few probes");
    assert_eq!(b[0].connections(), 1, "{} connections for {} probes", b[0].connections(), b[0].requests());
}

/// `lbdns_probe_duration_seconds_count{check="http"}` as `/metrics` shows it.
fn http_probes_counted(s: &Server) -> u64 {
    let text = http_get(&format!("http://{}/metrics", s.admin));
    let line = text.lines().find(|l| l.starts_with("lbdns_probe_duration_seconds_count{check=\"http\"}"));
    line.and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn a_member_that_keeps_passing_shows_every_probe_and_still_falls_on_failures() {
    // Passes of a member that is up change nothing but its last probe: they are
    // counted, timed and shown all the same, and failures after many of them
    // still take it down after `fall`, and passes bring it back after `rise`.
    let b = backends(1);
    let port = b[0].addr.port();
    let s = server_with(
        &pool("steady.h.test.", &format!("check=\"http\"\nport={port}"), "", &["address=\"127.0.0.2\""]),
        &[],
    );
    assert!(wait_for(LONG, || member(&s, "steady.h.test.", "127.0.0.2")["health"] == "up"), "never up");
    // Counted first: a probe is counted after the backend has its request, so
    // `counted <= requests` here, whatever lands between the two reads.
    let counted = http_probes_counted(&s);
    let requests = b[0].requests();
    assert!(wait_for(LONG, || b[0].requests() >= requests + 5), "too few probes");
    let seen = b[0].requests();
    assert!(wait_for(LONG, || http_probes_counted(&s) as usize >= seen), "probes not counted in /metrics");
    assert!(http_probes_counted(&s) > counted + 4);
    let m = member(&s, "steady.h.test.", "127.0.0.2");
    assert!(m["last_rtt_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{m}");

    b[0].set_status(500);
    assert!(wait_for(LONG, || member(&s, "steady.h.test.", "127.0.0.2")["health"] == "down"), "never down");
    b[0].set_status(200);
    assert!(wait_for(LONG, || member(&s, "steady.h.test.", "127.0.0.2")["health"] == "up"), "never back up");
}
