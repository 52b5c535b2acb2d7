//! A reload costs what changed: zone files whose bytes did not change are not
//! parsed again, and pools whose definition did not change keep their rotation,
//! counters and health. Against the built binary, reloaded with SIGHUP.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::cli::{Running, spawn_logging_with};
use crate::harness::*;

fn hup(r: &Running) {
    assert!(Command::new("kill").args(["-HUP", &r.child.id().to_string()]).status().unwrap().success());
}

/// The `reloaded` lines logged so far.
fn reloaded(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.contains(" reloaded ")).map(str::to_string).collect()
}

/// Sends SIGHUP and waits for the reload's log line (written before the reload
/// is answered from DNS), which it returns with the lines logged since the last.
fn reload(r: &Running, log: &Path) -> (String, String) {
    let before = std::fs::read_to_string(log).unwrap_or_default().len();
    let count = reloaded(log).len();
    hup(r);
    assert!(wait_for(Duration::from_secs(10), || reloaded(log).len() > count), "no reload logged");
    let text = std::fs::read_to_string(log).unwrap();
    (reloaded(log).pop().unwrap(), text[before..].to_string())
}

const ZONES: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                     [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
                     [[zone]]\norigin=\"b.test.\"\nfile=\"b.zone\"\n\
                     [[zone]]\norigin=\"c.test.\"\nfile=\"c.zone\"\n";

/// A reload parses again only the zone files whose bytes changed (the log says
/// which it took as they were); a file with `$INCLUDE` is always parsed again,
/// so a change to the included file alone is served.
#[test]
fn a_reload_parses_only_the_zone_files_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (dir.path().join("lbdns.toml"), dir.path().join("log"));
    write(&cfg, ZONES);
    write(&dir.path().join("a.zone"), &small_zone("one IN A 192.0.2.1\n"));
    write(&dir.path().join("b.zone"), &small_zone("one IN A 192.0.2.2\n"));
    write(&dir.path().join("c.zone"), &small_zone("$INCLUDE c-more.zone\n"));
    write(&dir.path().join("c-more.zone"), "one IN A 192.0.2.3\n");
    let r = spawn_logging_with(&cfg, &log, &[("LBDNS_LOG", "info,lbdns::sources=debug")]);

    write(&dir.path().join("b.zone"), &small_zone("one IN A 192.0.2.2\ntwo IN A 192.0.2.22\n"));
    write(&dir.path().join("a.zone"), &small_zone("one IN A 192.0.2.1\n")); // the same bytes again
    write(&dir.path().join("c-more.zone"), "one IN A 192.0.2.33\n");
    let (line, logged) = reload(&r, &log);
    assert!(line.contains("zone_files_unchanged=1"), "{line}");
    let unchanged: Vec<&str> = logged.lines().filter(|l| l.contains("zone file unchanged")).collect();
    assert_eq!(unchanged.len(), 1, "{logged}");
    assert!(unchanged[0].contains("zone=a.test."), "{logged}");
    assert_eq!(addrs(&udp(r.dns, &msg("two.b.test.", RecordType::A))), ["192.0.2.22"]);
    assert_eq!(addrs(&udp(r.dns, &msg("one.c.test.", RecordType::A))), ["192.0.2.33"], "the included file changed");
    assert_eq!(addrs(&udp(r.dns, &msg("one.a.test.", RecordType::A))), ["192.0.2.1"]);

    // Nothing changed: a and b are taken as they were, c (with $INCLUDE) is parsed.
    let (line, _) = reload(&r, &log);
    assert!(line.contains("zone_files_unchanged=2"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("two.b.test.", RecordType::A))), ["192.0.2.22"]);
}

const POOLS: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                     [[zone]]\norigin=\"o.test.\"\nfile=\"o.zone\"\n\
                     [[pool]]\nname=\"rr.o.test.\"\n\
                     [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
                     [[pool.member]]\naddress=\"192.0.2.3\"\n\
                     [[pool]]\nname=\"checked.o.test.\"\n[[pool.member]]\naddress=\"127.0.0.1\"\n\
                     [pool.health]\ncheck=\"tcp\"\nport=PORT\ninterval=\"1h\"\nrise=1\nfall=1\n\
                     [[pool]]\nname=\"other.o.test.\"\n[[pool.member]]\naddress=\"OTHER\"\n";

