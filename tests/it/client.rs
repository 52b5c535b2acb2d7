//! `lbdns` as a client of a running server: the built binary against a real
//! server on port 0, each subcommand as a table and as `--json`, a drain seen by
//! the next DNS answer, and each kind of failure with its exit code.

use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::*;

/// 32 characters: the shortest token lbdns accepts.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

const CONFIG: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
                      [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n\
                      [[pool]]\nname=\"www.a.test.\"\npolicy=\"weighted\"\n\
                      [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
                      [[pool.member]]\naddress=\"2001:db8::1\"\n";

fn server() -> Server {
    let zone = small_zone("static IN A 192.0.2.100\nstatic IN TXT \"hello world\"\n");
    let s = Server::start(CONFIG, &[("a.zone", &zone), ("admin.token", &format!("{TOKEN}\n"))]);
    chmod_600(&s.dir.path().join("admin.token"));
    s
}

fn chmod_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// What a run printed and how it ended.
struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Runs the binary with `args`, stdout and stderr piped (not a terminal).
fn lbdns(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns")).args(args).env_remove("NO_COLOR").output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a client command against `s` with `--server` and `--token-file`.
fn client(s: &Server, args: &[&str]) -> Run {
    let server = format!("http://{}", s.admin);
    let token = s.dir.path().join("admin.token");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", &server, "--token-file", token.to_str().unwrap()]);
    let r = lbdns(&all);
    assert!(!r.out.contains('\u{1b}') && !r.err.contains('\u{1b}'), "ANSI escape in piped output: {}{}", r.out, r.err);
    r
}

/// A successful run's stdout.
fn ok(s: &Server, args: &[&str]) -> String {
    let r = client(s, args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.err);
    r.out
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(s, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {out}"))
}

/// The table line that starts with `first` (a member address, a pool name).
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    let line = table.lines().find(|l| l.split_whitespace().next() == Some(first));
    line.unwrap_or_else(|| panic!("no row {first} in\n{table}")).split_whitespace().collect()
}

fn sorted_addrs(s: &Server, name: &str) -> Vec<String> {
    let mut a = addrs(&s.query(name, RecordType::A));
    a.sort();
    a
}

#[test]
fn each_subcommand_prints_a_table_and_json() {
    let s = server();
    let status = ok(&s, &["status"]);
    assert_eq!(row(&status, &format!("http://{}", s.admin))[1], "ready", "{status}");
    assert_eq!(row(&status, "a.test.")[4], "file", "{status}");
    // POOL POLICY TTL ANSWERS CHECK UP DOWN DRAINED UNKNOWN SOURCE
    assert_eq!(
        row(&status, "www.a.test."),
        ["www.a.test.", "weighted", "30", "all", "none", "3", "0", "0", "0", "config"]
    );
    let v = json(&s, &["status"]);
    assert_eq!(v["ready"], true);
    assert_eq!(v["zones"][0]["origin"], "a.test.");
    assert_eq!((v["pools"][0]["name"].as_str(), v["pools"][0]["up"].as_u64()), (Some("www.a.test."), Some(3)));

    assert_eq!(row(&ok(&s, &["pools"]), "www.a.test.")[1], "weighted");
    assert_eq!(json(&s, &["pools"])[0]["members"].as_array().unwrap().len(), 3);
    let pool = ok(&s, &["pools", "www.a.test"]);
    assert_eq!(row(&pool, "192.0.2.2")[..3], ["192.0.2.2", "up", "1"], "{pool}");
    assert!(pool.lines().any(|l| l == "all down: serve-all"), "{pool}");
    assert_eq!(json(&s, &["pools", "www.a.test"])["name"], "www.a.test.");

    let members = ok(&s, &["members", "www.a.test."]);
    assert_eq!(row(&members, "ADDRESS"), ["ADDRESS", "STATE", "WEIGHT", "REGION", "SOURCE", "SINCE", "LAST", "ERROR"]);
    assert_eq!(row(&members, "192.0.2.1")[..5], ["192.0.2.1", "up", "1", "-", "config"]);
    assert_eq!(json(&s, &["members", "www.a.test."])["members"][1]["address"], "192.0.2.2");

    let records = ok(&s, &["records", "a.test"]);
    // NAME TTL TYPE SOURCE DATA, one line per record, data as in a zone file.
    assert!(
        records.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["static.a.test.", "300", "TXT", "zone", "\"hello", "world\""]),
        "{records}"
    );
    assert_eq!(row(&records, "static.a.test.")[..5], ["static.a.test.", "300", "A", "zone", "192.0.2.100"]);
    let v = json(&s, &["records", "a.test"]);
    assert_eq!(v["zone"], "a.test.");
    assert!(v["records"].as_array().unwrap().iter().any(|r| r["name"] == "static.a.test." && r["type"] == "TXT"));
}

#[test]
fn drain_changes_the_next_answer_and_undrain_restores_it() {
    let s = server();
    assert_eq!(sorted_addrs(&s, "www.a.test."), ["192.0.2.1", "192.0.2.2"]);
    let out = ok(&s, &["drain", "www.a.test", "192.0.2.1"]);
    assert_eq!(out, "www.a.test. 192.0.2.1: drained (up), weight 1\n");
    assert_eq!(sorted_addrs(&s, "www.a.test."), ["192.0.2.2"]);
    assert_eq!(row(&ok(&s, &["members", "www.a.test"]), "192.0.2.1")[..5], ["192.0.2.1", "drained", "(up)", "1", "-"]);
    let status = ok(&s, &["status"]);
    assert_eq!(row(&status, "www.a.test.")[5..9], ["2", "0", "1", "0"], "{status}");

    let v = json(&s, &["undrain", "www.a.test", "192.0.2.1"]);
    assert_eq!(v["members"][0]["enabled"], true, "{v}");
    assert_eq!(sorted_addrs(&s, "www.a.test."), ["192.0.2.1", "192.0.2.2"]);

    assert_eq!(ok(&s, &["weight", "www.a.test", "192.0.2.2", "5"]), "www.a.test. 192.0.2.2: up, weight 5\n");
    assert_eq!(row(&ok(&s, &["pools", "www.a.test."]), "192.0.2.2")[..3], ["192.0.2.2", "up", "5"]);
    assert_eq!(json(&s, &["pools", "www.a.test."])["members"][1]["weight"], 5);
    // An IPv6 address is one URL path segment like any other.
    assert_eq!(ok(&s, &["weight", "www.a.test", "2001:db8::1", "3"]), "www.a.test. 2001:db8::1: up, weight 3\n");
}

#[test]
fn failures_exit_with_their_codes() {
    let s = server();
    // 1: the server's message.
    let r = client(&s, &["pools", "nope.a.test."]);
    assert_eq!((r.code, r.err.as_str()), (1, "lbdns: no pool nope.a.test. (HTTP 404)\n"));
    let r = client(&s, &["weight", "www.a.test.", "192.0.2.1", "0"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("weight must be at least 1 (HTTP 422)"), "{}", r.err);
    // A mistyped address is refused, not added as a new member.
    let r = client(&s, &["drain", "www.a.test.", "192.0.2.9"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            1,
            "lbdns: pool www.a.test. has no member 192.0.2.9 (drain, undrain and weight only change existing members)\n"
        )
    );
    assert_eq!(json(&s, &["pools", "www.a.test."])["members"].as_array().unwrap().len(), 3);
    let wrong = s.dir.path().join("wrong.token");
    write(&wrong, "ffffffffffffffffffffffffffffffff");
    chmod_600(&wrong);
    let server = format!("{}", s.admin);
    let r = lbdns(&["status", "--server", &server, "--token-file", wrong.to_str().unwrap()]);
    assert_eq!((r.code, r.err.as_str()), (1, "lbdns: missing or wrong bearer token (HTTP 401)\n"));

    // A failed write (a full disk) is not a success.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let token = s.dir.path().join("admin.token");
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["pools", "--server", &server, "--token-file", token.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("lbdns: cannot write the output: "));

    // 2: usage.
    for args in [
        &["drain", "www.a.test."][..],
        &["weight", "www.a.test.", "192.0.2.1", "many"],
        &["drain", "www.a.test.", "host"],
        &["status", "--server"],
    ] {
        let r = client(&s, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
    }
    let r = lbdns(&["status", "--server", "ftp://x", "--token-file", "t"]);
    assert_eq!((r.code, r.err.as_str()), (2, "lbdns: --server ftp://x: the scheme must be http or https, not ftp\n"));
    let r = lbdns(&["status", "--server", &server, "--token-file", "/nonexistent/token"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.starts_with("lbdns: token file /nonexistent/token: "), "{}", r.err);
    let missing = s.dir.path().join("missing.toml");
    let r = lbdns(&["status", "--config", missing.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains("cannot read the config file")
            && r.err.ends_with("; give --config, or --server and --token-file\n"),
        "{}",
        r.err
    );

    // 3: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let r = lbdns(&["status", "--server", &closed, "--token-file", wrong.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(r.err.starts_with(&format!("lbdns: cannot reach the server at http://{closed}: ")), "{}", r.err);
    assert!(r.err.contains("Connection refused"), "{}", r.err);
}

#[test]
fn server_and_token_come_from_the_config() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write(&token, TOKEN);
    chmod_600(&token);
    let config = dir.path().join("lbdns.toml");
    // A relative token_file is relative to the config file, as for the server.
    write(&config, &format!("[admin]\nlisten = \"{}\"\ntoken_file = \"token\"\n", s.admin));
    let r = lbdns(&["--config", config.to_str().unwrap(), "pools"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(row(&r.out, "www.a.test.")[1], "weighted");
    // Only [admin] matters: a pool `lbdns check` refuses does not stop the client.
    let admin = format!("[admin]\nlisten = \"{}\"\ntoken_file = \"token\"\n", s.admin);
    write(&config, &format!("{admin}[[pool]]\nname = \"www.elsewhere.test.\"\npolicy = \"fastest\"\n"));
    assert_eq!(lbdns(&["--config", config.to_str().unwrap(), "status"]).code, 0);
    // A config that is not TOML: its FILE:LINE problem, exit 2.
    write(&config, &format!("{admin}[pool\n"));
    let r = lbdns(&["--config", config.to_str().unwrap(), "status"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.starts_with(&format!("lbdns: {}:4: ", config.display())), "{}", r.err);
    write(&config, &admin);
    // The options win over the config.
    let other: PathBuf = s.dir.path().join("admin.token");
    let r = lbdns(&[
        "members",
        "www.a.test.",
        "--config",
        config.to_str().unwrap(),
        "--token-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    // No token_file in the config and none given: the server's 401, and why.
    write(&config, &format!("[admin]\nlisten = \"{}\"\n", s.admin));
    let r = lbdns(&["status", "--config", config.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("no token was sent: the config names no [admin] token_file, give --token-file"),
        "{}",
        r.err
    );
}

#[test]
fn colours_only_on_a_terminal_without_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        return skipped("script (util-linux) is not installed");
    }
    let s = server();
    let cmd = format!(
        "{} status --server {} --token-file {}",
        env!("CARGO_BIN_EXE_lbdns"),
        s.admin,
        s.dir.path().join("admin.token").display()
    );
    // `script` gives the command a terminal for its stdout.
    let on_tty = |no_color: Option<&str>| {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(None);
    assert!(coloured.contains("\u{1b}[") && coloured.contains("ready"), "{coloured}");
    let plain = on_tty(Some("1"));
    assert!(!plain.contains('\u{1b}') && plain.contains("ready"), "{plain}");
}

#[test]
fn events_lists_a_drain_and_undrain_as_a_table_and_json() {
    let s = server();
    let empty = ok(&s, &["events"]);
    assert_eq!(empty.lines().count(), 1, "only the header: {empty}");
    ok(&s, &["drain", "www.a.test", "192.0.2.1"]);
    ok(&s, &["undrain", "www.a.test", "192.0.2.1"]);
    let table = ok(&s, &["events"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TIME", "POOL", "ADDRESS", "CHANGE", "REASON"]);
    let lines: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert_eq!(lines[0][1..], ["www.a.test.", "192.0.2.1", "drained", "→", "up", "undrained", "through", "the", "API"]);
    assert_eq!(lines[1][1..], ["www.a.test.", "192.0.2.1", "up", "→", "drained", "drained", "through", "the", "API"]);
    let v = json(&s, &["events"]);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!((v[0]["from"].as_str(), v[0]["to"].as_str()), (Some("drained"), Some("up")), "{v}");
    assert!(v[0]["node"].is_null(), "{v}");
}

/// Draining the pool's only IPv6 member leaves it nothing to answer AAAA with:
/// the pool's own event, shown with `(pool)` for its address.
#[test]
fn events_show_a_pool_left_with_no_member_of_a_family() {
    let s = server();
    ok(&s, &["drain", "www.a.test", "2001:db8::1"]);
    let table = ok(&s, &["events"]);
    let lines: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert_eq!(lines[0][1..6], ["www.a.test.", "(pool)", "up", "→", "all-down"], "{table}");
    assert!(table.contains("no IPv6 member is up and enabled"), "{table}");
    assert_eq!(lines[1][1..6], ["www.a.test.", "2001:db8::1", "up", "→", "drained"], "{table}");
    let v = json(&s, &["events"]);
    assert!(v[0]["address"].is_null(), "{v}");
    ok(&s, &["undrain", "www.a.test", "2001:db8::1"]);
    let v = json(&s, &["events"]);
    assert_eq!((v[0]["from"].as_str(), v[0]["to"].as_str()), (Some("all-down"), Some("up")), "{v}");
}
