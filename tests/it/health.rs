//! Health probes against real backends on loopback addresses, checked by real DNS
//! queries.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::backend::Backend;
use crate::harness::*;

pub(crate) fn server(pools: &str) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{pools}"
    );
    Server::start(&cfg, &[("h.zone", &small_zone(""))])
}

/// Backends on 127.0.0.2, 127.0.0.3, … all on one port (the pool's probe port).
pub(crate) fn backends(n: usize) -> Vec<Backend> {
    for _ in 0..20 {
        let first = Backend::http("127.0.0.2", 0);
        let port = first.addr.port();
        let mut all = vec![first];
        for i in 1..n {
            match std::net::TcpListener::bind((format!("127.0.0.{}", i + 2).as_str(), port)) {
                Ok(l) => drop(l),
                Err(_) => break,
            }
            all.push(Backend::http(&format!("127.0.0.{}", i + 2), port));
        }
        if all.len() == n {
            return all;
        }
    }
    panic!("no common free port for {n} backends");
}

fn pool(name: &str, check: &str, port: u16, extra_health: &str, extra_pool: &str, members: &[&str]) -> String {
    let fall = if extra_health.contains("fall=") { "" } else { "fall=2\n" };
    let mut s = format!(
        "[[pool]]\nname=\"{name}\"\n{extra_pool}\n[pool.health]\ncheck=\"{check}\"\nport={port}\n\
         interval=\"200ms\"\ntimeout=\"300ms\"\nrise=2\n{fall}{extra_health}\n"
    );
    for m in members {
        s.push_str(&format!("[[pool.member]]\naddress=\"{m}\"\n"));
    }
    s
}

pub(crate) fn answered(s: &Server, name: &str) -> Vec<String> {
    let mut a = addrs(&s.query(name, RecordType::A));
    a.sort();
    a
}

/// Polls `cond` until it holds or `deadline` passes; returns the time it took.
fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn failed_member_leaves_within_fall_intervals_and_returns_after_rise() {
    let b = backends(2);
    let port = b[0].addr.port();
    let s = server(&pool("www.h.test.", "http", port, "path=\"/healthz\"", "", &["127.0.0.2", "127.0.0.3"]));
    assert_eq!(answered(&s, "www.h.test."), vec!["127.0.0.2", "127.0.0.3"]);

    b[1].set_status(503);
    // fall · interval (+10% jitter) + timeout + 1 s.
    let deadline = Duration::from_millis(2 * 220 + 300 + 1000);
    let took = wait_for(deadline, || answered(&s, "www.h.test.") == vec!["127.0.0.2"]);
    assert!(took.is_some(), "member still answered after {deadline:?}");

    b[1].set_status(200);
    let took = wait_for(deadline, || answered(&s, "www.h.test.").len() == 2);
    assert!(took.is_some(), "member not back after {deadline:?}");
}

#[test]
fn checks_status_body_host_redirects_timeouts_and_tcp() {
    let b = backends(6);
    let port = b[0].addr.port();
    // .2 right body; .3 wrong body; .4 checks the Host header; .5 answers 301;
    // .6 accepts and never answers; .7 fine.
    b[1].set_body("not what you want");
    b[2].expect_host("api.h.test");
    b[3].set_status(301);
    b[4].set_hang(true);
    let all = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"];
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = [
        pool("body.h.test.", "http", port, "expect_body=\"ok\"", "", &["127.0.0.2", "127.0.0.3"]),
        pool("hostok.h.test.", "http", port, "host=\"api.h.test\"", "", &["127.0.0.4"]),
        pool("hostbad.h.test.", "http", port, "host=\"other.h.test\"", "all_down=\"empty\"", &["127.0.0.4"]),
        pool("redirect.h.test.", "http", port, "", "all_down=\"empty\"", &["127.0.0.5", "127.0.0.7"]),
        pool("redirect-ok.h.test.", "http", port, "expect_status=[301]", "", &["127.0.0.5", "127.0.0.7"]),
        pool("hang.h.test.", "http", port, "", "", &["127.0.0.6", "127.0.0.7"]),
        pool("tcp.h.test.", "tcp", port, "", "", &all),
        pool("tcpclosed.h.test.", "tcp", closed_port, "", "all_down=\"empty\"", &["127.0.0.2"]),
    ]
    .concat();
    let s = server(&cfg);
    assert_eq!(answered(&s, "body.h.test."), vec!["127.0.0.2"]);
    assert_eq!(answered(&s, "hostok.h.test."), vec!["127.0.0.4"]);
    assert_eq!(answered(&s, "hostbad.h.test."), Vec::<String>::new());
    assert_eq!(answered(&s, "redirect.h.test."), vec!["127.0.0.7"], "a 301 is a failure");
    assert_eq!(answered(&s, "redirect-ok.h.test."), vec!["127.0.0.5"], "unless expected");
    assert_eq!(answered(&s, "hang.h.test."), vec!["127.0.0.7"], "a backend that never answers times out");
    assert_eq!(answered(&s, "tcp.h.test.").len(), 6, "every port is open");
    assert_eq!(answered(&s, "tcpclosed.h.test."), Vec::<String>::new());
}

#[test]
fn https_verifies_the_certificate_unless_told_not_to() {
    let b = Backend::https("127.0.0.9", 0, &["www.h.test"]);
    let port = b.addr.port();
    let s = server(
        &[
            pool("verify.h.test.", "https", port, "host=\"www.h.test\"", "all_down=\"empty\"", &["127.0.0.9"]),
            pool("noverify.h.test.", "https", port, "host=\"www.h.test\"\ntls_verify=false", "", &["127.0.0.9"]),
        ]
        .concat(),
    );
    assert_eq!(answered(&s, "verify.h.test."), Vec::<String>::new(), "self-signed fails verification");
    assert_eq!(answered(&s, "noverify.h.test."), vec!["127.0.0.9"]);
}

