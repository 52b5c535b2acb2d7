//! DNS behaviour (README, "DNS behaviour") against the example zone, over UDP and TCP.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::harness::*;

struct Case {
    name: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    aa: bool,
    /// Expected answer lines ("name TYPE rdata"), any order; `None` = just count.
    answers: &'static [&'static str],
    answer_count: usize,
    authority: &'static [RecordType],
    additional_records: usize,
}

const fn case(name: &'static str, qtype: RecordType, rcode: ResponseCode, aa: bool) -> Case {
    Case { name, qtype, rcode, aa, answers: &[], answer_count: 0, authority: &[], additional_records: 0 }
}

fn cases() -> Vec<Case> {
    use RecordType as T;
    use ResponseCode as R;
    vec![
        Case {
            answers: &[
                "static.example.test. A 192.0.2.31",
                "static.example.test. A 192.0.2.32",
                "static.example.test. A 192.0.2.33",
            ],
            answer_count: 3,
            ..case("static.example.test.", T::A, R::NoError, true)
        },
        Case { answer_count: 2, ..case("static.example.test.", T::AAAA, R::NoError, true) },
        // NODATA: the name exists without that type.
        Case { authority: &[T::SOA], ..case("static.example.test.", T::TXT, R::NoError, true) },
        Case { authority: &[T::SOA], ..case("nope.example.test.", T::A, R::NXDomain, true) },
        Case { authority: &[T::SOA], ..case("deep.nope.example.test.", T::AAAA, R::NXDomain, true) },
        case("example.com.", T::A, R::Refused, false),
        case("test.", T::SOA, R::Refused, false),
        Case { answer_count: 1, ..case("example.test.", T::SOA, R::NoError, true) },
        // The MX target's addresses in the additional section.
        Case {
            answers: &["example.test. MX 10 mail.example.test."],
            answer_count: 1,
            additional_records: 2,
            ..case("example.test.", T::MX, R::NoError, true)
        },
        Case { answer_count: 1, ..case("example.test.", T::CAA, R::NoError, true) },
        Case { answer_count: 2, additional_records: 3, ..case("example.test.", T::NS, R::NoError, true) },
        // The SRV target is a pool: no additional data.
        Case { answer_count: 1, ..case("_http._tcp.example.test.", T::SRV, R::NoError, true) },
        Case { answer_count: 1, additional_records: 2, ..case("_dns._udp.example.test.", T::SRV, R::NoError, true) },
        Case { answer_count: 1, ..case("www.example.test.", T::TXT, R::NoError, true) },
        // In-zone CNAME chain to static data.
        Case {
            answers: &[
                "docs.example.test. CNAME static.example.test.",
                "static.example.test. A 192.0.2.31",
                "static.example.test. A 192.0.2.32",
                "static.example.test. A 192.0.2.33",
            ],
            answer_count: 4,
            ..case("docs.example.test.", T::A, R::NoError, true)
        },
        Case {
            answers: &["docs.example.test. CNAME static.example.test."],
            answer_count: 1,
            ..case("docs.example.test.", T::CNAME, R::NoError, true)
        },
        // CNAME to a name without that type: the CNAME, then NODATA.
        Case { answer_count: 1, authority: &[T::SOA], ..case("docs.example.test.", T::MX, R::NoError, true) },
        // Wildcards (RFC 4592): owner is the query name; deeper names match too.
        Case {
            answers: &["x.apps.example.test. A 192.0.2.80"],
            answer_count: 1,
            ..case("x.apps.example.test.", T::A, R::NoError, true)
        },
        Case {
            answers: &["y.z.apps.example.test. A 192.0.2.80"],
            answer_count: 1,
            ..case("y.z.apps.example.test.", T::A, R::NoError, true)
        },
        Case { authority: &[T::SOA], ..case("x.apps.example.test.", T::MX, R::NoError, true) },
        // The empty non-terminal above the wildcard exists: NODATA, not NXDOMAIN.
        Case { authority: &[T::SOA], ..case("apps.example.test.", T::A, R::NoError, true) },
        // Referral with glue, not authoritative.
        Case {
            authority: &[T::NS, T::NS],
            additional_records: 3,
            ..case("foo.child.example.test.", T::A, R::NoError, false)
        },
        Case {
            authority: &[T::NS, T::NS],
            additional_records: 3,
            ..case("child.example.test.", T::NS, R::NoError, false)
        },
        // ANY: one RRset (RFC 8482).
        Case { answer_count: 2, additional_records: 3, ..case("example.test.", T::ANY, R::NoError, true) },
    ]
}

