//! Zone transfers out and NOTIFY with real secondaries: a Knot (`knotd`) and an
//! NSD (`nsd`) configured as secondaries of the built binary on loopback, each in
//! a temp dir with its own config, pulling the zone with the TSIG key; and `dig`
//! for AXFR, IXFR and refused clients. Timing waits on conditions with deadlines.
//!
//! Without knotd (nsd) the secondary's tests say so and pass, unless
//! LBDNS_REQUIRE_KNOT=1 (LBDNS_REQUIRE_NSD=1), as `.ci/run` sets.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use crate::cli::{Running, spawn, spawn_logging_with};
use crate::harness::*;
use crate::knot::{free_port, knotd_binary};

const SECRET: &str = "eGZyLXNlY3JldC14ZnItc2VjcmV0LXhmci1zZWNyZXQ=";
const TOKEN: &str = "xfr-test-token-0123456789abcdef01";
const ORIGIN: &str = "x.test.";

/// The zone: names of every kind the secondaries must answer as lbdns does.
const ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 10 7200 3600 1209600 60
@ NS ns1
@ NS ns2
@ MX 10 mail
@ TXT \"v=spf1 mx -all\"
ns1 A 192.0.2.1
ns2 A 192.0.2.2
ns2 AAAA 2001:db8::2
mail A 192.0.2.25
static A 192.0.2.80
static AAAA 2001:db8::80
alias CNAME static
*.wild TXT \"wildcard\"
_sip._tcp SRV 10 60 5060 mail
sub NS ns.sub
ns.sub A 192.0.2.53
";

/// The static names compared, with their types.
const NAMES: &[(&str, RecordType)] = &[
    ("x.test.", RecordType::NS),
    ("x.test.", RecordType::MX),
    ("x.test.", RecordType::TXT),
    ("ns2.x.test.", RecordType::AAAA),
    ("static.x.test.", RecordType::A),
    ("static.x.test.", RecordType::AAAA),
    ("alias.x.test.", RecordType::A),
    ("a.wild.x.test.", RecordType::TXT),
    ("_sip._tcp.x.test.", RecordType::SRV),
    ("www.sub.x.test.", RecordType::A),
    ("nothing.x.test.", RecordType::A),
];

/// lbdns with the zone, a pool of two members probed over TCP at `probe_port`
/// (127.0.0.2 and 127.0.0.3), transfers by key only (and for 192.0.2.0/24,
/// so that an unsigned request from loopback is refused), NOTIFY to `notify`.
fn setup(dir: &Path, probe_port: u16, notify: &[SocketAddr], pools: &str) -> PathBuf {
    let notify: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n\
         state_dir = \"state\"\n\n[[tsig]]\nname = \"xfr-key.\"\nsecret_file = \"xfr.key\"\n\n\
         [[zone]]\norigin = \"{ORIGIN}\"\nfile = \"x.zone\"\ntransfer = [\"192.0.2.0/24\", \"key:xfr-key.\"]\n\
         notify = [{}]\ntransfer_pools = \"{pools}\"\n\
         update = [{{ key = \"xfr-key.\", names = [\"_acme-challenge.*\"], types = [\"TXT\"] }}]\n\n\
         [[zone]]\norigin = \"open.test.\"\nfile = \"open.zone\"\ntransfer = [\"127.0.0.0/8\"]\n\n\
         [[zone]]\norigin = \"big.test.\"\nfile = \"big.zone\"\ntransfer = [\"key:xfr-key.\"]\n\n\
         [[pool]]\nname = \"www.x.test.\"\nttl = 30\n[[pool.member]]\naddress = \"127.0.0.2\"\n\
         [[pool.member]]\naddress = \"127.0.0.3\"\n[pool.health]\ncheck = \"tcp\"\nport = {probe_port}\n\
         interval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\n",
        notify.join(", ")
    );
    write(&dir.join("lbdns.toml"), &config);
    write(&dir.join("x.zone"), ZONE);
    write(&dir.join("open.zone"), &small_zone("www A 192.0.2.9\n"));
    write(&dir.join("big.zone"), &small_zone(&big_records()));
    write(&dir.join("xfr.key"), SECRET);
    write(&dir.join("admin.token"), TOKEN);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("admin.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    dir.join("lbdns.toml")
}

