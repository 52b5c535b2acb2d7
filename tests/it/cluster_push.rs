//! Health pushed from outside in a cluster sharing one etcd: an override
//! written through one node is shared state that every node honours (and lets
//! lapse at its expiry).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::cli::{Running, spawn};
use crate::cluster::{Etcd, TOKEN, ZONE, answers, api, node, node_config, within};
use crate::harness::{addrs, msg, udp};

const LIMIT: Duration = Duration::from_secs(5);

fn push(s: &crate::harness::Server, address: &str, body: Value) {
    let path = format!("/v1/pools/www.c.test./members/{address}/health");
    let (status, v) = api(s, "PUT", &path, Some(&body.to_string()));
    assert!(status == 200 || status == 201, "{body}: {status} {v}");
}

#[test]
fn an_override_through_one_node_is_honoured_by_every_node() {
    let Some(etcd) = Etcd::start(1) else { return };
    let (a, b) = (node(&etcd, "a", "", ""), node(&etcd, "b", "", ""));
    let both = ["192.0.2.10", "192.0.2.11"];
    assert_eq!(answers(&a, "www.c.test."), both);

    push(&a, "192.0.2.10", json!({"state": "down", "reason": "rack 4 power"}));
    assert_eq!(answers(&a, "www.c.test."), ["192.0.2.11"]);
    assert!(within(LIMIT, || answers(&b, "www.c.test.") == ["192.0.2.11"]).is_some(), "b did not honour it");
    let (_, pool) = api(&b, "GET", "/v1/pools/www.c.test.", None);
    let m = pool["members"].as_array().unwrap().iter().find(|m| m["address"] == "192.0.2.10").unwrap().clone();
    assert_eq!((m["state"].as_str(), m["health_override"]["reason"].as_str()), (Some("down"), Some("rack 4 power")));
    let (_, events) = api(&b, "GET", "/v1/events", None);
    let e = events.as_array().unwrap().iter().find(|e| e["address"] == "192.0.2.10").cloned().unwrap_or_default();
    assert_eq!(e["reason"], "health pushed down through the API on another server: rack 4 power", "{e}");

    // Removed through the other node.
    push(&b, "192.0.2.10", json!({"state": "auto"}));
    assert!(within(LIMIT, || answers(&a, "www.c.test.") == both).is_some(), "a kept the removed override");

    // An expiry lapses on every node without anything written.
    push(&b, "192.0.2.11", json!({"state": "down", "expires_in": "2s"}));
    assert!(within(LIMIT, || answers(&a, "www.c.test.") == ["192.0.2.10"]).is_some());
    for n in [&a, &b] {
        assert!(within(Duration::from_secs(10), || answers(n, "www.c.test.") == both).is_some(), "not lapsed");
    }
}

/// With `health = "quorum"` a node's health file is that node's own vote: one
/// node's file saying down is outvoted, two of three take the member out.
#[test]
fn a_health_file_is_its_nodes_vote() {
    let Some(etcd) = Etcd::start(1) else { return };
    let x = Backend::http("127.0.0.21", 0);
    let y = Backend::http("127.0.0.22", x.addr.port());
    let pool = format!(
        "[health]\nhealth_file=\"health.txt\"\n\
         [[pool]]\nname=\"app.c.test.\"\nall_down=\"empty\"\n\
         [pool.health]\ncheck=\"http\"\nport={}\ninterval=\"200ms\"\ntimeout=\"1s\"\nrise=1\nfall=1\n\
         [[pool.member]]\naddress=\"127.0.0.21\"\n[[pool.member]]\naddress=\"127.0.0.22\"\n",
        x.addr.port()
    );
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|n| node(&etcd, n, "health=\"quorum\"", &pool)).collect();
    let both = ["127.0.0.21", "127.0.0.22"];
    for n in &nodes {
        assert!(within(LIMIT, || answers(n, "app.c.test.") == both).is_some(), "{:?}", answers(n, "app.c.test."));
    }
    crate::harness::write(&nodes[2].dir.path().join("health.txt"), "127.0.0.22 down\n");
    let votes = |n: &crate::harness::Server| {
        let (_, p) = api(n, "GET", "/v1/pools/app.c.test.", None);
        p["members"][1]["votes"].clone()
    };
    assert!(within(LIMIT, || votes(&nodes[0])["nodes"]["c"] == json!(false)).is_some(), "{}", votes(&nodes[0]));
    for n in &nodes {
        assert_eq!(answers(n, "app.c.test."), both, "one vote of three is outvoted");
    }
    crate::harness::write(&nodes[1].dir.path().join("health.txt"), "127.0.0.22 down maintenance\n");
    for n in &nodes {
        let t = within(LIMIT, || answers(n, "app.c.test.") == ["127.0.0.21"]);
        assert!(t.is_some(), "two of three: {:?} {}", answers(n, "app.c.test."), votes(n));
    }
    drop(y);
}

