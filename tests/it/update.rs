//! RFC 2136 UPDATE end to end: the built binary with `[[tsig]]` keys and a zone's
//! `update` grants, changed by nsupdate and knsupdate (UDP and TCP), by
//! hickory-proto messages for what those tools cannot send (a stale time,
//! malformed messages), and read back with dig, the admin API and a restart
//! after SIGKILL.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use serde_json::Value;

use crate::backend::Backend;
use crate::cli::{Running, spawn};
use crate::harness::*;

/// The example key of the README (`examples/tsig/update.key`).
const SECRET: &str = "/TQN5/bI7OqWlH1j63LsCz3URpKoYwt8v45fr4ch4EE=";
const TOKEN: &str = "update-token-0123456789abcdef0123";

/// The config: `update-key.` may change TXT/A/AAAA/CNAME under `_acme-challenge.*`
/// and `*.k8s`; `acme-only.` only TXT under `_acme-challenge.*`. `pool` is
/// appended (a `[[pool]]` table).
fn config(pool: &str) -> String {
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]

[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"
state_dir = "state"

[[tsig]]
name = "update-key."
secret_file = "update.key"

[[tsig]]
name = "acme-only."
secret_file = "acme.key"

[[zone]]
origin = "example.test."
file = "example.test.zone"
update = [{{ key = "update-key.", names = ["_acme-challenge.*", "*.k8s"], types = ["TXT", "A", "AAAA", "CNAME"] }},
          {{ key = "acme-only.", names = ["_acme-challenge.*"], types = ["TXT"] }}]
{pool}"#
    )
}

fn setup(pool: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(&p.join("lbdns.toml"), &config(pool));
    write(&p.join("example.test.zone"), &small_zone("www IN A 192.0.2.1\n"));
    std::fs::copy(manifest_dir().join("examples/tsig/update.key"), p.join("update.key")).unwrap();
    write(&p.join("acme.key"), &format!("{SECRET}\n"));
    write(&p.join("admin.token"), TOKEN);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.join("admin.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        skipped(&format!("{tool} is not installed (dnsutils, knot-dnsutils)"));
    }
    ok
}

