//! The `dns` and `tls` health checks against real servers on loopback: a tiny
//! DNS server whose replies the test sets (code, answer, truncation), and the
//! tests' HTTPS backend with its rcgen certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};

use serde_json::json;

use crate::harness::*;
use crate::health::answered;
use crate::health_checks::{LONG, api, member, pool, server_with};

/// What the tiny DNS server replies.
#[derive(Clone)]
struct Reply {
    rcode: ResponseCode,
    answer: Option<std::net::Ipv4Addr>,
    /// Truncate UDP replies (no answers, TC=1): the full one is over TCP only.
    truncate: bool,
}

/// A DNS server on 127.0.0.1 (UDP and TCP, one port) answering every query
/// with the current [`Reply`]; its threads live as long as the test process.
struct TinyDns {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
}

impl TinyDns {
    fn start() -> TinyDns {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).unwrap();
        let reply = Arc::new(Mutex::new(Reply {
            rcode: ResponseCode::NoError,
            answer: Some([192, 0, 2, 7].into()),
            truncate: false,
        }));
        let r = reply.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let cur = r.lock().unwrap().clone();
                if let Some(out) = answer(&buf[..n], &cur, cur.truncate) {
                    let _ = udp.send_to(&out, from);
                }
            }
        });
        let r = reply.clone();
        std::thread::spawn(move || {
            for mut c in tcp.incoming().flatten() {
                let mut len = [0u8; 2];
                let mut q = vec![];
                if c.read_exact(&mut len).is_ok() {
                    q.resize(u16::from_be_bytes(len) as usize, 0);
                }
                let cur = r.lock().unwrap().clone();
                if c.read_exact(&mut q).is_ok()
                    && let Some(out) = answer(&q, &cur, false)
                {
                    let _ = c.write_all(&[&(out.len() as u16).to_be_bytes()[..], &out].concat());
                }
            }
        });
        TinyDns { addr, reply }
    }

    fn set(&self, rcode: ResponseCode, answer: Option<[u8; 4]>) {
        let mut r = self.reply.lock().unwrap();
        r.rcode = rcode;
        r.answer = answer.map(Into::into);
    }
}

fn answer(query: &[u8], r: &Reply, truncate: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.response_code = r.rcode;
    m.metadata.truncation = truncate;
    m.add_queries(q.queries.clone());
    if let (Some(ip), false) = (r.answer, truncate) {
        m.add_answer(Record::from_rdata(q.queries[0].name().clone(), 60, RData::A(A(ip))));
    }
    m.to_vec().ok()
}

/// A pool probed with `health` whose members 127.0.0.2 and .3 are probed at `a` and `b`.
fn dns_pool(name: &str, health: &str, a: SocketAddr, b: SocketAddr) -> String {
    let m2 = format!("address=\"127.0.0.2\"\nprobe=\"{a}\"");
    let m3 = format!("address=\"127.0.0.3\"\nprobe=\"{b}\"");
    pool(name, health, "all_down=\"empty\"", &[&m2, &m3])
}

#[test]
fn dns_check_passes_on_the_expected_reply_and_fails_on_nxdomain_refused_or_a_wrong_answer() {
    let (a, b) = (TinyDns::start(), TinyDns::start());
    let health = "check=\"dns\"\nqname=\"svc.example.\"\nexpect_answer=\"192.0.2.7\"";
    let s = server_with(&dns_pool("d.h.test.", health, a.addr, b.addr), &[]);
    assert!(wait_for(LONG, || answered(&s, "d.h.test.") == ["127.0.0.2", "127.0.0.3"]), "never both up");

    let cases = [
        (ResponseCode::NXDomain, None, "rcode NXDOMAIN, expected NOERROR"),
        (ResponseCode::Refused, None, "rcode REFUSED, expected NOERROR"),
        (ResponseCode::NoError, Some([192, 0, 2, 8]), "answer does not contain \"192.0.2.7\""),
    ];
    for (rcode, ans, why) in cases {
        b.set(rcode, ans);
        assert!(wait_for(LONG, || answered(&s, "d.h.test.") == ["127.0.0.2"]), "{why}: still answered");
        assert!(wait_for(LONG, || member(&s, "d.h.test.", "127.0.0.3")["last_error"] == why), "{why}");
        b.set(ResponseCode::NoError, Some([192, 0, 2, 7]));
        assert!(wait_for(LONG, || answered(&s, "d.h.test.").len() == 2), "{why}: never back up");
    }
}

