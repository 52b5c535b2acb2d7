//! Record data that parses but cannot be served, RFC 1035 escapes, errors that
//! would disclose a file, and RRsets read and written back through the API: the
//! built binary (`check`, start-up, SIGHUP, restart, export, import) and the
//! in-process server, answers read from the wire.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::cli::spawn;
use crate::harness::*;

const TOKEN: &str = "data-test-token-0123456789abcdef0";

const CFG: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                   token_file=\"admin.token\"\nstate_dir=\"state\"\n\
                   [[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n";

fn bin(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbdns")).args(args).arg("--config").arg(config).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn setup(dir: &Path, zone_extra: &str) -> PathBuf {
    write(&dir.join("lbdns.toml"), CFG);
    write(&dir.join("d.zone"), &small_zone(zone_extra));
    write(&dir.join("admin.token"), TOKEN);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("admin.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    dir.join("lbdns.toml")
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn call(admin: std::net::SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client().request(method.parse().unwrap(), format!("http://{admin}{path}")).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn put(admin: std::net::SocketAddr, name: &str, rtype: &str, data: &[&str]) -> (u16, Value) {
    let path = format!("/v1/zones/d.test./records/{name}/{rtype}");
    call(admin, "PUT", &path, Some(json!({"ttl": 60, "data": data})))
}

fn serial(dns: std::net::SocketAddr) -> u32 {
    match &udp(dns, &msg("d.test.", RecordType::SOA)).answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

/// The character-strings of the TXT answers for `name`, as served.
fn txt(dns: std::net::SocketAddr, name: &str) -> Vec<Vec<u8>> {
    let m = udp(dns, &msg(name, RecordType::TXT));
    m.answers
        .iter()
        .flat_map(|r| match &r.data {
            RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn reloads(admin: std::net::SocketAddr, result: &str) -> f64 {
    let series = format!("lbdns_reloads_total{{result=\"{result}\"}} ");
    let text = http_get(&format!("http://{admin}/metrics"));
    text.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.trim().parse().unwrap()).unwrap_or(-1.0)
}

/// Issue 15: data the snapshot cannot encode is refused with 422 before anything
/// is stored, and the zone stays healthy: later writes, SIGHUP, a restart,
/// `check` and `export` all work.
#[test]
fn unservable_rrset_is_refused_and_nothing_is_poisoned() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), "");
    let r = spawn(&cfg);
    let serial0 = serial(r.dns);
    let long = "x".repeat(300);
    let (st, v) = put(r.admin, "bad.d.test.", "TXT", &["\"ok\"", &format!("\"{long}\"")]);
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("data[1]: TXT string 1 is 300 octets; the limit is 255"), "{v}");
    let caa = format!("0 issue \"{}\"", "y".repeat(70_000));
    let (st, v) = put(r.admin, "bad.d.test.", "CAA", &[&caa]);
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("data[0]: record data is over 65535 octets; the limit is 64740"), "{v}");
    for (rtype, data) in [("HINFO", format!("{long} x")), ("NAPTR", format!("1 1 \"{long}\" \"\" \"\" ."))] {
        let (st, v) = put(r.admin, "bad.d.test.", rtype, &[&data]);
        assert_eq!(st, 422, "{rtype}: {v}");
        assert!(v.to_string().contains("is 300 octets; the limit is 255"), "{rtype}: {v}");
    }
    assert_eq!(serial(r.dns), serial0, "a refused write moved the serial");
    let records = call(r.admin, "GET", "/v1/zones/d.test./records", None).1;
    assert!(!records.to_string().contains("bad.d.test."), "{records}");

    // Later writes to the zone are fine and served at once.
    let (st, v) = put(r.admin, "good.d.test.", "TXT", &["\"fine\""]);
    assert_eq!(st, 201, "{v}");
    assert_eq!(txt(r.dns, "good.d.test."), vec![b"fine".to_vec()]);
    assert_eq!(serial(r.dns), serial0 + 1);
    // SIGHUP reloads.
    assert!(Command::new("kill").args(["-HUP", &r.child.id().to_string()]).status().unwrap().success());
    assert!(wait_for(Duration::from_secs(5), || reloads(r.admin, "ok") == 1.0), "reload did not succeed");
    drop(r);
    // `check` and a restart agree, and export holds only what was accepted.
    let out = bin(&["check"], &cfg);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = spawn(&cfg);
    assert_eq!(txt(r.dns, "good.d.test."), vec![b"fine".to_vec()]);
    drop(r);
    let out = bin(&["export"], &cfg);
    assert!(out.status.success(), "{}", stderr(&out));
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(export.contains("good.d.test.") && !export.contains("bad.d.test."), "{export}");
}

/// The largest RDATA accepted is answered whole over TCP, even at a name of
/// nearly 255 octets; one octet more is refused.
#[test]
fn the_largest_accepted_record_is_answered_over_tcp() {
    let s = Server::start(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n",
        &[("d.zone", &small_zone("")), ("admin.token", TOKEN)],
    );
    let name = format!("{}.{}.{}.{}.d.test.", "a".repeat(63), "b".repeat(63), "c".repeat(63), "e".repeat(50));
    let value = |n: usize| format!("0 issue \"{}\"", "v".repeat(n));
    // flags, tag length and "issue" are 7 octets.
    let (st, v) = put(s.admin, &name, "CAA", &[&value(64_740 - 7 + 1)]);
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("record data is 64741 octets; the limit is 64740"), "{v}");
    let (st, v) = put(s.admin, &name, "CAA", &[&value(64_740 - 7)]);
    assert_eq!(st, 201, "{v}");
    let m = tcp(s.dns, &msg(&name, RecordType::CAA));
    assert!(!m.metadata.truncation, "TC set");
    assert_eq!(m.answers.len(), 1);
}