/// Runs `tool` with `args` on the nsupdate script `lines` sent to `r`; whether
/// it succeeded, and what it printed.
fn nsupdate(tool: &str, args: &[&str], r: &Running, lines: &str) -> (bool, String) {
    use std::io::Write;
    let script = format!("server 127.0.0.1 {}\nzone example.test.\n{lines}\nsend\n", r.dns.port());
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn txt(r: &Running, name: &str) -> Vec<String> {
    let reply = udp(r.dns, &msg(name, RecordType::TXT));
    let mut out: Vec<String> = reply.answers.iter().map(|a| a.data.to_string()).collect();
    out.sort();
    out
}

fn serial(r: &Running) -> u32 {
    let reply = udp(r.dns, &msg("example.test.", RecordType::SOA));
    match reply.answers.first().map(|a| &a.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

fn key_y() -> String {
    format!("hmac-sha256:update-key.:{SECRET}")
}

#[test]
fn nsupdate_and_knsupdate_change_txt_records_with_the_rfc_rcodes() {
    if !have("nsupdate") || !have("knsupdate") {
        return;
    }
    let dir = setup("");
    let r = spawn(&dir.path().join("lbdns.toml"));
    let acme = "_acme-challenge.www.example.test.";
    let keyfile = dir.path().join("update.key");
    let k = keyfile.to_str().unwrap();
    let s0 = serial(&r);
    // nsupdate -k over UDP, nsupdate -y over TCP (-v), knsupdate -y over UDP.
    let (ok, out) = nsupdate("nsupdate", &["-k", k], &r, &format!("update add {acme} 60 TXT \"one\""));
    assert!(ok, "{out}");
    let port = r.dns.port().to_string();
    let dig = Command::new("dig").args(["@127.0.0.1", "-p", &port, "+short", acme, "TXT"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&dig.stdout), "\"one\"\n", "dig answers right after the reply");
    assert_eq!(serial(&r), s0 + 1, "one serial increment per message");
    let (ok, out) = nsupdate("nsupdate", &["-v", "-y", &key_y()], &r, &format!("update add {acme} 60 TXT \"two\""));
    assert!(ok, "{out}");
    let (ok, out) = nsupdate("knsupdate", &["-y", &key_y()], &r, &format!("update add {acme} 60 TXT \"three\""));
    assert!(ok, "{out}");
    assert_eq!(txt(&r, acme), ["one", "three", "two"]);
    // Prerequisites: failing (nothing changes) and passing.
    let (ok, out) = nsupdate(
        "nsupdate",
        &["-y", &key_y()],
        &r,
        &format!("prereq nxrrset {acme} TXT\nupdate add {acme} 60 TXT \"four\""),
    );
    assert!(!ok && out.contains("YXRRSET"), "{out}");
    let (ok, out) =
        nsupdate("nsupdate", &["-y", &key_y()], &r, &format!("prereq nxdomain {acme}\nupdate delete {acme} TXT"));
    assert!(!ok && out.contains("YXDOMAIN"), "{out}");
    let (ok, out) = nsupdate(
        "nsupdate",
        &["-y", &key_y()],
        &r,
        &format!("prereq yxrrset www.example.test. A 192.0.2.1\nupdate delete {acme} TXT \"one\""),
    );
    assert!(ok, "{out}");
    assert_eq!(txt(&r, acme), ["three", "two"]);
    let before = serial(&r);
    // Refused: a name outside the grants, a type outside them, unsigned.
    let refused = [
        ("nsupdate", vec!["-y".to_string(), key_y()], "update add www.example.test. 60 TXT \"x\""),
        (
            "nsupdate",
            vec!["-y".into(), format!("hmac-sha256:acme-only.:{SECRET}")],
            "update add a.k8s.example.test. 60 TXT \"x\"",
        ),
        (
            "nsupdate",
            vec!["-y".into(), format!("hmac-sha256:acme-only.:{SECRET}")],
            &*format!("update add {acme} 60 CNAME www.example.test."),
        ),
        ("nsupdate", vec![], &*format!("update add {acme} 60 TXT \"unsigned\"")),
        ("knsupdate", vec![], &*format!("update add {acme} 60 TXT \"unsigned\"")),
    ];
    for (tool, args, line) in refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = nsupdate(tool, &args, &r, line);
        assert!(!ok && out.contains("REFUSED"), "{tool} {args:?} {line}: {out}");
    }
    // An unknown key: NOTAUTH with BADKEY.
    let (ok, out) = nsupdate(
        "nsupdate",
        &["-y", &format!("hmac-sha256:nokey.:{SECRET}")],
        &r,
        &format!("update add {acme} 60 TXT \"x\""),
    );
    assert!(!ok && out.contains("NOTAUTH") && out.contains("BADKEY"), "{out}");
    let (ok, out) = nsupdate(
        "knsupdate",
        &["-y", &format!("hmac-sha256:nokey.:{SECRET}")],
        &r,
        &format!("update add {acme} 60 TXT \"x\""),
    );
    assert!(!ok && out.contains("BADKEY"), "{out}");
    assert_eq!(serial(&r), before, "nothing refused changed the zone");
    assert_eq!(txt(&r, acme), ["three", "two"]);
    // Delete the RRset.
    let (ok, out) = nsupdate("knsupdate", &["-y", &key_y()], &r, &format!("update delete {acme} TXT"));
    assert!(ok, "{out}");
    assert!(txt(&r, acme).is_empty());
    // The replies are counted by RCODE, UPDATE's own among them.
    let metrics = http_get(&format!("http://{}/metrics", r.admin));
    for series in ["rcode=\"YXRRSET\"} 1", "rcode=\"YXDOMAIN\"} 1"] {
        assert!(metrics.contains(&format!("lbdns_dns_responses_total{{{series}")), "{series}:\n{metrics}");
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn signer() -> TSigner {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.decode(SECRET).unwrap();
    TSigner::new(secret, TsigAlgorithm::HmacSha256, Name::from_ascii("update-key.").unwrap(), 300).unwrap()
}

/// An UPDATE of example.test. adding `name` TXT `text`.
fn update_msg(name: &str, text: &str) -> Message {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Update);
    let mut zone = Query::query(Name::from_ascii("example.test.").unwrap(), RecordType::SOA);
    zone.set_query_class(DNSClass::IN);
    m.add_query(zone);
    let rdata = RData::TXT(TXT::new(vec![text.to_string()]));
    m.add_authority(Record::from_rdata(Name::from_ascii(name).unwrap(), 60, rdata));
    m
}

fn signed_at(m: &mut Message, time: u64) -> Vec<u8> {
    m.finalize(&signer(), time).unwrap();
    m.to_vec().unwrap()
}

#[test]
fn a_stale_time_is_badtime_and_changes_nothing() {
    let dir = setup("");
    let r = spawn(&dir.path().join("lbdns.toml"));
    let name = "_acme-challenge.t.example.test.";
    let asked = now() - 3600;
    let q = signed_at(&mut update_msg(name, "late"), asked);
    for bytes in [udp_raw(r.dns, &q).unwrap(), tcp_raw(r.dns, &q).unwrap()] {
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.response_code, ResponseCode::NotAuth);
        let tsig = reply.signature().expect("BADTIME is signed").data.clone();
        assert_eq!((tsig.error, tsig.time), (Some(TsigError::BadTime), asked));
    }
    assert!(txt(&r, name).is_empty());
    // The same message signed now is applied, and the reply is signed.
    let mut m = update_msg(name, "now");
    let mut verifier = m.finalize(&signer(), now()).unwrap().unwrap();
    let reply = verifier.verify(&udp_raw(r.dns, &m.to_vec().unwrap()).unwrap()).expect("a signed reply");
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(reply.metadata.op_code, OpCode::Update);
    assert_eq!(txt(&r, name), ["now"]);
}

/// `METHOD path` on the admin API with the token: status and JSON.
fn call(r: &Running, method: &str, path: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let resp =
        http.request(method.parse().unwrap(), format!("http://{}{path}", r.admin)).bearer_auth(TOKEN).send().unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null))
}

