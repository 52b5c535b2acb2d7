//! DNS Cookies (RFC 7873, server cookies as RFC 9018) over real UDP and TCP: the
//! reply carries a server cookie, a valid one is recognised, rate limiting lets
//! clients with a valid cookie through and answers the others BADCOOKIE.

use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use crate::harness::*;

const CLIENT: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];

fn config(dns_extra: &str) -> String {
    format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n{dns_extra}\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"c.test.\"\nfile=\"c.zone\"\n"
    )
}

fn zone() -> String {
    small_zone("a IN A 192.0.2.1\n")
}

fn query(cookie: &[u8]) -> Message {
    let mut m = msg("a.c.test.", RecordType::A);
    m.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Unknown(10, cookie.to_vec()));
    m
}

fn reply_cookie(m: &Message) -> Option<Vec<u8>> {
    match m.edns.as_ref()?.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(10, data) => Some(data.clone()),
        other => panic!("unexpected cookie option {other:?}"),
    }
}

/// Checks a reply's cookie: our client cookie, then a version 1 server cookie made
/// within the last minute. Returns the whole option to send back.
fn check_cookie(m: &Message) -> Vec<u8> {
    let c = reply_cookie(m).expect("no COOKIE in the reply");
    assert_eq!(c.len(), 24, "client cookie + 16-byte server cookie");
    assert_eq!(c[..8], CLIENT, "the client cookie is echoed");
    assert_eq!(c[8..12], [1, 0, 0, 0], "version 1, reserved 0");
    let ts = u32::from_be_bytes([c[12], c[13], c[14], c[15]]) as i64;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - ts).abs() <= 60, "timestamp {ts} vs now {now}");
    c
}

#[test]
fn replies_carry_a_server_cookie_that_is_recognised_when_sent_back() {
    let s = Server::start(&config(""), &[("c.zone", &zone())]);
    // No cookie in, none out.
    let plain = udp(s.dns, &msg("a.c.test.", RecordType::A));
    assert!(reply_cookie(&plain).is_none());
    for transport in [udp as fn(_, &Message) -> Message, tcp] {
        // A client cookie alone: answered, with a server cookie.
        let first = transport(s.dns, &query(&CLIENT));
        assert_eq!(first.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&first), ["192.0.2.1"]);
        let cookie = check_cookie(&first);
        // Sent back: answered, with a (fresh) server cookie.
        let second = transport(s.dns, &query(&cookie));
        assert_eq!(addrs(&second), ["192.0.2.1"]);
        check_cookie(&second);
        // A server cookie that is not ours is no reason to refuse: answered, and
        // given a good one.
        let mut forged = cookie.clone();
        forged[23] ^= 0xff;
        let third = transport(s.dns, &query(&forged));
        assert_eq!(addrs(&third), ["192.0.2.1"]);
        check_cookie(&third);
    }
    // Malformed lengths (RFC 7873 5.2.2): FORMERR.
    for len in [5usize, 12, 41] {
        let r = udp(s.dns, &query(&vec![7u8; len]));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "cookie of {len} bytes");
    }
}

/// Sends `n` queries from one socket (with `cookie` unless it is empty) and sorts
/// the replies: (full answers, BADCOOKIE, others, the cookies BADCOOKIE gave).
fn burst(sock: &UdpSocket, dns: std::net::SocketAddr, cookie: &[u8], n: usize) -> (usize, usize, usize, Vec<Vec<u8>>) {
    let q = if cookie.is_empty() { msg("a.c.test.", RecordType::A) } else { query(cookie) };
    let q = q.to_vec().unwrap();
    for _ in 0..n {
        sock.send_to(&q, dns).unwrap();
    }
    let (mut full, mut badcookie, mut other, mut cookies) = (0, 0, 0, Vec::new());
    let mut buf = [0u8; 4096];
    while let Ok(len) = sock.recv(&mut buf) {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.response_code == ResponseCode::BADCOOKIE {
            assert!(m.answers.is_empty(), "BADCOOKIE carries no answer");
            assert!(!m.metadata.truncation);
            cookies.push(check_cookie(&m));
            badcookie += 1;
        } else if m.answers.len() == 1 {
            full += 1;
        } else {
            other += 1;
        }
    }
    (full, badcookie, other, cookies)
}

