//! DNSSEC online signing, validated by a real resolver: unbound (Debian's) with
//! lbdns's DS (from `lbdns dnssec ds`) as its trust anchor and a stub zone to
//! lbdns on loopback. Every kind of answer must come back with AD=1: pools of
//! each policy (geo with ECS, which unbound's subnetcache forwards), a static
//! name, a wildcard, a CNAME into a pool, compact denial of a name that does not
//! exist, NODATA, an insecure delegation's DS denial, and a pool whose member
//! goes down. A wrong trust anchor gives SERVFAIL. delv is a second validator.
//!
//! Without unbound (or delv) these tests print why and pass, unless
//! LBDNS_REQUIRE_UNBOUND=1 (as `.ci/run` sets, after installing both).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::backend::Backend;
use crate::harness::*;

const LBDNS: &str = env!("CARGO_BIN_EXE_lbdns");

fn tool(name: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("LBDNS_REQUIRE_UNBOUND").is_none(),
            "LBDNS_REQUIRE_UNBOUND is set but there is no {name} (apt-get install unbound bind9-dnsutils)"
        );
        skipped(&format!("no {name} binary (apt-get install unbound bind9-dnsutils)"));
    }
    found
}

/// A key directory with one CSK for d.test., made by `lbdns dnssec keygen`,
/// and the DS line `lbdns dnssec ds` prints for it.
fn keys() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lbdns.toml");
    write(
        &cfg,
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n[zone.dnssec]\nkey_dir=\"keys\"\n",
    );
    let run = |args: &[&str]| {
        let out = Command::new(LBDNS).arg("--config").arg(&cfg).args(args).output().unwrap();
        assert!(out.status.success(), "lbdns {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["dnssec", "keygen", "d.test."]);
    let ds = run(&["dnssec", "ds", "d.test."]).trim().to_string();
    assert!(ds.starts_with("d.test. IN DS ") && ds.lines().count() == 1, "{ds}");
    (dir, ds)
}

/// The signed zone d.test. with a pool of each policy; `backends` serve the
/// health checks of `checked.d.test.`.
fn server(key_dir: &Path, backends: &[Backend]) -> Server {
    let geo = manifest_dir().join("geoip/test-country.mmdb");
    let port = backends.first().map_or(80, |b| b.addr.port());
    let mut cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [geoip]\ndatabase=\"{}\"\n[regions]\nJP=[\"ap\",\"us\"]\ndefault=[\"us\",\"ap\"]\n\
         [[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n[zone.dnssec]\nkey_dir=\"{}\"\n\
         [[pool]]\nname=\"rr.d.test.\"\nttl=1\nmax_answers=2\n{}\
         [[pool]]\nname=\"weighted.d.test.\"\npolicy=\"weighted\"\nttl=1\nmax_answers=2\n{}\
         [[pool]]\nname=\"geo.d.test.\"\npolicy=\"geo\"\nttl=1\nmax_answers=1\n\
         [[pool.member]]\naddress=\"192.0.2.30\"\nregion=\"ap\"\n[[pool.member]]\naddress=\"192.0.2.10\"\nregion=\"us\"\n\
         [[pool]]\nname=\"big.d.test.\"\n{}\
         [[pool]]\nname=\"checked.d.test.\"\nttl=1\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"100ms\"\ntimeout=\"300ms\"\nrise=1\nfall=1\n",
        geo.display(),
        key_dir.display(),
        members(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        members(&["192.0.2.4", "192.0.2.5", "2001:db8::5"]),
        (1..=40).map(|i| format!("[[pool.member]]\naddress=\"198.51.100.{i}\"\n")).collect::<String>(),
    );
    for b in backends {
        cfg.push_str(&format!("[[pool.member]]\naddress=\"{}\"\n", b.addr.ip()));
    }
    // Nine TXT records of 100 octets: too large for 512 bytes.
    let long: String = (0..9).map(|i| format!("long TXT \"{i}{}\"\n", "x".repeat(99))).collect();
    // Five mail exchangers, each with an address for the additional section.
    let mail: String = (1..=5).map(|i| format!("mail MX {i} m{i}\nm{i} A 192.0.2.{}\n", 100 + i)).collect();
    let zone = small_zone(&format!(
        "static A 192.0.2.50\nstatic TXT \"Hello\"\n*.wild A 192.0.2.60\nalias CNAME RR\n@ MX 10 Static\n\
         sub NS ns.sub\nns.sub A 192.0.2.99\na.b.ent TXT x\n{long}{mail}"
    ));
    Server::start(&cfg, &[("d.zone", &zone)])
}

/// HTTP backends on 127.0.0.2, 127.0.0.3, … on one port (the pool's probe port).
fn backends(n: usize) -> Vec<Backend> {
    for _ in 0..20 {
        let first = Backend::http("127.0.0.2", 0);
        let port = first.addr.port();
        let mut all = vec![first];
        for i in 1..n {
            match TcpListener::bind((format!("127.0.0.{}", i + 2).as_str(), port)) {
                Ok(l) => drop(l),
                Err(_) => break,
            }
            all.push(Backend::http(&format!("127.0.0.{}", i + 2), port));
        }
        if all.len() == n {
            return all;
        }
    }
    panic!("no common free port for {n} backends");
}

fn members(addresses: &[&str]) -> String {
    addresses.iter().map(|a| format!("[[pool.member]]\naddress=\"{a}\"\n")).collect()
}

/// unbound on a free loopback port, validating with `anchor`, d.test. stubbed to `lbdns`.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    fn start(anchor: &str, lbdns: SocketAddr) -> Option<Unbound> {
        let bin = tool("unbound")?;
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("unbound.conf");
            write(&conf, &unbound_conf(dir.path(), port, anchor, lbdns));
            let mut cmd = Command::new(&bin);
            cmd.arg("-d").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null());
            let child = cmd.spawn().unwrap();
            let mut u = Unbound { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), _dir: dir };
            let up = wait_for(Duration::from_secs(10), || {
                u.child.try_wait().ok().flatten().is_none() && ask_raw(u.addr, "d.test.", RecordType::SOA).is_some()
            });
            if up {
                return Some(u);
            }
            let _ = u.child.kill();
        }
        panic!("unbound did not start");
    }

    /// Asks with DO=1 and RD=1: (rcode, AD, reply).
    fn ask(&self, name: &str, t: RecordType) -> (ResponseCode, bool, Message) {
        let r = ask_raw(self.addr, name, t).unwrap_or_else(|| panic!("no answer from unbound for {name} {t}"));
        (r.metadata.response_code, r.metadata.authentic_data, r)
    }
}

