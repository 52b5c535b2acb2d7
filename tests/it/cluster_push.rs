//! Health pushed from outside in a cluster sharing one etcd: an override
//! written through one node is shared state that every node honours (and lets
//! lapse at its expiry).

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::Backend;
use crate::cluster::{Etcd, answers, api, node, within};

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
