//! TSIG (RFC 8945) end to end: the built binary with `[[tsig]]` keys, queried by
//! dig and kdig with `-y`/`-k`, and by hickory-proto's TSIG signer for what those
//! tools cannot send (a skewed time, malformed records, a reply at the UDP limit).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};

use crate::cli::{Running, spawn};
use crate::harness::*;

/// Secrets as base64 and as bytes (the same secrets).
const S256: &str = "c2hhMjU2LXNlY3JldC1zaGEyNTYtc2VjcmV0LXNoYTI=";
const S512: &str = "c2hhNTEyLXNlY3JldC1zaGE1MTItc2VjcmV0LXNoYTUxMi1zZWNyZXQtc2hhNTEy";
const S1: &str = "c2hhMS1zZWNyZXQtc2hhMS0x";

const CONFIG: &str = r#"[dns]
listen = ["127.0.0.1:0"]

[admin]
listen = "127.0.0.1:0"
state_dir = "state"

[[zone]]
origin = "example.test."
file = "example.test.zone"

[[tsig]]
name = "k256."
secret_file = "k256.key"

[[tsig]]
name = "k512."
algorithm = "hmac-sha512"
secret_file = "k512.key"

[[tsig]]
name = "k1."
algorithm = "hmac-sha1"
secret_file = "k1.key"
"#;

/// A TXT RRset whose reply fits 512 bytes unsigned but not with a TSIG.
const NEAR_512: &str = "t IN TXT \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n";

/// A directory with the config, the zone and the three key files.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(&p.join("lbdns.toml"), CONFIG);
    write(&p.join("example.test.zone"), &small_zone(&format!("www IN A 192.0.2.1\n{NEAR_512}")));
    write(&p.join("k256.key"), &format!("{S256}\n"));
    write(&p.join("k512.key"), &format!("key \"k512.\" {{\n\talgorithm hmac-sha512;\n\tsecret \"{S512}\";\n}};\n"));
    write(&p.join("k1.key"), S1);
    std::fs::create_dir(p.join("state")).unwrap();
    dir
}

fn start(dir: &Path) -> Running {
    spawn(&dir.join("lbdns.toml"))
}

fn run(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `tool` runs. CI (`LBDNS_REQUIRE_KNOT=1`) needs kdig, Knot's client, so
/// that these tests cannot pass there by skipping.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("-v").output().is_ok();
    if !ok {
        assert!(
            !(tool == "kdig" && std::env::var_os("LBDNS_REQUIRE_KNOT").is_some_and(|v| v == "1")),
            "kdig is not installed (knot-dnsutils) and LBDNS_REQUIRE_KNOT=1"
        );
        skipped(&format!("{tool} is not installed (dnsutils, knot-dnsutils)"));
    }
    ok
}

/// dig (or kdig) against `r` with `extra` arguments.
fn ask(tool: &str, r: &Running, extra: &[&str]) -> String {
    let port = r.dns.port().to_string();
    let mut a = vec!["@127.0.0.1", "-p", port.as_str(), "+time=2"];
    a.extend(if tool == "kdig" { ["+norecurse", "+retry=0"] } else { ["+norec", "+tries=1"] });
    a.extend_from_slice(extra);
    run(tool, &a).unwrap()
}

