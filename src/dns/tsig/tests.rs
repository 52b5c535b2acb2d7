//! The digest layout checked against hickory-proto's TSIG (an independent
//! implementation of RFC 8945): what hickory signs verifies here, and what is
//! signed here verifies with hickory.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};

use super::*;
use crate::dns::wire;
use crate::tsig::Algorithm;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn signer(alg: TsigAlgorithm, name: &str) -> TSigner {
    TSigner::new(SECRET.to_vec(), alg, Name::from_ascii(name).unwrap(), 300).unwrap()
}

fn keys() -> Keys {
    let name = Name::from_ascii("update-key.").unwrap();
    Keys::new(vec![
        Key::new(name.clone(), Algorithm::HmacSha256, SECRET),
        Key::new(name, Algorithm::HmacSha512, SECRET),
    ])
}

/// A query for www.example.test. A signed by `s` at `time`.
fn signed_query(s: &TSigner, time: u64) -> (Vec<u8>, hickory_proto::rr::TSigVerifier) {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii("www.example.test.").unwrap(), RecordType::A));
    let verifier = m.finalize(s, time).unwrap().unwrap();
    (m.to_vec().unwrap(), verifier)
}

/// Parses `packet` and checks its TSIG at `now`.
fn check(packet: &[u8], now: u64) -> (Tsig, Verdict) {
    let mut q = wire::Query::default();
    wire::parse(packet, &mut q).unwrap();
    assert_ne!(q.tsig_start, 0);
    let mut t = Tsig::default();
    let v = t.check(&keys(), packet, q.tsig_start, now);
    (t, v)
}

/// A reply to the query in `packet` (header and question), as a finished reply.
fn reply_to(packet: &[u8], start: usize) -> Vec<u8> {
    let mut out = packet[..start].to_vec();
    out[2] |= 0x80;
    out[10..12].fill(0);
    out
}

#[test]
fn hickory_signed_queries_verify_and_our_replies_verify_with_hickory() {
    for alg in [TsigAlgorithm::HmacSha256, TsigAlgorithm::HmacSha512] {
        let s = signer(alg.clone(), "Update-Key.");
        let now = 1_700_000_000;
        let (packet, mut verifier) = signed_query(&s, now);
        let (t, v) = check(&packet, now + 10);
        assert_eq!(v, Verdict::Verified, "{alg:?}");
        let mut q = wire::Query::default();
        wire::parse(&packet, &mut q).unwrap();
        let mut out = reply_to(&packet, q.question_end);
        let before = out.len();
        t.sign(&mut out, now + 10);
        assert_eq!(out.len() - before, t.reserve(), "the reserve is exactly the TSIG's size");
        let reply = verifier.verify(&out).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(reply.id, 0x1234);
    }
}

#[test]
fn a_wrong_mac_is_badsig_and_an_unknown_key_badkey_both_unsigned() {
    let now = 1_700_000_000;
    let (mut packet, _) = signed_query(&signer(TsigAlgorithm::HmacSha256, "update-key."), now);
    let last = packet.len() - 7; // inside the MAC (then Original ID, Error, Other Len)
    packet[last] ^= 1;
    let (t, v) = check(&packet, now);
    assert_eq!((v, t.error, t.reserve() > 0), (Verdict::NotAuth, BADSIG, true));
    let mut out = Vec::new();
    let mut q = wire::Query::default();
    wire::parse(&packet, &mut q).unwrap();
    notauth(&packet, q.question_end, &mut out);
    t.sign(&mut out, now);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.response_code.low(), RCODE_NOTAUTH);
    let tsig = &m.signature().unwrap().data;
    assert!(tsig.mac.is_empty(), "BADSIG is unsigned");
    assert_eq!(tsig.error, Some(TsigError::BadSig));

    let (packet, _) = signed_query(&signer(TsigAlgorithm::HmacSha256, "other-key."), now);
    let (t, v) = check(&packet, now);
    assert_eq!((v, t.error), (Verdict::NotAuth, BADKEY));
}

#[test]
fn a_skewed_time_is_badtime_signed_with_the_request_time_and_the_server_time() {
    let s = signer(TsigAlgorithm::HmacSha256, "update-key.");
    let now = 1_700_000_000;
    let (packet, _) = signed_query(&s, now - 3600);
    let (t, v) = check(&packet, now);
    assert_eq!((v, t.error), (Verdict::NotAuth, BADTIME));
    let mut q = wire::Query::default();
    wire::parse(&packet, &mut q).unwrap();
    let mut out = Vec::new();
    notauth(&packet, q.question_end, &mut out);
    t.sign(&mut out, now);
    // hickory verifies the MAC (and leaves the time to its caller).
    let (_, time, _) = s.verify_message_byte(&out, Some(&packet_mac(&packet)), true).unwrap();
    assert_eq!(time, now - 3600, "Time Signed is the request's");
    assert_eq!(&out[out.len() - 6..], &now.to_be_bytes()[2..], "Other Data is the server's time");
    // Within the fudge it verifies.
    assert_eq!(check(&packet, now - 3600 + 300).1, Verdict::Verified);
    assert_eq!(check(&packet, now - 3600 + 301).1, Verdict::NotAuth);
}

