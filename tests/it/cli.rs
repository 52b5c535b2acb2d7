//! The built binary: `lbdns check`, the ready line, `dig`, and a graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lbdns"))
}

fn check(dir: &std::path::Path) -> (i32, String) {
    let out = bin().args(["check", "--config"]).arg(dir.join("lbdns.toml")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `lbdns check` and a start on `dir/lbdns.toml` both exit 64 and both name
/// every problem of `want`; returns what `check` printed.
fn both_refuse(dir: &std::path::Path, want: &[String]) -> String {
    let (code, err) = check(dir);
    assert_eq!(code, 64, "{err}");
    let started = bin().arg("--config").arg(dir.join("lbdns.toml")).env("LBDNS_LOG", "off").output().unwrap();
    assert_eq!(started.status.code(), Some(64));
    let start_err = String::from_utf8_lossy(&started.stderr);
    for w in want {
        assert!(err.contains(w.as_str()), "{w}\n{err}");
        assert!(start_err.contains(w.as_str()), "{w}\n{start_err}");
    }
    err
}

const CFG: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                   [[zone]]\norigin=\"t.test.\"\nfile=\"t.zone\"\n";

#[test]
fn check_accepts_the_example() {
    let out = bin().args(["check", "--config"]).arg(manifest_dir().join("lbdns.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_reports_zone_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), CFG);
    write(
        &dir.path().join("t.zone"),
        &small_zone("www IN A 192.0.2.1\nbad IN A 300.1.2.3\nc IN CNAME www\nc IN TXT \"x\"\n"),
    );
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    let zone = dir.path().join("t.zone");
    // The bad value is quoted (a short prefix of it), so the operator sees which.
    assert!(err.contains(&format!("{}:6: invalid A data: \"300.1.2.3\": ", zone.display())), "{err}");
    assert!(err.contains(&format!("{}:7: CNAME at c.t.test. beside other data", zone.display())), "{err}");
}

#[test]
fn check_reports_config_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &format!("{CFG}[[pool]]\nname = \"www.t.test.\"\npolicy = \"fastest\"\n"));
    write(&dir.path().join("t.zone"), &small_zone(""));
    let (code, err) = check(dir.path());
    assert_eq!(code, 64);
    let cfg = dir.path().join("lbdns.toml");
    assert!(err.starts_with(&format!("{}:10: unknown variant `fastest`", cfg.display())), "{err}");

    write(&dir.path().join("lbdns.toml"), &format!("{CFG}[[pool]]\nname = \"www.elsewhere.test.\"\n"));
    let (code, err) = check(dir.path());
    assert_eq!(code, 64);
    assert!(err.contains(":8: pool www.elsewhere.test. is not inside any zone"), "{err}");

    // A missing zone file names the file.
    std::fs::remove_file(dir.path().join("t.zone")).unwrap();
    write(&dir.path().join("lbdns.toml"), CFG);
    let (code, err) = check(dir.path());
    assert_eq!(code, 64);
    assert!(err.contains("cannot read zone file"), "{err}");
}

/// A config of many pools is read 1,000 pools at a time (`config/split.rs`): a
/// member's problem in the third batch is still named at its line, and a pool's
/// at its own, by `check` and at start alike.
#[test]
fn problems_among_thousands_of_pools_are_at_their_lines_for_check_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = CFG.to_string();
    for p in 0..2500 {
        text += &format!("[[pool]]\nname = \"p{p}.t.test.\"\n[[pool.member]]\naddress = \"192.0.2.1\"\n");
    }
    let pool_line = text.lines().count() + 1;
    text += "[[pool]]\nname = \"bad.t.test.\"\n[[pool.member]]\naddress = \"192.0.2.1\"\nweight = 0\n";
    text += "[[pool]]\nname = \"p7.t.test.\"\n";
    let cfg = dir.path().join("lbdns.toml");
    write(&cfg, &text);
    write(&dir.path().join("t.zone"), &small_zone(""));
    let want = [
        format!("{}:{}: pool bad.t.test.: member 192.0.2.1: weight must be at least 1", cfg.display(), pool_line + 2),
        format!("{}:{}: pool p7.t.test. is defined twice", cfg.display(), pool_line + 5),
    ];
    both_refuse(dir.path(), &want);
}

/// With pools in the config its zone files are read while the pools are
/// (`Sources::load`): each zone's problems are still named at their file and
/// line, a zone that fails still hides only its own pools' placement, and
/// `check` and start say the same.
#[test]
fn zone_problems_beside_pools_are_the_same_for_check_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{CFG}[[pool]]\nname=\"www.t.test.\"\n[[pool.member]]\naddress=\"192.0.2.1\"\n\
         [[zone]]\norigin=\"u.test.\"\nfile=\"u.zone\"\n[[pool]]\nname=\"p.u.test.\"\n\
         [[zone]]\norigin=\"v.test.\"\nfile=\"v.zone\"\n[[pool]]\nname=\"q.v.test.\"\n"
    );
    let cfg = dir.path().join("lbdns.toml");
    write(&cfg, &text);
    write(&dir.path().join("t.zone"), &small_zone("www IN A 192.0.2.7\n"));
    write(&dir.path().join("v.zone"), &small_zone("bad IN A 300.1.2.3\n"));
    let (t, u, v) = (dir.path().join("t.zone"), dir.path().join("u.zone"), dir.path().join("v.zone"));
    let want = [
        format!("{}:12: cannot read zone file {}", cfg.display(), u.display()),
        format!("{}:5: invalid A data: \"300.1.2.3\"", v.display()),
        format!("{}:8: pool www.t.test. also has A records in {}:5;", cfg.display(), t.display()),
    ];
    let err = both_refuse(dir.path(), &want);
    assert_eq!(err.lines().count(), 3, "{err}");
}

