//! HTTP redirect balancing over real HTTP: the same pools, policies and health as DNS.

use std::collections::HashMap;

use reqwest::blocking::Client;

use crate::harness::*;

fn server(extra: &str) -> Server {
    server_with_host("unused.r.test", extra)
}

fn server_with_host(host: &str, extra: &str) -> Server {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [redirect]\nlisten=[\"127.0.0.1:0\"]\ntrusted_proxies=[\"127.0.0.0/8\"]\n\
         [redirect.hosts]\n\"{host}\"=\"{host}.\"\n\"rr.r.test\"=\"rr.r.test.\"\n\"w.r.test\"=\"w.r.test.\"\n\"aff.r.test\"=\"aff.r.test.\"\n\
         \"v6.r.test\"={{pool=\"v6.r.test.\",scheme=\"https\",port=8443,status=307}}\n\
         \"down.r.test\"=\"down.r.test.\"\n\"fb.r.test\"=\"fb.r.test.\"\n\"empty.r.test\"=\"empty.r.test.\"\n\
         [[zone]]\norigin=\"r.test.\"\nfile=\"r.zone\"\n\
         [[pool]]\nname=\"rr.r.test.\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
         [[pool.member]]\naddress=\"192.0.2.3\"\nenabled=false\n\
         [[pool]]\nname=\"w.r.test.\"\npolicy=\"weighted\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\nweight=3\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
         [[pool]]\nname=\"aff.r.test.\"\npolicy=\"affinity\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
         [[pool.member]]\naddress=\"192.0.2.3\"\n\
         [[pool]]\nname=\"v6.r.test.\"\n[[pool.member]]\naddress=\"2001:db8::1\"\n\
         [[pool]]\nname=\"down.r.test.\"\nall_down=\"servfail\"\n[pool.health]\ncheck=\"tcp\"\nport={closed_port}\n\
         [[pool.member]]\naddress=\"127.0.0.1\"\n\
         [[pool]]\nname=\"fb.r.test.\"\nall_down=\"fallback\"\nfallback=[\"198.51.100.9\"]\n\
         [pool.health]\ncheck=\"tcp\"\nport={closed_port}\n[[pool.member]]\naddress=\"127.0.0.1\"\n\
         [[pool]]\nname=\"empty.r.test.\"\nall_down=\"empty\"\n\
         [[pool.member]]\naddress=\"192.0.2.9\"\nenabled=false\n{extra}"
    );
    Server::start(&cfg, &[("r.zone", &small_zone(""))])
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

struct Reply {
    status: u16,
    location: String,
    headers: reqwest::header::HeaderMap,
}

fn get(c: &Client, s: &Server, host: &str, path: &str, xff: Option<&str>) -> Reply {
    let mut req = c.get(format!("http://{}{path}", s.redirect.unwrap())).header("host", host);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let r = req.send().unwrap();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    Reply { status: r.status().as_u16(), location, headers: r.headers().clone() }
}

#[test]
fn round_robin_rotates_and_keeps_path_and_query() {
    let s = server("");
    let c = client();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = get(&c, &s, "rr.r.test", "/x/y?a=1&b=2", None);
        assert_eq!(r.status, 302);
        assert_eq!(r.headers["cache-control"], "no-store");
        seen.push(r.location);
    }
    assert_ne!(seen[0], seen[1], "rotates: {seen:?}");
    assert_eq!(seen[0], seen[2]);
    for l in &seen {
        assert!(l == "http://192.0.2.1/x/y?a=1&b=2" || l == "http://192.0.2.2/x/y?a=1&b=2", "{l}");
    }
}

#[test]
fn weighted_shares_and_a_drained_member_never_chosen() {
    let s = server("");
    let c = client();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..2000 {
        *counts.entry(get(&c, &s, "w.r.test", "/", None).location).or_insert(0) += 1;
    }
    let share = counts.get("http://192.0.2.1/").copied().unwrap_or(0) as f64 / 20.0;
    assert!((share - 75.0).abs() < 4.0, "{counts:?}");
    for _ in 0..50 {
        assert_ne!(get(&c, &s, "rr.r.test", "/", None).location, "http://192.0.2.3/");
    }
}

#[test]
fn affinity_is_stable_per_client_behind_a_trusted_proxy() {
    let s = server("");
    let c = client();
    let mut firsts = std::collections::HashSet::new();
    for i in 0..40 {
        let xff = format!("198.51.{i}.7");
        let first = get(&c, &s, "aff.r.test", "/", Some(&xff)).location;
        for _ in 0..5 {
            assert_eq!(get(&c, &s, "aff.r.test", "/", Some(&xff)).location, first);
        }
        firsts.insert(first);
    }
    assert!(firsts.len() >= 2, "clients spread: {firsts:?}");
}