fn check(c: &Case, r: &Message, via: &str) {
    let ctx = format!("{} {} via {via}: {r}", c.name, c.qtype);
    assert_eq!(r.metadata.response_code, c.rcode, "rcode for {ctx}");
    assert_eq!(r.metadata.authoritative, c.aa, "AA for {ctx}");
    assert!(!r.metadata.recursion_available, "RA for {ctx}");
    assert!(!r.metadata.truncation, "TC for {ctx}");
    assert_eq!(r.answers.len(), c.answer_count, "answer count for {ctx}");
    if !c.answers.is_empty() {
        let mut got = lines(&r.answers);
        got.sort();
        let mut want: Vec<String> = c.answers.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "answers for {ctx}");
    }
    let auth: Vec<RecordType> = r.authorities.iter().map(|r| r.record_type()).collect();
    assert_eq!(auth, c.authority, "authority for {ctx}");
    assert_eq!(r.additionals.len(), c.additional_records, "additional for {ctx}");
    assert!(r.edns.is_some(), "OPT echoed for {ctx}");
}

#[test]
fn behaviour_table_over_udp_and_tcp() {
    let s = Server::example();
    for c in cases() {
        let q = msg(c.name, c.qtype);
        let u = udp(s.dns, &q);
        check(&c, &u, "udp");
        let t = tcp(s.dns, &q);
        check(&c, &t, "tcp");
        // Both paths give the same answer.
        assert_eq!(lines(&u.answers), lines(&t.answers), "{}", c.name);
        assert_eq!(lines(&u.authorities), lines(&t.authorities), "{}", c.name);
        assert_eq!(lines(&u.additionals), lines(&t.additionals), "{}", c.name);
    }
}

#[test]
fn negative_answers_carry_soa_with_negative_ttl() {
    let s = Server::example();
    let r = s.query("nope.example.test.", RecordType::A);
    // SOA TTL 3600, MINIMUM 300: RFC 2308 says min of the two.
    assert_eq!(r.authorities[0].ttl, 300);
    assert_eq!(r.authorities[0].name.to_string(), "example.test.");
}

#[test]
fn question_case_is_echoed() {
    let s = Server::example();
    let mut q = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x06StAtIc\x07ExAmPlE\x04tEsT\x00\x00\x01\x00\x01");
    let raw = udp_raw(s.dns, &q).unwrap();
    let needle = b"\x06StAtIc\x07ExAmPlE\x04tEsT\x00";
    assert_eq!(&raw[12..12 + needle.len()], needle);
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(r.answers.len(), 3);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn edns_version_above_zero_gets_badvers() {
    let s = Server::example();
    let mut q = msg("static.example.test.", RecordType::A);
    q.edns.as_mut().unwrap().set_version(1);
    let r = udp(s.dns, &q);
    // RCODE 16 is BADVERS with OPT (hickory names it BADSIG, its TSIG meaning).
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert_eq!(r.edns.as_ref().unwrap().version(), 0);
    assert!(r.answers.is_empty());
}

#[test]
fn no_edns_means_no_opt_and_512_bytes() {
    let s = Server::example();
    let r = udp(s.dns, &msg_plain("static.example.test.", RecordType::A));
    assert!(r.edns.is_none());
    assert_eq!(r.answers.len(), 3);
    let r = udp(s.dns, &msg_plain("big.example.test.", RecordType::TXT));
    assert!(r.metadata.truncation, "big TXT does not fit in 512 bytes");
}

#[test]
fn large_answer_truncates_over_udp_and_is_whole_over_tcp() {
    let s = Server::example();
    let mut q = msg("big.example.test.", RecordType::TXT);
    q.edns.as_mut().unwrap().set_max_payload(512);
    let raw = udp_raw(s.dns, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 512, "UDP reply of {} bytes", raw.len());
    let r = Message::from_vec(&raw).unwrap();
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    assert!(r.edns.is_some(), "OPT kept in a truncated reply");

    let t = tcp(s.dns, &q);
    assert!(!t.metadata.truncation);
    assert_eq!(t.answers.len(), 1);
    let text = t.answers[0].data.to_string();
    assert!(text.len() > 600, "{text}");

    // With a large enough buffer UDP carries it whole.
    let mut q = msg("big.example.test.", RecordType::TXT);
    q.edns.as_mut().unwrap().set_max_payload(4096);
    let r = udp(s.dns, &q);
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn server_never_exceeds_its_own_udp_size() {
    let zone = small_zone(&format!(
        "many IN TXT {}\n",
        (0..8).map(|i| format!("\"{}\"", "y".repeat(200 + i))).collect::<Vec<_>>().join(" ")
    ));
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\nedns_udp_size = 1232\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"t.test.\"\nfile=\"t.zone\"\n";
    let s = Server::start(cfg, &[("t.zone", &zone)]);
    let mut q = msg("many.t.test.", RecordType::TXT);
    q.edns.as_mut().unwrap().set_max_payload(4096);
    let raw = udp_raw(s.dns, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 1232);
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
}

#[test]
fn other_opcodes_get_notimp() {
    let s = Server::example();
    for op in [OpCode::Notify, OpCode::Status] {
        let mut q = msg("example.test.", RecordType::SOA);
        q.metadata.op_code = op;
        let r = udp(s.dns, &q);
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp, "{op:?}");
        assert_eq!(r.metadata.op_code, op);
    }
    // UPDATE is served: a zone without `update` grants refuses it.
    let mut q = msg("example.test.", RecordType::SOA);
    q.metadata.op_code = OpCode::Update;
    let r = udp(s.dns, &q);
    assert_eq!((r.metadata.response_code, r.metadata.op_code), (ResponseCode::Refused, OpCode::Update));
}

#[test]
fn zone_transfers_are_refused() {
    let s = Server::example();
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let r = tcp(s.dns, &msg("example.test.", t));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{t}");
    }
}