/// A running binary, killed on drop.
pub struct Running {
    pub child: Child,
    /// The ready line as printed.
    pub ready: String,
    pub dns: std::net::SocketAddr,
    #[allow(dead_code)]
    pub admin: std::net::SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and waits for its ready line.
pub fn spawn(config: &std::path::Path) -> Running {
    spawn_with(config, &[])
}

/// Starts the binary with extra environment variables.
pub fn spawn_with(config: &std::path::Path, env: &[(&str, &str)]) -> Running {
    spawn_full(config, env, Stdio::inherit())
}

/// Starts the binary with its log (stderr, warnings and errors) written to `log`.
pub fn spawn_logging(config: &std::path::Path, log: &std::path::Path) -> Running {
    spawn_full(config, &[], Stdio::from(std::fs::File::create(log).unwrap()))
}

/// Starts the binary with extra environment variables (`LBDNS_LOG` among them
/// sets what is logged) and its log written to `log`.
pub fn spawn_logging_with(config: &std::path::Path, log: &std::path::Path, env: &[(&str, &str)]) -> Running {
    spawn_full(config, env, Stdio::from(std::fs::File::create(log).unwrap()))
}

fn spawn_full(config: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Running {
    // As in `Server::try_start`: the reqwest clients of a test run alone need it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = bin()
        .arg("--config")
        .arg(config)
        .env("LBDNS_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // lbdns ready dns=ADDR[,ADDR…] admin=ADDR
    let mut parts = line.trim().split(' ');
    assert_eq!(parts.next(), Some("lbdns"), "{line}");
    assert_eq!(parts.next(), Some("ready"), "{line}");
    let dns = parts.next().unwrap().strip_prefix("dns=").unwrap().split(',').next().unwrap().parse().unwrap();
    let admin = parts.next().unwrap().strip_prefix("admin=").unwrap().parse().unwrap();
    Running { child, ready: line.trim().to_string(), dns, admin }
}

fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &example_config());
    dir
}

#[test]
fn binary_prints_ready_and_stops_on_sigterm() {
    let dir = example_dir();
    let mut r = spawn(&dir.path().join("lbdns.toml"));
    assert_eq!(udp(r.dns, &msg("static.example.test.", hickory_proto::rr::RecordType::A)).answers.len(), 3);
    // The quick start shows this line with the example's fixed ports.
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let shown = readme.lines().find(|l| l.starts_with("lbdns ready ")).unwrap();
    let keys = |l: &str| l.split(' ').map(|w| w.split('=').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(keys(shown), keys(&r.ready), "README: {shown}\nbinary: {}", r.ready);
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    loop {
        if let Some(status) = r.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "did not stop within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dig(args: &[&str]) -> Option<String> {
    let out = Command::new("dig").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn dig_against_the_binary() {
    if dig(&["-v"]).is_none() {
        skipped("dig is not installed (apt-get install dnsutils)");
        return;
    }
    let dir = example_dir();
    let r = spawn(&dir.path().join("lbdns.toml"));
    let port = r.dns.port().to_string();
    let base = ["@127.0.0.1", "-p", port.as_str(), "+norec", "+time=2", "+tries=1"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        dig(&a).unwrap()
    };
    let out = run(&["www.example.test"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("flags: qr aa;"), "{out}");
    assert!(out.contains("www.example.test.\t20\tIN\tA\t192.0.2.1"), "{out}");

    let out = run(&["nope.example.test"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("IN\tSOA\tns1.example.test. hostmaster.example.test."), "{out}");

    let out = run(&["example.com"]);
    assert!(out.contains("status: REFUSED"), "{out}");

    let out = run(&["www.example.test", "+edns=1", "+noednsnegotiation"]);
    assert!(out.contains("status: BADVERS"), "{out}");

    let out = run(&["big.example.test", "TXT", "+bufsize=512", "+ignore"]);
    assert!(out.contains("flags: qr aa tc;"), "{out}");

    let out = run(&["big.example.test", "TXT", "+tcp"]);
    assert!(out.contains("lbdns-example-long-text-08"), "{out}");
    assert!(!out.contains(" tc"), "{out}");

    // Extended DNS Errors, the additional section, and ISC genreport's "opcodeflg".
    let out = run(&["example.com", "+nocookie"]);
    assert!(out.contains("; EDE: 20 (Not Authoritative)"), "{out}");
    let out = run(&["example.test", "MX", "+nocookie"]);
    assert!(out.contains("ADDITIONAL: 3") && out.contains("mail.example.test.	3600	IN	AAAA	2001:db8::25"), "{out}");
    let opcodeflg = ["+noedns", "+header-only", "+opcode=15", "+tcflag", "+rec", "+raflag", "+cd", "+ad", "+aaflag"];
    let out = run(&[&opcodeflg[..], &["+zflag"]].concat());
    assert!(out.contains("opcode: RESERVED15, status: NOTIMP") && out.contains("flags: qr;"), "{out}");
}

#[test]
fn check_rejects_an_open_admin_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &CFG.replace("listen=\"127.0.0.1:0\"", "listen=\"0.0.0.0:8053\""));
    write(&dir.path().join("t.zone"), &small_zone(""));
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    assert!(err.contains(":4: [admin] listen 0.0.0.0:8053 is not a loopback address"), "{err}");
}

/// A token under 32 characters (128 bits as hex) is refused by `check` and at
/// start, at the `token_file` line, saying how to make a good one.
#[test]
fn a_short_token_is_refused_by_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &CFG.replace("[[zone]]", "token_file=\"admin.token\"\n[[zone]]"));
    write(&dir.path().join("t.zone"), &small_zone(""));
    write(&dir.path().join("admin.token"), "0123456789abcdef0123456789abcde\n");
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    assert!(err.contains(":5: [admin] token file"), "{err}");
    assert!(err.contains("the token has 31 characters, at least 32 are needed"), "{err}");
    assert!(err.contains("head -c 16 /dev/urandom | od -An -tx1"), "{err}");
    let out = bin().arg("--config").arg(dir.path().join("lbdns.toml")).output().unwrap();
    let started = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{started}");
    assert!(started.contains("the token has 31 characters"), "{started}");
    // 32 characters are enough.
    write(&dir.path().join("admin.token"), "0123456789abcdef0123456789abcdef\n");
    let (code, err) = check(dir.path());
    assert_eq!(code, 0, "{err}");
}

/// `lbdns export` into a pipe whose reader has gone (`| head -c 10`) exits
/// quietly instead of panicking.
#[test]
fn export_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), CFG);
    write(&dir.path().join("t.zone"), &small_zone(""));
    let mut child = bin()
        .args(["export", "--config"])
        .arg(dir.path().join("lbdns.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader closes before anything is written: the write meets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{:?}: {err}", out.status);
    assert_eq!(err, "");
}