fn unbound_conf(dir: &Path, port: u16, anchor: &str, lbdns: SocketAddr) -> String {
    format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  use-syslog: no\n  logfile: \"\"\n\
         \x20 username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  do-not-query-localhost: no\n\
         \x20 trust-anchor: \"{anchor}\"\n  access-control: 127.0.0.0/8 allow\n  local-zone: \"test.\" nodefault\n\
         \x20 module-config: \"subnetcache validator iterator\"\n  send-client-subnet: 127.0.0.1\n\
         \x20 client-subnet-always-forward: yes\n  aggressive-nsec: yes\n  qname-minimisation: no\n\
         \x20 val-log-level: 2\n  verbosity: 1\n\
         stub-zone:\n  name: \"d.test.\"\n  stub-addr: {}@{}\n",
        dir.display(),
        lbdns.ip(),
        lbdns.port()
    )
}

/// A port free on loopback for both UDP and TCP (as far as one can tell).
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn ask_raw(addr: SocketAddr, name: &str, t: RecordType) -> Option<Message> {
    let mut m = msg(name, t);
    m.metadata.recursion_desired = true;
    m.edns.as_mut().unwrap().set_dnssec_ok(true);
    let bytes = udp_raw(addr, &m.to_vec().unwrap())?;
    Message::from_vec(&bytes).ok()
}

fn ask_ecs(u: &Unbound, name: &str, net: &str) -> (bool, Vec<String>) {
    let mut m = msg_ecs(name, RecordType::A, net, 24);
    m.metadata.recursion_desired = true;
    m.edns.as_mut().unwrap().set_dnssec_ok(true);
    let r = udp(u.addr, &m);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name} via {net}");
    (r.metadata.authentic_data, addrs(&r))
}

