//! What the fuzz targets (`fuzz/`) run, shared with the regression tests that
//! replay what fuzzing found (`tests/it/fuzz_regressions.rs`): each function feeds
//! one input through a real entry point and panics if an invariant breaks.
#![doc(hidden)]

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::Message;
use hickory_proto::rr::Name;

use crate::counters::WorkerStats;
use crate::dns::cookie::Cookies;
use crate::dns::tcp::{StreamCtx, answer_stream};
use crate::dns::{Outcome, Responder};
use crate::snapshot::{AllUp, Snapshot};

/// The snapshot answered from: `fuzz/fixture/lbdns.toml` (a pool of every policy).
pub fn fixture() -> Arc<ArcSwap<Snapshot>> {
    static SNAP: LazyLock<Arc<ArcSwap<Snapshot>>> = LazyLock::new(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fixture/lbdns.toml");
        let s = crate::Sources::load(&path).unwrap_or_else(|e| panic!("fuzz fixture: {e}"));
        let zones = crate::snapshot::build_zones(s.zones.iter().map(|z| &z.zone), &s.pools);
        let snap = crate::snapshot::build(
            &zones,
            &s.pools,
            &AllUp,
            crate::snapshot::Settings {
                edns_udp_size: s.config.dns.edns_udp_size,
                regions: Arc::new(s.config.regions.clone()),
                geoip: s.geoip.clone(),
                tsig: s.config.tsig.clone(),
                transfer: Arc::new(crate::snapshot::transfer::table(&s.config.zones)),
                dnssec: s.config.dnssec.clone(),
            },
            None,
        )
        .expect("fuzz fixture builds");
        Arc::new(ArcSwap::from_pointee(snap))
    });
    SNAP.clone()
}

fn responder() -> &'static Mutex<Responder> {
    static R: LazyLock<Mutex<Responder>> =
        LazyLock::new(|| Mutex::new(Responder::new(7).with_cookies(Some(Arc::new(Cookies::new([9; 16]))))));
    &R
}

/// A reply must be a well-formed DNS response to the query it answers.
fn check_reply(query: &[u8], reply: &[u8], limit: usize) {
    assert!(reply.len() >= 12 && reply.len() <= limit, "reply of {} bytes (limit {limit})", reply.len());
    assert_eq!(reply[..2], query[..2], "the reply echoes the query id");
    assert!(reply[2] & 0x80 != 0, "QR set");
    if let Err(e) = Message::from_vec(reply) {
        panic!("the reply does not parse: {e}\nquery {query:02x?}\nreply {reply:02x?}");
    }
}

/// The UDP path: one datagram answered by the engine, then slipped and made
/// BADCOOKIE as rate limiting would. The first byte picks the client address.
pub fn udp(data: &[u8]) {
    let Some((&sel, packet)) = data.split_first() else { return };
    let client: IpAddr = match sel % 4 {
        0 => [198, 51, 100, sel].into(),
        1 => [192, 0, 2, sel].into(),
        2 => [0x2001, 0xdb8, 0, 0, 0, 0, 0, sel as u16].into(),
        _ => [0xfe80, 0, 0, 0, 0, 0, 0, sel as u16].into(),
    };
    if crate::dns::update::is_update(packet) {
        return update(packet);
    }
    let snap = fixture().load_full();
    let mut r = responder().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let Some(outcome): Option<Outcome> = r.respond(&snap, packet, client, false, &mut out) else { return };
    // Without EDNS at most 512 bytes; with it at most the server's size.
    check_reply(packet, &out, snap.edns_udp_size.max(512) as usize);
    let answered = out.clone();
    // A signed request's reply with its TSIG must still parse.
    let mut signed = out.clone();
    r.sign(&mut signed);
    check_reply(packet, &signed, u16::MAX as usize);
    r.slip(&mut out);
    check_reply(packet, &out, answered.len());
    if outcome.cookie != crate::dns::cookie::CookieCheck::None {
        let mut bad = answered;
        r.badcookie(&mut bad);
        check_reply(packet, &bad, 512);
    }
}

/// The fixture's sources, for planning UPDATEs against them.
fn fixture_sources() -> &'static crate::Sources {
    static S: LazyLock<crate::Sources> = LazyLock::new(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fixture/lbdns.toml");
        crate::Sources::load(&path).unwrap_or_else(|e| panic!("fuzz fixture: {e}"))
    });
    &S
}

