//! Load feedback and slow start against real backends: the weight a backend
//! reports moves its share of answers (chi-square over 10,000 answers), the API,
//! the metrics and `explain` show the effective weight and its source, and a
//! member coming up with `slow_start` takes its weight gradually.

use std::collections::HashMap;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::*;
use crate::health::backends;

const TOKEN: &str = "weights-token-0123456789abcdef0123";
const LONG: Duration = Duration::from_secs(8);

fn server_with(pools: &str) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"admin.token\"\n\
         [[zone]]\norigin=\"h.test.\"\nfile=\"h.zone\"\n{pools}"
    );
    Server::start(&cfg, &[("h.zone", &small_zone("")), ("admin.token", TOKEN)])
}

fn get(s: &Server, path: &str) -> reqwest::blocking::Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://{}{path}", s.admin);
    reqwest::blocking::Client::new().get(url).bearer_auth(TOKEN).send().unwrap()
}

fn member(s: &Server, pool: &str, addr: &str) -> Value {
    let p: Value = get(s, &format!("/v1/pools/{pool}")).json().unwrap();
    p["members"].as_array().unwrap().iter().find(|m| m["address"] == addr).cloned().unwrap_or(Value::Null)
}

fn effective(s: &Server, pool: &str, addr: &str) -> Option<f64> {
    member(s, pool, addr)["effective_weight"].as_f64()
}

/// The first answer's counts over `n` queries.
fn first_counts(s: &Server, name: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = s.query(name, RecordType::A);
        *counts.entry(addrs(&r)[0].clone()).or_insert(0) += 1;
    }
    counts
}

/// Chi-square of `counts` against shares proportional to `weights`.
fn chi2(counts: &HashMap<String, usize>, weights: &[(&str, f64)], n: usize) -> f64 {
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    weights
        .iter()
        .map(|(a, w)| {
            let expected = n as f64 * w / total;
            (counts.get(*a).copied().unwrap_or(0) as f64 - expected).powi(2) / expected
        })
        .sum()
}

/// Critical value of chi-square with 1 degree of freedom at p = 0.001.
const CHI2_1DF: f64 = 10.828;

#[test]
fn reported_weights_set_the_weighted_shares() {
    let b = backends(2);
    let port = b[0].addr.port();
    b[0].set_header("X-LB-Weight: 1");
    b[1].set_header("X-LB-Weight: 3");
    let s = server_with(&format!(
        "[[pool]]\nname=\"w.h.test.\"\npolicy=\"weighted\"\nmax_answers=1\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"200ms\"\ntimeout=\"300ms\"\n\
         weight_from=\"header:X-LB-Weight\"\nweight_max=50\n\
         [[pool.member]]\naddress=\"127.0.0.2\"\nweight=10\n[[pool.member]]\naddress=\"127.0.0.3\"\nweight=10\n"
    ));
    let settled = |a: f64, c: f64| {
        effective(&s, "w.h.test.", "127.0.0.2") == Some(a) && effective(&s, "w.h.test.", "127.0.0.3") == Some(c)
    };
    assert!(wait_for(LONG, || settled(1.0, 3.0)), "{}", member(&s, "w.h.test.", "127.0.0.3"));
    let m = member(&s, "w.h.test.", "127.0.0.3");
    assert_eq!((m["weight"].as_u64(), m["weight_source"].as_str()), (Some(10), Some("reported")), "{m}");

    let n = 10_000;
    let counts = first_counts(&s, "w.h.test.", n);
    let x = chi2(&counts, &[("127.0.0.2", 1.0), ("127.0.0.3", 3.0)], n);
    assert!(x < CHI2_1DF, "chi2 = {x} against 1:3, counts {counts:?}");

    // The metric and explain show it too.
    let metrics = get(&s, "/metrics").text().unwrap();
    assert!(metrics.contains("lbdns_member_weight{pool=\"w.h.test.\",address=\"127.0.0.3\"} 3"), "{metrics}");
    let ex: Value = get(&s, "/v1/explain?name=w.h.test.&type=A&client=127.0.0.1").json().unwrap();
    let em = ex["pool"]["members"].as_array().unwrap().iter().find(|m| m["address"] == "127.0.0.3").unwrap().clone();
    assert_eq!((em["effective_weight"].as_f64(), em["weight_source"].as_str()), (Some(3.0), Some("reported")));

    // A report above weight_max is bounded; the backend shedding load moves its share.
    b[0].set_header("X-LB-Weight: 900");
    b[1].set_header("X-LB-Weight: 50");
    assert!(wait_for(LONG, || settled(50.0, 50.0)), "{}", member(&s, "w.h.test.", "127.0.0.2"));
    let counts = first_counts(&s, "w.h.test.", n);
    let x = chi2(&counts, &[("127.0.0.2", 1.0), ("127.0.0.3", 1.0)], n);
    assert!(x < CHI2_1DF, "chi2 = {x} against 1:1, counts {counts:?}");

    // A report that cannot be read keeps the last weight and says why.
    b[1].set_header("X-LB-Weight: lots");
    assert!(wait_for(LONG, || member(&s, "w.h.test.", "127.0.0.3")["weight_error"].is_string()));
    let m = member(&s, "w.h.test.", "127.0.0.3");
    assert_eq!((m["health"].as_str(), m["effective_weight"].as_f64()), (Some("up"), Some(50.0)), "{m}");
}

#[test]
fn a_member_coming_up_ramps_its_weight_with_slow_start() {
    let b = backends(2);
    let port = b[0].addr.port();
    let s = server_with(&format!(
        "[[pool]]\nname=\"ss.h.test.\"\npolicy=\"weighted\"\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"100ms\"\ntimeout=\"300ms\"\nrise=1\nfall=1\n\
         slow_start=\"2s\"\n\
         [[pool.member]]\naddress=\"127.0.0.2\"\nweight=4\n[[pool.member]]\naddress=\"127.0.0.3\"\nweight=4\n"
    ));
    // Up at start-up: the whole weight at once.
    let m = member(&s, "ss.h.test.", "127.0.0.3");
    assert_eq!((m["effective_weight"].as_f64(), m["weight_source"].as_str()), (Some(4.0), Some("config")), "{m}");
    b[1].set_status(500);
    assert!(wait_for(LONG, || member(&s, "ss.h.test.", "127.0.0.3")["health"] == "down"));
    b[1].set_status(200);
    // Back up: a share of its weight, growing, then all of it.
    let mut seen = Vec::new();
    let full = wait_for(LONG, || {
        let m = member(&s, "ss.h.test.", "127.0.0.3");
        if m["weight_source"] == "slow-start" {
            seen.push(m["effective_weight"].as_f64().unwrap());
        }
        m["health"] == "up" && m["weight_source"] == "config"
    });
    assert!(full, "never back to its full weight");
    assert!(seen.first().is_some_and(|w| *w < 2.0), "it did not start low: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "the ramp went down: {seen:?}");
    // The API shows hundredths: a share just under 1 (3.996) reads 4.0.
    assert!(seen.iter().all(|w| *w > 0.0 && *w <= 4.0), "{seen:?}");
    assert_eq!(effective(&s, "ss.h.test.", "127.0.0.3"), Some(4.0));
}