/// A change stored before the check existed (written here straight into the
/// store) is left out at start-up and logged; export shows it and import refuses
/// it by name.
#[test]
fn stored_change_that_does_not_encode_is_skipped_at_start() {
    use lbdns::persist::{Store, sqlite::SqliteStore};
    use lbdns::state::overlay::{Change, StoredRRset};
    // The store is async; a current-thread runtime is all it needs.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), "kept IN TXT \"kept\"\n");
    let zone = Name::from_ascii("d.test.").unwrap();
    let mut store = SqliteStore::open(&dir.path().join("state")).unwrap();
    let bad = StoredRRset::api(60, vec![format!("\"{}\"", "x".repeat(300))]);
    let name = Name::from_ascii("bad.d.test.").unwrap();
    let change = Change::PutRRset { zone: zone.clone(), name, rtype: RecordType::TXT, set: bad };
    rt.block_on(store.apply(&change, &zone)).unwrap();
    let good = StoredRRset::api(60, vec!["\"fine\"".into()]);
    let name = Name::from_ascii("good.d.test.").unwrap();
    let change = Change::PutRRset { zone: zone.clone(), name, rtype: RecordType::TXT, set: good };
    rt.block_on(store.apply(&change, &zone)).unwrap();
    drop(store);

    let r = spawn(&cfg);
    assert_eq!(txt(r.dns, "kept.d.test."), vec![b"kept".to_vec()]);
    assert_eq!(txt(r.dns, "good.d.test."), vec![b"fine".to_vec()]);
    assert!(txt(r.dns, "bad.d.test.").is_empty());
    // The refused change can be deleted.
    let (st, v) = call(r.admin, "DELETE", "/v1/zones/d.test./records/bad.d.test./TXT", None);
    assert_eq!(st, 204, "{v}");
    drop(r);

    // Export and import: data that cannot be served is named, not carried along.
    let mut store = SqliteStore::open(&dir.path().join("state")).unwrap();
    let bad = StoredRRset::api(60, vec![format!("\"{}\"", "x".repeat(300))]);
    let name = Name::from_ascii("bad.d.test.").unwrap();
    let change = Change::PutRRset { zone: zone.clone(), name, rtype: RecordType::TXT, set: bad };
    rt.block_on(store.apply(&change, &zone)).unwrap();
    drop(store);
    let out = bin(&["export"], &cfg);
    assert!(out.status.success(), "{}", stderr(&out));
    let target = tempfile::tempdir().unwrap();
    let target_cfg = setup(target.path(), "");
    let file = target.path().join("state.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = bin(&["import", file.to_str().unwrap()], &target_cfg);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("RRset bad.d.test. TXT: data[0]: TXT string 1 is 300 octets; the limit is 255"), "{err}");
}

/// Issue 15: the same data in a zone file is an error at FILE:LINE in `check`,
/// and start-up refuses with the same message.
#[test]
fn unservable_zone_record_fails_check_and_start_alike() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &format!("ok IN TXT \"fine\"\nbad IN TXT \"{}\"\n", "x".repeat(300)));
    let want = format!(
        "{}:6: invalid TXT data: TXT string 1 is 300 octets; the limit is 255",
        dir.path().join("d.zone").display()
    );
    let out = bin(&["check"], &cfg);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    let out =
        Command::new(env!("CARGO_BIN_EXE_lbdns")).arg("--config").arg(&cfg).env("LBDNS_LOG", "off").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