#[test]
fn failed_members_all_down_and_unknown_hosts() {
    let s = server("");
    let c = client();
    let r = get(&c, &s, "down.r.test", "/", None);
    assert_eq!(r.status, 503, "servfail -> 503");
    assert!(r.headers.contains_key("retry-after"));
    let r = get(&c, &s, "empty.r.test", "/", None);
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    let r = get(&c, &s, "fb.r.test", "/p", None);
    assert_eq!((r.status, r.location.as_str()), (302, "http://198.51.100.9/p"));
    let r = get(&c, &s, "nope.r.test", "/", None);
    assert_eq!(r.status, 404);
}

#[test]
fn ipv6_members_are_bracketed_with_host_options() {
    let s = server("");
    let c = client();
    let r = get(&c, &s, "V6.R.test:8080", "/a?b", None);
    assert_eq!((r.status, r.location.as_str()), (307, "https://[2001:db8::1]:8443/a?b"));
}

#[test]
fn a_forwarded_chain_ending_in_trusted_proxies_names_the_client() {
    // 127.0.0.0/8 is trusted here: trailing trusted hops are skipped, and the first
    // untrusted address from the right is the client.
    let s = server("");
    let c = client();
    let mut seen = std::collections::HashSet::new();
    for i in 0..40 {
        let chained = get(&c, &s, "aff.r.test", "/", Some(&format!("198.51.{i}.5, 127.0.0.9"))).location;
        let direct = get(&c, &s, "aff.r.test", "/", Some(&format!("198.51.{i}.5"))).location;
        assert_eq!(chained, direct, "client 198.51.{i}.5");
        seen.insert(direct);
    }
    // Were X-Forwarded-For ignored, every request would be the peer 127.0.0.1 and
    // get one member.
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn a_failed_member_is_never_chosen() {
    let open = std::net::TcpListener::bind("127.0.0.31:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let extra = format!(
        "[[pool]]\nname=\"hc.r.test.\"\n[pool.health]\ncheck=\"tcp\"\nport={port}\n\
         [[pool.member]]\naddress=\"127.0.0.31\"\n[[pool.member]]\naddress=\"127.0.0.32\"\n"
    );
    let s = server_with_host("hc.r.test", &extra);
    let c = client();
    for _ in 0..30 {
        let r = get(&c, &s, "hc.r.test", "/", None);
        assert_eq!((r.status, r.location.as_str()), (302, "http://127.0.0.31/"), "127.0.0.32 has nothing listening");
    }
    drop(open);
}

/// Sends a raw HTTP/1.1 request to the redirect listener and returns the reply head.
fn raw(s: &Server, request: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(s.redirect.unwrap()).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// The location a request with these `X-Forwarded-For` lines (each sent as its
/// own header line) is redirected to.
fn location_with_lines(s: &Server, lines: &[&str]) -> String {
    let xff: String = lines.iter().map(|l| format!("X-Forwarded-For: {l}\r\n")).collect();
    let reply = raw(s, &format!("GET / HTTP/1.1\r\nHost: aff.r.test\r\n{xff}Connection: close\r\n\r\n"));
    let head = reply.to_ascii_lowercase();
    let at = head.find("\r\nlocation: ").unwrap_or_else(|| panic!("no location in {reply}"));
    reply[at + 12..].lines().next().unwrap().trim().to_string()
}

#[test]
fn several_forwarded_for_lines_are_one_list_walked_from_the_right() {
    // A client writes its own X-Forwarded-For line; the trusted proxy adds another
    // line with the address it saw. The proxy's line decides, not the first one.
    let s = server("");
    let mut seen = std::collections::HashSet::new();
    for i in 0..40 {
        let real = format!("198.51.{i}.5");
        let forged_first = location_with_lines(&s, &["203.0.113.66", &format!("{real}, 127.0.0.9")]);
        let direct = location_with_lines(&s, &[&real]);
        assert_eq!(forged_first, direct, "client {real}");
        seen.insert(direct);
    }
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn an_asterisk_request_target_is_a_bad_request() {
    let s = server("");
    let reply = raw(&s, "GET * HTTP/1.1\r\nHost: rr.r.test\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(!reply.to_ascii_lowercase().contains("\r\nlocation:"), "{reply}");
    // An ordinary path is still redirected.
    let reply = raw(&s, "GET /x HTTP/1.1\r\nHost: rr.r.test\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 302"), "{reply}");
}
