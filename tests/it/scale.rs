//! Scale (issue 17): the built binary with its SQLite store serving a generated zone
//! of many records (90% A, 10% TXT) and a config of many pools of 4 members, shaped as
//! `bench/scale.py` makes them. It checks answers (correctness only, no timing) at
//! start, after a SIGHUP that changed records and pools, after a burst of API writes
//! (sequential over one keep-alive client, then concurrent) where every write is
//! answered by DNS and moves the SOA serial by exactly one, and after a restart.
//!
//! Two sizes, both in every `cargo test`: a tenth (10,000 records + 1,000 pools, a
//! few writes) and the full one (100,000 records + 10,000 pools, a few hundred
//! writes), the contract for issue 17's zone store. The full one took 743 s in a
//! debug build while each write rebuilt its zone or derived every pool again; with
//! writes that cost what they change it takes under a minute.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use reqwest::blocking::Client;

use crate::cli::{Running, spawn};
use crate::harness::*;

const TOKEN: &str = "scale-token-0123456789abcdef0123456789";

/// How big the zone and config are and how many writes the burst makes.
struct Scale {
    records: usize,
    pools: usize,
    /// Sequential PUTs of RRsets, then as many member changes, over one client.
    sequential: usize,
    /// Concurrent clients, each making `per_client` RRset PUTs.
    clients: usize,
    per_client: usize,
}

impl Scale {
    fn a_records(&self) -> usize {
        self.records - self.records / 10
    }
    fn txt_records(&self) -> usize {
        self.records / 10
    }
}

const TENTH: Scale = Scale { records: 10_000, pools: 1_000, sequential: 8, clients: 4, per_client: 2 };
const FULL: Scale = Scale { records: 100_000, pools: 10_000, sequential: 150, clients: 8, per_client: 10 };

#[test]
fn scale_at_a_tenth_reload_writes_restart() {
    run(&TENTH);
}

#[test]
fn scale_at_100k_records_10k_pools_reload_writes_restart() {
    run(&FULL);
}

fn run(s: &Scale) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = generate(dir.path(), s, false);
    let r = spawn(&cfg);
    check_files(r.dns, s, false);

    // Reload: a few records and pools change in the files, the rest stays.
    generate(dir.path(), s, true);
    reload(&r);
    check_files(r.dns, s, true);

    let api = Api::new(r.admin);
    let mut written = sequential_writes(&r, &api, s);
    written.extend(concurrent_writes(&r, s));
    check_writes(r.dns, &written);
    let last = serial(r.dns);

    // Restart (SIGTERM, then a new start from the same files and state).
    let r = restart(r, &cfg);
    check_files_unwritten(r.dns, s, &written);
    check_writes(r.dns, &written);
    assert!(serial(r.dns) >= last, "the serial went back across a restart: {} < {last}", serial(r.dns));
}

// ---- the generated files ----------------------------------------------------------

/// Writes big.zone, lbdns.toml and the token; `reloaded` gives the edited versions:
/// h1 and t1 changed, h2 removed, new1 added; pool p1's first member changed, p2
/// removed, pnew added.
fn generate(dir: &Path, s: &Scale, reloaded: bool) -> PathBuf {
    write(&dir.join("big.zone"), &zone_text(s, reloaded));
    let token = dir.join("admin.token");
    write(&token, TOKEN);
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = dir.join("lbdns.toml");
    write(&cfg, &config_text(s, reloaded));
    cfg
}

fn zone_text(s: &Scale, reloaded: bool) -> String {
    let mut z = String::with_capacity(s.records * 32);
    z.push_str("$ORIGIN big.test.\n$TTL 300\n");
    z.push_str("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n");
    for i in 0..s.a_records() {
        if let Some(a) = a_of(i, reloaded) {
            z.push_str(&format!("h{i} IN A {a}\n"));
        }
    }
    for i in 0..s.txt_records() {
        z.push_str(&format!("t{i} IN TXT \"{}\"\n", txt_of(i, reloaded)));
    }
    if reloaded {
        z.push_str("new1 IN A 192.0.2.98\n");
    }
    z
}

fn config_text(s: &Scale, reloaded: bool) -> String {
    let mut c = String::with_capacity(s.pools * 130);
    c.push_str("[dns]\nlisten = [\"127.0.0.1:0\"]\nthreads = 1\n");
    c.push_str("[admin]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\ntoken_file = \"admin.token\"\n");
    c.push_str("[[zone]]\norigin = \"big.test.\"\nfile = \"big.zone\"\n");
    let names = (0..s.pools).map(|p| format!("p{p}")).chain(reloaded.then(|| "pnew".to_string()));
    for name in names {
        let Some(members) = members_of(&name, reloaded) else { continue };
        c.push_str(&format!("[[pool]]\nname = \"{name}.big.test.\"\n"));
        for m in members {
            c.push_str(&format!("[[pool.member]]\naddress = \"{m}\"\n"));
        }
    }
    c
}