fn secret(b64: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A query for `name` `t` signed with `key` at `time`, and the verifier of its reply.
fn signed(
    name: &str,
    t: RecordType,
    key: &TSigner,
    time: u64,
    edns: bool,
) -> (Vec<u8>, hickory_proto::rr::TSigVerifier) {
    let mut m = if edns { msg(name, t) } else { msg_plain(name, t) };
    let v = m.finalize(key, time).unwrap().unwrap();
    (m.to_vec().unwrap(), v)
}

fn k256() -> TSigner {
    TSigner::new(secret(S256), TsigAlgorithm::HmacSha256, Name::from_ascii("k256.").unwrap(), 300).unwrap()
}

#[test]
fn dig_and_kdig_signed_queries_get_signed_answers_with_every_algorithm() {
    if !have("dig") || !have("kdig") {
        return;
    }
    let dir = setup();
    let r = start(dir.path());
    for (key, transport) in [
        (format!("hmac-sha256:k256:{S256}"), "+notcp"),
        (format!("hmac-sha512:k512:{S512}"), "+tcp"),
        (format!("hmac-sha1:k1:{S1}"), "+notcp"),
    ] {
        let out = ask("dig", &r, &["-y", &key, transport, "www.example.test", "A"]);
        assert!(out.contains("status: NOERROR") && out.contains("192.0.2.1"), "dig {key}: {out}");
        assert!(out.contains("TSIG PSEUDOSECTION") && !out.contains("Couldn't verify"), "dig {key}: {out}");
        assert!(!out.contains("could not be validated"), "dig {key}: {out}");
        let out = ask("kdig", &r, &["-y", &key, transport, "www.example.test", "A"]);
        assert!(out.contains("status: NOERROR") && out.contains("192.0.2.1"), "kdig {key}: {out}");
        assert!(out.contains("TSIG PSEUDOSECTION") && !out.contains("WARNING"), "kdig {key}: {out}");
    }
    // Unsigned queries are answered as before, without a TSIG.
    let out = ask("dig", &r, &["www.example.test", "A"]);
    assert!(out.contains("status: NOERROR") && !out.contains("TSIG"), "{out}");
}

#[test]
fn a_wrong_secret_is_badsig_and_an_unknown_key_badkey_unsigned() {
    if !have("dig") || !have("kdig") {
        return;
    }
    let dir = setup();
    let r = start(dir.path());
    let wrong = format!("hmac-sha256:k256:{S1}");
    let out = ask("dig", &r, &["-y", &wrong, "www.example.test"]);
    assert!(out.contains("status: NOTAUTH") && out.contains(" 0 ") && out.contains("BADSIG"), "{out}");
    assert!(!out.contains("192.0.2.1"), "no answer to a bad signature: {out}");
    let out = ask("kdig", &r, &["-y", &format!("hmac-sha256:nokey:{S256}"), "www.example.test"]);
    assert!(out.contains("BADKEY"), "{out}");
    // The right key under the wrong algorithm is another key: BADKEY.
    let out = ask("dig", &r, &["-y", &format!("hmac-sha512:k256:{S256}"), "www.example.test"]);
    assert!(out.contains("status: NOTAUTH") && out.contains("BADKEY"), "{out}");
    // hickory sees the same: NOTAUTH, TSIG error, MAC size 0.
    let bad = TSigner::new(secret(S1), TsigAlgorithm::HmacSha256, Name::from_ascii("k256.").unwrap(), 300).unwrap();
    let (q, _) = signed("www.example.test.", RecordType::A, &bad, now(), true);
    let reply = Message::from_vec(&udp_raw(r.dns, &q).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::NotAuth);
    let tsig = &reply.signature().expect("a TSIG on the error").data;
    assert_eq!((tsig.error, tsig.mac.len()), (Some(TsigError::BadSig), 0));
}

#[test]
fn a_skewed_time_is_badtime_signed_with_the_server_time() {
    let dir = setup();
    let r = start(dir.path());
    let key = k256();
    let asked = now() - 3600;
    let (q, _) = signed("www.example.test.", RecordType::A, &key, asked, true);
    for bytes in [udp_raw(r.dns, &q).unwrap(), tcp_raw(r.dns, &q).unwrap()] {
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.response_code, ResponseCode::NotAuth);
        assert!(reply.answers.is_empty());
        let tsig = reply.signature().unwrap().data.clone();
        assert_eq!(tsig.error, Some(TsigError::BadTime));
        assert_eq!(tsig.time, asked, "Time Signed is the request's (RFC 8945 section 5.2.3)");
        let server = tsig.other.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        assert_eq!(tsig.other.len(), 6);
        assert!(server.abs_diff(now()) < 300, "Other Data is the server's time: {server}");
        // Signed: its MAC verifies, chained to the request's.
        let request_mac = Message::from_vec(&q).unwrap().signature().unwrap().data.mac.clone();
        key.verify_message_byte(&bytes, Some(&request_mac), true).expect("BADTIME is signed");
    }
}