/// A reload that changes one pool answers the same from every other: a
/// round-robin pool goes on rotating where it was, and a checked member keeps its
/// health without being probed again (its backend is gone, and its next probe is
/// an hour away: probed again, it would be down).
#[test]
fn a_reload_that_changes_one_pool_leaves_the_others_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (dir.path().join("lbdns.toml"), dir.path().join("log"));
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = POOLS.replace("PORT", &backend.local_addr().unwrap().port().to_string());
    write(&cfg, &config.replace("OTHER", "192.0.2.9"));
    write(&dir.path().join("o.zone"), &small_zone(""));
    let r = spawn_logging_with(&cfg, &log, &[("LBDNS_LOG", "info")]);
    let first = |name: &str| addrs(&udp(r.dns, &msg(name, RecordType::A))).first().cloned().unwrap_or_default();
    assert_eq!(addrs(&udp(r.dns, &msg("checked.o.test.", RecordType::A))), ["127.0.0.1"]);
    let (a0, a1) = (first("rr.o.test."), first("rr.o.test."));
    assert_ne!(a0, a1);

    drop(backend);
    write(&cfg, &config.replace("OTHER", "192.0.2.10"));
    let (line, _) = reload(&r, &log);
    assert!(line.contains("new_probes=0"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("other.o.test.", RecordType::A))), ["192.0.2.10"]);
    let a2 = first("rr.o.test.");
    assert!(a2 != a0 && a2 != a1, "rotation restarted: {a0}, {a1}, then {a2}");
    assert_eq!(addrs(&udp(r.dns, &msg("checked.o.test.", RecordType::A))), ["127.0.0.1"], "health kept");
}

const ONE_RECORD: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
                          [[zone]]\norigin=\"r.test.\"\nfile=\"r.zone\"\ntransfer=[\"127.0.0.0/8\"]\n\
                          [[pool]]\nname=\"checked.r.test.\"\n[[pool.member]]\naddress=\"127.0.0.1\"\n\
                          [pool.health]\ncheck=\"tcp\"\nport=PORT\ninterval=\"1h\"\nrise=1\nfall=1\n";