/// An UPDATE datagram: the TSIG checked, the message read and planned against the
/// fixture (nothing is stored; an unsigned one as if the fixture's key had signed
/// it), the reply signed; it must be a well-formed response whatever the input.
fn update(packet: &[u8]) {
    use crate::state::overlay::{Overlay, effective_pools};
    static RT: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"));
    let reply = RT.block_on(async {
        let submit: crate::dns::updater::Submit = Arc::new(|mut u, reply| {
            // Planned as if signed by the granted key, so that mutated messages
            // (whose MACs fail) still reach the prerequisites and updates.
            u.key.get_or_insert_with(|| Name::from_ascii("fuzz-key.").expect("key name"));
            let s = fixture_sources();
            let (overlay, refused) = (Overlay::default(), Default::default());
            let pools = effective_pools(s, &overlay);
            let zones: Vec<_> = fixture().load().zones.values().cloned().collect();
            let state = crate::state::InEffect {
                sources: s,
                overlay: &overlay,
                zones: &zones,
                pools: &pools,
                index: None,
                refused: &refused,
            };
            let rcode = crate::state::update::plan_update(&state, &u)
                .map_or_else(|rc| rc, |_| hickory_proto::op::ResponseCode::NoError);
            reply.send(rcode).is_ok()
        });
        crate::dns::updater::Updater::new(fixture(), submit).answer(packet).await
    });
    if let Some(reply) = reply {
        check_reply(packet, &reply, u16::MAX as usize);
    }
}

/// The TCP path: the input is the byte stream a client sends, fed to the real
/// connection loop; every framed reply must be well-formed.
pub fn tcp(data: &[u8]) {
    static RT: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"));
    let snap = fixture();
    let replies = RT.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 17);
        let stats = WorkerStats::default();
        let mut r = Responder::new(3);
        let journals = crate::journal::Journals::default();
        let ctx = StreamCtx {
            peer: IpAddr::from([127, 0, 0, 1]),
            snapshot: &snap,
            stats: &stats,
            deadline: Duration::from_secs(5),
            updater: None,
            journals: &journals,
        };
        let serve = answer_stream(server, ctx, &mut r, || {});
        let talk = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        };
        tokio::join!(serve, talk).1
    });
    let mut rest = &replies[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 2, "a reply cut inside its length");
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        assert!(rest.len() >= 2 + len, "a reply shorter than its length");
        let reply = &rest[2..2 + len];
        assert!(len >= 12 && reply[2] & 0x80 != 0, "not a response");
        if let Err(e) = Message::from_vec(reply) {
            panic!("a TCP reply does not parse: {e}");
        }
        rest = &rest[2 + len..];
    }
}

/// Zone-file parsing: any text gives records or problems with a line, never a
/// panic; what loads passes the zone checks, can be served, and renders as text
/// that parses back to the same octets.
pub fn zone(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Name::from_ascii("example.test.").expect("origin");
    // A directory with no files: $INCLUDE of a relative path finds nothing.
    let file = Path::new("/nonexistent-lbdns-fuzz/fuzz.zone");
    match crate::zone::parse_str(&origin, file, text) {
        Ok(z) => {
            // Every record as held decodes, and its text reads back to the same octets.
            for node in z.zone.nodes() {
                for set in node.rrsets() {
                    let rtype = hickory_proto::rr::RecordType::from(set.rtype);
                    let (_, records) = crate::snapshot::decode_rrset(set);
                    assert_eq!(records.len(), usize::from(set.count()), "a record held does not decode");
                    for r in &records {
                        let text = crate::rdata::render(r);
                        let again = crate::rdata::parse_text(rtype, &text, &origin)
                            .unwrap_or_else(|e| panic!("{rtype} {text:?} does not read back: {e}"));
                        assert_eq!(crate::rdata::encode(&again).ok(), crate::rdata::encode(r).ok(), "{text}");
                    }
                }
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in problems {
                assert!(!p.to_string().is_empty());
            }
        }
    }
}

/// Config parsing: any text gives a config or problems, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/nonexistent-lbdns-fuzz/lbdns.toml");
    if let Err(problems) = crate::config::parse(path, text) {
        assert!(!problems.0.is_empty(), "an error without a problem");
    }
}
