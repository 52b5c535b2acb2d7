//! `GET /v1/explain`: the explained answer is what a real DNS query gets for the
//! same client, the reasons match the state, and explaining changes nothing.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::backend::Backend;
use crate::harness::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn members(list: &[(&str, &str)]) -> String {
    list.iter().map(|(a, extra)| format!("[[pool.member]]\naddress=\"{a}\"\n{extra}\n")).collect()
}

/// Pools of every policy in e.test, a CNAME to one, a wildcard, a delegation, and
/// `hc.e.test.` probed over HTTP on `port` (members 127.0.0.2 and 127.0.0.3).
fn server(port: u16) -> Server {
    let db = manifest_dir().join("geoip").join("test-country.mmdb");
    let mut cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [geoip]\ndatabase=\"{}\"\n\
         [regions]\nJP=[\"ap\",\"us\"]\nEU=[\"eu\",\"us\"]\ndefault=[\"us\",\"eu\",\"ap\"]\n\
         [[zone]]\norigin=\"e.test.\"\nfile=\"e.zone\"\n",
        db.display()
    );
    let four = [("192.0.2.1", ""), ("192.0.2.2", ""), ("192.0.2.3", ""), ("192.0.2.4", "")];
    for policy in ["failover", "affinity", "round-robin", "random", "weighted"] {
        cfg.push_str(&format!("[[pool]]\nname=\"{policy}.e.test.\"\npolicy=\"{policy}\"\nmax_answers=2\n"));
        cfg.push_str(&members(&[("192.0.2.1", "enabled=false"), four[1], four[2], four[3], ("2001:db8::1", "")]));
    }
    cfg.push_str("[[pool]]\nname=\"geo.e.test.\"\npolicy=\"geo\"\nmax_answers=1\n");
    cfg.push_str(&members(&[
        ("192.0.2.10", "region=\"us\""),
        ("192.0.2.20", "region=\"eu\""),
        ("192.0.2.30", "region=\"ap\""),
    ]));
    cfg.push_str(&format!(
        "[[pool]]\nname=\"hc.e.test.\"\n[pool.health]\ncheck=\"http\"\nport={port}\n\
         interval=\"200ms\"\ntimeout=\"300ms\"\nrise=1\nfall=1\n"
    ));
    cfg.push_str(&members(&[("127.0.0.2", ""), ("127.0.0.3", "")]));
    let zone = small_zone(
        "static IN A 192.0.2.100\nstatic IN TXT \"a b\" \"c\\\"d\"\nalias IN CNAME failover\n*.wild IN A 192.0.2.200\n\
         sub IN NS ns.sub\nns.sub IN A 192.0.2.54\n",
    );
    Server::start(&cfg, &[("e.zone", &zone), ("admin.token", &format!("{TOKEN}\n"))])
}

fn explain(s: &Server, query: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let resp = http.get(format!("http://{}/v1/explain?{query}", s.admin)).bearer_auth(TOKEN).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

fn answer_addrs(v: &Value) -> Vec<String> {
    v["answer"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "A" || r["type"] == "AAAA")
        .map(|r| r["data"].as_str().unwrap().to_string())
        .collect()
}

fn member<'a>(v: &'a Value, addr: &str) -> &'a Value {
    v["pool"]["members"].as_array().unwrap().iter().find(|m| m["address"] == addr).unwrap()
}

/// Two backends on 127.0.0.2 and 127.0.0.3 sharing one port.
fn two_backends() -> (Backend, Backend) {
    for _ in 0..20 {
        let a = Backend::http("127.0.0.2", 0);
        if std::net::TcpListener::bind(("127.0.0.3", a.addr.port())).is_ok() {
            let b = Backend::http("127.0.0.3", a.addr.port());
            return (a, b);
        }
    }
    panic!("no common free port");
}

#[test]
fn failover_affinity_and_geo_explain_what_a_query_gets() {
    let (_a, _b) = two_backends();
    let s = server(_a.addr.port());
    let cases = [
        ("failover.e.test.", "198.51.100.0/24"),
        ("affinity.e.test.", "198.51.100.0/24"),
        ("affinity.e.test.", "203.0.113.0/24"),
        ("affinity.e.test.", "192.0.2.0/24"),
        ("geo.e.test.", "192.0.2.0/24"),    // JP -> ap
        ("geo.e.test.", "203.0.113.0/24"),  // FR -> EU -> eu
        ("geo.e.test.", "198.51.100.0/24"), // DE -> EU -> eu
    ];
    for (name, ecs) in cases {
        let (net, prefix) = ecs.split_once('/').unwrap();
        let dns = udp(s.dns, &msg_ecs(name, RecordType::A, net, prefix.parse().unwrap()));
        let (st, v) = explain(&s, &format!("name={name}&type=A&client=127.0.0.1&ecs={ecs}"));
        assert_eq!(st, 200, "{v}");
        assert_eq!(answer_addrs(&v), addrs(&dns), "{name} for {ecs}: {v:#}");
        assert_eq!(v["ecs_scope"], reply_ecs(&dns).unwrap().1, "{name} for {ecs}");
        assert_eq!(v["pool"]["client_key_from"], "ecs");
        assert_eq!(v["pool"]["sample"], name.starts_with("geo"));
        assert_eq!(v["zone"], "e.test.");
        assert_eq!(v["node"]["match"], "exact");
    }
    let (_, v) = explain(&s, "name=geo.e.test.&type=A&client=127.0.0.1&ecs=192.0.2.0/24");
    assert_eq!(v["pool"]["country"], "JP", "{v:#}");
    assert_eq!(v["pool"]["region_order"]["key"], "JP");
    assert_eq!(v["pool"]["region_order"]["regions"], serde_json::json!(["ap", "us"]));
    // A CNAME to a pool: the chain, and the same answer as the query.
    let dns = udp(s.dns, &msg_ecs("alias.e.test.", RecordType::A, "198.51.100.0", 24));
    let (_, v) = explain(&s, "name=alias.e.test.&type=A&client=127.0.0.1&ecs=198.51.100.0/24");
    assert_eq!(v["cname_chain"], serde_json::json!(["failover.e.test."]));
    assert_eq!(answer_addrs(&v), addrs(&dns));
}