/// The records of a `dig` transfer, comments dropped, blanks squeezed.
fn transfer(r: &Running, query: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([&format!("@{}", r.dns.ip()), &format!("-p{}", r.dns.port()), "r.test.", query])
        .output()
        .expect("dig runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty());
    lines.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

fn serial(r: &Running) -> u32 {
    let m = udp(r.dns, &msg("r.test.", RecordType::SOA));
    m.answers
        .iter()
        .find_map(|rr| match &rr.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .expect("an SOA")
}

/// A reload after one record of a zone file changed: that answer changes, an
/// RRset changed through the API keeps its data, a pool keeps its health (its
/// backend is gone and its next probe an hour away), and an IXFR from the serial
/// before carries exactly that one change.
#[test]
fn a_reload_of_one_changed_record_changes_that_record_only() {
    if Command::new("dig").arg("-v").output().is_err() {
        return skipped("no dig");
    }
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (dir.path().join("lbdns.toml"), dir.path().join("log"));
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    write(&cfg, &ONE_RECORD.replace("PORT", &backend.local_addr().unwrap().port().to_string()));
    let token = dir.path().join("admin.token");
    write(&token, "reload-test-token-0123456789abcdef");
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let zone = |one: &str| {
        small_zone(&format!("one IN A {one}\ntwo IN A 192.0.2.2\nthree IN TXT \"same\"\n"))
            .replace(" 1 7200 ", if one.ends_with(".1") { " 1 7200 " } else { " 2 7200 " })
    };
    write(&dir.path().join("r.zone"), &zone("192.0.2.1"));
    let r = spawn_logging_with(&cfg, &log, &[("LBDNS_LOG", "info")]);
    assert_eq!(addrs(&udp(r.dns, &msg("checked.r.test.", RecordType::A))), ["127.0.0.1"]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let put = reqwest::blocking::Client::new()
        .put(format!("http://{}/v1/zones/r.test./records/two.r.test./A", r.admin))
        .bearer_auth("reload-test-token-0123456789abcdef")
        .json(&serde_json::json!({"ttl": 60, "data": ["192.0.2.22"]}))
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().unwrap());
    let before = serial(&r);

    // The record changed with the file's serial, as a transfer needs.
    drop(backend);
    write(&dir.path().join("r.zone"), &zone("192.0.2.11"));
    reload(&r, &log);
    assert_eq!(addrs(&udp(r.dns, &msg("one.r.test.", RecordType::A))), ["192.0.2.11"]);
    assert_eq!(addrs(&udp(r.dns, &msg("two.r.test.", RecordType::A))), ["192.0.2.22"], "the API's RRset");
    assert_eq!(addrs(&udp(r.dns, &msg("checked.r.test.", RecordType::A))), ["127.0.0.1"], "health kept");
    let after = serial(&r);
    assert_ne!(after, before);
    let ixfr = format!("IXFR={before}");
    let changed = || {
        let recs = transfer(&r, &ixfr);
        // New SOA, old SOA, the record removed, new SOA, the record added, new SOA.
        recs.len() == 6
            && recs[1].contains(&format!(" SOA ns1.r.test. hostmaster.r.test. {before} "))
            && recs[2] == "one.r.test. 300 IN A 192.0.2.1"
            && recs[4] == "one.r.test. 300 IN A 192.0.2.11"
            && [0, 3, 5].iter().all(|&i| recs[i].contains(&format!(" {after} ")))
    };
    assert!(wait_for(Duration::from_secs(10), changed), "{:?}", transfer(&r, &ixfr));
}

const UNCHANGED: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
                         [[zone]]\norigin=\"u.test.\"\nfile=\"u.zone\"\n\
                         [[pool]]\nname=\"www.u.test.\"\n[[pool.member]]\naddress=\"192.0.2.80\"\n";

/// The status of `GET /v1/pools` with `token`.
fn pools_status(r: &Running, token: &str) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::blocking::Client::new();
    c.get(format!("http://{}/v1/pools", r.admin)).bearer_auth(token).send().unwrap().status().as_u16()
}

/// A reload of a config whose bytes did not change takes its pools as they
/// were (the log says so) but still reads its token file again, and still
/// checks the pools against the zone files: a zone change that puts an A
/// record at a pool's name is refused with both places, the old zone serving.
#[test]
fn a_reload_of_an_unchanged_config_keeps_its_pools_and_still_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (dir.path().join("lbdns.toml"), dir.path().join("log"));
    write(&cfg, UNCHANGED);
    let (token, zone) = (dir.path().join("admin.token"), dir.path().join("u.zone"));
    let set_token = |t: &str| {
        write(&token, t);
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    };
    set_token("first-token-0123456789abcdef0123");
    write(&zone, &small_zone("one IN A 192.0.2.1\n"));
    let r = spawn_logging_with(&cfg, &log, &[("LBDNS_LOG", "info")]);

    write(&zone, &small_zone("one IN A 192.0.2.1\ntwo IN A 192.0.2.2\n"));
    set_token("second-token-0123456789abcdef012");
    let (line, _) = reload(&r, &log);
    assert!(line.contains("config_unchanged=true"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("two.u.test.", RecordType::A))), ["192.0.2.2"]);
    assert_eq!(addrs(&udp(r.dns, &msg("www.u.test.", RecordType::A))), ["192.0.2.80"]);
    assert_eq!(pools_status(&r, "second-token-0123456789abcdef012"), 200, "the new token");
    assert_eq!(pools_status(&r, "first-token-0123456789abcdef0123"), 401, "the old token");

    let failed = |log: &Path| std::fs::read_to_string(log).unwrap_or_default().matches("reload failed").count();
    write(&zone, &small_zone("one IN A 192.0.2.1\ntwo IN A 192.0.2.2\nwww IN A 192.0.2.7\n"));
    hup(&r);
    assert!(wait_for(Duration::from_secs(10), || failed(&log) == 1), "the clash refused");
    let text = std::fs::read_to_string(&log).unwrap();
    let want = format!("{}:9: pool www.u.test. also has A records in {}:7", cfg.display(), zone.display());
    assert!(text.contains(&want), "{text}");
    assert_eq!(addrs(&udp(r.dns, &msg("www.u.test.", RecordType::A))), ["192.0.2.80"], "the old state serving");
    // A new cut above the pool: every pool is placed again.
    write(&zone, &small_zone("one IN A 192.0.2.1\ntwo IN A 192.0.2.2\nwww IN NS ns.elsewhere.test.\n"));
    hup(&r);
    assert!(wait_for(Duration::from_secs(10), || failed(&log) == 2), "the cut refused");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("{}:9: pool www.u.test. is at or below the zone cut www.u.test.", cfg.display())));
    assert_eq!(addrs(&udp(r.dns, &msg("www.u.test.", RecordType::A))), ["192.0.2.80"], "the old state serving");

    // The config changed: read in full.
    write(&zone, &small_zone("one IN A 192.0.2.1\n"));
    write(&cfg, &UNCHANGED.replace("192.0.2.80", "192.0.2.81"));
    let (line, _) = reload(&r, &log);
    assert!(line.contains("config_unchanged=false"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("www.u.test.", RecordType::A))), ["192.0.2.81"]);
}