#[test]
fn a_signed_reply_leaves_room_for_its_tsig_and_a_truncated_one_is_signed() {
    let dir = setup();
    let r = start(dir.path());
    let key = k256();
    // Without EDNS the limit is 512 bytes: the TXT fits unsigned, not signed.
    let plain = udp_raw(r.dns, &msg_plain("t.example.test.", RecordType::TXT).to_vec().unwrap()).unwrap();
    assert!(plain.len() <= 512 && plain[2] & 0x02 == 0, "unsigned, it fits: {} bytes", plain.len());
    let (q, mut verifier) = signed("t.example.test.", RecordType::TXT, &key, now(), false);
    let bytes = udp_raw(r.dns, &q).unwrap();
    assert!(bytes.len() <= 512, "a signed reply of {} bytes over UDP without EDNS", bytes.len());
    let reply = verifier.verify(&bytes).expect("the truncated reply is signed");
    assert!(reply.metadata.truncation && reply.answers.is_empty());
    // Over TCP it comes whole, signed.
    let (q, mut verifier) = signed("t.example.test.", RecordType::TXT, &key, now(), false);
    let reply = verifier.verify(&tcp_raw(r.dns, &q).unwrap()).expect("signed over TCP");
    assert_eq!(reply.answers.len(), 1);
}

#[test]
fn malformed_tsig_records_are_formerr_and_the_server_keeps_serving() {
    let dir = setup();
    let r = start(dir.path());
    let (q, _) = signed("www.example.test.", RecordType::A, &k256(), now(), false);
    // Cut short inside the MAC.
    let cut = &q[..q.len() - 10];
    let reply = Message::from_vec(&udp_raw(r.dns, cut).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::FormErr);
    // Not the last additional record: an OPT after it.
    let mut not_last = q.clone();
    not_last[11] += 1;
    not_last.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    let reply = Message::from_vec(&udp_raw(r.dns, &not_last).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::FormErr);
    assert!(reply.signature().is_none(), "FORMERR is unsigned");
    // A MAC of 8 bytes, shorter than any algorithm allows (RFC 8945 section 5.2.2.1).
    let mut short_mac = q.clone();
    let n = q.len();
    short_mac.drain(n - 6 - 24..n - 6);
    short_mac[n - 6 - 32 - 2..n - 6 - 32].copy_from_slice(&8u16.to_be_bytes());
    let alg = short_mac.windows(12).position(|w| w == b"\x0bhmac-sha256").unwrap();
    let rdlen = u16::from_be_bytes([short_mac[alg - 2], short_mac[alg - 1]]) - 24;
    short_mac[alg - 2..alg].copy_from_slice(&rdlen.to_be_bytes());
    let reply = Message::from_vec(&udp_raw(r.dns, &short_mac).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::FormErr);
    // The server still answers signed and unsigned queries.
    let (q, mut verifier) = signed("www.example.test.", RecordType::A, &k256(), now(), true);
    let reply = verifier.verify(&udp_raw(r.dns, &q).unwrap()).expect("signed");
    assert_eq!(addrs(&reply), ["192.0.2.1"]);
    assert_eq!(addrs(&udp(r.dns, &msg("www.example.test.", RecordType::A))), ["192.0.2.1"]);
}

#[test]
fn tsig_keygen_output_is_a_secret_file_and_signs_with_dig_k() {
    let dir = setup();
    let p = dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns")).args(["tsig-keygen", "gen-key.", "-a", "hmac-sha512"]).output();
    let out = out.unwrap();
    assert!(out.status.success());
    let clause = String::from_utf8(out.stdout).unwrap();
    assert!(clause.starts_with("key \"gen-key.\" {") && clause.contains("algorithm hmac-sha512;"), "{clause}");
    write(&p.join("gen.key"), &clause);
    let config =
        format!("{CONFIG}\n[[tsig]]\nname = \"gen-key.\"\nalgorithm = \"hmac-sha512\"\nsecret_file = \"gen.key\"\n");
    write(&p.join("lbdns.toml"), &config);
    let r = start(p);
    // The clause's secret signs a query that the server verifies and answers signed.
    let b64 = clause.split('"').nth(3).unwrap();
    let key = TSigner::new(secret(b64), TsigAlgorithm::HmacSha512, Name::from_ascii("gen-key.").unwrap(), 300).unwrap();
    let (q, mut verifier) = signed("www.example.test.", RecordType::A, &key, now(), true);
    let reply = verifier.verify(&udp_raw(r.dns, &q).unwrap()).expect("signed with the generated key");
    assert_eq!(addrs(&reply), ["192.0.2.1"]);
    if have("dig") {
        let keyfile = p.join("gen.key").display().to_string();
        let out = ask("dig", &r, &["-k", &keyfile, "www.example.test", "A"]);
        assert!(out.contains("status: NOERROR") && out.contains("TSIG PSEUDOSECTION"), "{out}");
        assert!(!out.contains("Couldn't verify") && !out.contains("could not be validated"), "{out}");
    }
}