/// A state database truncated to 0 bytes is damage: start, `check` and `export`
/// refuse it, naming the file and how to start afresh; nothing is overwritten.
#[test]
fn an_empty_state_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("lbdns.toml"), &CFG.replace("[[zone]]", "state_dir=\"state\"\n[[zone]]"));
    write(&dir.path().join("t.zone"), &small_zone(""));
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let db = dir.path().join("state/lbdns.sqlite3");
    write(&db, "");
    let needle = format!("state store {} is empty (0 bytes)", db.display());
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    assert!(err.contains(&needle) && err.contains("to start afresh"), "{err}");
    for args in [&[][..], &["export"][..]] {
        let out = bin().args(args).arg("--config").arg(dir.path().join("lbdns.toml")).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted an empty database: {err}");
        assert!(err.contains(&needle), "{args:?}: {err}");
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "the damaged file was touched");
}

/// Five independent mistakes across config, pools and zone file: one run names them all.
#[test]
fn check_reports_every_independent_problem_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\nbogus = 1\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [regions]\ndefault = [\"us\"]\n\
               [[zone]]\norigin=\"t.test.\"\nfile=\"t.zone\"\n\
               [[pool]]\nname=\"www.t.test.\"\npolicy=\"fastest\"\n[[pool.member]]\naddress=\"192.0.2.1\"\nweight=0\n\
               [[pool]]\nname=\"geo.t.test.\"\npolicy=\"geo\"\n[[pool.member]]\naddress=\"192.0.2.2\"\nregion=\"mars\"\n\
               [[pool]]\nname=\"x.elsewhere.test.\"\n";
    write(&dir.path().join("lbdns.toml"), cfg);
    write(&dir.path().join("t.zone"), &small_zone("bad IN A 300.1.2.3\n"));
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    let (c, z) = (dir.path().join("lbdns.toml"), dir.path().join("t.zone"));
    for want in [
        format!("{}:3: unknown field `bogus`", c.display()),
        format!("{}:13: unknown variant `fastest`", c.display()),
        format!("{}:14: pool www.t.test.: member 192.0.2.1: weight must be at least 1", c.display()),
        format!("{}:20: pool geo.t.test.: member 192.0.2.2: region \"mars\" is in no [regions] list", c.display()),
        format!("{}:23: pool x.elsewhere.test. is not inside any zone", c.display()),
        format!("{}:5: invalid A data", z.display()),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert_eq!(err.lines().count(), 6, "{err}");
}

#[test]
fn check_of_a_missing_config_says_it_cannot_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    let want = format!("{}: cannot read the config file: No such file", dir.path().join("lbdns.toml").display());
    assert!(err.starts_with(&want), "{err}");
}

