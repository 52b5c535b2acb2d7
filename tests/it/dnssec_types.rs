//! The DNSSEC records of a signed zone are lbdns's to make: DNSKEY, CDS and
//! CDNSKEY from the key files, RRSIG and NSEC while answering (NSEC3 and
//! NSEC3PARAM never). A zone file that holds one is an error at its line in
//! `lbdns check` and at start-up; an admin API write of one is refused with 409
//! naming the type and the zone; an RFC 2136 UPDATE (real nsupdate and
//! knsupdate, with a key granted those types) is REFUSED, logged with the type.
//! DS at a delegation stays the child's, and is written and served as before.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::cli::{Running, spawn_logging_with};
use crate::harness::*;

const LBDNS: &str = env!("CARGO_BIN_EXE_lbdns");
const SECRET: &str = "/TQN5/bI7OqWlH1j63LsCz3URpKoYwt8v45fr4ch4EE=";
const TOKEN: &str = "dnssec-types-token-0123456789abcdef";
/// RFC 6605's example key: any valid DNSKEY RDATA will do.
const DNSKEY: &str =
    "257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
/// The same in RFC 3597 form: hickory-proto reads DNSKEY, RRSIG and NSEC3PARAM
/// from text only so ("should be dynamically generated" otherwise), in any zone.
const DNSKEY_GENERIC: &str = "\\# 68 0101030D1A88C88615D437FBB8BF9E1942A1929F28562706AE6C2BD399E7B1BFB6D1E9E75B92B4AA42917AE1C61B701EF035C3FE7BE3009CBAFE5A2F71316C902DCF0D00";
const DS: &str = "55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17";

/// A directory with a config signing `example.test.` (keys made by `lbdns
/// dnssec keygen`), an admin token, and `update-key.` granted TXT, DS and the
/// DNSSEC types everywhere; the zone file is `small_zone(extra)` with a
/// delegation `sub` (a DS there is the child's).
fn setup(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let config = "[dns]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n\
         state_dir = \"state\"\n[[tsig]]\nname = \"update-key.\"\nsecret_file = \"update.key\"\n\
         [[zone]]\norigin = \"example.test.\"\nfile = \"example.test.zone\"\n\
         update = [{ key = \"update-key.\", names = [\"*\"], \
         types = [\"TXT\", \"DS\", \"DNSKEY\", \"RRSIG\", \"NSEC\", \"NSEC3PARAM\", \"CDS\"] }]\n\
         [zone.dnssec]\nkey_dir = \"keys\"\n";
    write(&p.join("lbdns.toml"), config);
    write(&p.join("example.test.zone"), &small_zone(&format!("sub NS ns.sub\nns.sub A 192.0.2.99\n{extra}")));
    write(&p.join("update.key"), &format!("{SECRET}\n"));
    write(&p.join("admin.token"), TOKEN);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.join("admin.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(LBDNS)
        .arg("--config")
        .arg(p.join("lbdns.toml"))
        .args(["dnssec", "keygen", "example.test."])
        .output()
        .unwrap();
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// `lbdns check` on `dir`: exit code and stderr.
fn check(dir: &Path) -> (Option<i32>, String) {
    let o = Command::new(LBDNS).args(["check", "--config"]).arg(dir.join("lbdns.toml")).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
}

/// A start-up of the binary on `dir` that is expected to fail: exit code and stderr.
fn start_failing(dir: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(LBDNS)
        .arg("--config")
        .arg(dir.join("lbdns.toml"))
        .env("LBDNS_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_for(Duration::from_secs(20), || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
}

#[test]
fn dnssec_records_in_a_signed_zone_file_are_errors_at_their_line() {
    // small_zone has 4 lines, setup adds 2: these are lines 7 to 10.
    let extra = format!(
        "@ 3600 DNSKEY {DNSKEY_GENERIC}\n@ 3600 NSEC3PARAM \\# 5 0100000000\nsub 3600 DS {DS}\n\
         www 300 RRSIG \\# 36 00010D030000012C70DBD8805E0BE100D960076578616D706C6504746573740000000000\n"
    );
    let dir = setup(&extra);
    let zone = dir.path().join("example.test.zone").display().to_string();
    let want = [
        format!("{zone}:7: DNSKEY record at example.test.: zone example.test. is signed ([zone.dnssec])"),
        format!("{zone}:8: NSEC3PARAM record at example.test.: zone example.test. is signed"),
        format!("{zone}:10: RRSIG record at www.example.test.: zone example.test. is signed"),
    ];
    for (what, (code, err)) in [("check", check(dir.path())), ("start", start_failing(dir.path()))] {
        assert_eq!(code, Some(64), "{what}: {err}");
        for w in &want {
            assert!(err.contains(w.as_str()), "{what} does not say {w:?}:\n{err}");
        }
        assert!(!err.contains(&format!("{zone}:9:")), "{what}: the DS at the delegation is allowed:\n{err}");
    }
    // The same file without [zone.dnssec] is a plain zone: every record is data.
    let cfg = dir.path().join("lbdns.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    write(&cfg, &text.replace("[zone.dnssec]\nkey_dir = \"keys\"\n", ""));
    let (code, err) = check(dir.path());
    assert_eq!(code, Some(0), "{err}");
}

/// `METHOD path` with a JSON body on the admin API: status and JSON.
fn call(r: &Running, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("http://{}{path}", r.admin)).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null))
}