/// The MAC of the signed query `packet` (sha256).
fn packet_mac(packet: &[u8]) -> Vec<u8> {
    Message::from_vec(packet).unwrap().signature().unwrap().data.mac.clone()
}

#[test]
fn malformed_tsig_records_are_formerr() {
    let now = 1_700_000_000;
    let (packet, _) = signed_query(&signer(TsigAlgorithm::HmacSha256, "update-key."), now);
    let mut q = wire::Query::default();
    // Cut short: the RDATA length says more than there is.
    let cut = &packet[..packet.len() - 3];
    assert!(matches!(wire::parse(cut, &mut q), Err(wire::Parsed::Error { rcode: wire::RCODE_FORMERR, .. })));
    // Not last: an OPT record after it.
    let mut not_last = packet.clone();
    not_last[11] += 1;
    not_last.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(wire::parse(&not_last, &mut q), Err(wire::Parsed::Error { rcode: wire::RCODE_FORMERR, .. })));
    // A TSIG record in a class other than ANY.
    let mut class_in = packet.clone();
    let at = class_in.windows(3).position(|w| w == b"\x00\xfa\x00").unwrap();
    class_in[at + 3] = 1;
    assert!(matches!(wire::parse(&class_in, &mut q), Err(wire::Parsed::Error { rcode: wire::RCODE_FORMERR, .. })));
    // A MAC of 8 bytes, below what any algorithm allows: FORMERR from the check.
    let mut short = packet.clone();
    let n = short.len();
    short.drain(n - 6 - 24..n - 6);
    short[n - 6 - 32 - 2..n - 6 - 32].copy_from_slice(&8u16.to_be_bytes());
    let alg = short.windows(12).position(|w| w == b"\x0bhmac-sha256").unwrap();
    let rdlen = u16::from_be_bytes([short[alg - 2], short[alg - 1]]) - 24;
    short[alg - 2..alg].copy_from_slice(&rdlen.to_be_bytes());
    wire::parse(&short, &mut q).unwrap();
    assert_eq!(Tsig::default().check(&keys(), &short, q.tsig_start, now), Verdict::FormErr);
}

#[test]
fn compressed_names_are_read_whole() {
    // www.example.test. then a pointer to "example.test." at offset 4.
    let b = b"\x03www\x07example\x04test\x00\x03abc\xc0\x04";
    let (n, end) = read_name(b, 18).unwrap();
    assert_eq!(n.bytes(), b"\x03abc\x07example\x04test\x00");
    assert_eq!(end, b.len());
    assert!(read_name(b"\xc0\x00", 0).is_none(), "a pointer to itself");
}

/// Queries signed by an independent implementation of the section 4.3.3 layout
/// (Python's `hmac` module over hand-built bytes), for hmac-sha1 too, which hickory
/// lacks: key fuzz-key., the secret of `fuzz/fixture/fuzz.key`, time 1700000000.
#[test]
fn independently_signed_queries_verify_with_every_algorithm() {
    const SHA256: &str = "4c420000000100000000000103777777076578616d706c65047465737400000100010866757a7a2d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006553f100012c00204d157696ade3538021e7f2a7079ac0f1d2288a7a9f56a1564dcbb826359fc8554c4200000000";
    const SHA1: &str = "4c420000000100000000000103777777076578616d706c65047465737400000100010866757a7a2d6b65790000fa00ff00000000002f09686d61632d736861310000006553f100012c001490b2f5b760b44798dad1072965c172b983247ca54c4200000000";
    let name = Name::from_ascii("fuzz-key.").unwrap();
    let secret = b"fuzz-secret-fuzz-secret-fuzz-sec";
    for (hex, alg) in [(SHA256, Algorithm::HmacSha256), (SHA1, Algorithm::HmacSha1)] {
        let packet: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let mut q = wire::Query::default();
        wire::parse(&packet, &mut q).unwrap();
        let keys = Keys::new(vec![Key::new(name.clone(), alg, secret)]);
        let mut t = Tsig::default();
        assert_eq!(t.check(&keys, &packet, q.tsig_start, 1_700_000_000), Verdict::Verified, "{alg}");
        let other = Keys::new(vec![Key::new(name.clone(), alg, b"another secret")]);
        assert_eq!(t.check(&other, &packet, q.tsig_start, 1_700_000_000), Verdict::NotAuth, "{alg}");
        assert_eq!(t.error, BADSIG);
    }
}
