//! How pool policies scale with the number of members: `cargo bench --bench policies`.
//!
//! Two groups. `order` runs each policy alone over 10, 1,000 and 20,000 eligible
//! members, asked for every member (`all`) and for the first 64 (about what fits in a
//! 1,232-byte UDP reply). `answer` answers a query for a pool with `max_answers = 0`
//! through the real answer engine, over UDP (EDNS 1,232) and TCP, from a snapshot
//! built from a generated config exactly as the server builds it.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use lbdns::Sources;
use lbdns::dns::Responder;
use lbdns::policy::{self, Candidate, Pick, Policy, Scratch};
use lbdns::snapshot::{AllUp, Snapshot};

const SIZES: [usize; 3] = [10, 1_000, 20_000];
const POLICIES: [&str; 6] = ["round-robin", "random", "weighted", "failover", "affinity", "geo"];

/// Member `i` of a generated pool: weights 1..=5, two regions.
fn member(i: usize) -> (IpAddr, u32, &'static str) {
    let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
    (addr, 1 + (i % 5) as u32, if i % 2 == 0 { "us" } else { "eu" })
}

fn regions() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("default".to_string(), vec!["us".to_string(), "eu".to_string()])])
}

fn policy_object(name: &str, n: usize) -> std::sync::Arc<dyn Policy> {
    if name == "geo" {
        let names: Vec<Option<&str>> = (0..n).map(|i| Some(member(i).2)).collect();
        return std::sync::Arc::new(policy::Geo::new(&regions(), &names));
    }
    let p: lbdns::config::PolicyName = serde_json::from_str(&format!("\"{name}\"")).expect("policy name");
    policy::build(p).expect("not geo")
}

fn order(c: &mut Criterion) {
    let mut g = c.benchmark_group("order");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    for n in SIZES {
        let members: Vec<Candidate> = (0..n)
            .map(|i| {
                let (addr, weight, _) = member(i);
                Candidate { weight, seed: lbdns::net::addr_seed(addr) }
            })
            .collect();
        let eligible: Vec<u16> = (0..n as u16).collect();
        for name in POLICIES {
            let p = policy_object(name, n);
            let mut scratch = Scratch::new(1);
            let mut out = Vec::new();
            let mut client = 0u64;
            for (what, limit) in [("all", n), ("first 64", 64.min(n))] {
                g.bench_with_input(BenchmarkId::new(format!("{name} {what}"), n), &limit, |b, &limit| {
                    b.iter(|| {
                        client = client.wrapping_add(1);
                        let pick = Pick {
                            members: &members,
                            eligible: &eligible,
                            family: 0,
                            client_key: lbdns::net::mix(client),
                            limit,
                            location: None,
                        };
                        p.order(black_box(&pick), &mut scratch, &mut out);
                        black_box(out.len())
                    })
                });
            }
        }
    }
    g.finish();
}

/// A snapshot holding one pool `big.lb.test.` of `n` members under `policy`.
fn snapshot(dir: &std::path::Path, policy: &str, n: usize) -> Snapshot {
    let mut cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[regions]\ndefault=[\"us\",\"eu\"]\n\
         [[zone]]\norigin=\"lb.test.\"\nfile=\"lb.zone\"\n\
         [[pool]]\nname=\"big.lb.test.\"\npolicy=\"{policy}\"\nmax_answers=0\n"
    );
    for i in 0..n {
        let (addr, weight, region) = member(i);
        cfg.push_str(&format!("[[pool.member]]\naddress=\"{addr}\"\nweight={weight}\nregion=\"{region}\"\n"));
    }
    let zone = "$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n";
    std::fs::write(dir.join("lb.zone"), zone).expect("zone written");
    std::fs::write(dir.join("lbdns.toml"), cfg).expect("config written");
    let s = Sources::load(&dir.join("lbdns.toml")).expect("bench config loads");
    let settings = lbdns::snapshot::Settings {
        edns_udp_size: s.config.dns.edns_udp_size,
        regions: Arc::new(s.config.regions.clone()),
        geoip: s.geoip.clone(),
        tsig: s.config.tsig.clone(),
        transfer: Default::default(),
        dnssec: s.config.dnssec.clone(),
    };
    let zones = lbdns::snapshot::build_zones(s.zones.iter().map(|z| &z.zone), &s.pools);
    lbdns::snapshot::build(&zones, &s.pools, &AllUp, settings, None).expect("snapshot builds")
}

/// A query for big.lb.test. A with EDNS (payload 1232).
fn query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in ["big", "lb", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}

fn answer(c: &mut Criterion) {
    let mut g = c.benchmark_group("answer");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    let client: IpAddr = "127.0.0.1".parse().expect("address");
    let packet = query();
    for n in SIZES {
        for name in POLICIES {
            let dir = tempfile::tempdir().expect("temporary directory");
            let snap = snapshot(dir.path(), name, n);
            let mut responder = Responder::new(1);
            let mut out = Vec::with_capacity(65_536);
            for (transport, tcp) in [("udp", false), ("tcp", true)] {
                g.bench_with_input(BenchmarkId::new(format!("{name} {transport}"), n), &tcp, |b, &tcp| {
                    b.iter(|| {
                        let o = responder.respond(&snap, black_box(&packet), client, tcp, &mut out);
                        black_box((o, out.len()))
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, order, answer);
criterion_main!(benches);
