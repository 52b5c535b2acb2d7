//! The events history through the real server: a real backend killed and
//! restarted, a drain through the API, `GET /v1/events` and who may read
//! `/ui/api/events`.

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::backend::Backend;
use crate::harness::*;
use crate::ui::{TOKEN, example_with_token};

fn server(port: u16) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n\
         [[pool]]\nname=\"ev.h.test.\"\n[pool.health]\ncheck=\"http\"\nport={port}\n\
         interval=\"200ms\"\ntimeout=\"300ms\"\nrise=2\nfall=2\n\
         [[pool.member]]\naddress=\"127.0.0.11\"\n"
    );
    Server::start(&cfg, &[("h.zone", &small_zone("")), ("admin.token", &format!("{TOKEN}\n"))])
}

fn send(s: &Server, method: reqwest::Method, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = Client::new().request(method, format!("http://127.0.0.1:{}{path}", s.admin.port()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn events(s: &Server) -> Vec<Value> {
    let (status, body) = send(s, reqwest::Method::GET, "/v1/events", None, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().clone()
}

/// The members' events (a pool's own have no address), newest first.
fn member_events(s: &Server) -> Vec<Value> {
    events(s).into_iter().filter(|e| !e["address"].is_null()).collect()
}

/// Waits until the newest member event goes `from` → `to`, and returns it.
fn wait_event(s: &Server, from: &str, to: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = member_events(s);
        if let Some(e) = all.first().filter(|e| e["from"] == from && e["to"] == to) {
            return e.clone();
        }
        assert!(Instant::now() < deadline, "no {from} → {to} event: {all:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_and_restarted_backend_and_a_drain_are_recorded() {
    let b = Backend::http("127.0.0.11", 0);
    let port = b.addr.port();
    let s = server(port);
    // The first probe round settles before the server answers: up at start is no transition.
    drop(b);
    let down = wait_event(&s, "up", "down");
    assert_eq!(down["pool"], "ev.h.test.");
    assert_eq!(down["address"], "127.0.0.11");
    assert!(down["node"].is_null(), "not in a cluster: {down}");
    let reason = down["reason"].as_str().unwrap();
    assert!(reason.contains("refused") || reason.contains("connect"), "the probe error: {reason}");
    assert!(humantime::parse_rfc3339(down["time"].as_str().unwrap()).is_ok(), "{down}");
    let keys: Vec<&String> = down.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly time, pool, address, from, to, reason, node: {down}");

    let _b = Backend::http("127.0.0.11", port);
    let up = wait_event(&s, "down", "up");
    assert_eq!(up["reason"], "probe passed");

    let path = "/v1/pools/ev.h.test./members/127.0.0.11";
    let (status, body) = send(&s, reqwest::Method::PUT, path, Some(r#"{"enabled":false}"#), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    // The write is applied before its reply, so the event is already there.
    let all = member_events(&s);
    assert_eq!((all[0]["from"].as_str(), all[0]["to"].as_str()), (Some("up"), Some("drained")), "{all:?}");
    assert_eq!(all[0]["reason"], "drained through the API");
    assert_eq!(all.len(), 3, "newest first: drained, up, down: {all:?}");
    assert_eq!(all[2]["to"], "down");

    let (status, body) = send(&s, reqwest::Method::GET, "/v1/events?limit=1", None, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().len(), 1);
    let (status, body) = send(&s, reqwest::Method::GET, "/v1/events?limit=many", None, Some(TOKEN));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit"), "{body}");
}

#[test]
fn ui_events_follow_the_ui_public_rule_and_v1_needs_the_token() {
    let s = example_with_token("127.0.0.1", "");
    assert_eq!(send(&s, reqwest::Method::GET, "/ui/api/events", None, None).0, 200);
    assert_eq!(send(&s, reqwest::Method::GET, "/v1/events", None, None).0, 401);
    drop(s);
    let s = example_with_token("127.0.0.1", "ui_public = false");
    assert_eq!(send(&s, reqwest::Method::GET, "/ui/api/events", None, None).0, 401);
    let (status, body) = send(&s, reqwest::Method::GET, "/ui/api/events", None, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with('['), "{body}");
}

fn pool(s: &Server) -> Value {
    let (status, body) = send(s, reqwest::Method::GET, "/v1/pools/ev.h.test.", None, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The pool's own events: it goes all down when its only member does, and
/// comes back with it; a drain of that member takes it all down too.
#[test]
fn a_pool_with_no_member_left_is_all_down_until_one_is_back() {
    let b = Backend::http("127.0.0.11", 0);
    let port = b.addr.port();
    let s = server(port);
    assert_eq!(pool(&s)["all_down_since"], Value::Null);
    drop(b);
    wait_event(&s, "up", "down");
    // Recorded in the same step as the member's event, just after it.
    let e = events(&s)[0].clone();
    assert_eq!((e["pool"].as_str(), &e["address"]), (Some("ev.h.test."), &Value::Null), "{e}");
    assert_eq!((e["from"].as_str(), e["to"].as_str()), (Some("up"), Some("all-down")), "{e}");
    assert_eq!(e["reason"], "no IPv4 member is up and enabled: answering all_down = \"serve-all\"");
    assert_eq!(e.as_object().unwrap().len(), 7, "the same keys as a member's event: {e}");
    let since = pool(&s)["all_down_since"].as_str().map(str::to_string);
    assert!(since.as_deref().is_some_and(|t| humantime::parse_rfc3339(t).is_ok()), "{since:?}");
    let (_, state) = send(&s, reqwest::Method::GET, "/ui/api/state", None, None);
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["pools"][0]["all_down_since"].as_str(), since.as_deref(), "the page's state too");

    let _b = Backend::http("127.0.0.11", port);
    wait_event(&s, "down", "up");
    let e = events(&s)[0].clone();
    assert_eq!((e["from"].as_str(), e["to"].as_str(), &e["address"]), (Some("all-down"), Some("up"), &Value::Null));
    assert_eq!(pool(&s)["all_down_since"], Value::Null);

    let path = "/v1/pools/ev.h.test./members/127.0.0.11";
    let (status, body) = send(&s, reqwest::Method::PUT, path, Some(r#"{"enabled":false}"#), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let e = events(&s)[0].clone();
    assert_eq!((e["to"].as_str(), &e["address"]), (Some("all-down"), &Value::Null), "drained: {e}");
}