#[test]
fn dns_check_expects_another_rcode_and_asks_again_over_tcp_when_truncated() {
    let (a, b) = (TinyDns::start(), TinyDns::start());
    // Over UDP only the truncated reply (no answer) comes: the answer is over TCP.
    a.reply.lock().unwrap().truncate = true;
    b.set(ResponseCode::NXDomain, None);
    let health = "check=\"dns\"\nqname=\"gone.example.\"\nqtype=\"AAAA\"\nexpect_rcode=\"nxdomain\"";
    let s = server_with(&dns_pool("x.h.test.", health, a.addr, b.addr), &[]);
    assert!(wait_for(LONG, || answered(&s, "x.h.test.") == ["127.0.0.3"]), "NXDOMAIN expected, NOERROR got");
    let health = "check=\"dns\"\nqname=\"svc.example.\"\nexpect_answer=\"192.0.2.7\"";
    let s = server_with(&dns_pool("t.h.test.", health, a.addr, b.addr), &[]);
    assert!(wait_for(LONG, || answered(&s, "t.h.test.") == ["127.0.0.2"]), "the TCP retry's answer was not seen");
}

#[test]
fn dns_check_config_errors_name_the_file_line_and_problem() {
    let cases = [
        ("check=\"dns\"", "check dns needs a qname"),
        ("check=\"dns\"\nqname=\"a.example.\"\nqtype=\"BOGUS\"", "qtype \"BOGUS\" is not a record type"),
        ("check=\"dns\"\nqname=\"a.example.\"\nexpect_rcode=\"FINE\"", "expect_rcode \"FINE\" is not a response code"),
        ("check=\"tcp\"\nport=1\nqname=\"a.example.\"", "qname applies to dns checks only"),
    ];
    for (health, want) in cases {
        let cfg = format!(
            "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
             [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{}",
            pool("p.h.test.", health, "", &["address=\"127.0.0.2\""])
        );
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("lbdns.toml"), &cfg);
        write(&dir.path().join("h.zone"), &small_zone(""));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbdns"))
            .args(["check", "--config"])
            .arg(dir.path().join("lbdns.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{health}: {err}");
        let at = format!("{}:8:", dir.path().join("lbdns.toml").display());
        assert!(err.contains(&at) && err.contains(want), "{health}: want {at} … {want}: {err}");
        let at_start = lbdns::Sources::load(&dir.path().join("lbdns.toml")).map(|_| ()).unwrap_err().to_string();
        assert!(at_start.contains(want), "{at_start}");
    }
}

#[test]
fn tls_check_shows_cert_days_fails_on_a_wrong_host_and_below_min_cert_days() {
    let b = crate::backend::Backend::https("127.0.0.4", 0, &["www.h.test"]);
    let port = b.addr.port();
    // tls_verify = false: the test CA is no system root, but name and dates are checked.
    let good = format!("check=\"tls\"\nport={port}\nhost=\"www.h.test\"\ntls_verify=false");
    let wrong = format!("check=\"tls\"\nport={port}\nhost=\"other.h.test\"\ntls_verify=false");
    let s = server_with(
        &[
            pool("good.h.test.", &good, "all_down=\"empty\"", &["address=\"127.0.0.4\""]),
            pool("wrong.h.test.", &wrong, "all_down=\"empty\"", &["address=\"127.0.0.4\""]),
        ]
        .concat(),
        &[],
    );
    assert!(wait_for(LONG, || answered(&s, "good.h.test.") == ["127.0.0.4"]), "the tls check never passed");
    assert!(wait_for(LONG, || member(&s, "wrong.h.test.", "127.0.0.4")["health"] == "down"));
    let m = member(&s, "wrong.h.test.", "127.0.0.4");
    assert_eq!(m["last_error"], "TLS: certificate is not valid for \"other.h.test\"", "{m}");
    assert!(answered(&s, "wrong.h.test.").is_empty());

    let m = member(&s, "good.h.test.", "127.0.0.4");
    let days = m["cert_days"].as_i64().unwrap_or_else(|| panic!("no cert_days: {m}"));
    assert!(days > 0, "{m}");
    let url = format!("http://{}/metrics", s.admin);
    let metrics = reqwest::blocking::get(url).unwrap().text().unwrap();
    let want = format!("lbdns_member_cert_days{{pool=\"good.h.test.\",address=\"127.0.0.4\"}} {days}");
    assert!(metrics.contains(&want), "{want} not in {metrics}");

    // min_cert_days above the certificate's days fails, naming both.
    let min = days + 1;
    let health = json!({"check": "tls", "port": port, "host": "www.h.test", "tls_verify": false,
                        "min_cert_days": min, "interval": "200ms", "timeout": "300ms"});
    let body = json!({"members": [{"address": "127.0.0.4"}], "all_down": "empty", "health": health}).to_string();
    assert_eq!(api(&s, "PUT", "/v1/pools/min.h.test.", Some(&body)).0, 201);
    assert!(wait_for(LONG, || member(&s, "min.h.test.", "127.0.0.4")["health"] == "down"), "min_cert_days ignored");
    let m = member(&s, "min.h.test.", "127.0.0.4");
    let why = format!("certificate expires in {days} days, fewer than min_cert_days {min}");
    assert_eq!(m["last_error"], why, "{m}");
    assert_eq!(m["cert_days"], days, "{m}");
}