/// The two members' backends: TCP listeners the probes connect to.
fn backends() -> (u16, Vec<TcpListener>) {
    loop {
        let port = free_port();
        let all: Vec<_> =
            ["127.0.0.2", "127.0.0.3"].iter().filter_map(|ip| TcpListener::bind((*ip, port)).ok()).collect();
        if all.len() == 2 {
            return (port, all);
        }
    }
}

fn put(admin: SocketAddr, name: &str, data: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://{admin}/v1/zones/{ORIGIN}/records/{name}/A");
    let resp = reqwest::blocking::Client::new()
        .put(url)
        .bearer_auth(TOKEN)
        .json(&json!({"ttl": 60, "data": [data]}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
}

fn serial_at(addr: SocketAddr, origin: &str) -> Option<u32> {
    let q = msg(origin, RecordType::SOA).to_vec().unwrap();
    let m = Message::from_vec(&udp_raw(addr, &q)?).ok()?;
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// What a server answers for `name`/`t`: RCODE and answer lines, sorted; the
/// authority section for a referral (NSD adds NS to positive answers too).
fn answer(addr: SocketAddr, name: &str, t: RecordType) -> (ResponseCode, Vec<String>) {
    let m = tcp(addr, &msg(name, t));
    let mut l = lines(&m.answers);
    if l.is_empty() {
        l.extend(lines(&m.authorities).into_iter().map(|l| format!("authority: {l}")));
    }
    l.sort();
    (m.metadata.response_code, l)
}

fn pool_set(addr: SocketAddr) -> Vec<String> {
    let mut a = addrs(&tcp(addr, &msg("www.x.test.", RecordType::A)));
    a.sort();
    a
}

/// Adds the TXT `text` at `name` by an UPDATE signed with the zone's key.
fn update_txt(dns: SocketAddr, name: &str, text: &str) -> ResponseCode {
    use base64::Engine;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{TXT, tsig::TsigAlgorithm};
    use hickory_proto::rr::{DNSClass, Name, Record, TSigner};
    let secret = base64::engine::general_purpose::STANDARD.decode(SECRET).unwrap();
    let key = TSigner::new(secret, TsigAlgorithm::HmacSha256, Name::from_ascii("xfr-key.").unwrap(), 300).unwrap();
    let mut m = Message::new(7, MessageType::Query, OpCode::Update);
    let mut zone = Query::query(Name::from_ascii(ORIGIN).unwrap(), RecordType::SOA);
    zone.set_query_class(DNSClass::IN);
    m.add_query(zone);
    m.add_authority(Record::from_rdata(Name::from_ascii(name).unwrap(), 60, RData::TXT(TXT::new(vec![text.into()]))));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    m.finalize(&key, now).unwrap();
    Message::from_vec(&tcp_raw(dns, &m.to_vec().unwrap()).unwrap()).unwrap().metadata.response_code
}

/// A secondary server process, killed on drop; its log in `log`.
struct Secondary {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Secondary {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_serial(&self, serial: u32) -> bool {
        wait_for(Duration::from_secs(20), || serial_at(self.addr, ORIGIN) == Some(serial))
    }
}

/// The Knot config the README shows after `<!-- knot-secondary -->`, moved to
/// this test's directory, ports, zone and secret, so the README's own config is
/// the one that must follow lbdns.
fn readme_knot_conf(dir: &str, port: u16, primary: SocketAddr) -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let marker = "<!-- knot-secondary -->\n```yaml\n";
    let at = readme.find(marker).expect("README has no <!-- knot-secondary --> block");
    let body = &readme[at + marker.len()..];
    let readme_secret = "lqWUyjfjmwAliiQJE06P6TBs5KWrB15nw9IWM2Wapkc=";
    body[..body.find("```").unwrap()]
        .replace("/tmp/knot", dir)
        .replace("127.0.0.1@5354", &format!("127.0.0.1@{port}"))
        .replace("127.0.0.1@5353", &format!("{}@{}", primary.ip(), primary.port()))
        .replace("domain: example.test.", &format!("domain: {ORIGIN}"))
        .replace(readme_secret, SECRET)
}

/// A knotd secondary of `primary` on `port`, configured as the README shows,
/// logging to a file the test reads.
fn knot(port: u16, primary: SocketAddr) -> Option<Secondary> {
    let bin = knotd_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let conf = format!("{}log:\n  - target: {d}/knot.log\n    any: info\n", readme_knot_conf(&d, port, primary));
    write(&dir.path().join("knot.conf"), &conf);
    let child = Command::new(bin)
        .arg("-c")
        .arg(dir.path().join("knot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let log = dir.path().join("knot.log");
    Some(Secondary { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), log, _dir: dir })
}

fn nsd_binary() -> Option<&'static str> {
    ["/usr/sbin/nsd", "nsd"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok())
}

/// An NSD secondary of `primary` on `port`, with the key, taking NOTIFY from loopback.
fn nsd(port: u16, primary: SocketAddr) -> Option<Secondary> {
    let bin = nsd_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n\
         \x20 username: \"\"\n  chroot: \"\"\n  database: \"\"\n  xfrdfile: \"{d}/xfrd.state\"\n\
         \x20 zonelistfile: \"{d}/zone.list\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 2\n\
         remote-control:\n  control-enable: no\n\
         key:\n  name: \"xfr-key.\"\n  algorithm: hmac-sha256\n  secret: \"{SECRET}\"\n\
         zone:\n  name: \"{ORIGIN}\"\n  zonefile: \"{d}/x.zone\"\n  request-xfr: {}@{} xfr-key.\n\
         \x20 allow-notify: 127.0.0.1 xfr-key.\n",
        primary.ip(),
        primary.port()
    );
    write(&dir.path().join("nsd.conf"), &conf);
    let child = Command::new(bin)
        .args(["-d", "-c"])
        .arg(dir.path().join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let log = dir.path().join("nsd.log");
    Some(Secondary { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), log, _dir: dir })
}

/// Skips (or, when `env` is "1", fails) a test whose secondary is not installed.
fn missing(what: &str, env: &str) {
    assert!(std::env::var_os(env).is_none_or(|v| v != "1"), "{env}=1 but {what} is not installed");
    skipped(&format!("no {what} binary"));
}

/// The secondary answers every static name as lbdns does, and the pool with
/// the transferred set.
fn same_answers(lbdns: SocketAddr, secondary: &Secondary) {
    // Waited for, as NSD's old server processes may answer for a moment after a reload.
    let same = || NAMES.iter().all(|&(name, t)| answer(secondary.addr, name, t) == answer(lbdns, name, t));
    wait_for(Duration::from_secs(5), same);
    for &(name, t) in NAMES {
        assert_eq!(answer(secondary.addr, name, t), answer(lbdns, name, t), "{name} {t}");
    }
}

/// What every secondary must do: the initial transfer, an API write brought
/// by NOTIFY and IXFR, then an UPDATE, a member going down changing the pool's RRset.
fn follows(lbdns: &Running, sec: &Secondary, backends: &mut Vec<TcpListener>, took_ixfr: impl Fn() -> bool) {
    let first = serial_at(lbdns.dns, ORIGIN).unwrap();
    assert!(sec.wait_serial(first), "the secondary never loaded serial {first}; its log:\n{}", sec.log());
    same_answers(lbdns.dns, sec);
    assert_eq!(pool_set(sec.addr), ["127.0.0.2", "127.0.0.3"]);

    put(lbdns.admin, "new.x.test.", "192.0.2.77");
    let second = serial_at(lbdns.dns, ORIGIN).unwrap();
    assert_ne!(second, first);
    assert!(sec.wait_serial(second), "NOTIFY did not bring serial {second}; its log:\n{}", sec.log());
    // NSD reloads in new server processes while the old ones still answer for
    // a moment: a query right after the new serial may reach an old one.
    let new_name = || addrs(&tcp(sec.addr, &msg("new.x.test.", RecordType::A)));
    assert!(wait_for(Duration::from_secs(5), || new_name() == ["192.0.2.77"]), "{:?}", new_name());
    assert!(wait_for(Duration::from_secs(5), &took_ixfr), "the change did not come by IXFR:\n{}", sec.log());

    // An RFC 2136 UPDATE reaches the secondary the same way.
    assert_eq!(update_txt(lbdns.dns, "_acme-challenge.x.test.", "token"), ResponseCode::NoError);
    let third = serial_at(lbdns.dns, ORIGIN).unwrap();
    assert_ne!(third, second);
    assert!(sec.wait_serial(third), "NOTIFY did not bring the UPDATE's serial {third}; its log:\n{}", sec.log());
    let txt = || tcp(sec.addr, &msg("_acme-challenge.x.test.", RecordType::TXT));
    assert!(wait_for(Duration::from_secs(5), || txt().answers.len() == 1), "the UPDATE's TXT: {:?}", txt());

    // 127.0.0.3's backend goes away: its probe fails, the pool's transferred
    // RRset loses it, the serial moves and the secondary follows.
    backends.pop();
    assert!(
        wait_for(Duration::from_secs(20), || pool_set(sec.addr) == ["127.0.0.2"]),
        "the secondary still has {:?}; its log:\n{}",
        pool_set(sec.addr),
        sec.log()
    );
    same_answers(lbdns.dns, sec);
}

#[test]
fn knot_secondary_follows_writes_and_health() {
    let Some(_) = knotd_binary() else { return missing("knotd", "LBDNS_REQUIRE_KNOT") };
    let dir = tempfile::tempdir().unwrap();
    let (probe_port, mut backends) = backends();
    let port = free_port();
    let lbdns = spawn(&setup(dir.path(), probe_port, &[SocketAddr::from(([127, 0, 0, 1], port))], "healthy"));
    let sec = knot(port, lbdns.dns).unwrap();
    // Knot logs "[x.test.] IXFR, incoming, remote ..., finished".
    follows(&lbdns, &sec, &mut backends, || {
        sec.log().lines().any(|l| l.contains("IXFR, incoming") && l.contains("finished"))
    });
}

#[test]
fn nsd_secondary_follows_writes_and_health() {
    let Some(_) = nsd_binary() else { return missing("nsd", "LBDNS_REQUIRE_NSD") };
    let dir = tempfile::tempdir().unwrap();
    let (probe_port, mut backends) = backends();
    let port = free_port();
    let config = setup(dir.path(), probe_port, &[SocketAddr::from(([127, 0, 0, 1], port))], "healthy");
    let log = dir.path().join("lbdns.log");
    let lbdns = spawn_logging_with(&config, &log, &[("LBDNS_LOG", "info")]);
    let sec = nsd(port, lbdns.dns).unwrap();
    // NSD does not log the kind of transfer: lbdns does.
    let lbdns_log = || std::fs::read_to_string(&log).unwrap_or_default();
    follows(&lbdns, &sec, &mut backends, || lbdns_log().lines().any(|l| l.contains("IXFR: incremental")));
}

/// 3,000 TXT records (about 250 KB in a transfer: several messages).
fn big_records() -> String {
    (0..3000).map(|i| format!("t{i:04} TXT \"{}\"\n", "x".repeat(60))).collect()
}

/// A zone larger than one message: every message signed, and dig and kdig
/// verify each (RFC 8945 section 5.3.1), the records all there once.
#[test]
fn a_large_zone_streams_in_signed_messages() {
    if Command::new("dig").arg("-v").output().is_err() {
        return skipped("no dig");
    }
    let dir = tempfile::tempdir().unwrap();
    let lbdns = spawn(&setup(dir.path(), 9, &[], "enabled"));
    let key = format!("hmac-sha256:xfr-key.:{SECRET}");
    let (at, port) = (format!("@{}", lbdns.dns.ip()), format!("-p{}", lbdns.dns.port()));
    let out = dig(&[&at, &port, "-y", &key, "big.test.", "AXFR"]);
    assert!(!out.contains("failure") && !out.contains("failed"), "{}", &out[out.len().saturating_sub(500)..]);
    assert_eq!(records(&out).len(), 3000 + 2 + 2, "the records, NS and its address, the SOA twice");
    let messages = out.lines().find_map(|l| l.split("(messages ").nth(1)?.split(',').next()?.parse::<u32>().ok());
    assert!(messages.is_some_and(|m| m >= 3), "{messages:?}");
    if !crate::tsig::have("kdig") {
        return;
    }
    let k = Command::new("kdig").args([&at, &port, "-y", &key, "big.test.", "AXFR"]).output().unwrap();
    let kout = String::from_utf8_lossy(&k.stdout);
    assert!(k.status.success() && !kout.contains("failed"), "{}", &kout[kout.len().saturating_sub(500)..]);
    assert!(
        kout.contains(";; Received 3004 records") || kout.contains("3004 records"),
        "{}",
        &kout[kout.len() - 300..]
    );
}

fn dig(args: &[&str]) -> String {
    let out = Command::new("dig").args(args).output().expect("dig runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The records of a `dig` transfer, TTLs kept, comments and TSIG dropped.
fn records(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// `dig axfr` with the key (verified by dig) and without it (refused), AXFR of
/// an address-allowed zone, `dig ixfr=SERIAL` incremental after a write and
/// after a restart (the journal is stored), a client up to date gets the SOA.
#[test]
fn dig_axfr_ixfr_refused_and_restart() {
    if Command::new("dig").arg("-v").output().is_err() {
        return skipped("no dig");
    }
    let dir = tempfile::tempdir().unwrap();
    let (probe_port, _backends) = backends();
    let config = setup(dir.path(), probe_port, &[], "enabled");
    let key = format!("hmac-sha256:xfr-key.:{SECRET}");
    let mut lbdns = spawn(&config);
    let at = |r: &Running| [format!("@{}", r.dns.ip()), format!("-p{}", r.dns.port())];
    let a = at(&lbdns);
    let signed = dig(&[&a[0], &a[1], "-y", &key, ORIGIN, "AXFR"]);
    let recs = records(&signed);
    assert!(!signed.contains("tsig verify failure") && !signed.contains("failed"), "{signed}");
    assert!(recs.first().is_some_and(|r| r.contains(" SOA ")) && recs.last() == recs.first(), "{signed}");
    assert!(recs.contains(&"www.x.test. 30 IN A 127.0.0.2".to_string()), "the pool as an A RRset: {signed}");
    assert!(recs.contains(&"ns.sub.x.test. 300 IN A 192.0.2.53".to_string()), "glue: {signed}");
    assert_eq!(recs.len(), 2 + 15 + 2, "every record once, the SOA twice: {signed}");
    let refused = dig(&[&a[0], &a[1], ORIGIN, "AXFR"]);
    assert!(refused.contains("Transfer failed") || refused.contains("REFUSED"), "{refused}");
    let bad_key = format!("hmac-sha256:xfr-key.:{}", "QUJD".repeat(11));
    let bad = dig(&[&a[0], &a[1], "-y", &bad_key, ORIGIN, "AXFR"]);
    assert!(!bad.contains(" SOA "), "{bad}");
    let open = records(&dig(&[&a[0], &a[1], "open.test.", "AXFR"]));
    assert!(open.iter().any(|r| r.starts_with("www.open.test. 300 IN A 192.0.2.9")), "{open:?}");

    let first = serial_at(lbdns.dns, ORIGIN).unwrap();
    put(lbdns.admin, "new.x.test.", "192.0.2.77");
    let second = serial_at(lbdns.dns, ORIGIN).unwrap();
    let ixfr = format!("IXFR={first}");
    let incremental = |r: &Running| {
        let a = at(r);
        let out = dig(&[&a[0], &a[1], "-y", &key, ORIGIN, &ixfr]);
        let recs = records(&out);
        // New SOA, old SOA, (nothing removed), new SOA, the added record, new SOA.
        recs.len() == 5 && recs[4] == recs[0] && recs.contains(&"new.x.test. 60 IN A 192.0.2.77".to_string())
    };
    assert!(wait_for(Duration::from_secs(10), || incremental(&lbdns)), "no incremental IXFR from {first}");
    let up_to_date = records(&dig(&[&a[0], &a[1], "-y", &key, ORIGIN, &format!("IXFR={second}")]));
    assert_eq!(up_to_date.len(), 1, "{up_to_date:?}");
    assert!(up_to_date[0].contains(&format!(" {second} ")), "{up_to_date:?}");
    let over_udp = dig(&[&a[0], &a[1], "+notcp", "-y", &key, ORIGIN, &ixfr]);
    assert!(records(&over_udp).iter().all(|r| r.contains(" SOA ")), "IXFR over UDP: the SOA alone: {over_udp}");

    drop(lbdns);
    lbdns = spawn(&config);
    assert_eq!(serial_at(lbdns.dns, ORIGIN), Some(second));
    assert!(incremental(&lbdns), "the journal did not outlive the restart");
}

/// `lbdns check` and start-up refuse a `transfer` key that is not a `[[tsig]]`
/// key with the same message at the same line.
#[test]
fn check_and_start_up_agree_on_transfer_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 9, &[], "healthy");
    let text = std::fs::read_to_string(&config).unwrap().replace("key:xfr-key.", "key:other-key.");
    write(&config, &text);
    let line = text.lines().position(|l| l.contains("key:other-key.")).unwrap() + 1;
    let wanted = format!("lbdns.toml:{line}: zone x.test.: transfer key:other-key. is not a [[tsig]] key");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lbdns")).args(args).arg("--config").arg(&config).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, check) = run(&["check"]);
    assert!(!ok && check.contains(&wanted), "check: {check}");
    let (ok, start) = run(&[]);
    assert!(!ok && start.contains(&wanted), "start-up: {start}");
}

/// NOTIFY after a change: opcode NOTIFY, AA, the zone's SOA as the question
/// and its new SOA as the answer, signed with the first `key:` of `transfer`;
/// a secondary that does not answer gets it again, and one that answers is not
/// sent it again (the next NOTIFY it gets is the next change's).
#[test]
fn notify_is_signed_and_sent_again_until_answered() {
    use hickory_proto::op::OpCode;
    let secondary = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (probe_port, _backends) = backends();
    let lbdns = spawn(&setup(dir.path(), probe_port, &[secondary.local_addr().unwrap()], "enabled"));
    let mut buf = vec![0u8; 4096];
    let mut receive = || {
        let (n, from) = secondary.recv_from(&mut buf).expect("a NOTIFY before the deadline");
        (Message::from_vec(&buf[..n]).unwrap(), buf[..n].to_vec(), from)
    };
    put(lbdns.admin, "new.x.test.", "192.0.2.77");
    let (first, _, _) = receive();
    assert_eq!(first.metadata.op_code, OpCode::Notify);
    assert!(first.metadata.authoritative);
    assert_eq!((first.queries[0].name().to_ascii(), first.queries[0].query_type()), (ORIGIN.into(), RecordType::SOA));
    let sig = first.signature.as_ref().expect("signed");
    assert_eq!(sig.name.to_ascii(), "xfr-key.");
    let serial_of = |m: &Message| match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    };
    assert_eq!(Some(serial_of(&first)), serial_at(lbdns.dns, ORIGIN));
    // Not answered: it comes again, then the answer ends the retries.
    let (again, bytes, from) = receive();
    assert_eq!((&again.queries, serial_of(&again)), (&first.queries, serial_of(&first)));
    let mut reply = bytes[..12].to_vec();
    reply[2] |= 0x80;
    reply[4..12].fill(0);
    secondary.send_to(&reply, from).unwrap();
    put(lbdns.admin, "new.x.test.", "192.0.2.78");
    let (next, _, _) = receive();
    assert_eq!(serial_of(&next), serial_of(&first) + 1, "the next change's NOTIFY, not a retry of the answered one");
}