#[test]
fn unbound_validates_every_kind_of_answer() {
    let (key_dir, ds) = keys();
    let backends: Vec<Backend> = backends(2);
    let s = server(&key_dir.path().join("keys"), &backends);
    let Some(u) = Unbound::start(&ds, s.dns) else { return };
    let secure = |name: &str, t: RecordType| {
        let (rcode, ad, r) = u.ask(name, t);
        assert!(ad, "{name} {t}: AD=0 ({rcode}): {r}");
        (rcode, r)
    };
    for (name, t, answers) in [
        ("rr.d.test.", RecordType::A, 2),
        ("weighted.d.test.", RecordType::A, 2),
        ("weighted.d.test.", RecordType::AAAA, 1),
        ("static.d.test.", RecordType::A, 1),
        ("static.d.test.", RecordType::TXT, 1),
        ("d.test.", RecordType::MX, 1),
        ("d.test.", RecordType::DNSKEY, 1),
        ("x.wild.d.test.", RecordType::A, 1),
        ("alias.d.test.", RecordType::A, 3),
    ] {
        let (rcode, r) = secure(name, t);
        assert_eq!(rcode, ResponseCode::NoError, "{name} {t}");
        let n = r.answers.iter().filter(|x| x.record_type() != RecordType::RRSIG).count();
        assert_eq!(n, answers, "{name} {t}: {r}");
    }
    // Compact denial: a name that does not exist, NODATA (a pool's other
    // family, a static name's, an empty non-terminal, a wildcard's), and the
    // DS of an insecure delegation are all NOERROR without answers.
    for (name, t) in [
        ("nope.d.test.", RecordType::A),
        ("x.nope.d.test.", RecordType::TXT),
        ("rr.d.test.", RecordType::AAAA),
        ("static.d.test.", RecordType::AAAA),
        ("b.ent.d.test.", RecordType::A),
        ("y.wild.d.test.", RecordType::TXT),
        ("sub.d.test.", RecordType::DS),
    ] {
        let (rcode, r) = secure(name, t);
        assert_eq!((rcode, r.answers.len()), (ResponseCode::NoError, 0), "{name} {t}: {r}");
    }
    // A pool's types are not denied by the NSEC of another type's NODATA:
    // unbound (aggressive-nsec) still asks and validates them.
    assert_eq!(secure("rr.d.test.", RecordType::A).1.answers.len(), 3);
    // Geo with ECS: each subnet its region's member, signed.
    assert_eq!(ask_ecs(&u, "geo.d.test.", "192.0.2.0"), (true, vec!["192.0.2.30".to_string()]));
    assert_eq!(ask_ecs(&u, "geo.d.test.", "198.51.100.0"), (true, vec!["192.0.2.10".to_string()]));
    // A member going down: the new set, signed.
    let all: Vec<String> = backends.iter().map(|b| b.addr.ip().to_string()).collect();
    let sorted = |r: &Message| {
        let mut a = addrs(r);
        a.sort();
        a
    };
    assert!(wait_for(Duration::from_secs(10), || sorted(&u.ask("checked.d.test.", RecordType::A).2) == all));
    backends[0].set_status(503);
    assert!(wait_for(Duration::from_secs(10), || sorted(&u.ask("checked.d.test.", RecordType::A).2) == all[1..]));
    assert!(u.ask("checked.d.test.", RecordType::A).1, "the new set validates");
}

#[test]
fn a_wrong_trust_anchor_is_servfail() {
    let (key_dir, ds) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    // The same key tag and algorithm, another digest.
    let (head, digest) = ds.rsplit_once(' ').unwrap();
    let wrong = format!("{head} {}", digest.chars().rev().collect::<String>());
    let Some(u) = Unbound::start(&wrong, s.dns) else { return };
    let (rcode, ad, _) = u.ask("static.d.test.", RecordType::A);
    assert_eq!((rcode, ad), (ResponseCode::ServFail, false));
}

/// delv, a second validator (BIND's), with the DNSKEY as its trust anchor.
#[test]
fn delv_validates_pool_answers_and_denials() {
    let Some(delv) = tool("delv") else { return };
    let (key_dir, _) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    let dnskey = udp(s.dns, &msg("d.test.", RecordType::DNSKEY));
    let key = dnskey.answers.first().expect("a DNSKEY").data.to_string();
    let anchors = key_dir.path().join("anchors");
    let mut anchor = key.split_whitespace();
    let (flags, proto, alg) = (anchor.next().unwrap(), anchor.next().unwrap(), anchor.next().unwrap());
    let b64: String = anchor.collect();
    write(&anchors, &format!("trust-anchors {{ d.test. static-key {flags} {proto} {alg} \"{b64}\"; }};\n"));
    for (name, t, want) in [
        ("rr.d.test.", "A", "; fully validated"),
        ("alias.d.test.", "A", "; fully validated"),
        ("nope.d.test.", "A", "; negative response, fully validated"),
        ("static.d.test.", "AAAA", "; negative response, fully validated"),
    ] {
        let out = Command::new(&delv)
            .args(["-a", anchors.to_str().unwrap(), "-p", &s.dns.port().to_string(), "+root=d.test."])
            .arg(format!("@{}", s.dns.ip()))
            .args([name, t])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(want), "delv {name} {t}:\n{text}");
    }
}

