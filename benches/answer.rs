//! Micro-benchmark of the query path: parse + answer one query from a snapshot, per
//! policy, in nanoseconds. `cargo bench --bench answer`.
//!
//! The snapshot is built from bench/lbdns*.toml (lb.example with www as an 8-member
//! pool), exactly as the server builds it.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use lbdns::Sources;
use lbdns::dns::Responder;
use lbdns::snapshot::{AllUp, Snapshot};

fn snapshot(config: &str) -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench").join(config);
    let s = Sources::load(&path).expect("bench config loads");
    let zones = lbdns::snapshot::build_zones(s.zones.iter().map(|z| &z.zone), &s.pools);
    lbdns::snapshot::build(
        &zones,
        &s.pools,
        &AllUp,
        lbdns::snapshot::Settings {
            edns_udp_size: s.config.dns.edns_udp_size,
            regions: Arc::new(s.config.regions.clone()),
            geoip: s.geoip.clone(),
            tsig: s.config.tsig.clone(),
            transfer: Default::default(),
            dnssec: s.config.dnssec.clone(),
        },
        None,
    )
    .expect("snapshot builds")
}

/// A query for `name` and `qtype` with EDNS (payload 1232), optionally with ECS
/// 198.51.100.0/24.
fn query(name: &str, qtype: u16, ecs: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let opt: &[u8] = if ecs { &[0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100] } else { &[] };
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(opt);
    q
}

fn bench(c: &mut Criterion) {
    let client: IpAddr = "127.0.0.1".parse().unwrap();
    let mut g = c.benchmark_group("parse+answer");
    for (label, config, name, qtype, ecs) in [
        ("round-robin www (8 A)", "lbdns.toml", "www.lb.example.", 1, false),
        ("weighted www (8 A)", "lbdns-weighted.toml", "www.lb.example.", 1, false),
        ("affinity www (8 A, ECS)", "lbdns-affinity.toml", "www.lb.example.", 1, true),
        ("geo www (8 A, ECS)", "lbdns-geo.toml", "www.lb.example.", 1, true),
        ("static (1 A)", "lbdns.toml", "static.lb.example.", 1, false),
        ("static (8 A)", "lbdns.toml", "all.lb.example.", 1, false),
        ("apex NS (+ glue A)", "lbdns.toml", "lb.example.", 2, false),
        ("nxdomain", "lbdns.toml", "nope.lb.example.", 1, false),
    ] {
        let snap = snapshot(config);
        let packet = query(name, qtype, ecs);
        let mut responder = Responder::new(1);
        let mut out = Vec::with_capacity(4096);
        g.bench_function(label, |b| {
            b.iter(|| {
                let o = responder.respond(&snap, black_box(&packet), client, false, &mut out);
                black_box((o, out.len()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