#[test]
fn every_all_down_mode_with_every_member_down() {
    let b = backends(2);
    let port = b[0].addr.port();
    b[0].set_status(500);
    b[1].set_status(500);
    let m = ["127.0.0.2", "127.0.0.3"];
    let s = server(
        &[
            pool("serveall.h.test.", "http", port, "", "all_down=\"serve-all\"", &m),
            pool("empty.h.test.", "http", port, "", "all_down=\"empty\"", &m),
            pool("servfail.h.test.", "http", port, "", "all_down=\"servfail\"", &m),
            pool("fallback.h.test.", "http", port, "", "all_down=\"fallback\"\nfallback=[\"198.51.100.9\"]", &m),
        ]
        .concat(),
    );
    assert_eq!(answered(&s, "serveall.h.test."), vec!["127.0.0.2", "127.0.0.3"], "fail open");
    let r = s.query("empty.h.test.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(s.query("servfail.h.test.", RecordType::A).metadata.response_code, ResponseCode::ServFail);
    assert_eq!(answered(&s, "fallback.h.test."), vec!["198.51.100.9"]);
}

#[test]
fn pools_sharing_a_member_and_spec_share_one_probe_stream() {
    let b = backends(1);
    let port = b[0].addr.port();
    let started = Instant::now();
    let s = server(
        &[
            // Same Host header too: the default Host is the pool name, which differs.
            pool("a.h.test.", "http", port, "host=\"shared.h.test\"", "", &["127.0.0.2"]),
            pool("b.h.test.", "http", port, "host=\"shared.h.test\"", "", &["127.0.0.2"]),
        ]
        .concat(),
    );
    // The first round probed the shared key once.
    assert_eq!(b[0].requests(), 1);
    std::thread::sleep(Duration::from_millis(1050));
    // One stream at 200 ms ±10% makes at most one request per 180 ms since the
    // server started (bounded by the time the test saw, so that a slow start
    // under load cannot fail it): about 7; two streams would make ~10.
    let n = b[0].requests();
    let most = 1 + (started.elapsed().as_millis() / 180) as usize;
    assert!((3..=most).contains(&n), "{n} requests in {:?}, at most {most} from one stream", started.elapsed());
    drop(s);
}

#[test]
fn a_backend_down_at_start_is_never_answered() {
    let b = backends(2);
    let port = b[0].addr.port();
    b[1].set_status(500);
    let s = server(&pool("www.h.test.", "http", port, "fall=3", "", &["127.0.0.2", "127.0.0.3"]));
    for _ in 0..50 {
        assert_eq!(answered(&s, "www.h.test."), vec!["127.0.0.2"]);
    }
}

/// A probe's result reaches every pool that has the member as the pools are now
/// (the writer's index of probes to pools follows every change): a member added
/// to a config pool through the API comes up, goes down and up with its backend,
/// and so does a pool created through the API with the same check beside it.
#[test]
fn a_flip_reaches_the_pools_changed_through_the_api() {
    const TOKEN: &str = "flip-token-0123456789abcdef012345";
    let b = backends(2);
    let port = b[0].addr.port();
    let shared = "host=\"shared.h.test\"";
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{}",
        pool("a.h.test.", "http", port, shared, "", &["127.0.0.2"])
    );
    let s = Server::start(&cfg, &[("h.zone", &small_zone("")), ("admin.token", TOKEN)]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let put = |path: &str, body: &str| {
        let url = format!("http://{}{path}", s.admin);
        let resp = http.put(url).bearer_auth(TOKEN).header("content-type", "application/json").body(body.to_string());
        resp.send().unwrap().status().as_u16()
    };
    let a = |want: &[&str]| answered(&s, "a.h.test.") == want;
    assert_eq!(put("/v1/pools/a.h.test./members/127.0.0.3", "{}"), 201);
    assert!(wait_for(Duration::from_secs(5), || a(&["127.0.0.2", "127.0.0.3"])).is_some(), "the new member never up");
    b[1].set_status(500);
    assert!(wait_for(Duration::from_secs(5), || a(&["127.0.0.2"])).is_some(), "the new member answered after failing");
    b[1].set_status(200);
    assert!(wait_for(Duration::from_secs(5), || a(&["127.0.0.2", "127.0.0.3"])).is_some(), "never up again");

    let health = format!(
        r#"{{"check":"http","port":{port},"host":"shared.h.test","interval":"200ms","timeout":"300ms","rise":2,"fall":2}}"#
    );
    let body = format!(r#"{{"members":[{{"address":"127.0.0.3"}}],"all_down":"empty","health":{health}}}"#);
    assert_eq!(put("/v1/pools/c.h.test.", &body), 201);
    let both = |want: &[&str]| a(want) && answered(&s, "c.h.test.") == want[1..];
    assert!(wait_for(Duration::from_secs(5), || both(&["127.0.0.2", "127.0.0.3"])).is_some(), "pool c never up");
    b[1].set_status(500);
    assert!(wait_for(Duration::from_secs(5), || both(&["127.0.0.2"])).is_some(), "127.0.0.3 answered after failing");
    b[1].set_status(200);
    assert!(wait_for(Duration::from_secs(5), || both(&["127.0.0.2", "127.0.0.3"])).is_some(), "never up again");
}