/// The production token path is readable by the service alone: `--no-secrets`
/// checks everything else; without it an unreadable secret file stays an error.
#[test]
fn check_no_secrets_skips_secret_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CFG.replace(
        "[admin]\n",
        "cookie_secret_file=\"/run/credentials/lbdns.service/cookie.secret\"\n[admin]\n\
         token_file=\"/run/credentials/lbdns.service/admin.token\"\n",
    );
    write(&dir.path().join("lbdns.toml"), &cfg);
    write(&dir.path().join("t.zone"), &small_zone(""));
    let (code, err) = check(dir.path());
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("/run/credentials/lbdns.service/admin.token"), "{err}");
    assert!(err.contains("cannot read cookie_secret_file /run/credentials/lbdns.service/cookie.secret"), "{err}");

    let out = bin().args(["check", "--no-secrets", "--config"]).arg(dir.path().join("lbdns.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A broken zone is still found.
    write(&dir.path().join("t.zone"), &small_zone("bad IN A 300.1.2.3\n"));
    let out = bin().args(["check", "--no-secrets", "--config"]).arg(dir.path().join("lbdns.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

/// `lbdns import` has nothing to serve: etcd down is an error naming etcd, not the
/// server's "serving config and zone files until it is back".
#[test]
fn import_with_etcd_down_says_etcd_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = format!("{CFG}[cluster]\nstore=\"etcd\"\nendpoints=[\"http://127.0.0.1:{port}\"]\ntimeout=\"1s\"\n");
    write(&dir.path().join("lbdns.toml"), &cfg);
    write(&dir.path().join("t.zone"), &small_zone(""));
    write(&dir.path().join("state.json"), "{\"lbdns_state\": 1, \"entries\": {}}\n");
    let out = bin()
        .args(["import"])
        .arg(dir.path().join("state.json"))
        .arg("--config")
        .arg(dir.path().join("lbdns.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("etcd http://127.0.0.1:{port} unavailable")), "{err}");
    assert!(!err.contains("serving"), "{err}");
}