fn answers(r: &Running, name: &str, t: RecordType) -> Vec<String> {
    udp(r.dns, &msg(name, t)).answers.iter().map(|a| a.data.to_string()).collect()
}

#[test]
fn the_api_refuses_dnssec_records_in_a_signed_zone_and_keeps_ds() {
    let dir = setup("");
    let r = spawn_logging_with(&dir.path().join("lbdns.toml"), &dir.path().join("log"), &[]);
    let keys = answers(&r, "example.test.", RecordType::DNSKEY);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let zone = "/v1/zones/example.test./records";
    for (name, t, data) in [
        ("@", "DNSKEY", DNSKEY),
        ("@", "CDS", DS),
        ("www", "RRSIG", "A 13 3 300 20300101000000 20200101000000 55648 example.test. AAAA"),
    ] {
        let (st, body) =
            call(&r, "PUT", &format!("{zone}/{name}/{t}"), Some(serde_json::json!({"ttl": 3600, "data": [data]})));
        assert_eq!(st, 409, "PUT {t}: {body}");
        let e = body["error"].as_str().unwrap_or_default();
        assert!(e.contains(t) && e.contains("example.test.") && e.contains("signed"), "PUT {t}: {body}");
    }
    for t in ["RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "CDNSKEY", "DNSKEY"] {
        let (st, body) = call(&r, "DELETE", &format!("{zone}/@/{t}"), None);
        assert_eq!(st, 409, "DELETE {t}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(t), "DELETE {t}: {body}");
    }
    assert_eq!(answers(&r, "example.test.", RecordType::DNSKEY), keys, "the zone's own keys, unchanged");
    let (st, body) = call(&r, "PUT", &format!("{zone}/sub/DS"), Some(serde_json::json!({"ttl": 3600, "data": [DS]})));
    assert_eq!(st, 201, "a DS at a delegation is the child's: {body}");
    let ds = udp(r.dns, &msg("sub.example.test.", RecordType::DS));
    assert_eq!(ds.answers.len(), 1, "{ds:?}");
}

/// Runs `tool` (nsupdate or knsupdate) with the key on the script `lines`:
/// whether it succeeded, and what it printed.
fn nsupdate(tool: &str, r: &Running, lines: &str) -> (bool, String) {
    use std::io::Write;
    let script = format!("server 127.0.0.1 {}\nzone example.test.\n{lines}\nsend\n", r.dns.port());
    let key = format!("hmac-sha256:update-key.:{SECRET}");
    let mut child = Command::new(tool)
        .args(["-y", &key])
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

#[test]
fn an_update_of_dnssec_records_in_a_signed_zone_is_refused_and_logged() {
    for tool in ["nsupdate", "knsupdate"] {
        if Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            skipped(&format!("{tool} is not installed (dnsutils, knot-dnsutils)"));
            return;
        }
    }
    let dir = setup("");
    let log = dir.path().join("log");
    let r = spawn_logging_with(&dir.path().join("lbdns.toml"), &log, &[("LBDNS_LOG", "info")]);
    let keys = answers(&r, "example.test.", RecordType::DNSKEY);
    let refusals = [
        ("nsupdate", format!("update add example.test. 3600 DNSKEY {DNSKEY}"), "DNSKEY"),
        ("knsupdate", "update delete example.test. RRSIG".to_string(), "RRSIG"),
        ("nsupdate", "update delete example.test. NSEC3PARAM".to_string(), "NSEC3PARAM"),
        // With a TXT record the key may add: the whole message is refused.
        ("knsupdate", format!("update add t.example.test. 60 TXT \"x\"\nupdate add example.test. 60 CDS {DS}"), "CDS"),
    ];
    for (tool, lines, t) in &refusals {
        let (ok, out) = nsupdate(tool, &r, lines);
        assert!(!ok && out.to_ascii_uppercase().contains("REFUSED"), "{tool} {lines}: {out}");
        let logged = wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(&log).unwrap_or_default().lines().any(|l| {
                l.contains("update refused") && l.contains(&format!("rtype={t}")) && l.contains("example.test.")
            })
        });
        assert!(logged, "the log names {t}:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    assert!(answers(&r, "t.example.test.", RecordType::TXT).is_empty(), "nothing of a refused message is applied");
    assert_eq!(answers(&r, "example.test.", RecordType::DNSKEY), keys);
    let (ok, out) = nsupdate("nsupdate", &r, &format!("update add sub.example.test. 3600 DS {DS}"));
    assert!(ok, "a DS at a delegation is the child's: {out}");
    assert_eq!(udp(r.dns, &msg("sub.example.test.", RecordType::DS)).answers.len(), 1);
}

/// A DNSKEY stored through the API while the zone was not signed is left out
/// once it is (`lbdns check` warns, naming it), and a revert removes it.
#[test]
fn a_dnssec_record_stored_before_the_zone_was_signed_is_left_out() {
    let dir = setup("");
    let cfg = dir.path().join("lbdns.toml");
    let signed = std::fs::read_to_string(&cfg).unwrap();
    write(&cfg, &signed.replace("[zone.dnssec]\nkey_dir = \"keys\"\n", ""));
    let r = spawn_logging_with(&cfg, &dir.path().join("log"), &[]);
    let path = "/v1/zones/example.test./records/@/DNSKEY";
    let (st, body) = call(&r, "PUT", path, Some(serde_json::json!({"ttl": 3600, "data": [DNSKEY_GENERIC]})));
    assert_eq!(st, 201, "not signed yet: {body}");
    drop(r);
    write(&cfg, &signed);
    let (code, err) = check(dir.path());
    assert_eq!(code, Some(0), "{err}");
    let want = "DNSKEY at example.test., stored through the API or UPDATE: zone example.test. is signed";
    assert!(err.contains("warning:") && err.contains(want), "{err}");
    let r = spawn_logging_with(&cfg, &dir.path().join("log"), &[]);
    let keys = answers(&r, "example.test.", RecordType::DNSKEY);
    assert!(keys.len() == 1 && !keys[0].contains("GojIhhXUN"), "only lbdns's own key: {keys:?}");
    let (st, body) = call(&r, "DELETE", &format!("{path}/override"), None);
    assert!(st == 200 || st == 204, "the revert is allowed: {body}");
    drop(r);
    let (code, err) = check(dir.path());
    assert!(code == Some(0) && !err.contains("warning:"), "{err}");
}
