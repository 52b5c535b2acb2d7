//! Operations: systemd notification, SIGHUP reload, metrics, graceful stop, and
//! the unit file, all against the built binary.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cli::{Running, spawn, spawn_with};
use crate::harness::*;

fn signal(r: &Running, sig: &str) {
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

const CFG: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
                   [[zone]]\norigin=\"o.test.\"\nfile=\"o.zone\"\n\
                   [[pool]]\nname=\"www.o.test.\"\n[[pool.member]]\naddress=\"192.0.2.1\"\n";

fn setup(dir: &Path) -> std::path::PathBuf {
    write(&dir.join("lbdns.toml"), CFG);
    write(&dir.join("o.zone"), &small_zone("static IN A 192.0.2.100\n"));
    dir.join("lbdns.toml")
}

/// Scrapes /metrics and returns the value of the series `name{labels}` (as written).
fn metric(admin: std::net::SocketAddr, series: &str) -> f64 {
    let text = http_get(&format!("http://{admin}/metrics"));
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// An HTTP client for the admin API.
fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("no notification within 5 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let r = spawn_with(&cfg, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    assert_eq!(recv().trim(), "READY=1");
    signal(&r, "-HUP");
    let reloading = recv();
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    assert_eq!(recv().trim(), "READY=1");
    signal(&r, "-TERM");
    assert_eq!(recv().trim(), "STOPPING=1");
}

#[test]
fn reload_applies_zone_and_pool_changes_and_survives_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    assert_eq!(udp(r.dns, &msg("added.o.test.", RecordType::A)).metadata.response_code, ResponseCode::NXDomain);

    write(&dir.path().join("o.zone"), &small_zone("static IN A 192.0.2.100\nadded IN A 192.0.2.55\n"));
    write(&cfg, &format!("{CFG}[[pool.member]]\naddress=\"192.0.2.2\"\n"));
    signal(&r, "-HUP");
    assert!(
        wait_for(Duration::from_secs(5), || addrs(&udp(r.dns, &msg("added.o.test.", RecordType::A)))
            == vec!["192.0.2.55"]),
        "zone change not answered after SIGHUP"
    );
    let mut www = addrs(&udp(r.dns, &msg("www.o.test.", RecordType::A)));
    www.sort();
    assert_eq!(www, vec!["192.0.2.1", "192.0.2.2"], "pool change not answered");
    assert_eq!(metric(r.admin, "lbdns_reloads_total{result=\"ok\"}"), 1.0);

    // A broken zone file: the old data keeps serving, the error is counted.
    write(&dir.path().join("o.zone"), &small_zone("static IN A 192.0.2.100\nadded IN A 192.0.2.555\n"));
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"error\"}") == 1.0));
    assert_eq!(addrs(&udp(r.dns, &msg("added.o.test.", RecordType::A))), vec!["192.0.2.55"]);
    // A broken config too.
    write(&cfg, "[dns]\nlisten = 5\n");
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"error\"}") == 2.0));
    assert_eq!(addrs(&udp(r.dns, &msg("static.o.test.", RecordType::A))), vec!["192.0.2.100"]);
}