/// A query straight to lbdns with DO=1 and `payload`.
fn ask_signed(s: &Server, name: &str, t: RecordType, payload: u16) -> Message {
    let mut m = msg(name, t);
    let e = m.edns.as_mut().unwrap();
    e.set_dnssec_ok(true);
    e.set_max_payload(payload);
    udp(s.dns, &m)
}

fn metric(s: &Server, name: &str) -> u64 {
    let text = http_get(&format!("http://{}/metrics", s.admin));
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A round-robin pool of 3 with max_answers 2 has 3 distinct sets: 30 queries
/// cost 3 signatures, each set has one RRSIG, and one set is written out of
/// canonical order (unbound validates it in the test above).
#[test]
fn pool_answers_cost_one_signature_per_distinct_set() {
    let (key_dir, _) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    let before = metric(&s, "lbdns_dnssec_signatures_total");
    let mut by_set: std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<String>> = Default::default();
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let r = ask_signed(&s, "rr.d.test.", RecordType::A, 1232);
        let order = addrs(&r);
        let mut set = order.clone();
        set.sort();
        orders.insert(order);
        let sigs = r.answers.iter().filter(|x| x.record_type() == RecordType::RRSIG).map(|x| x.data.to_string());
        by_set.entry(set).or_default().extend(sigs);
    }
    assert_eq!(by_set.len(), 3, "{by_set:?}");
    let unsorted = |o: &Vec<String>| o.windows(2).any(|w| w[0] > w[1]);
    assert!(orders.iter().any(unsorted), "a set written out of canonical order: {orders:?}");
    assert!(by_set.values().all(|sigs| sigs.len() == 1), "one RRSIG per set: {by_set:?}");
    assert_eq!(metric(&s, "lbdns_dnssec_signatures_total") - before, 3);
    assert!(metric(&s, "lbdns_dnssec_cache_bytes") > 0);
}

/// With DO=1 a pool answer keeps room for its RRSIG: fewer members fit a
/// 512-byte reply than without DO, the reply is not truncated and carries the
/// RRSIG; over TCP every member comes, signed. A static RRset too large for
/// UDP is truncated whole and comes signed over TCP.
#[test]
fn signed_answers_keep_within_the_size_limits() {
    let (key_dir, _) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    let plain = {
        let mut m = msg("big.d.test.", RecordType::A);
        m.edns.as_mut().unwrap().set_max_payload(512);
        udp(s.dns, &m)
    };
    let signed = ask_signed(&s, "big.d.test.", RecordType::A, 512);
    let bytes = signed.to_vec().unwrap().len();
    assert!(bytes <= 512 && !signed.metadata.truncation, "{bytes} bytes");
    let members = addrs(&signed).len();
    assert!(members >= 1 && members < addrs(&plain).len(), "{members} signed, {} plain", addrs(&plain).len());
    let rrsigs = |m: &Message| m.answers.iter().filter(|x| x.record_type() == RecordType::RRSIG).count();
    assert_eq!(rrsigs(&signed), 1);
    let mut m = msg("big.d.test.", RecordType::A);
    m.edns.as_mut().unwrap().set_dnssec_ok(true);
    let all = tcp(s.dns, &m);
    assert_eq!((addrs(&all).len(), rrsigs(&all)), (40, 1));
    let txt = ask_signed(&s, "long.d.test.", RecordType::TXT, 512);
    assert!(txt.metadata.truncation && txt.answers.is_empty());
    let mut m = msg("long.d.test.", RecordType::TXT);
    m.edns.as_mut().unwrap().set_dnssec_ok(true);
    let whole = tcp(s.dns, &m);
    assert_eq!((whole.answers.len(), rrsigs(&whole)), (10, 1));
}

