//! Log lines as an operator's tools see them: no colour codes in a pipe or file,
//! and under systemd (`JOURNAL_STREAM` naming stderr) priorities journald reads.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A pool whose one member fails its TCP probe (nothing listens on port 1), so
/// start-up logs a warning (`member down`) as well as info lines (`ready`).
fn setup(dir: &Path) -> std::path::PathBuf {
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"o.test.\"\nfile=\"o.zone\"\n\
               [[pool]]\nname=\"www.o.test.\"\n[pool.health]\ncheck=\"tcp\"\nport=1\ninterval=\"1s\"\n\
               [[pool.member]]\naddress=\"127.0.0.1\"\n";
    write(&dir.join("lbdns.toml"), cfg);
    write(&dir.join("o.zone"), &small_zone(""));
    dir.join("lbdns.toml")
}

/// Runs the server until its ready line with stderr going to `stderr`, stops it
/// with SIGTERM and returns what it logged.
fn run_logging(config: &Path, args: &[&str], env: &[(&str, String)], stderr: Stdio, read: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("LBDNS_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("lbdns ready"), "{line}");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(read).unwrap()
}

/// stderr into a fresh file, and the JOURNAL_STREAM value naming it.
fn stderr_file(dir: &Path) -> (Stdio, String) {
    let file = std::fs::File::create(dir.join("stderr")).unwrap();
    let meta = file.metadata().unwrap();
    (Stdio::from(file), format!("{}:{}", meta.dev(), meta.ino()))
}

#[test]
fn logs_to_a_file_have_no_colour_codes_nor_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let (stderr, _) = stderr_file(dir.path());
    // A JOURNAL_STREAM inherited from elsewhere does not name this stderr.
    let logs = run_logging(&config, &[], &[("JOURNAL_STREAM", "1:1".into())], stderr, &dir.path().join("stderr"));
    assert!(logs.contains("member down") && logs.contains("lbdns ready"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escape codes in a file:\n{logs}");
    assert!(!logs.starts_with('<'), "priority prefixes without journald:\n{logs}");
}

#[test]
fn json_logs_to_journald_carry_syslog_priorities() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let (stderr, stream) = stderr_file(dir.path());
    let env = [("JOURNAL_STREAM", stream)];
    let logs = run_logging(&config, &["--log-format", "json"], &env, stderr, &dir.path().join("stderr"));
    let mut seen = Vec::new();
    for line in logs.lines() {
        let (prefix, json) = line.split_at(line.find('{').unwrap_or_else(|| panic!("not JSON: {line}")));
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        let want = match v["level"].as_str().unwrap() {
            "ERROR" => "<3>",
            "WARN" => "<4>",
            "INFO" => "<5>",
            other => panic!("level {other}: {line}"),
        };
        assert_eq!(prefix, want, "{line}");
        seen.push((want, v["fields"]["message"].as_str().unwrap_or("").to_string()));
    }
    assert!(seen.iter().any(|(p, m)| *p == "<4>" && m.contains("member down")), "{logs}");
    assert!(seen.iter().any(|(p, m)| *p == "<5>" && m.starts_with("lbdns ready")), "{logs}");
}

#[test]
fn text_logs_under_journald_go_to_the_journal() {
    if Path::new("/run/systemd/journal/socket").exists() {
        skipped("journald runs here; its journal is not ours to read");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let (stderr, stream) = stderr_file(dir.path());
    let logs = run_logging(&config, &[], &[("JOURNAL_STREAM", stream)], stderr, &dir.path().join("stderr"));
    // The journald layer was chosen; without journald's socket it says so and falls
    // back to stderr lines that journald's stream protocol still reads priorities from.
    let first = logs.lines().next().unwrap_or("");
    assert!(first.starts_with("<4>") && first.contains("cannot open the journald socket"), "{logs}");
    assert!(logs.lines().all(|l| l.starts_with("<3>") || l.starts_with("<4>") || l.starts_with("<5>")), "{logs}");
    assert!(logs.lines().any(|l| l.starts_with("<4>") && l.contains("member down")), "{logs}");
    assert!(logs.lines().any(|l| l.starts_with("<5>") && l.contains("lbdns ready")), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs}");
}

/// The token file is read once at start, so its warning is logged once.
#[test]
fn a_readable_token_file_is_warned_about_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace("[admin]\n", "[admin]\ntoken_file=\"token\"\n");
    write(&config, &text);
    write(&dir.path().join("token"), &"ab".repeat(24));
    std::fs::set_permissions(dir.path().join("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (stderr, _) = stderr_file(dir.path());
    let logs = run_logging(&config, &[], &[], stderr, &dir.path().join("stderr"));
    assert_eq!(logs.matches("readable by other users").count(), 1, "{logs}");
}