/// A line longer than 256 KiB is an error at FILE:LINE, found while reading: with
/// the address space capped below the line's size, `check` still reports it.
#[test]
fn over_long_line_is_an_error_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), "");
    let zone = dir.path().join("d.zone");
    let mut text = small_zone("");
    text.push_str("big IN TXT \"");
    text.push_str(&"x".repeat(32 * 1024 * 1024));
    text.push_str("\"\nafter IN A 192.0.2.1\n");
    write(&zone, &text);
    drop(text);
    // A 32 MB line and 64 MB of address space: `check` itself needs about 32 MB
    // (debug build), and reading the whole line would need it several times.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 65536 && exec \"$0\" check --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_lbdns"))
        .arg(&cfg)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains(&format!("{}:5: line is longer than 256 KiB", zone.display())), "{err}");
}

/// An included file that is not a zone shows at most a short escaped prefix of a
/// bad token, never a line of it.
#[test]
fn errors_do_not_disclose_included_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), "$INCLUDE environ\n$INCLUDE shadow\n");
    write(&dir.path().join("environ"), "API_TOKEN=s3cr3t-value\0HOME=/root\0");
    write(&dir.path().join("shadow"), "root:$6$saltsalt$hashhashhash:20228:0:99999:7:::\nbin x:1\n");
    let out = bin(&["check"], &cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("environ:1: owner name: invalid name \"API_TOKEN=s3…\""), "{err}");
    assert!(err.contains("shadow:2: unknown record type \"x:1\""), "{err}");
    for secret in ["s3cr3t", "/root", "hashhash", "20228", "saltsalt"] {
        assert!(!err.contains(secret), "{secret} disclosed: {err}");
    }
}