/// With DO=1 each address RRset of the additional section comes with its
/// RRSIG, or is left out with it when both do not fit (without TC); the
/// referral's glue is not signed.
#[test]
fn additional_data_comes_with_its_rrsig_or_not_at_all() {
    let (key_dir, _) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    let signed_a = |m: &Message| {
        let a: Vec<String> =
            m.additionals.iter().filter(|r| r.record_type() == RecordType::A).map(|r| r.name.to_string()).collect();
        let sigs = m.additionals.iter().filter(|r| r.record_type() == RecordType::RRSIG);
        let mut sig_owners: Vec<String> = sigs.map(|r| r.name.to_string()).collect();
        sig_owners.sort();
        let mut owners = a.clone();
        owners.sort();
        assert_eq!(owners, sig_owners, "an RRSIG for each address RRset: {m}");
        a.len()
    };
    let small = ask_signed(&s, "mail.d.test.", RecordType::MX, 512);
    let n = signed_a(&small);
    assert!(!small.metadata.truncation && (1..5).contains(&n), "{n} of 5 fit 512 bytes: {small}");
    assert!(small.to_vec().unwrap().len() <= 512);
    assert_eq!(signed_a(&ask_signed(&s, "mail.d.test.", RecordType::MX, 1232)), 5);
    let referral = ask_signed(&s, "a.sub.d.test.", RecordType::A, 1232);
    let glue: Vec<RecordType> = referral.additionals.iter().map(|r| r.record_type()).collect();
    assert_eq!(glue, [RecordType::A], "glue, unsigned: {referral}");
}

/// Queries without DO, or to a zone that is not signed, get what they got
/// before: no RRSIG, NXDOMAIN for a name that does not exist (also with CO),
/// and NXNAME is only refused in a signed zone.
#[test]
fn unsigned_answers_are_unchanged() {
    let (key_dir, _) = keys();
    let s = server(&key_dir.path().join("keys"), &[]);
    let r = s.query("nope.d.test.", RecordType::A);
    assert_eq!((r.metadata.response_code, r.authorities.len()), (ResponseCode::NXDomain, 1));
    let r = s.query("rr.d.test.", RecordType::A);
    assert!(r.answers.iter().all(|x| x.record_type() == RecordType::A));
    let r = ask_signed(&s, "nope.d.test.", RecordType::A, 1232);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "compact denial");
    let nxname = ask_signed(&s, "static.d.test.", RecordType::Unknown(128), 1232);
    assert_eq!(nxname.metadata.response_code, ResponseCode::FormErr);
    // The CO flag (bit 14 of the OPT flags) asks for NXDOMAIN, and is echoed.
    let mut m = msg("nope.d.test.", RecordType::A);
    let mut bytes = m.to_vec().unwrap();
    let n = bytes.len();
    bytes[n - 4] = 0xc0; // DO and CO
    m = Message::from_vec(&udp_raw(s.dns, &bytes).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.authorities.iter().any(|x| x.record_type() == RecordType::NSEC));
}

/// A bad key is an error naming the file, in `lbdns check` and at start-up.
#[test]
fn a_bad_key_file_is_named_by_check_and_start_up() {
    let (key_dir, _) = keys();
    let private = std::fs::read_dir(key_dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "private"))
        .unwrap();
    write(&private, "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n");
    let cfg = key_dir.path().join("lbdns.toml");
    write(&key_dir.path().join("d.zone"), &small_zone(""));
    let out = Command::new(LBDNS).arg("--config").arg(&cfg).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains(&private.display().to_string()) && text.contains("PrivateKey"), "{text}");
    let start = Server::try_start(
        &format!(
            "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n[[zone]]\norigin=\"d.test.\"\n\
             file=\"d.zone\"\n[zone.dnssec]\nkey_dir=\"{}\"\n",
            key_dir.path().join("keys").display()
        ),
        &[("d.zone", &small_zone(""))],
    );
    let err = start.err().expect("start-up refuses the key");
    assert!(err.contains(&private.display().to_string()), "{err}");
}