fn rrset(r: &Running, name: &str, t: &str) -> Value {
    let (st, recs) = call(r, "GET", "/v1/zones/example.test./records");
    assert_eq!(st, 200, "{recs}");
    let all = recs["records"].as_array().unwrap();
    all.iter().find(|x| x["name"] == name && x["type"] == t).cloned().unwrap_or(Value::Null)
}

#[test]
fn an_update_is_durable_across_sigkill_and_the_api_shows_its_source() {
    let dir = setup("");
    let config = dir.path().join("lbdns.toml");
    let name = "_acme-challenge.k.example.test.";
    let r = spawn(&config);
    let mut m = update_msg(name, "kept");
    let mut verifier = m.finalize(&signer(), now()).unwrap().unwrap();
    let reply = verifier.verify(&tcp_raw(r.dns, &m.to_vec().unwrap()).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::NoError);
    let set = rrset(&r, name, "TXT");
    assert_eq!(set["source"], "update", "{set}");
    assert_eq!(set["data"], serde_json::json!(["\"kept\""]), "{set}");
    let served = serial(&r);
    drop(r); // SIGKILL
    let r = spawn(&config);
    assert_eq!(txt(&r, name), ["kept"], "the acknowledged update survived kill -9");
    assert_eq!(serial(&r), served);
    assert_eq!(rrset(&r, name, "TXT")["source"], "update");
}

