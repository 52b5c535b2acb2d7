//! Answers as a reference server gives them (issue 15): the additional section for
//! NS, MX and SRV targets and referral glue, what does not fit, Extended DNS Errors,
//! NOTIMP for other opcodes, and CNAME loops. Each over UDP and TCP.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::harness::*;

const ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 60
@ NS ns1
@ NS ns2
@ NS ns.elsewhere.example.
@ MX 10 mail
@ MX 20 mx.elsewhere.example.
@ MX 30 mail
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
ns2 A 192.0.2.2
mail A 192.0.2.25
mail AAAA 2001:db8::25
_imap._tcp SRV 0 1 143 mail
_imap._tcp SRV 0 1 143 www
mxwild MX 10 host.wild
*.wild A 192.0.2.90
mxalias CNAME @
sub NS ns1.sub
sub NS ns1
ns1.sub A 192.0.2.101
loop1 CNAME loop2
loop2 CNAME loop1
self CNAME self
*.wl CNAME x.wl
";

fn server(zone: &str) -> Server {
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
               [[pool]]\nname=\"www.a.test.\"\npolicy=\"round-robin\"\n\
               [[pool.member]]\naddress=\"192.0.2.80\"\n";
    Server::start(cfg, &[("a.zone", zone)])
}

/// Sends `q` over UDP and over TCP.
fn both(s: &Server, q: &Message) -> [(&'static str, Message); 2] {
    [("udp", udp(s.dns, q)), ("tcp", tcp(s.dns, q))]
}

fn sorted(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v = lines(records);
    v.sort();
    v
}

/// The info code of the reply's Extended DNS Error option (RFC 8914), if any.
fn ede(m: &Message) -> Option<u16> {
    match m.edns.as_ref()?.option(EdnsCode::from(15u16))? {
        EdnsOption::Unknown(_, d) if d.len() >= 2 => Some(u16::from_be_bytes([d[0], d[1]])),
        other => panic!("EDE option {other:?}"),
    }
}

#[test]
fn additional_section_carries_the_addresses_of_targets() {
    let s = server(ZONE);
    let cases: &[(&str, RecordType, &[&str])] = &[
        // Apex NS: the in-zone name servers' addresses (RFC 1035 4.3.2 step 6).
        (
            "a.test.",
            RecordType::NS,
            &["ns1.a.test. A 192.0.2.1", "ns1.a.test. AAAA 2001:db8::1", "ns2.a.test. A 192.0.2.2"],
        ),
        // MX: each target once, out-of-zone targets have none.
        ("a.test.", RecordType::MX, &["mail.a.test. A 192.0.2.25", "mail.a.test. AAAA 2001:db8::25"]),
        // SRV: a pool target gets none (its answer depends on the client and health).
        ("_imap._tcp.a.test.", RecordType::SRV, &["mail.a.test. A 192.0.2.25", "mail.a.test. AAAA 2001:db8::25"]),
        // A target that matches a wildcard gets the wildcard's address under its name.
        ("mxwild.a.test.", RecordType::MX, &["host.wild.a.test. A 192.0.2.90"]),
        // At the end of a CNAME chain.
        ("mxalias.a.test.", RecordType::MX, &["mail.a.test. A 192.0.2.25", "mail.a.test. AAAA 2001:db8::25"]),
        // A referral: in-domain glue and the in-zone address of the other server.
        (
            "x.sub.a.test.",
            RecordType::A,
            &["ns1.a.test. A 192.0.2.1", "ns1.a.test. AAAA 2001:db8::1", "ns1.sub.a.test. A 192.0.2.101"],
        ),
        // Nothing for other types.
        ("ns1.a.test.", RecordType::A, &[]),
    ];
    for (name, t, want) in cases {
        for (via, r) in both(&s, &msg(name, *t)) {
            assert_eq!(sorted(&r.additionals), *want, "{name} {t} via {via}: {r}");
            assert!(!r.metadata.truncation, "{name} {t} via {via}");
        }
    }
}

/// A zone whose MX RRset fits in 512 bytes but not with all its targets' addresses,
/// and a delegation whose in-domain glue does not fit either.
fn big_zone() -> String {
    let mut z = ZONE.to_string();
    for i in 1..=12 {
        z.push_str(&format!("bigmx MX {i} mx{i:02}\nmx{i:02} A 198.51.100.{i}\nmx{i:02} AAAA 2001:db8:1::{i}\n"));
    }
    for i in 1..=13 {
        z.push_str(&format!("big NS ns{i:02}.big\nns{i:02}.big A 192.0.2.{i}\nns{i:02}.big AAAA 2001:db8::{i}\n"));
        // The same servers for a sibling delegation: not in its domain, so optional.
        z.push_str(&format!("sib NS ns{i:02}.big\n"));
    }
    z
}

#[test]
fn additional_data_that_does_not_fit_is_dropped_without_tc() {
    let s = server(&big_zone());
    let q = msg_plain("bigmx.a.test.", RecordType::MX);
    let raw = udp_raw(s.dns, &q.to_vec().unwrap()).unwrap();
    let r = Message::from_vec(&raw).unwrap();
    assert!(raw.len() <= 512, "{}", raw.len());
    assert!(!r.metadata.truncation, "{r}");
    assert_eq!(r.answers.len(), 12);
    assert!(!r.additionals.is_empty() && r.additionals.len() < 24, "{r}");
    // Each target's RRsets whole or not at all, never a partial RRset.
    let t = tcp(s.dns, &q);
    assert_eq!(t.additionals.len(), 24, "{t}");
    let all = sorted(&t.additionals);
    for l in sorted(&r.additionals) {
        assert!(all.contains(&l), "{l}");
    }
    // Sibling glue is optional too.
    let r = udp(s.dns, &msg_plain("x.sib.a.test.", RecordType::A));
    assert!(!r.metadata.truncation && r.authorities.len() == 13 && !r.additionals.is_empty(), "{r}");
    assert!(r.additionals.len() < 26, "{r}");
}

#[test]
fn referral_whose_in_domain_glue_does_not_fit_is_truncated() {
    let s = server(&big_zone());
    let q = msg_plain("x.big.a.test.", RecordType::A);
    let raw = udp_raw(s.dns, &q.to_vec().unwrap()).unwrap();
    let r = Message::from_vec(&raw).unwrap();
    assert!(raw.len() <= 512, "{}", raw.len());
    assert!(r.metadata.truncation, "RFC 9471: TC=1 when in-domain glue does not fit: {r}");
    // Over TCP, and with a large enough EDNS buffer, the whole referral.
    for (via, r) in both(&s, &msg("x.big.a.test.", RecordType::A)) {
        assert!(!r.metadata.truncation && !r.metadata.authoritative, "{via}: {r}");
        assert_eq!((r.authorities.len(), r.additionals.len()), (13, 26), "{via}: {r}");
    }
}

#[test]
fn extended_dns_errors_with_refused_and_notimp() {
    let s = server(ZONE);
    for (via, r) in both(&s, &msg("example.com.", RecordType::A)) {
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{via}");
        assert_eq!(ede(&r), Some(20), "Not Authoritative via {via}: {r}");
    }
    for (via, r) in both(&s, &msg("a.test.", RecordType::from(253))) {
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp, "{via}");
        assert_eq!(ede(&r), Some(21), "Not Supported via {via}: {r}");
    }
    // Without OPT, no OPT in the reply; other answers carry no EDE.
    for (via, r) in both(&s, &msg_plain("example.com.", RecordType::A)) {
        assert!(r.edns.is_none() && r.metadata.response_code == ResponseCode::Refused, "{via}: {r}");
    }
    for (via, r) in both(&s, &msg("a.test.", RecordType::SOA)) {
        assert_eq!(ede(&r), None, "{via}: {r}");
    }
    let mut ch = msg("a.test.", RecordType::SOA);
    ch.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(ede(&udp(s.dns, &ch)), None);
}