/// `lbdns check` (and start-up, from the same code) name the line and the file.
#[test]
fn bad_tsig_entries_are_refused_by_check_and_start_up_alike() {
    let dir = setup();
    let p = dir.path();
    let check = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbdns"));
        cmd.args(["check", "--config"]).arg(p.join("lbdns.toml")).args(extra);
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(check(&[]).0, Some(0));
    // A key clause for another name, a secret that is not base64, a missing file,
    // an unknown algorithm: each at its entry's line.
    write(&p.join("k512.key"), &format!("key \"other.\" {{ algorithm hmac-sha512; secret \"{S512}\"; }};\n"));
    write(&p.join("k1.key"), "not base64!\n");
    let config = CONFIG.replace("k256.key", "missing.key")
        + "\n[[tsig]]\nname = \"md5.\"\nalgorithm = \"hmac-md5\"\nsecret_file = \"k1.key\"\n";
    write(&p.join("lbdns.toml"), &config);
    let (code, err) = check(&[]);
    assert_eq!(code, Some(64), "{err}");
    let toml = p.join("lbdns.toml").display().to_string();
    let line = |needle: &str| config.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let missing = p.join("missing.key").display().to_string();
    // The entry's line is its `[[tsig]]` header, the line before its name.
    assert!(err.contains(&format!("{toml}:{}:", line("name = \"k256.\"") - 1)) && err.contains(&missing), "{err}");
    assert!(err.contains("holds the key \"other.\""), "{err}");
    assert!(err.contains(&p.join("k1.key").display().to_string()) && err.contains("base64"), "{err}");
    assert!(err.contains("hmac-md5"), "{err}");
    let Err(loaded) = lbdns::Sources::load(&p.join("lbdns.toml")) else { panic!("start-up accepts it") };
    let loaded = loaded.to_string();
    for l in loaded.lines() {
        assert!(err.contains(l), "start-up says {l:?}, check does not: {err}");
    }
    // --no-secrets reads no secret file: only the unknown algorithm remains.
    let (code, err) = check(&["--no-secrets"]);
    assert_eq!(code, Some(64));
    assert!(!err.contains("missing.key") && !err.contains("base64") && err.contains("hmac-md5"), "{err}");
}

/// A SIGHUP reload changes the keys in effect.
#[test]
fn a_reload_changes_the_keys() {
    let dir = setup();
    let p = dir.path();
    let r = start(p);
    let (q, mut verifier) = signed("www.example.test.", RecordType::A, &k256(), now(), true);
    verifier.verify(&udp_raw(r.dns, &q).unwrap()).expect("k256 works");
    write(&p.join("lbdns.toml"), &CONFIG.replace("name = \"k256.\"", "name = \"renamed.\""));
    assert!(Command::new("kill").args(["-HUP", &r.child.id().to_string()]).status().unwrap().success());
    let gone = wait_for(Duration::from_secs(10), || {
        let (q, _) = signed("www.example.test.", RecordType::A, &k256(), now(), true);
        let reply = Message::from_vec(&udp_raw(r.dns, &q).unwrap()).unwrap();
        reply.signature().is_some_and(|s| s.data.error == Some(TsigError::BadKey))
    });
    assert!(gone, "after the reload k256 is unknown");
}