#[test]
fn a_pool_member_added_by_update_is_answered_and_probed() {
    let up = Backend::http("127.0.0.1", 0);
    let port = up.addr.port();
    let pool = format!(
        "[[pool]]\nname = \"web.k8s.example.test.\"\n[pool.health]\ncheck = \"http\"\nport = {port}\n\
         interval = \"200ms\"\ntimeout = \"300ms\"\nrise = 1\nfall = 1\n\
         [[pool.member]]\naddress = \"127.0.0.2\"\nenabled = false\n"
    );
    let dir = setup(&pool);
    let r = spawn(&dir.path().join("lbdns.toml"));
    let web = "web.k8s.example.test.";
    let answered = || {
        let mut a = addrs(&udp(r.dns, &msg(web, RecordType::A)));
        a.sort();
        a
    };
    // Add two members: 127.0.0.1 answers its probe, 127.0.0.3 has nothing listening.
    let mut m = update_msg(web, "unused");
    m.authorities.clear();
    for a in ["127.0.0.1", "127.0.0.3"] {
        let rdata = RData::A(a.parse::<std::net::Ipv4Addr>().unwrap().into());
        m.add_authority(Record::from_rdata(Name::from_ascii(web).unwrap(), 60, rdata));
    }
    let bytes = signed_at(&mut m, now());
    assert_eq!(Message::from_vec(&udp_raw(r.dns, &bytes).unwrap()).unwrap().response_code, ResponseCode::NoError);
    assert!(wait_for(Duration::from_secs(10), || answered() == ["127.0.0.1"]), "answered: {:?}", answered());
    assert!(wait_for(Duration::from_secs(10), || up.requests() > 0), "the new member is probed");
    let (_, pool) = call(&r, "GET", &format!("/v1/pools/{web}"));
    let members = pool["members"].as_array().unwrap();
    let added = members.iter().find(|m| m["address"] == "127.0.0.1").unwrap();
    assert_eq!((added["weight"].as_u64(), added["enabled"].as_bool()), (Some(1), Some(true)), "{added}");
    // Deleting the config's member is refused; deleting an added one works.
    for (a, want) in [("127.0.0.2", ResponseCode::Refused), ("127.0.0.3", ResponseCode::NoError)] {
        let mut d = update_msg(web, "unused");
        d.authorities.clear();
        let rdata = RData::A(a.parse::<std::net::Ipv4Addr>().unwrap().into());
        let mut rec = Record::from_rdata(Name::from_ascii(web).unwrap(), 0, rdata);
        rec.dns_class = DNSClass::NONE;
        d.add_authority(rec);
        let reply = Message::from_vec(&tcp_raw(r.dns, &signed_at(&mut d, now())).unwrap()).unwrap();
        assert_eq!(reply.response_code, want, "delete {a}");
    }
    let (_, pool) = call(&r, "GET", &format!("/v1/pools/{web}"));
    let left: Vec<&str> = pool["members"].as_array().unwrap().iter().map(|m| m["address"].as_str().unwrap()).collect();
    assert_eq!(left, ["127.0.0.2", "127.0.0.1"]);
}