/// The address of h{i} (None: not in the zone).
fn a_of(i: usize, reloaded: bool) -> Option<String> {
    match (i, reloaded) {
        (1, true) => Some("192.0.2.99".into()),
        (2, true) => None,
        _ => Some(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)),
    }
}

fn txt_of(i: usize, reloaded: bool) -> String {
    if i == 1 && reloaded { "changed by the reload".into() } else { format!("record {i} of the scale test") }
}

/// The members of pool `name` ("p7", "pnew") as the config lists them (None: no such pool).
fn members_of(name: &str, reloaded: bool) -> Option<Vec<String>> {
    match (name, reloaded) {
        ("pnew", true) => return Some(vec!["192.0.2.201".into(), "192.0.2.202".into()]),
        ("pnew", false) | ("p2", true) => return None,
        _ => {}
    }
    let p: usize = name.strip_prefix('p')?.parse().ok()?;
    let first = if p == 1 && reloaded {
        "192.0.2.111".to_string()
    } else {
        format!("172.{}.{}.{}", 16 + (p >> 16 & 15), p >> 8 & 255, p & 255)
    };
    let rest = (1..4).map(|m| format!("198.{}.{}.{}", 18 + m, p >> 8 & 255, p & 255));
    Some(std::iter::once(first).chain(rest).collect())
}

// ---- checks by DNS ----------------------------------------------------------------

/// A fixed sample of indices below `n`: the ends, the middle and some spread between.
fn sample(n: usize) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(17);
    let mut v = vec![0, 1, 2, 3, n / 2, n - 1];
    v.extend((0..24).map(|_| rng.usize(..n)));
    v
}

/// Every sampled record and pool answers what the files say.
fn check_files(dns: SocketAddr, s: &Scale, reloaded: bool) {
    for i in sample(s.a_records()) {
        check_a(dns, &format!("h{i}.big.test."), a_of(i, reloaded).into_iter().collect());
    }
    for i in sample(s.txt_records()) {
        assert_eq!(txt(dns, &format!("t{i}.big.test.")), vec![txt_of(i, reloaded)], "t{i}");
    }
    let pools = sample(s.pools).into_iter().map(|p| format!("p{p}")).chain(["pnew".to_string()]);
    for name in pools {
        check_a(dns, &format!("{name}.big.test."), members_of(&name, reloaded).unwrap_or_default());
    }
    check_a(dns, "new1.big.test.", if reloaded { vec!["192.0.2.98".into()] } else { vec![] });
    check_a(dns, "nope.big.test.", vec![]);
}

/// After the writes: the sample as the reloaded files say, except what the API wrote.
fn check_files_unwritten(dns: SocketAddr, s: &Scale, written: &[Written]) {
    let touched = |n: &str| written.iter().any(|w| w.name == n);
    for i in sample(s.a_records()).into_iter().filter(|i| !touched(&format!("h{i}.big.test."))) {
        check_a(dns, &format!("h{i}.big.test."), a_of(i, true).into_iter().collect());
    }
    for i in sample(s.txt_records()) {
        assert_eq!(txt(dns, &format!("t{i}.big.test.")), vec![txt_of(i, true)], "t{i}");
    }
    for p in sample(s.pools).into_iter().filter(|p| !touched(&format!("p{p}.big.test."))) {
        check_a(dns, &format!("p{p}.big.test."), members_of(&format!("p{p}"), true).unwrap_or_default());
    }
}

/// `name` answers exactly `want` (in any order); an empty `want` means NXDOMAIN.
fn check_a(dns: SocketAddr, name: &str, mut want: Vec<String>) {
    let r = udp(dns, &msg(name, RecordType::A));
    let mut got = addrs(&r);
    got.sort();
    want.sort();
    assert_eq!(got, want, "{name} A");
    let rcode = if want.is_empty() { ResponseCode::NXDomain } else { ResponseCode::NoError };
    assert_eq!(r.metadata.response_code, rcode, "{name} A");
}

fn txt(dns: SocketAddr, name: &str) -> Vec<String> {
    let m = udp(dns, &msg(name, RecordType::TXT));
    let strings = m.answers.iter().flat_map(|r| match &r.data {
        RData::TXT(t) => t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>(),
        other => panic!("{name}: {other:?}"),
    });
    strings.collect()
}