/// A key rollover: a second key (Ed25519, the algorithm changed in the config)
/// added with `keygen --add` is published and signs after SIGHUP, and a
/// resolver whose trust anchor is the new key's DS alone validates.
#[test]
fn a_key_added_and_reloaded_is_published_and_signs() {
    let (key_dir, _) = keys();
    let dir = key_dir.path();
    let cfg = dir.join("lbdns.toml");
    let config = |alg: &str| {
        format!(
            "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n[[zone]]\norigin=\"d.test.\"\n\
             file=\"d.zone\"\n[zone.dnssec]\nkey_dir=\"keys\"\nalgorithm=\"{alg}\"\n\
             [[pool]]\nname=\"rr.d.test.\"\nmax_answers=1\n{}",
            members(&["192.0.2.1", "192.0.2.2"])
        )
    };
    write(&cfg, &config("ecdsap256sha256"));
    write(&dir.join("d.zone"), &small_zone("static A 192.0.2.50\n"));
    let r = crate::cli::spawn(&cfg);
    let dnskeys = || udp(r.dns, &msg("d.test.", RecordType::DNSKEY)).answers.len();
    assert_eq!(dnskeys(), 1);
    write(&cfg, &config("ed25519"));
    let run = |args: &[&str]| {
        let out = Command::new(LBDNS).arg("--config").arg(&cfg).args(args).output().unwrap();
        assert!(out.status.success(), "lbdns {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let refused = Command::new(LBDNS).arg("--config").arg(&cfg).args(["dnssec", "keygen", "d.test."]).output().unwrap();
    assert_eq!(refused.status.code(), Some(64), "keygen without --add refuses a second key");
    run(&["dnssec", "keygen", "d.test.", "--add"]);
    let ds = run(&["dnssec", "ds", "d.test."]);
    let new_ds = ds.lines().find(|l| l.contains(" 15 2 ")).expect("an Ed25519 DS").to_string();
    assert_eq!(ds.lines().count(), 2, "{ds}");
    assert!(Command::new("kill").args(["-HUP", &r.child.id().to_string()]).status().unwrap().success());
    assert!(wait_for(Duration::from_secs(10), || dnskeys() == 2), "the new key is published");
    let Some(u) = Unbound::start(&new_ds, r.dns) else { return };
    for (name, t) in [("static.d.test.", RecordType::A), ("rr.d.test.", RecordType::A), ("nope.d.test.", RecordType::A)]
    {
        let (rcode, ad, reply) = u.ask(name, t);
        assert!(ad && rcode == ResponseCode::NoError, "{name}: {reply}");
    }
}

/// Static RRsets are signed ahead, off the query path: once the pre-signing
/// pass is done (`lbdns_dnssec_presigned` covers the zone), answers for 200
/// different static names come with their RRSIGs and not one signature is made
/// while answering; the same name twice gets the same RRSIG (the one made
/// ahead). A pool answer is still signed while answering.
#[test]
fn static_answers_use_signatures_made_ahead() {
    let (key_dir, _) = keys();
    let dir = key_dir.path();
    let names: String = (0..200).map(|i| format!("h{i} A 192.0.2.{}\n", i % 250)).collect();
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n[[zone]]\norigin=\"d.test.\"\n\
         file=\"d.zone\"\n[zone.dnssec]\nkey_dir=\"{}\"\n[[pool]]\nname=\"rr.d.test.\"\n{}",
        dir.join("keys").display(),
        members(&["192.0.2.1"])
    );
    let s = Server::start(&cfg, &[("d.zone", &small_zone(&names))]);
    let ready = wait_for(Duration::from_secs(30), || metric(&s, "lbdns_dnssec_presigned") >= 200);
    assert!(ready, "pre-signing covers the 200 names: {}", metric(&s, "lbdns_dnssec_presigned"));
    assert!(metric(&s, "lbdns_dnssec_presigned_bytes") > 0);
    let before = metric(&s, "lbdns_dnssec_signatures_total");
    let rrsig = |name: &str| {
        let r = ask_signed(&s, name, RecordType::A, 1232);
        let sigs: Vec<String> =
            r.answers.iter().filter(|x| x.record_type() == RecordType::RRSIG).map(|x| x.data.to_string()).collect();
        assert_eq!(sigs.len(), 1, "{name}: {r:?}");
        sigs[0].clone()
    };
    let first = rrsig("h0.d.test.");
    for i in 1..200 {
        rrsig(&format!("h{i}.d.test."));
    }
    assert_eq!(rrsig("h0.d.test."), first);
    assert_eq!(metric(&s, "lbdns_dnssec_signatures_total"), before, "no signature made while answering");
    rrsig("rr.d.test.");
    assert_eq!(metric(&s, "lbdns_dnssec_signatures_total"), before + 1, "a pool answer is signed while answering");
}