/// Malformed UPDATEs: each gets its RCODE, and the zone is as before.
#[test]
fn malformed_updates_get_their_rcode_and_change_nothing() {
    let dir = setup("");
    let r = spawn(&dir.path().join("lbdns.toml"));
    let s0 = serial(&r);
    let name = "_acme-challenge.m.example.test.";
    let good = signed_at(&mut update_msg(name, "x"), now());
    let rcode = |bytes: &[u8]| udp_raw(r.dns, bytes).map(|b| Message::from_vec(&b).unwrap().response_code);
    // Cut inside the update section (the TSIG then does not parse either).
    let unsigned = update_msg(name, "x").to_vec().unwrap();
    assert_eq!(rcode(&unsigned[..unsigned.len() - 3]), Some(ResponseCode::FormErr));
    // The TSIG's MAC cut short, and a MAC of the wrong algorithm's key.
    assert_eq!(rcode(&good[..good.len() - 10]), Some(ResponseCode::FormErr));
    let mut wrong_alg = update_msg(name, "x");
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.decode(SECRET).unwrap();
    let sha512 =
        TSigner::new(secret, TsigAlgorithm::HmacSha512, Name::from_ascii("update-key.").unwrap(), 300).unwrap();
    wrong_alg.finalize(&sha512, now()).unwrap();
    assert_eq!(rcode(&wrong_alg.to_vec().unwrap()), Some(ResponseCode::NotAuth));
    // Two zones; a zone of class CH; an update of class CH.
    let mut two = good.clone();
    two[5] = 2;
    assert_eq!(rcode(&two), Some(ResponseCode::FormErr));
    let mut ch = update_msg(name, "x");
    ch.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(rcode(&signed_at(&mut ch, now())), Some(ResponseCode::NotAuth));
    let mut rr_ch = update_msg(name, "x");
    rr_ch.authorities[0].dns_class = DNSClass::CH;
    assert_eq!(rcode(&signed_at(&mut rr_ch, now())), Some(ResponseCode::FormErr));
    // A huge update section: more changes than one message may make.
    let mut huge = update_msg(name, "x");
    huge.authorities.clear();
    for i in 0..150 {
        let rdata = RData::TXT(TXT::new(vec!["y".into()]));
        let n = Name::from_ascii(format!("_acme-challenge.h{i}.example.test.")).unwrap();
        huge.add_authority(Record::from_rdata(n, 60, rdata));
    }
    let bytes = signed_at(&mut huge, now());
    let reply = Message::from_vec(&tcp_raw(r.dns, &bytes).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::Refused);
    // A count that claims more records than the message holds.
    let mut lying = unsigned.clone();
    lying[8..10].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(rcode(&lying), Some(ResponseCode::FormErr));
    assert_eq!(serial(&r), s0, "nothing changed");
    assert!(txt(&r, name).is_empty());
    assert!(txt(&r, "_acme-challenge.h0.example.test.").is_empty());
    // Still serving, and a good UPDATE still works.
    assert_eq!(rcode(&signed_at(&mut update_msg(name, "x"), now())), Some(ResponseCode::NoError));
    assert_eq!(serial(&r), s0 + 1);
}

/// A bad grant is an error at its line, the same from `lbdns check` and at
/// start-up (which then does not serve).
#[test]
fn bad_grants_are_errors_at_their_line_in_check_and_at_start() {
    let dir = setup("");
    let p = dir.path().join("lbdns.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let bad = r#"update = [{ key = "nokey.", names = ["*"], types = ["TXT"] },
          { key = "update-key.", names = ["a.*.b"], types = ["TXT"] },
          { key = "update-key.", names = ["*"], types = ["SOA"] },
          { key = "update-key.", names = ["x.other.test."], types = ["TXT"] }]"#;
    let start = text.find("update = [").unwrap();
    let end = start + text[start..].find("}]\n").unwrap() + 2;
    write(&p, &format!("{}{bad}{}", &text[..start], &text[end..]));
    let line = text[..start].lines().count() + 1;
    let want = [
        format!("lbdns.toml:{line}: zone example.test. update: key nokey. is not a [[tsig]] key"),
        format!("lbdns.toml:{}: zone example.test. update: names: \"a.*.b\" puts * in the middle", line + 1),
        format!("lbdns.toml:{}: zone example.test. update: types: \"SOA\" is not a record type", line + 2),
        format!("lbdns.toml:{}: zone example.test. update: names: \"x.other.test.\" is outside zone", line + 3),
    ];
    let bin = env!("CARGO_BIN_EXE_lbdns");
    let check = Command::new(bin).args(["check", "--config"]).arg(&p).output().unwrap();
    let start = Command::new(bin).arg("--config").arg(&p).env("LBDNS_LOG", "off").output().unwrap();
    for (what, out) in [("check", &check), ("start", &start)] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{what}: {err}");
        for w in &want {
            assert!(err.contains(w.as_str()), "{what} does not say {w:?}:\n{err}");
        }
    }
}
