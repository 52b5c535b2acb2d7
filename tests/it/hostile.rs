//! Hostile traffic against the built binary: random and mutated UDP packets, broken
//! TCP streams. The server must never panic (main makes a panic fatal, so a dead
//! process is the symptom), answer only with well-formed responses or not at all,
//! and answer a valid query correctly afterwards.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::cli::spawn;
use crate::harness::*;

fn valid_queries() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (n, t) in [
        ("www.example.test.", RecordType::A),
        ("static.example.test.", RecordType::AAAA),
        ("nope.example.test.", RecordType::TXT),
        ("x.apps.example.test.", RecordType::ANY),
        ("geo.example.test.", RecordType::A),
        ("foo.child.example.test.", RecordType::NS),
    ] {
        v.push(msg(n, t).to_vec().unwrap());
        v.push(msg_plain(n, t).to_vec().unwrap());
        v.push(msg_ecs(n, t, "198.51.100.0", 24).to_vec().unwrap());
        v.push(signed(msg(n, t)));
    }
    // Zone transfers (the zone allows loopback and the hostile key).
    for t in [RecordType::AXFR, RecordType::IXFR] {
        v.push(transfer_query(t).to_vec().unwrap());
        v.push(signed(transfer_query(t)));
    }
    // TSIG gone wrong: cut inside the MAC, under an algorithm the key is not for,
    // an hour off, and followed by another record.
    let good = signed(msg_plain("www.example.test.", RecordType::A));
    v.push(good[..good.len() - 12].to_vec());
    let alg = good.windows(12).position(|w| w == b"\x0bhmac-sha256").unwrap();
    let mut wrong_alg = good.clone();
    wrong_alg[alg + 11] = b'7';
    v.push(wrong_alg);
    let mut stale = msg("www.example.test.", RecordType::A);
    stale.finalize(&hostile_key(), now() - 3600).unwrap();
    v.push(stale.to_vec().unwrap());
    let mut not_last = good.clone();
    not_last[11] += 1;
    not_last.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
    v.push(not_last);
    v.extend(updates());
    v
}