/// Waits until, over a window of at least three probes of each backend, every
/// backend is probed from exactly `k` sources; returns each one's sources.
fn settled(backends: &[Backend], k: usize, limit: Duration) -> Option<Vec<Vec<IpAddr>>> {
    let start = Instant::now();
    while start.elapsed() < limit {
        for b in backends {
            b.take_sources();
        }
        let base: Vec<usize> = backends.iter().map(Backend::requests).collect();
        let probed = within(LIMIT, || backends.iter().zip(&base).all(|(b, n)| b.requests() >= n + 3 * k));
        assert!(probed.is_some(), "backends not probed");
        let seen: Vec<Vec<IpAddr>> = backends
            .iter()
            .map(|b| {
                let mut s: Vec<IpAddr> = b.take_sources().into_keys().collect();
                s.sort();
                s
            })
            .collect();
        if seen.iter().all(|s| s.len() == k) {
            return Some(seen);
        }
    }
    None
}

/// The pool `app.c.test.` of `members`, probed over HTTP on `port` every 200 ms.
fn app_pool(port: u16, members: &[&str]) -> String {
    let mut s = format!(
        "[[pool]]\nname=\"app.c.test.\"\nall_down=\"empty\"\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"200ms\"\ntimeout=\"500ms\"\nrise=1\nfall=2\n"
    );
    for m in members {
        s.push_str(&format!("[[pool.member]]\naddress=\"{m}\"\n"));
    }
    s
}