#[test]
fn twenty_reloads_under_query_load_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let dns = r.dns;
    let client = {
        let (stop, failures, answered) = (stop.clone(), failures.clone(), answered.clone());
        std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let q = msg("www.o.test.", RecordType::A);
                s.send_to(&q.to_vec().unwrap(), dns).unwrap();
                match s.recv(&mut buf) {
                    Ok(n) => {
                        let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
                        if m.metadata.id != q.metadata.id
                            || m.metadata.response_code != ResponseCode::NoError
                            || m.answers.is_empty()
                        {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    for i in 1..=20 {
        signal(&r, "-HUP");
        assert!(
            wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"ok\"}") == i as f64),
            "reload {i} did not finish"
        );
    }
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(answered.load(Ordering::Relaxed) > 100, "{}", answered.load(Ordering::Relaxed));
}

#[test]
fn metrics_move_by_exactly_the_queries_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let r = spawn(&cfg);
    let series = [
        "lbdns_dns_queries_total{proto=\"udp\"}",
        "lbdns_dns_queries_total{proto=\"tcp\"}",
        "lbdns_dns_responses_total{rcode=\"NOERROR\"}",
        "lbdns_dns_responses_total{rcode=\"NXDOMAIN\"}",
        "lbdns_dns_responses_total{rcode=\"REFUSED\"}",
        "lbdns_pool_answers_total{pool=\"www.o.test.\"}",
        "lbdns_pool_all_down_total{pool=\"www.o.test.\"}",
    ];
    let before: Vec<f64> = series.iter().map(|s| metric(r.admin, s)).collect();
    for _ in 0..10 {
        udp(r.dns, &msg("www.o.test.", RecordType::A));
    }
    for _ in 0..3 {
        udp(r.dns, &msg("nope.o.test.", RecordType::A));
    }
    udp(r.dns, &msg("example.com.", RecordType::A));
    for _ in 0..2 {
        tcp(r.dns, &msg("www.o.test.", RecordType::A));
    }
    let after: Vec<f64> = series.iter().map(|s| metric(r.admin, s)).collect();
    let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(delta, vec![14.0, 2.0, 12.0, 3.0, 1.0, 12.0, 0.0]);
    assert_eq!(metric(r.admin, "lbdns_member_up{pool=\"www.o.test.\",address=\"192.0.2.1\"}"), 1.0);
}

#[test]
fn sigterm_under_load_exits_zero_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let mut r = spawn(&cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let dns = r.dns;
    let load: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let q = msg("www.o.test.", RecordType::A).to_vec().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _ = s.send_to(&q, dns);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    signal(&r, "-TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(status.success(), "{status}");
}

#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        skipped("systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(manifest_dir().join("dist/lbdns.service")).unwrap();
    // Point the unit at the binary under test; everything else is verified as shipped.
    let unit = unit.replace("/usr/local/bin/lbdns", env!("CARGO_BIN_EXE_lbdns"));
    let path = dir.path().join("lbdns.service");
    write(&path, &unit);
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
    for key in [
        "Type=notify",
        "ExecStartPre=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=lbdns",
        "ConfigurationDirectory=lbdns",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
    ] {
        assert!(unit.contains(key), "unit lacks {key}");
    }
}

/// A reload whose token file holds a token under 32 characters is a reload error:
/// the old token keeps working and the short one is not accepted.
#[test]
fn a_reload_with_a_short_token_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    write(&cfg, &CFG.replace("[[zone]]", "token_file=\"admin.token\"\n[[zone]]"));
    let good = "0123456789abcdef0123456789abcdef";
    write(&dir.path().join("admin.token"), good);
    let r = spawn(&cfg);
    let status = |token: &str| {
        let http = client();
        http.get(format!("http://{}/v1/pools", r.admin)).bearer_auth(token).send().unwrap().status().as_u16()
    };
    assert_eq!(status(good), 200);
    write(&dir.path().join("admin.token"), "short-token");
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"error\"}") == 1.0));
    assert_eq!(status(good), 200);
    assert_eq!(status("short-token"), 401);
}