#[test]
fn rate_limiting_exempts_valid_cookies_and_answers_badcookie_to_the_rest() {
    let s = Server::start(&config("[dns.rrl]\nresponses_per_second=5\nslip=1\n"), &[("c.zone", &zone())]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let cookie = check_cookie(&udp(s.dns, &query(&CLIENT)));

    // 40 queries with a valid server cookie: every one answered in full.
    let (full, badcookie, other, _) = burst(&sock, s.dns, &cookie, 40);
    assert_eq!((full, badcookie, other), (40, 0, 0));

    // 40 with only a client cookie: 5 a second in full, the rest (slip = 1) BADCOOKIE
    // with a fresh cookie, never a truncated reply.
    let (full, badcookie, other, fresh) = burst(&sock, s.dns, &CLIENT, 40);
    assert!((4..=10).contains(&full), "{full} full answers");
    assert!(badcookie >= 25, "{badcookie} BADCOOKIE");
    assert_eq!(other, 0, "no truncated or empty replies");
    // The client retries with the cookie BADCOOKIE gave it and is answered.
    let (full, _, _, _) = burst(&sock, s.dns, &fresh[0], 10);
    assert_eq!(full, 10);
    // Without any cookie the limit applies as before: truncated slips, no BADCOOKIE.
    let (full, badcookie, truncated, _) = burst(&sock, s.dns, &[], 40);
    assert!(full <= 10 && badcookie == 0 && truncated >= 25, "{full} full, {badcookie} BADCOOKIE, {truncated} TC");
}

#[test]
fn servers_sharing_a_secret_accept_each_others_cookies() {
    let secret = ("secret", "e5e973e5a6b2a43f48e7dc849e37bfcf\n");
    let shared = config("cookie_secret_file=\"secret\"\n[dns.rrl]\nresponses_per_second=1\nslip=1\n");
    let a = Server::start(&shared, &[("c.zone", &zone()), secret]);
    let b = Server::start(&shared, &[("c.zone", &zone()), secret]);
    let other = Server::start(&config("[dns.rrl]\nresponses_per_second=1\nslip=1\n"), &[("c.zone", &zone())]);
    let cookie = check_cookie(&udp(a.dns, &query(&CLIENT)));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    // B knows A's cookie: all answered despite a limit of 1 a second.
    assert_eq!(burst(&sock, b.dns, &cookie, 20).0, 20);
    // A server with its own secret does not: limited, and told BADCOOKIE.
    let (full, badcookie, _, _) = burst(&sock, other.dns, &cookie, 20);
    assert!(full <= 2 && badcookie >= 18, "{full} full, {badcookie} BADCOOKIE");
}

#[test]
fn a_bad_cookie_secret_file_is_reported_at_its_line() {
    let err = Server::try_start(&config("cookie_secret_file=\"secret\""), &[("c.zone", &zone()), ("secret", "xyz")])
        .err()
        .expect("a bad secret must not start");
    assert!(err.contains("lbdns.toml:3:") && err.contains("32 hexadecimal digits"), "{err}");
    let err = Server::try_start(&config("cookie_secret_file=\"missing\""), &[("c.zone", &zone())]).err().unwrap();
    assert!(err.contains("lbdns.toml:3:") && err.contains("cannot read cookie_secret_file"), "{err}");
}

/// RFC 7873 section 5.4: a query with no question and a COOKIE option asks for a
/// server cookie. A client cookie alone, or with a valid server cookie: NOERROR and
/// a fresh cookie; with a server cookie that is not valid: BADCOOKIE and a fresh one.
#[test]
fn a_query_without_a_question_gets_a_server_cookie() {
    let s = Server::start(&config(""), &[("c.zone", &zone())]);
    let ask = |cookie: &[u8]| {
        let mut m = query(cookie);
        m.queries.clear();
        m
    };
    for transport in [udp as fn(_, &Message) -> Message, tcp] {
        let r = transport(s.dns, &ask(&CLIENT));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.queries.is_empty() && r.answers.is_empty());
        let good = check_cookie(&r);

        let r = transport(s.dns, &ask(&good));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "a valid server cookie is confirmed");
        check_cookie(&r);

        let mut forged = good.clone();
        forged[20] ^= 0xff;
        let r = transport(s.dns, &ask(&forged));
        assert_eq!(r.metadata.response_code, ResponseCode::BADCOOKIE, "a server cookie that is not ours");
        let fresh = check_cookie(&r);
        assert_ne!(fresh, forged);
    }
}

/// A COOKIE option of a wrong length is FORMERR from a server that answers
/// cookies (RFC 7873 section 5.2.2); with `cookies = false` it is an unknown
/// option like any other, and ignored.
#[test]
fn a_malformed_cookie_is_formerr_only_when_cookies_are_on() {
    let on = Server::start(&config(""), &[("c.zone", &zone())]);
    let off = Server::start(&config("cookies = false"), &[("c.zone", &zone())]);
    for bad in [&CLIENT[..4], &[0u8; 12][..], &[0u8; 41][..]] {
        let r = udp(on.dns, &query(bad));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{} bytes", bad.len());
        let r = udp(off.dns, &query(bad));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{} bytes", bad.len());
        assert_eq!(addrs(&r), ["192.0.2.1"]);
        assert!(reply_cookie(&r).is_none(), "no cookie from a server without cookies");
    }
    // A good cookie to a server without cookies: answered, no cookie back.
    let r = udp(off.dns, &query(&CLIENT));
    assert_eq!(addrs(&r), ["192.0.2.1"]);
    assert!(reply_cookie(&r).is_none());
}