#[test]
fn other_classes_are_refused() {
    let s = Server::example();
    let mut q = msg("example.test.", RecordType::SOA);
    q.queries[0].query_class = DNSClass::CH;
    assert_eq!(udp(s.dns, &q).metadata.response_code, ResponseCode::Refused);
}

#[test]
fn malformed_queries_get_formerr_or_nothing() {
    let s = Server::example();
    // Two questions.
    let mut q = msg("example.test.", RecordType::SOA);
    q.add_query(q.queries[0].clone());
    let r = udp(s.dns, &q);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // No question and no COOKIE option (QDCOUNT=0 is only for cookies).
    let mut q = msg("example.test.", RecordType::SOA);
    q.queries.clear();
    assert_eq!(udp(s.dns, &q).metadata.response_code, ResponseCode::FormErr);
    // A header that promises more than the packet has.
    let mut raw = msg_plain("example.test.", RecordType::SOA).to_vec().unwrap();
    raw[11] = 5;
    let r = Message::from_vec(&udp_raw(s.dns, &raw).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // Too short to be DNS, and a response instead of a query: dropped.
    assert!(udp_raw(s.dns, &[1, 2, 3]).is_none());
    let mut resp = msg("example.test.", RecordType::SOA);
    resp.metadata.message_type = MessageType::Response;
    assert!(udp_raw(s.dns, &resp.to_vec().unwrap()).is_none());
    // Still serving.
    assert_eq!(s.query("static.example.test.", RecordType::A).answers.len(), 3);
}

#[test]
fn tcp_serves_several_queries_per_connection() {
    use std::io::{Read, Write};
    let s = Server::example();
    let mut conn = std::net::TcpStream::connect(s.dns).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let mut buf = Vec::new();
    let names = ["static.example.test.", "example.test.", "nope.example.test."];
    for n in names {
        let q = msg(n, RecordType::A).to_vec().unwrap();
        buf.extend_from_slice(&(q.len() as u16).to_be_bytes());
        buf.extend_from_slice(&q);
    }
    conn.write_all(&buf).unwrap();
    let mut rcodes = Vec::new();
    for _ in names {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).unwrap();
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        conn.read_exact(&mut m).unwrap();
        rcodes.push(Message::from_vec(&m).unwrap().metadata.response_code);
    }
    assert_eq!(rcodes, vec![ResponseCode::NoError, ResponseCode::NoError, ResponseCode::NXDomain]);
}