/// `GET /v1/zones` `last_change`: an API write is `api`; a reload that leaves the
/// zone file as it was changes nothing; one that changes it is `file`.
#[test]
fn a_reload_that_changes_a_zone_file_is_its_last_change() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    write(&cfg, &CFG.replace("[[zone]]", "token_file=\"admin.token\"\n[[zone]]"));
    let token = "0123456789abcdef0123456789abcdef";
    write(&dir.path().join("admin.token"), token);
    let r = spawn(&cfg);
    let http = client();
    let zones = || -> serde_json::Value {
        http.get(format!("http://{}/v1/zones", r.admin)).bearer_auth(token).send().unwrap().json().unwrap()
    };
    assert_eq!(zones()[0]["last_change"]["source"], "file");
    let put = http
        .put(format!("http://{}/v1/zones/o.test./records/api/A", r.admin))
        .bearer_auth(token)
        .body(r#"{"ttl":60,"data":["192.0.2.9"]}"#)
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    assert_eq!(zones()[0]["last_change"]["source"], "api");
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"ok\"}") == 1.0));
    assert_eq!(zones()[0]["last_change"]["source"], "api", "the zone file did not change");
    write(&dir.path().join("o.zone"), &small_zone("static IN A 192.0.2.100\nadded IN A 192.0.2.55\n"));
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || metric(r.admin, "lbdns_reloads_total{result=\"ok\"}") == 2.0));
    assert_eq!(zones()[0]["last_change"]["source"], "file");
    assert_eq!(zones()[0]["rrsets"], 6, "SOA, NS, ns1, static, api, added");
}

/// `GET /ui/api/state` (public on a loopback listener).
fn ui_state(admin: std::net::SocketAddr) -> serde_json::Value {
    serde_json::from_str(&http_get(&format!("http://{admin}/ui/api/state"))).unwrap()
}

#[test]
fn the_status_page_state_shows_the_last_reload_and_the_last_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let with_token = CFG.replace("[admin]\n", "[admin]\ntoken_file=\"admin.token\"\n");
    write(&cfg, &with_token);
    write(&dir.path().join("admin.token"), &format!("{}\n", crate::ui::TOKEN));
    let r = spawn(&cfg);
    let s = ui_state(r.admin);
    assert_eq!((&s["reload"], &s["writes"]), (&serde_json::Value::Null, &serde_json::json!([])), "{s}");
    assert!(s["started"].as_str().is_some_and(|t| t.ends_with('Z')), "{s}");

    // A drain, then a write that is refused; a read is not a write.
    let api = |method: reqwest::Method, path: &str, body: &str| {
        let url = format!("http://{}/v1{path}", r.admin);
        client().request(method, url).bearer_auth(crate::ui::TOKEN).body(body.to_string()).send().unwrap().status()
    };
    let drained = api(reqwest::Method::PUT, "/pools/www.o.test./members/192.0.2.1", r#"{ "enabled": false }"#);
    assert!(drained.is_success(), "{drained}");
    assert_eq!(api(reqwest::Method::PUT, "/pools/nope.o.test./members/192.0.2.9", r#"{"weight":2}"#), 404);
    assert_eq!(api(reqwest::Method::GET, "/pools", ""), 200);
    let writes = ui_state(r.admin)["writes"].clone();
    assert_eq!(writes.as_array().unwrap().len(), 2, "{writes}");
    assert_eq!(writes[1]["what"], r#"PUT /v1/pools/www.o.test./members/192.0.2.1 {"enabled":false}"#);
    assert_eq!((&writes[1]["ok"], &writes[1]["error"]), (&true.into(), &serde_json::Value::Null));
    assert_eq!(writes[0]["ok"], false, "{writes}");
    assert!(writes[0]["error"].as_str().is_some_and(|e| e.contains("nope.o.test.")), "{writes}");

    // A reload refused shows why, with the file and line; a good one shows ok.
    write(&dir.path().join("o.zone"), &small_zone("static IN A 192.0.2.100\nbad IN A 192.0.2.555\n"));
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || ui_state(r.admin)["reload"]["ok"] == false));
    let error = ui_state(r.admin)["reload"]["error"].as_str().unwrap().to_string();
    assert!(error.contains("o.zone:6:") && error.contains("192.0.2.555"), "{error}");
    write(&dir.path().join("o.zone"), &small_zone("static IN A 192.0.2.100\n"));
    signal(&r, "-HUP");
    assert!(wait_for(Duration::from_secs(5), || ui_state(r.admin)["reload"]["ok"] == true));
    assert_eq!(ui_state(r.admin)["reload"]["error"], serde_json::Value::Null);
}