fn serial(dns: SocketAddr) -> u32 {
    match &udp(dns, &msg("big.test.", RecordType::SOA)).answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

// ---- the server -------------------------------------------------------------------

fn signal(r: &Running, sig: &str) {
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

fn reloads(admin: SocketAddr) -> u64 {
    let text = http_get(&format!("http://{admin}/metrics"));
    let line = text.lines().find(|l| l.starts_with("lbdns_reloads_total{result=\"ok\"}"));
    line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64
}

/// Sends SIGHUP and waits until the reload is done (counted as ok).
fn reload(r: &Running) {
    let before = reloads(r.admin);
    signal(r, "-HUP");
    assert!(wait_for(Duration::from_secs(120), || reloads(r.admin) > before), "no reload within 120 s");
}

/// SIGTERM, wait for the exit, then start again from the same files and state.
fn restart(mut r: Running, cfg: &Path) -> Running {
    signal(&r, "-TERM");
    assert!(wait_for(Duration::from_secs(30), || r.child.try_wait().unwrap().is_some()), "no exit after SIGTERM");
    drop(r);
    spawn(cfg)
}

// ---- the writes -------------------------------------------------------------------

struct Api {
    base: String,
    http: Client,
}

impl Api {
    /// One client: reqwest keeps its connection alive between requests.
    fn new(addr: SocketAddr) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        Api { base: format!("http://{addr}"), http }
    }

    fn put(&self, path: &str, body: &str) -> u16 {
        let req = self.http.put(format!("{}{path}", self.base)).bearer_auth(TOKEN);
        let resp = req.header("content-type", "application/json").body(body.to_string()).send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        assert!(status == 200 || status == 201, "PUT {path} {body}: {status} {text}");
        status
    }

    /// Replaces (or creates) the A RRset of `name`.
    fn put_a(&self, name: &str, a: &str) {
        self.put(&format!("/v1/zones/big.test./records/{name}/A"), &format!(r#"{{"ttl":60,"data":["{a}"]}}"#));
    }
}

/// A name and what its A query answers after the writes.
struct Written {
    name: String,
    want: Vec<String>,
}

/// RRset PUTs (new names, and zone-file RRsets replaced), then member changes
/// (added, drained), one at a time over one client; each answered at once, each
/// moving the serial by one.
fn sequential_writes(r: &Running, api: &Api, s: &Scale) -> Vec<Written> {
    let mut written = Vec::new();
    let mut expect = serial(r.dns);
    for i in 0..s.sequential {
        let w = rrset_write(api, s, i);
        expect += 1;
        check_a(r.dns, &w.name, w.want.clone());
        assert_eq!(serial(r.dns), expect, "serial after writing {}", w.name);
        written.push(w);
    }
    for i in 0..s.sequential {
        let w = member_write(api, s, i);
        expect += 1;
        check_a(r.dns, &w.name, w.want.clone());
        assert_eq!(serial(r.dns), expect, "serial after changing {}", w.name);
        written.push(w);
    }
    written
}

/// Even i: a new name w{i}; odd i: a zone-file RRset h{k} replaced.
fn rrset_write(api: &Api, s: &Scale, i: usize) -> Written {
    let a = format!("203.0.113.{}", i % 250 + 1);
    let name = if i % 2 == 0 { format!("w{i}.big.test.") } else { format!("h{}.big.test.", spread(i, s.a_records())) };
    api.put_a(&name, &a);
    Written { name, want: vec![a] }
}

/// Even i: a member added to pool p{k}; odd i: its member 198.19.x.y drained.
fn member_write(api: &Api, s: &Scale, i: usize) -> Written {
    let p = spread(i, s.pools);
    let name = format!("p{p}.big.test.");
    let mut want = members_of(&format!("p{p}"), true).unwrap();
    if i % 2 == 0 {
        let added = format!("203.0.113.{}", i % 250 + 1);
        api.put(&format!("/v1/pools/{name}/members/{added}"), "{}");
        want.push(added);
    } else {
        let drained = want.remove(1);
        api.put(&format!("/v1/pools/{name}/members/{drained}"), r#"{"enabled":false}"#);
    }
    Written { name, want }
}

/// A distinct index below `n` for each i, away from the ones the reload edits (0-3).
fn spread(i: usize, n: usize) -> usize {
    10 + (i * 7919) % (n - 10)
}

/// `clients` threads, each with its own client, PUT new RRsets at once; afterwards
/// the serial has moved by exactly the number of writes.
fn concurrent_writes(r: &Running, s: &Scale) -> Vec<Written> {
    let before = serial(r.dns);
    let threads: Vec<_> = (0..s.clients)
        .map(|c| {
            let (admin, per) = (r.admin, s.per_client);
            std::thread::spawn(move || {
                let api = Api::new(admin);
                let write = |i: usize| {
                    let name = format!("c{c}-{i}.big.test.");
                    let a = format!("198.51.100.{}", c * per + i + 1);
                    api.put_a(&name, &a);
                    Written { name, want: vec![a] }
                };
                (0..per).map(write).collect::<Vec<_>>()
            })
        })
        .collect();
    let written: Vec<Written> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(serial(r.dns), before + written.len() as u32, "serial after {} concurrent writes", written.len());
    written
}

/// Every write is answered by DNS as written.
fn check_writes(dns: SocketAddr, written: &[Written]) {
    for w in written {
        check_a(dns, &w.name, w.want.clone());
    }
}