const KEPT: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
                    [[zone]]\norigin=\"k.test.\"\nfile=\"k.zone\"\n\
                    [[zone]]\norigin=\"l.test.\"\nfile=\"l.zone\"\n\
                    [[pool]]\nname=\"www.k.test.\"\n[[pool.member]]\naddress=\"192.0.2.80\"\n";

/// A reload whose config did not change keeps the pools in effect as they
/// were (the log says `pools_kept=true`) and publishes again only the zone
/// whose file changed: its changed record is served, with the API's RRset and
/// the API's pool laid over it as before; the config's pool and the other
/// zone still answer.
#[test]
fn a_reload_of_a_changed_zone_file_keeps_the_pools_and_the_apis_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = (dir.path().join("lbdns.toml"), dir.path().join("log"));
    write(&cfg, KEPT);
    let token = dir.path().join("admin.token");
    write(&token, "kept-token-0123456789abcdef012345");
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let k = dir.path().join("k.zone");
    write(&k, &small_zone("one IN A 192.0.2.1\ntwo IN A 192.0.2.2\n"));
    write(&dir.path().join("l.zone"), &small_zone("one IN A 192.0.2.101\n"));
    let r = spawn_logging_with(&cfg, &log, &[("LBDNS_LOG", "info")]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let put = |path: &str, body: serde_json::Value| {
        let c = reqwest::blocking::Client::new();
        let res = c
            .put(format!("http://{}/v1/{path}", r.admin))
            .bearer_auth("kept-token-0123456789abcdef012345")
            .json(&body)
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.text().unwrap());
    };
    put("zones/k.test./records/two.k.test./A", serde_json::json!({"ttl": 60, "data": ["192.0.2.22"]}));
    put("pools/api.k.test.", serde_json::json!({"members": [{"address": "192.0.2.90"}]}));
    assert_eq!(addrs(&udp(r.dns, &msg("api.k.test.", RecordType::A))), ["192.0.2.90"]);

    write(&k, &small_zone("one IN A 192.0.2.11\ntwo IN A 192.0.2.2\n"));
    let (line, _) = reload(&r, &log);
    assert!(line.contains("config_unchanged=true") && line.contains("pools_kept=true"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("one.k.test.", RecordType::A))), ["192.0.2.11"], "the file's change");
    assert_eq!(addrs(&udp(r.dns, &msg("two.k.test.", RecordType::A))), ["192.0.2.22"], "the API's RRset");
    assert_eq!(addrs(&udp(r.dns, &msg("api.k.test.", RecordType::A))), ["192.0.2.90"], "the API's pool");
    assert_eq!(addrs(&udp(r.dns, &msg("www.k.test.", RecordType::A))), ["192.0.2.80"], "the config's pool");
    assert_eq!(addrs(&udp(r.dns, &msg("one.l.test.", RecordType::A))), ["192.0.2.101"], "the other zone");

    // The config changed: every pool derived again.
    write(&cfg, &KEPT.replace("192.0.2.80", "192.0.2.81"));
    let (line, _) = reload(&r, &log);
    assert!(line.contains("pools_kept=false"), "{line}");
    assert_eq!(addrs(&udp(r.dns, &msg("www.k.test.", RecordType::A))), ["192.0.2.81"]);
    assert_eq!(addrs(&udp(r.dns, &msg("api.k.test.", RecordType::A))), ["192.0.2.90"], "the API's pool");
}