/// UPDATE messages (RFC 2136) for the `_h` names the hostile key is granted:
/// one good, signed; then unsigned, with a MAC cut short, under the wrong
/// algorithm, a zone of class CH, an update of class CH, and a huge update section.
fn updates() -> Vec<Vec<u8>> {
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::{DNSClass, Name, RData, Record, rdata::TXT};
    let update = |n: usize, class: DNSClass| {
        let mut m = Message::new(0x5150, MessageType::Query, OpCode::Update);
        let mut zone = Query::query(Name::from_ascii("example.test.").unwrap(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        m.add_query(zone);
        for i in 0..n {
            let name = Name::from_ascii(format!("_h{i}.example.test.")).unwrap();
            let mut r = Record::from_rdata(name, 60, RData::TXT(TXT::new(vec!["hostile".into()])));
            r.dns_class = class;
            m.add_authority(r);
        }
        m
    };
    let good = signed(update(1, DNSClass::IN));
    let alg = good.windows(12).position(|w| w == b"\x0bhmac-sha256").unwrap();
    let mut wrong_alg = good.clone();
    wrong_alg[alg + 11] = b'7';
    let mut zone_ch = update(1, DNSClass::IN);
    zone_ch.queries[0].set_query_class(DNSClass::CH);
    vec![
        good.clone(),
        update(1, DNSClass::IN).to_vec().unwrap(),
        good[..good.len() - 12].to_vec(),
        wrong_alg,
        signed(zone_ch),
        signed(update(1, DNSClass::CH)),
        signed(update(400, DNSClass::IN)),
    ]
}

/// An AXFR or IXFR (from serial 1) of example.test.
fn transfer_query(t: RecordType) -> Message {
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::{Name, RData, Record};
    let mut m = msg_plain("example.test.", t);
    if t == RecordType::IXFR {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let soa = SOA::new(n("ns1.example.test."), n("hostmaster.example.test."), 1, 0, 0, 0, 0);
        m.add_authority(Record::from_rdata(n("example.test."), 0, RData::SOA(soa)));
    }
    m
}

/// The example config with the hostile key, transfers of example.test.
/// allowed to loopback and to that key, and TXT UPDATEs granted to it.
fn hostile_config(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    write(&dir.join("hostile.key"), &base64::engine::general_purpose::STANDARD.encode(HOSTILE_SECRET));
    let tsig = "\n[[tsig]]\nname = \"hostile-key.\"\nsecret_file = \"hostile.key\"\n";
    let config = example_config().replace(
        "zones/example.test.zone\"\n",
        "zones/example.test.zone\"\ntransfer = [\"127.0.0.0/8\", \"key:hostile-key.\"]\n\
         update = [{ key = \"hostile-key.\", names = [\"*\"], types = [\"TXT\"] }]\n",
    );
    assert!(config.contains("key:hostile-key."), "the example config's zone moved");
    write(&dir.join("lbdns.toml"), &(config + tsig));
    dir.join("lbdns.toml")
}

/// One request over TCP; the first reply message.
fn tcp_once(dns: std::net::SocketAddr, packet: &[u8]) -> Message {
    Message::from_vec(&tcp_raw(dns, packet).expect("a TCP reply")).expect("the reply parses")
}

/// Malformed and refused transfer requests get their RCODE and the server goes
/// on serving transfers: a bad signature (NOTAUTH), a cut question and an IXFR
/// without the client's SOA (FORMERR), class CH (REFUSED), AXFR over UDP
/// (REFUSED); then a good AXFR comes whole, SOA first and last.
#[test]
fn malformed_transfer_requests_get_their_rcode() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = spawn(&hostile_config(dir.path()));
    let dns = r.dns;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    let name = hickory_proto::rr::Name::from_ascii("hostile-key.").unwrap();
    let wrong = hickory_proto::rr::TSigner::new(b"wrong".to_vec(), TsigAlgorithm::HmacSha256, name, 300).unwrap();
    let mut bad = transfer_query(RecordType::AXFR);
    bad.finalize(&wrong, now()).unwrap();
    assert_eq!(tcp_once(dns, &bad.to_vec().unwrap()).metadata.response_code, ResponseCode::NotAuth);
    let whole = transfer_query(RecordType::AXFR).to_vec().unwrap();
    let cut = tcp_raw(dns, &whole[..whole.len() - 3]).expect("a reply to a cut question");
    assert_eq!(cut[3] & 0x0f, 1, "FORMERR");
    let mut no_soa = transfer_query(RecordType::IXFR);
    no_soa.authorities.clear();
    assert_eq!(tcp_once(dns, &no_soa.to_vec().unwrap()).metadata.response_code, ResponseCode::FormErr);
    let mut chaos = transfer_query(RecordType::AXFR);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    assert_eq!(tcp_once(dns, &chaos.to_vec().unwrap()).metadata.response_code, ResponseCode::Refused);
    assert_eq!(udp(dns, &transfer_query(RecordType::AXFR)).metadata.response_code, ResponseCode::Refused);

    let good = tcp_once(dns, &signed(transfer_query(RecordType::AXFR)));
    assert_eq!(good.metadata.response_code, ResponseCode::NoError);
    let soa = |i: usize| good.answers[i].record_type() == RecordType::SOA;
    assert!(soa(0) && soa(good.answers.len() - 1), "{:?}", lines(&good.answers));
    assert!(r.child.try_wait().unwrap().is_none(), "the server died");
    assert_answers_correctly(dns);
}

const HOSTILE_SECRET: &[u8] = b"hostile-hostile-hostile-hostile!";

/// The key of the `[[tsig]]` entry the server is started with.
fn hostile_key() -> hickory_proto::rr::TSigner {
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    let name = hickory_proto::rr::Name::from_ascii("hostile-key.").unwrap();
    hickory_proto::rr::TSigner::new(HOSTILE_SECRET.to_vec(), TsigAlgorithm::HmacSha256, name, 300).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `m` signed with the hostile key now.
fn signed(mut m: Message) -> Vec<u8> {
    m.finalize(&hostile_key(), now()).unwrap();
    m.to_vec().unwrap()
}

/// Hand-made nasty packets: each a known way to break a naive parser.
#[allow(clippy::vec_init_then_push)] // one nasty packet per line, each with its comment
fn crafted() -> Vec<Vec<u8>> {
    let hdr = |qd: u16, an: u16, ns: u16, ar: u16| {
        let mut h = vec![0xbe, 0xef, 0x01, 0x00];
        for c in [qd, an, ns, ar] {
            h.extend_from_slice(&c.to_be_bytes());
        }
        h
    };
    let mut v = Vec::new();
    v.push(Vec::new()); // zero-length
    v.push(hdr(1, 0, 0, 0)[..7].to_vec()); // truncated header
    v.push(hdr(1, 0, 0, 0)); // count larger than the packet
    v.push([hdr(60000, 60000, 60000, 60000), b"\x00\x00\x01\x00\x01".to_vec()].concat());
    v.push([hdr(1, 0, 0, 0), b"\xc0\x0c\x00\x01\x00\x01".to_vec()].concat()); // pointer loop in question
    v.push(
        [hdr(1, 1, 0, 0), b"\x00\x00\x01\x00\x01\xc0\x11\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00".to_vec()].concat(),
    ); // pointer to itself
    v.push([hdr(1, 1, 0, 0), b"\x00\x00\x01\x00\x01\xc0\xff\x00\x01".to_vec()].concat()); // pointer forward, past the end
    let mut long_label = hdr(1, 0, 0, 0);
    long_label.push(64);
    long_label.extend(std::iter::repeat_n(b'a', 64));
    long_label.extend_from_slice(b"\x00\x00\x01\x00\x01");
    v.push(long_label);
    let mut long_name = hdr(1, 0, 0, 0);
    for _ in 0..5 {
        long_name.push(63);
        long_name.extend(std::iter::repeat_n(b'b', 63));
    }
    long_name.extend_from_slice(b"\x00\x00\x01\x00\x01");
    v.push(long_name); // name over 255
    let opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
    v.push(
        [hdr(1, 0, 0, 2), b"\x03www\x07example\x04test\x00\x00\x01\x00\x01".to_vec(), opt.to_vec(), opt.to_vec()]
            .concat(),
    ); // OPT twice
    v.push([hdr(1, 0, 0, 1), b"\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00\xff\xff".to_vec()].concat()); // OPT rdlen past end
    v.push(
        [hdr(1, 0, 0, 1), b"\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x04\x00\x08\xff\xff".to_vec()]
            .concat(),
    ); // option past rdata
    let mut big = hdr(1, 0, 0, 0);
    big.extend(std::iter::repeat_n(0x3f, 65000 - 12));
    v.push(big); // ~64 KiB
    v
}

fn mutate(rng: &mut fastrand::Rng, base: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    match rng.u8(0..6) {
        0 => {
            for _ in 0..rng.usize(1..8) {
                if !p.is_empty() {
                    let i = rng.usize(0..p.len());
                    p[i] ^= 1 << rng.u8(0..8);
                }
            }
        }
        1 => p.truncate(rng.usize(0..p.len().max(1))),
        2 => {
            let i = rng.usize(4..12.min(p.len().max(5)));
            if i < p.len() {
                p[i] = rng.u8(..);
            }
        }
        3 => p.extend((0..rng.usize(1..64)).map(|_| rng.u8(..))),
        4 => {
            let i = rng.usize(12..p.len().max(13));
            if i + 1 < p.len() {
                p[i] = 0xc0 | rng.u8(0..0x40);
                p[i + 1] = rng.u8(..);
            }
        }
        _ => p = (0..rng.usize(0..600)).map(|_| rng.u8(..)).collect(),
    }
    p
}

fn assert_answers_correctly(dns: std::net::SocketAddr) {
    // Several sockets, so that every UDP worker is reached.
    for _ in 0..8 {
        let r = udp(dns, &msg("static.example.test.", RecordType::A));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 3);
    }
    let r = tcp(dns, &msg("static.example.test.", RecordType::A));
    assert_eq!(r.answers.len(), 3);
}

#[test]
fn hundred_thousand_hostile_packets_and_a_thousand_broken_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = spawn(&hostile_config(dir.path()));
    let dns = r.dns;
    let mut rng = fastrand::Rng::with_seed(7873);
    let bases: Vec<Vec<u8>> = valid_queries().into_iter().chain(crafted()).collect();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65535];
    let (mut sent, mut replies) = (0usize, 0usize);
    let mut check_replies = |sock: &UdpSocket, replies: &mut usize| {
        while let Ok(n) = sock.recv(&mut buf) {
            assert!(n >= 12, "a {n}-byte reply");
            assert!(buf[2] & 0x80 != 0, "a reply without QR");
            *replies += 1;
        }
    };
    for i in 0..100_000 {
        let pick = rng.usize(0..bases.len());
        let p = if i < bases.len() { bases[i].clone() } else { mutate(&mut rng, &bases[pick]) };
        let _ = sock.send_to(&p, dns);
        sent += 1;
        if i % 500 == 0 {
            check_replies(&sock, &mut replies);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    check_replies(&sock, &mut replies);
    assert!(r.child.try_wait().unwrap().is_none(), "the server died");
    assert!(replies > 1000, "{replies} replies to {sent} packets");
    assert_answers_correctly(dns);
    // Signed queries still verify, and their replies too.
    let mut m = msg("static.example.test.", RecordType::A);
    let mut verifier = m.finalize(&hostile_key(), now()).unwrap().unwrap();
    let reply = verifier.verify(&udp_raw(dns, &m.to_vec().unwrap()).unwrap()).expect("a signed reply");
    assert_eq!(reply.answers.len(), 3);
    // Of all the UPDATEs, only the good one changed anything (a mutated one
    // fails its MAC, and the huge one is refused whole).
    let h0 = udp(dns, &msg("_h0.example.test.", RecordType::TXT));
    assert_eq!(h0.answers.len(), 1, "{h0:?}");
    assert!(udp(dns, &msg("_h1.example.test.", RecordType::TXT)).answers.is_empty());

    for i in 0..1000 {
        let mut s = TcpStream::connect(dns).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let pick = rng.usize(0..bases.len());
        let body = if i < bases.len() { bases[i].clone() } else { mutate(&mut rng, &bases[pick]) };
        let bytes: Vec<u8> = match i % 5 {
            0 => vec![0x01],                                                          // half a length
            1 => [((body.len() + 100) as u16).to_be_bytes().to_vec(), body].concat(), // promises more
            2 => vec![0, 0],                                                          // zero length
            3 => [vec![0xff, 0xff], (0..300).map(|_| rng.u8(..)).collect()].concat(), // 64 KiB promised
            _ => [(body.len() as u16).to_be_bytes().to_vec(), body].concat(),
        };
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        if rest.len() >= 2 {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            assert!(rest.len() >= 2 + len && len >= 12, "a broken TCP reply");
            assert!(Message::from_vec(&rest[2..2 + len]).is_ok() || rest[4] & 0x80 != 0);
        }
    }
    assert!(r.child.try_wait().unwrap().is_none(), "the server died");
    assert_answers_correctly(dns);
}

#[test]
fn response_rate_limiting_slips_and_drops_over_the_limit() {
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[dns.rrl]\nresponses_per_second=5\nslip=2\n\
               [admin]\nlisten=\"127.0.0.1:0\"\n[[zone]]\norigin=\"r.test.\"\nfile=\"r.zone\"\n";
    let s = Server::start(cfg, &[("r.zone", &small_zone("a IN A 192.0.2.1\n"))]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let q = msg("a.r.test.", RecordType::A).to_vec().unwrap();
    for _ in 0..40 {
        sock.send_to(&q, s.dns).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            assert_eq!(m.answers.len(), 1);
            full += 1;
        }
    }
    // 5 a second pass; of the rest every 2nd is slipped (TC=1), the others dropped.
    // (A second boundary during the burst may let up to 5 more through.)
    assert!((5..=10).contains(&full), "{full} full answers");
    assert!(truncated >= 10, "{truncated} truncated");
    assert!(full + truncated < 40, "nothing was dropped");
    // TCP is never limited.
    for _ in 0..20 {
        assert_eq!(tcp(s.dns, &msg("a.r.test.", RecordType::A)).answers.len(), 1);
    }
}

/// 2,000 connections that never finish a query, half of them idle and half sending
/// one byte a second, against the default max_tcp_connections (1,024): a normal
/// client is still answered over UDP and TCP, because a new connection evicts the
/// longest-idle one instead of being refused.
#[test]
fn idle_and_trickling_tcp_connections_do_not_shut_out_real_clients() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\ntcp_idle_timeout=\"60s\"\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"t.test.\"\nfile=\"t.zone\"\n";
    write(&dir.path().join("lbdns.toml"), cfg);
    write(&dir.path().join("t.zone"), &small_zone("a IN A 192.0.2.1\n"));
    let r = spawn(&dir.path().join("lbdns.toml"));
    let dns = r.dns;

    let mut idle = Vec::new();
    let mut slow = Vec::new();
    for i in 0..2000 {
        let s = TcpStream::connect(dns).unwrap();
        s.set_nonblocking(true).unwrap();
        if i % 2 == 0 { idle.push(s) } else { slow.push(s) }
    }
    // One byte a second on each slow connection: a length of 32, then the body.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0usize;
            let mut alive = slow.len();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let byte = if sent == 1 { 32u8 } else { 0u8 };
                alive = 0;
                for s in &mut slow {
                    if (&*s).write(&[byte]).is_ok() {
                        alive += 1;
                    }
                }
                sent += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            alive
        })
    };
    let q = msg("a.t.test.", RecordType::A);
    for _ in 0..5 {
        assert_eq!(addrs(&udp(dns, &q)), ["192.0.2.1"], "UDP");
        assert_eq!(addrs(&tcp(dns, &q)), ["192.0.2.1"], "TCP");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let alive = trickle.join().unwrap();
    // Over 1,024 of the 2,000 (plus our own) were evicted: not every slow one lives.
    assert!(alive < 1000, "{alive} trickling connections still accepted writes");
    drop(idle);
    let mut r = r;
    assert!(r.child.try_wait().unwrap().is_none(), "the server died");
}

/// A message must arrive whole within tcp_idle_timeout: trickling bytes does not
/// keep a connection open past it.
#[test]
fn a_trickled_message_is_cut_off_at_the_deadline() {
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\ntcp_idle_timeout=\"2s\"\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"t.test.\"\nfile=\"t.zone\"\n";
    let s = Server::start(cfg, &[("t.zone", &small_zone("a IN A 192.0.2.1\n"))]);
    let mut c = TcpStream::connect(s.dns).unwrap();
    let start = std::time::Instant::now();
    let mut closed = None;
    for byte in [0u8, 200].into_iter().chain(std::iter::repeat(0)).take(12) {
        if c.write_all(&[byte]).is_err() {
            closed = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let closed = closed.expect("the server kept a trickling connection open for 6 s");
    assert!(closed >= Duration::from_secs(2), "closed before the deadline: {closed:?}");
    // The reply to our query, sent whole, still works on a new connection.
    assert_eq!(addrs(&tcp(s.dns, &msg("a.t.test.", RecordType::A))), ["192.0.2.1"]);
}