/// A node run as the built binary (so that it can be killed with SIGKILL).
fn binary_node(etcd: &Etcd, dir: &std::path::Path, name: &str, cluster_extra: &str, rest: &str) -> Running {
    use std::os::unix::fs::PermissionsExt;
    let cfg = dir.join(format!("{name}.toml"));
    crate::harness::write(&cfg, &node_config(etcd, name, cluster_extra, rest));
    crate::harness::write(&dir.join("c.zone"), ZONE);
    crate::harness::write(&dir.join("token"), TOKEN);
    std::fs::set_permissions(dir.join("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    spawn(&cfg)
}

fn answers_of(r: &Running) -> Vec<String> {
    let mut a = addrs(&udp(r.dns, &msg("app.c.test.", RecordType::A)));
    a.sort();
    a
}

/// `probe_share = 1` of three nodes: each backend sees the probes of exactly one
/// node, every node answers from those votes, and a node killed with SIGKILL
/// hands its members to another within the lease time, which keeps them
/// answered meanwhile.
#[test]
fn probe_share_one_of_three_probes_each_backend_from_one_node_and_survives_a_kill() {
    let Some(etcd) = Etcd::start(1) else { return };
    let members = ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34", "127.0.0.35", "127.0.0.36"];
    let backends = crate::pushed::backends(31, members.len());
    let pool = app_pool(backends[0].addr.port(), &members);
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Option<Running>> = (0..3)
        .map(|i| {
            let rest = format!("[health]\nsource_address=\"127.0.0.4{}\"\n{pool}", i + 1);
            Some(binary_node(&etcd, dir.path(), &format!("n{i}"), "probe_share=1", &rest))
        })
        .collect();
    let seen = settled(&backends, 1, Duration::from_secs(20)).expect("each backend probed by exactly one node");
    for n in nodes.iter().flatten() {
        assert!(within(LIMIT, || answers_of(n) == members).is_some(), "{:?}", answers_of(n));
    }
    // Kill the prober of the first backend.
    let victim = seen[0][0].to_string();
    let i = ["127.0.0.41", "127.0.0.42", "127.0.0.43"].iter().position(|s| *s == victim).unwrap();
    let mut gone = nodes[i].take().unwrap();
    gone.child.kill().unwrap();
    gone.child.wait().unwrap();
    // Within the lease time (6 s) plus a few probes, another node probes it,
    // and the member stays answered all along.
    let handed = within(Duration::from_secs(15), || {
        for n in nodes.iter().flatten() {
            assert_eq!(answers_of(n), members, "a member handed over left the answers");
        }
        let s = backends[0].take_sources();
        !s.is_empty() && !s.contains_key(&victim.parse::<IpAddr>().unwrap())
    });
    assert!(handed.is_some(), "no other node took over the probes of {}", members[0]);
    let seen = settled(&backends, 1, Duration::from_secs(10)).expect("still exactly one prober each");
    assert!(seen.iter().all(|s| s[0].to_string() != victim), "{seen:?}");
}

/// `probe_share = 2` of three: quorum over the member's two probers keeps it up
/// when one of them cannot reach it.
#[test]
fn probe_share_two_of_three_keeps_a_member_one_of_its_probers_cannot_reach() {
    let Some(etcd) = Etcd::start(1) else { return };
    let members = ["127.0.0.51", "127.0.0.52"];
    let backends = crate::pushed::backends(51, members.len());
    let pool = app_pool(backends[0].addr.port(), &members);
    let nodes: Vec<_> = (0..3)
        .map(|i| {
            node(
                &etcd,
                &format!("m{i}"),
                "probe_share=2",
                &format!("[health]\nsource_address=\"127.0.0.6{}\"\n{pool}", i + 1),
            )
        })
        .collect();
    let seen = settled(&backends, 2, Duration::from_secs(20)).expect("each backend probed by exactly two nodes");
    backends[0].refuse_from(&seen[0][0].to_string());
    let votes = |n: &crate::harness::Server| {
        let (_, p) = api(n, "GET", "/v1/pools/app.c.test.", None);
        p["members"][0]["votes"].clone()
    };
    let split = within(LIMIT, || nodes.iter().all(|n| votes(n)["up"] == 1 && votes(n)["of"] == 2));
    assert!(split.is_some(), "{}", votes(&nodes[0]));
    for _ in 0..10 {
        for n in &nodes {
            assert_eq!(answers(n, "app.c.test."), members, "{}", votes(n));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A member added through one node is probed by the other (from its own
/// source address) and answered there once up; removed through the first, the
/// other stops probing it. The change reaches the other node through etcd and
/// is applied there to its pool alone.
#[test]
fn a_member_added_through_one_node_is_probed_by_the_other_and_its_removal_stops_those_probes() {
    let Some(etcd) = Etcd::start(1) else { return };
    let x = Backend::http("127.0.0.61", 0);
    let port = x.addr.port();
    let y = Backend::http("127.0.0.62", port);
    let pool = format!(
        "[[pool]]\nname=\"app.c.test.\"\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"100ms\"\ntimeout=\"300ms\"\nrise=1\nfall=1\n\
         [[pool.member]]\naddress=\"127.0.0.61\"\n"
    );
    let [a, b] = ["1", "2"]
        .map(|i| node(&etcd, &format!("m{i}"), "", &format!("[health]\nsource_address=\"127.0.0.7{i}\"\n{pool}")));
    let b_ip: IpAddr = "127.0.0.72".parse().unwrap();
    assert!(within(LIMIT, || answers(&b, "app.c.test.") == ["127.0.0.61"]).is_some());

    let (st, body) = api(&a, "PUT", "/v1/pools/app.c.test./members/127.0.0.62", Some("{}"));
    assert_eq!(st, 201, "{body}");
    let mut y_from_b = 0;
    let probed = within(LIMIT, || {
        y_from_b += y.take_sources().get(&b_ip).copied().unwrap_or(0);
        y_from_b > 0 && answers(&b, "app.c.test.") == ["127.0.0.61", "127.0.0.62"]
    });
    assert!(probed.is_some(), "b answers {:?}, probed the new member {y_from_b} times", answers(&b, "app.c.test."));

    assert_eq!(api(&a, "DELETE", "/v1/pools/app.c.test./members/127.0.0.62", None).0, 204);
    assert!(within(LIMIT, || answers(&b, "app.c.test.") == ["127.0.0.61"]).is_some());
    // b's probes of the first member are the clock: two of them let a probe
    // of the removed one that was under way end, then none may follow while
    // three more of the first member's go by.
    let probes_of_x = |n: usize| {
        let mut seen = 0;
        assert!(
            within(LIMIT, || {
                seen += x.take_sources().get(&b_ip).copied().unwrap_or(0);
                seen >= n
            })
            .is_some()
        );
    };
    probes_of_x(2);
    y.take_sources();
    probes_of_x(3);
    assert_eq!(y.take_sources().get(&b_ip), None, "b still probes the removed member");
}