/// A query for `a.test. SOA` with opcode `op` and every header flag set.
fn odd_opcode(op: u8, edns: bool) -> Vec<u8> {
    let q = if edns { msg("a.test.", RecordType::SOA) } else { msg_plain("a.test.", RecordType::SOA) };
    let mut p = q.to_vec().unwrap();
    p[2] = (op << 3) | 0x07; // AA, TC, RD
    p[3] = 0xf0; // RA, Z, AD, CD
    p
}

#[test]
fn notimp_echoes_question_and_opt_and_no_flag() {
    let s = server(ZONE);
    for op in [2u8, 15] {
        for edns in [true, false] {
            let p = odd_opcode(op, edns);
            for (via, r) in [("udp", udp_raw(s.dns, &p)), ("tcp", tcp_raw(s.dns, &p))] {
                let r = r.unwrap_or_else(|| panic!("no answer to opcode {op} via {via}"));
                let ctx = format!("opcode {op}, edns {edns}, via {via}: {r:02x?}");
                assert_eq!(&r[..2], &p[..2], "{ctx}");
                assert_eq!(r[2], 0x80 | (op << 3), "QR and the opcode, no AA/TC/RD: {ctx}");
                assert_eq!(r[3], 4, "NOTIMP, no RA/Z/AD/CD: {ctx}");
                assert_eq!(&r[4..6], &[0, 1], "question echoed: {ctx}");
                let qend = 12 + "a.test.".len() + 1 + 4;
                assert_eq!(&r[12..qend], &p[12..qend], "{ctx}");
                assert_eq!(&r[6..10], &[0; 4], "{ctx}");
                if edns {
                    assert_eq!(&r[10..12], &[0, 1], "OPT echoed: {ctx}");
                    assert!(r.ends_with(&[0, 15, 0, 2, 0, 21]), "EDE 21: {ctx}");
                } else {
                    assert_eq!((&r[10..12], r.len()), (&[0u8, 0][..], qend), "{ctx}");
                }
            }
        }
    }
    // ISC genreport's "opcodeflg": header only, opcode 15, every flag set.
    let mut p = odd_opcode(15, false);
    p.truncate(12);
    p[4..6].fill(0);
    let r = udp_raw(s.dns, &p).unwrap();
    assert_eq!(r, [&p[..2], &[0x80 | (15 << 3), 4], &[0; 8]].concat());
}

#[test]
fn cname_loops_answer_each_record_once() {
    let s = server(ZONE);
    let cases: &[(&str, &[&str])] = &[
        ("loop1.a.test.", &["loop1.a.test. CNAME loop2.a.test.", "loop2.a.test. CNAME loop1.a.test."]),
        ("loop2.a.test.", &["loop1.a.test. CNAME loop2.a.test.", "loop2.a.test. CNAME loop1.a.test."]),
        ("self.a.test.", &["self.a.test. CNAME self.a.test."]),
        // Through a wildcard: y.wl -> x.wl (the same wildcard) -> x.wl.
        ("y.wl.a.test.", &["x.wl.a.test. CNAME x.wl.a.test.", "y.wl.a.test. CNAME x.wl.a.test."]),
    ];
    for (name, want) in cases {
        for t in [RecordType::A, RecordType::MX] {
            for (via, r) in both(&s, &msg(name, t)) {
                assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name} via {via}");
                assert_eq!(sorted(&r.answers), *want, "{name} {t} via {via}: {r}");
            }
        }
    }
}
