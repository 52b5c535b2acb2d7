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