/// The TXT strings of each line, as Knot 3.2 serves them for the same zone lines
/// (checked with knotd and dig): `\DDD` is one decimal octet.
const ESCAPES: &[(&str, &str, &[&[u8]])] = &[
    ("t1", r#""\065""#, &[b"A"]),
    ("t2", r#""\010""#, &[b"\n"]),
    ("t3", r"\065", &[b"A"]),
    ("t4", r#""a\"b""#, &[b"a\"b"]),
    ("t5", r#""a\\b""#, &[b"a\\b"]),
    ("t6", r#""v=spf1 mx -all""#, &[b"v=spf1 mx -all"]),
    ("t7", "v=spf1 mx -all", &[b"v=spf1", b"mx", b"-all"]),
    ("t8", r#""\255\000" "h\195\169""#, &[b"\xff\x00", "hé".as_bytes()]),
];

#[test]
fn escapes_are_served_as_knot_serves_them() {
    let zone: String = ESCAPES.iter().map(|(n, text, _)| format!("{n} IN TXT {text}\n")).collect();
    let s = Server::start(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n",
        &[("d.zone", &small_zone(&zone)), ("admin.token", TOKEN)],
    );
    for (n, text, want) in ESCAPES {
        let want: Vec<Vec<u8>> = want.iter().map(|s| s.to_vec()).collect();
        assert_eq!(txt(s.dns, &format!("{n}.d.test.")), want, "zone file: {text}");
        let (st, v) = put(s.admin, &format!("api{n}.d.test."), "TXT", &[text]);
        assert_eq!(st, 201, "{v}");
        assert_eq!(txt(s.dns, &format!("api{n}.d.test.")), want, "API: {text}");
    }
}

/// The same lines served by a real Knot give the same octets (skipped without
/// knotd unless LBDNS_REQUIRE_KNOT=1, as in knot.rs).
#[test]
fn escapes_match_a_live_knot() {
    let mut zone: String = ESCAPES.iter().map(|(n, text, _)| format!("{n} IN TXT {text}\n")).collect();
    zone.push_str("o\\065 IN TXT \"escaped owner\"\n");
    let zone = small_zone(&zone);
    let Some(knot) = crate::knot::Knot::start("d.test.", &zone) else { return };
    let lb = Server::start(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n[[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n",
        &[("d.zone", &zone)],
    );
    for name in ESCAPES.iter().map(|(n, _, _)| format!("{n}.d.test.")).chain(["oa.d.test.".to_string()]) {
        let (k, l) = (txt(knot.addr, &name), txt(lb.dns, &name));
        assert!(!k.is_empty(), "Knot has no TXT at {name}");
        assert_eq!(l, k, "{name}");
    }
}

/// Issue 16: what GET shows is what PUT takes back, for every type the server
/// accepts: the served octets are the same after GET -> PUT.
#[test]
fn every_type_survives_get_then_put() {
    let s = Server::start(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"d.test.\"\nfile=\"d.zone\"\n",
        &[("d.zone", &small_zone("")), ("admin.token", TOKEN)],
    );
    let cases: &[(&str, &[&str])] = &[
        ("A", &["192.0.2.1", "192.0.2.2"]),
        ("AAAA", &["2001:db8::1"]),
        ("CNAME", &["www.example.net."]),
        ("MX", &["10 mail", "20 mx.example.net."]),
        ("NS", &["ns1", "ns2.example.net."]),
        ("TXT", &[r#""v=spf1 mx -all""#, r#""a" "b c" "\000\255\"\\""#, "hello world"]),
        ("SRV", &["0 5 5060 sip.example.net."]),
        ("CAA", &[r#"0 issue "letsencrypt.org; validationmethods=dns-01""#, r#"128 iodef "mailto:x@d.test""#]),
        ("PTR", &["host.example.net."]),
        ("HINFO", &[r#""INTEL-386" "Linux 6.1""#]),
        ("NAPTR", &[r#"100 10 "U" "E2U+sip" "!^.*$!sip:info@d.test!" ."#]),
        ("SSHFP", &["1 1 0123456789abcdef0123456789abcdef01234567"]),
        ("TLSA", &["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]),
        ("SMIMEA", &["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]),
        ("OPENPGPKEY", &["AQIDBAUGBwgJ"]),
        ("CERT", &["1 0 0 AQIDBAUGBwgJ"]),
        ("CSYNC", &["66 3 A NS AAAA"]),
        ("SVCB", &[r#"1 svc.example.net. alpn="h2,h3" port=8443"#]),
        ("HTTPS", &["1 . alpn=h2 ipv4hint=192.0.2.1"]),
        // RFC 3597 form for a type hickory knows.
        ("A", &[r"\# 4 c0000263"]),
    ];
    for (i, (rtype, data)) in cases.iter().enumerate() {
        // NS below the apex is a delegation (a referral, not an answer).
        let name = if *rtype == "NS" { "d.test.".to_string() } else { format!("r{i}.d.test.") };
        let (st, put_reply) = put(s.admin, &name, rtype, data);
        assert!(st == 200 || st == 201, "{rtype}: {put_reply}");
        let qtype: RecordType = rtype.parse().unwrap();
        let first = answer_octets(s.dns, &name, qtype);
        assert_eq!(first.len(), data.len(), "{rtype}");
        let shown = listed(s.admin, &name, rtype);
        assert_eq!(put_reply["data"], shown, "{rtype}: the PUT reply and GET differ");
        let again: Vec<String> = shown.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let again: Vec<&str> = again.iter().map(String::as_str).collect();
        let (st, v) = put(s.admin, &name, rtype, &again);
        assert_eq!(st, 200, "{rtype}: {v}");
        assert_eq!(answer_octets(s.dns, &name, qtype), first, "{rtype}: {data:?} -> {shown}");
        assert_eq!(listed(s.admin, &name, rtype), shown, "{rtype}");
    }
    // The README's example: an SPF record is one string, shown quoted.
    let (_, v) = put(s.admin, "spf.d.test.", "TXT", &[r#""v=spf1 mx -all""#]);
    assert_eq!(v["data"], json!([r#""v=spf1 mx -all""#]));
}

/// The `data` list GET shows for one RRset.
fn listed(admin: std::net::SocketAddr, name: &str, rtype: &str) -> Value {
    let all = call(admin, "GET", "/v1/zones/d.test./records", None).1;
    let set = all["records"].as_array().unwrap().iter().find(|r| r["name"] == name && r["type"] == rtype).cloned();
    set.unwrap_or_else(|| panic!("{name} {rtype} not listed: {all}"))["data"].clone()
}

/// The RDATA octets of each answer record, sorted, read from the wire.
fn answer_octets(dns: std::net::SocketAddr, name: &str, t: RecordType) -> Vec<Vec<u8>> {
    let q = msg(name, t);
    let raw = udp_raw(dns, &q.to_vec().unwrap()).expect("no answer");
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.answers.is_empty(), "no {t} answer for {name}");
    let mut out = rdata_octets(&raw, m.answers.len());
    out.sort();
    out
}

/// Walks a response's question and answer sections and returns each answer's
/// RDATA as sent (hickory's decoding is not needed to compare octets).
fn rdata_octets(raw: &[u8], answers: usize) -> Vec<Vec<u8>> {
    fn skip_name(raw: &[u8], mut i: usize) -> usize {
        loop {
            match raw[i] {
                0 => return i + 1,
                l if l & 0xc0 == 0xc0 => return i + 2,
                l => i += 1 + l as usize,
            }
        }
    }
    let mut i = skip_name(raw, 12) + 4;
    let mut out = Vec::new();
    for _ in 0..answers {
        i = skip_name(raw, i) + 8;
        let len = u16::from_be_bytes([raw[i], raw[i + 1]]) as usize;
        out.push(raw[i + 2..i + 2 + len].to_vec());
        i += 2 + len;
    }
    out
}

/// `lbdns check` and start-up agree on every zone file: each of these, good and
/// bad, and every zone fuzz seed, is accepted by both or refused by both, and a
/// refused one is refused with the same first FILE:LINE problem.
#[test]
fn check_and_start_up_agree_on_every_zone_file() {
    let long = |n: usize| "x".repeat(n);
    let mut zones: Vec<String> = [
        String::new(),
        "t IN TXT \"\\065\\010\" \\065 \"a\\\"b\"".into(),
        format!("t IN TXT \"{}\"", long(255)),
        format!("t IN TXT \"{}\"", long(256)),
        format!("t IN CAA 0 issue \"{}\"", long(70_000)),
        format!("t IN CAA 0 issue \"{}\"", long(60_000)),
        "*.wild IN A 192.0.2.1\nsub IN NS ns.sub\nns.sub IN A 192.0.2.9".into(),
        "bad IN A 192.0.2.300".into(),
        "c IN CNAME x\nc IN TXT \"y\"".into(),
        "out.example. IN A 192.0.2.1".into(),
        "x 2147483648 IN A 192.0.2.1".into(),
        "x 2147483647 IN A 192.0.2.1".into(),
        "x IN FOO bar".into(),
        "x IN MX 10".into(),
        "x IN A ( 192.0.2.1".into(),
        "x IN TXT \"unterminated".into(),
        "x IN TXT \"\\999\"".into(),
        "$INCLUDE missing.zone".into(),
        "x IN HINFO \"cpu\"".into(),
        "x IN SRV 0 0 70000 t".into(),
    ]
    .iter()
    .map(|extra| small_zone(&format!("{extra}\n")))
    .collect();
    zones.push("$TTL 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n".into()); // no SOA
    let seeds = manifest_dir().join("fuzz/seeds/zone");
    for entry in std::fs::read_dir(&seeds).unwrap() {
        zones.push(String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned());
    }
    for zone in &zones {
        let dir = tempfile::tempdir().unwrap();
        let cfg = setup(dir.path(), "");
        write(&dir.path().join("d.zone"), zone);
        let checked = bin(&["check"], &cfg);
        let (ok, started, start_err) = start_once(&cfg);
        let shown: String = zone.chars().take(200).collect();
        assert_eq!(
            checked.status.success(),
            ok,
            "check and start-up disagree on:\n{shown}\ncheck: {}\nstart: {started}{start_err}",
            stderr(&checked)
        );
        if !ok {
            let first = stderr(&checked).lines().next().unwrap_or_default().to_string();
            assert!(start_err.contains(&first), "start-up did not report {first:?}:\n{start_err}");
        }
    }
}

/// Starts the binary once: whether it became ready, its stdout and stderr.
fn start_once(cfg: &Path) -> (bool, String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .arg("--config")
        .arg(cfg)
        .env("LBDNS_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // The ready line, or end of file when it exits instead.
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready = line.starts_with("lbdns ready");
    if ready {
        let _ = child.kill();
    }
    let _ = child.wait();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (ready, line, err)
}