#[test]
fn every_policy_says_drained_wrong_family_and_down_with_the_error() {
    let (a, b) = two_backends();
    let s = server(a.addr.port());
    for policy in ["failover", "affinity", "round-robin", "random", "weighted"] {
        let (_, v) = explain(&s, &format!("name={policy}.e.test.&type=A&client=192.0.2.77"));
        assert_eq!(member(&v, "192.0.2.1")["reason"], "drained", "{policy}: {v:#}");
        assert_eq!(member(&v, "192.0.2.2")["eligible"], true, "{policy}");
        assert_eq!(member(&v, "2001:db8::1")["reason"], "wrong family", "{policy}");
        assert_eq!(v["pool"]["policy"], policy);
        assert_eq!(v["pool"]["sample"], matches!(policy, "random" | "weighted"), "{policy}");
        assert_eq!(v["pool"]["client_key_from"], "source");
        assert_eq!(answer_addrs(&v).len(), 2, "{policy}: max_answers");
        assert!(!answer_addrs(&v).contains(&"192.0.2.1".to_string()), "{policy}: a drained member answered");
    }
    // Kill one backend: once the query path stops answering it, explain says down, since when, and why.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    while addrs(&s.query("hc.e.test.", RecordType::A)) != vec!["127.0.0.2"] {
        assert!(Instant::now() < deadline, "the killed backend is still answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, v) = explain(&s, "name=hc.e.test.&type=A&client=192.0.2.77");
    let down = member(&v, "127.0.0.3");
    assert_eq!(down["reason"], "down", "{v:#}");
    assert_eq!(down["health"], "down");
    assert!(down["since"].is_string(), "{down}");
    assert!(!down["last_error"].as_str().unwrap_or("").is_empty(), "{down}");
    assert_eq!(member(&v, "127.0.0.2")["eligible"], true);
    assert_eq!(answer_addrs(&v), vec!["127.0.0.2"]);
}

#[test]
fn explain_does_not_advance_a_round_robin_rotation() {
    let (a, _b) = two_backends();
    let s = server(a.addr.port());
    let first = |s: &Server| addrs(&s.query("round-robin.e.test.", RecordType::A))[0].clone();
    let mut seen = vec![first(&s)];
    let (_, v) = explain(&s, "name=round-robin.e.test.&type=A&client=192.0.2.77");
    let explained = answer_addrs(&v)[0].clone();
    for _ in 0..3 {
        explain(&s, "name=round-robin.e.test.&type=A&client=192.0.2.77");
    }
    seen.push(first(&s));
    // Eligible: .2 .3 .4 rotated by one per query; four explains in between changed nothing.
    let order = ["192.0.2.2", "192.0.2.3", "192.0.2.4"];
    let at = |a: &str| order.iter().position(|o| *o == a).unwrap();
    assert_eq!(at(&seen[1]), (at(&seen[0]) + 1) % 3, "{seen:?}");
    assert_eq!(explained, seen[1], "explain showed the next answer");
}

#[test]
fn static_names_say_what_is_answered_and_why() {
    let (a, _b) = two_backends();
    let s = server(a.addr.port());
    let cases = [
        ("static.e.test.", "A", "answer", Some("exact")),
        ("static.e.test.", "MX", "nodata", Some("exact")),
        ("nothing.e.test.", "A", "nxdomain", Some("none")),
        ("x.wild.e.test.", "A", "answer", Some("wildcard")),
        ("www.sub.e.test.", "A", "referral", None),
        ("www.other.test.", "A", "refused", None),
    ];
    for (name, t, result, node) in cases {
        let (st, v) = explain(&s, &format!("name={name}&type={t}&client=192.0.2.77"));
        assert_eq!(st, 200);
        assert_eq!(v["result"], result, "{name} {t}: {v:#}");
        let rcode = match result {
            "nxdomain" => "NXDOMAIN",
            "refused" => "REFUSED",
            _ => "NOERROR",
        };
        assert_eq!(v["rcode"], rcode, "{name} {t}");
        assert!(v["reason"].is_string());
        assert!(v["pool"].is_null());
        if let Some(n) = node {
            assert_eq!(v["node"]["match"], n, "{name}");
        }
    }
    let (_, v) = explain(&s, "name=x.wild.e.test.&type=A&client=192.0.2.77");
    assert_eq!(v["node"]["name"], "*.wild.e.test.");
    assert_eq!(answer_addrs(&v), vec!["192.0.2.200"]);
}

#[test]
fn answer_records_are_shown_as_the_records_api_shows_them() {
    let (a, _b) = two_backends();
    let s = server(a.addr.port());
    let (st, v) = explain(&s, "name=static.e.test.&type=TXT&client=192.0.2.77");
    assert_eq!(st, 200, "{v}");
    let data: Vec<&str> = v["answer"].as_array().unwrap().iter().map(|r| r["data"].as_str().unwrap()).collect();
    // Two strings, the second with a quote in it: not run together as "a bc\"d".
    assert_eq!(data, [r#""a b" "c\"d""#], "{v:#}");
    let http = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let records: Value = http
        .get(format!("http://{}/v1/zones/e.test./records", s.admin))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let txt =
        records["records"].as_array().unwrap().iter().find(|r| r["name"] == "static.e.test." && r["type"] == "TXT");
    assert_eq!(txt.unwrap()["data"][0], data[0], "{records:#}");
    let (code, out, err) = lbdns_explain(&s, &["static.e.test", "TXT", "--client", "192.0.2.77"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with("static.e.test.") && l.ends_with(data[0])), "{out}");
}

#[test]
fn bad_questions_are_400_naming_the_parameter() {
    let (a, _b) = two_backends();
    let s = server(a.addr.port());
    for (q, word) in [
        ("name=a..b&type=A&client=192.0.2.1", "name"),
        ("name=x.e.test.&type=BOGUS&client=192.0.2.1", "type"),
        ("name=x.e.test.&type=A&client=nope", "client"),
        ("name=x.e.test.&type=A&client=192.0.2.1&ecs=10.0.0.0/99", "ecs"),
        ("name=x.e.test.&type=A", "client"),
        // A misspelt ecs is an error, not an explanation without the subnet.
        ("name=x.e.test.&type=A&client=192.0.2.1&subnet=10.0.0.0/24", "unknown field `subnet`"),
    ] {
        let (st, v) = explain(&s, q);
        assert_eq!(st, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(word), "{q}: {v}");
    }
}

/// Runs the built binary's `explain` against `s`: (exit code, stdout, stderr).
fn lbdns_explain(s: &Server, args: &[&str]) -> (i32, String, String) {
    let token = s.dir.path().join("admin.token");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = format!("http://{}", s.admin);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .arg("explain")
        .args(args)
        .args(["--server", &server, "--token-file", token.to_str().unwrap()])
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_client_prints_a_table_and_json_with_the_usual_exit_codes() {
    let (a, _b) = two_backends();
    let s = server(a.addr.port());
    let args = ["alias.e.test", "A", "--client", "192.0.2.77", "--ecs", "198.51.100.0/24"];
    let (code, out, err) = lbdns_explain(&s, &args);
    assert_eq!(code, 0, "{err}");
    let dns = udp(s.dns, &msg_ecs("alias.e.test.", RecordType::A, "198.51.100.0", 24));
    let row = |first: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(first));
        line.unwrap_or_else(|| panic!("no row {first} in\n{out}")).split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(row("192.0.2.1")[1..3], ["no", "drained"], "{out}");
    assert_eq!(row("2001:db8::1")[1..4], ["no", "wrong", "family"], "{out}");
    assert_eq!(row("192.0.2.2")[1..3], ["yes", "-"], "{out}");
    assert!(out.contains("cname    alias.e.test. -> failover.e.test."), "{out}");
    assert!(out.contains("pool     failover.e.test.  policy failover"), "{out}");
    for a in addrs(&dns) {
        assert!(out.lines().any(|l| l.starts_with("failover.e.test.") && l.ends_with(&a)), "{a} not in\n{out}");
    }
    let (code, json, _) = lbdns_explain(&s, &[&args[..], &["--json"]].concat());
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(answer_addrs(&v), addrs(&dns));
    assert_eq!(v["pool"]["policy"], "failover");
    // 1: the server refuses the question; 2: a usage problem; 3: no server.
    let (code, _, err) = lbdns_explain(&s, &["a..b", "A", "--client", "192.0.2.1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("(HTTP 400)") && err.contains("name"), "{err}");
    let (code, _, _) = lbdns_explain(&s, &["x.e.test", "A", "--client", "192.0.2.1", "--ecs", "nope"]);
    assert_eq!(code, 2);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["explain", "x.e.test", "A", "--client", "192.0.2.1", "--server", "127.0.0.1:9"])
        .args(["--token-file", s.dir.path().join("admin.token").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}
