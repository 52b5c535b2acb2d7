//! Pools and policies, checked with real UDP queries against the running server.

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::*;

/// A server for zone `p.test.` with the given pool tables appended to the config.
fn pool_server(pools: &str) -> Server {
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"p.test.\"\nfile=\"p.zone\"\n{pools}"
    );
    let zone = small_zone("www IN TXT \"pool text\"\nalias IN CNAME www\nstatic IN A 192.0.2.200\n");
    Server::start(&cfg, &[("p.zone", &zone)])
}

fn members(addrs: &[&str]) -> String {
    addrs.iter().map(|a| format!("[[pool.member]]\naddress = \"{a}\"\n")).collect()
}

fn first_counts(s: &Server, name: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = s.query(name, RecordType::A);
        *counts.entry(addrs(&r)[0].clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn round_robin_each_member_first_exactly_k_times() {
    let m = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"];
    let s = pool_server(&format!("[[pool]]\nname=\"www.p.test.\"\npolicy=\"round-robin\"\n{}", members(&m)));
    let k = 25;
    let counts = first_counts(&s, "www.p.test.", k * m.len());
    for a in m {
        assert_eq!(counts.get(a), Some(&k), "{counts:?}");
    }
    // And each answer is a rotation of the declared order with every member.
    let r = s.query("www.p.test.", RecordType::A);
    let got = addrs(&r);
    assert_eq!(got.len(), 4);
    let start = m.iter().position(|a| *a == got[0]).unwrap();
    for (i, a) in got.iter().enumerate() {
        assert_eq!(a, m[(start + i) % 4]);
    }
}

#[test]
fn random_is_uniform_by_chi_square() {
    let m = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"];
    let s = pool_server(&format!("[[pool]]\nname=\"www.p.test.\"\npolicy=\"random\"\n{}", members(&m)));
    let n = 10_000;
    let counts = first_counts(&s, "www.p.test.", n);
    assert_eq!(counts.len(), 4, "every member comes first: {counts:?}");
    let expected = n as f64 / 4.0;
    let chi2: f64 = m.iter().map(|a| (counts[*a] as f64 - expected).powi(2) / expected).sum();
    // Critical value of chi-square with 3 degrees of freedom at p = 0.001.
    assert!(chi2 < 16.266, "chi2 = {chi2}, counts {counts:?}");
}

#[test]
fn weighted_shares_follow_weights() {
    let s = pool_server(
        "[[pool]]\nname=\"www.p.test.\"\npolicy=\"weighted\"\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\nweight=3\n\
         [[pool.member]]\naddress=\"192.0.2.2\"\nweight=1\n\
         [[pool.member]]\naddress=\"192.0.2.3\"\nweight=1\n",
    );
    let n = 10_000;
    let counts = first_counts(&s, "www.p.test.", n);
    for (a, share) in [("192.0.2.1", 60.0), ("192.0.2.2", 20.0), ("192.0.2.3", 20.0)] {
        let got = counts.get(a).copied().unwrap_or(0) as f64 * 100.0 / n as f64;
        assert!((got - share).abs() <= 2.5, "{a}: {got:.1}% vs {share}% ({counts:?})");
    }
}

#[test]
fn failover_answers_first_eligible_in_declared_order() {
    let s = pool_server(
        "[[pool]]\nname=\"www.p.test.\"\npolicy=\"failover\"\nmax_answers=1\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
         [[pool]]\nname=\"drained.p.test.\"\npolicy=\"failover\"\nmax_answers=1\n\
         [[pool.member]]\naddress=\"192.0.2.1\"\nenabled=false\n[[pool.member]]\naddress=\"192.0.2.2\"\n",
    );
    for _ in 0..20 {
        assert_eq!(addrs(&s.query("www.p.test.", RecordType::A)), vec!["192.0.2.1"]);
        assert_eq!(addrs(&s.query("drained.p.test.", RecordType::A)), vec!["192.0.2.2"]);
    }
}

const AFFINITY_MEMBERS: &str = "[[pool.member]]\naddress=\"192.0.2.1\"\nweight=2\n\
     [[pool.member]]\naddress=\"192.0.2.2\"\n[[pool.member]]\naddress=\"192.0.2.3\"\n\
     [[pool.member]]\naddress=\"192.0.2.4\"\n";

fn subnet(i: usize) -> String {
    format!("10.{}.{}.0", i / 256, i % 256)
}

#[test]
fn affinity_is_stable_per_subnet_and_spreads_by_weight() {
    let s = pool_server(&format!("[[pool]]\nname=\"www.p.test.\"\npolicy=\"affinity\"\n{AFFINITY_MEMBERS}"));
    // The same subnet gets the same first answer 100 times out of 100.
    let first = |net: &str| addrs(&udp(s.dns, &msg_ecs("www.p.test.", RecordType::A, net, 24)))[0].clone();
    let a = first("198.51.100.0");
    for _ in 0..100 {
        assert_eq!(first("198.51.100.0"), a);
    }
    // The reply scope says the answer depends on the /24.
    let r = udp(s.dns, &msg_ecs("www.p.test.", RecordType::A, "198.51.100.0", 24));
    assert_eq!(reply_ecs(&r).map(|e| (e.0, e.1)), Some((24, 24)));
    // 2,000 subnets spread within 4 points of 40/20/20/20.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..2000 {
        *counts.entry(first(&subnet(i))).or_insert(0) += 1;
    }
    for (addr, share) in [("192.0.2.1", 40.0), ("192.0.2.2", 20.0), ("192.0.2.3", 20.0), ("192.0.2.4", 20.0)] {
        let got = counts.get(addr).copied().unwrap_or(0) as f64 / 20.0;
        assert!((got - share).abs() <= 4.0, "{addr}: {got:.1}% vs {share}% ({counts:?})");
    }
    // Without ECS the source address (127.0.0.1/24) decides, stably; the reply has no ECS.
    let plain = addrs(&s.query("www.p.test.", RecordType::A))[0].clone();
    for _ in 0..20 {
        assert_eq!(addrs(&s.query("www.p.test.", RecordType::A))[0], plain);
    }
}

#[test]
fn affinity_drain_moves_only_that_members_clients() {
    let drained = AFFINITY_MEMBERS.replacen("address=\"192.0.2.3\"\n", "address=\"192.0.2.3\"\nenabled=false\n", 1);
    let s = pool_server(&format!(
        "[[pool]]\nname=\"www.p.test.\"\npolicy=\"affinity\"\n{AFFINITY_MEMBERS}\
         [[pool]]\nname=\"d.p.test.\"\npolicy=\"affinity\"\n{drained}"
    ));
    let mut moved = 0;
    for i in 0..500 {
        let net = subnet(i);
        let before = addrs(&udp(s.dns, &msg_ecs("www.p.test.", RecordType::A, &net, 24)))[0].clone();
        let after = addrs(&udp(s.dns, &msg_ecs("d.p.test.", RecordType::A, &net, 24)))[0].clone();
        if before == "192.0.2.3" {
            assert_ne!(after, "192.0.2.3");
            moved += 1;
        } else {
            assert_eq!(before, after, "client {net} moved though its member stayed");
        }
    }
    assert!(moved > 50, "the drained member had clients: {moved}");
}

#[test]
fn max_answers_ttl_and_families() {
    let s = pool_server(&format!(
        "[[pool]]\nname=\"www.p.test.\"\nttl=7\nmax_answers=2\n{}",
        members(&["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"])
    ));
    let r = s.query("www.p.test.", RecordType::A);
    assert_eq!(r.answers.len(), 2);
    assert!(r.answers.iter().all(|a| a.ttl == 7 && a.record_type() == RecordType::A));
    assert!(r.metadata.authoritative);
    let r = s.query("www.p.test.", RecordType::AAAA);
    assert_eq!(addrs(&r), vec!["2001:db8::1"]);
    assert_eq!(r.answers[0].ttl, 7);
    // Non-client-dependent answers carry ECS scope 0.
    let r = udp(s.dns, &msg_ecs("www.p.test.", RecordType::A, "198.51.100.0", 24));
    assert_eq!(reply_ecs(&r).map(|e| (e.0, e.1)), Some((24, 0)));
}

#[test]
fn pool_without_that_family_is_nodata() {
    let s = pool_server(&format!("[[pool]]\nname=\"www.p.test.\"\n{}", members(&["192.0.2.1"])));
    let r = s.query("www.p.test.", RecordType::AAAA);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn txt_at_pool_name_and_cname_to_pool() {
    let s = pool_server(&format!("[[pool]]\nname=\"www.p.test.\"\n{}", members(&["192.0.2.1", "192.0.2.2"])));
    let r = s.query("www.p.test.", RecordType::TXT);
    assert_eq!(lines(&r.answers), vec!["www.p.test. TXT pool text"]);
    let r = s.query("alias.p.test.", RecordType::A);
    let l = lines(&r.answers);
    assert_eq!(l[0], "alias.p.test. CNAME www.p.test.");
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[1..].iter().all(|x| x.starts_with("www.p.test. A 192.0.2.")), "{l:?}");
}

#[test]
fn all_down_modes_with_every_member_drained() {
    let drained = "[[pool.member]]\naddress=\"192.0.2.1\"\nenabled=false\n\
                   [[pool.member]]\naddress=\"192.0.2.2\"\nenabled=false\n";
    let s = pool_server(&format!(
        "[[pool]]\nname=\"serveall.p.test.\"\nall_down=\"serve-all\"\n{drained}\
         [[pool]]\nname=\"empty.p.test.\"\nall_down=\"empty\"\n{drained}\
         [[pool]]\nname=\"servfail.p.test.\"\nall_down=\"servfail\"\n{drained}\
         [[pool]]\nname=\"fallback.p.test.\"\nall_down=\"fallback\"\nfallback=[\"198.51.100.99\"]\n{drained}"
    ));
    // serve-all answers every enabled member: none are enabled, so NODATA.
    let r = s.query("serveall.p.test.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    let r = s.query("empty.p.test.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    let r = s.query("servfail.p.test.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = s.query("fallback.p.test.", RecordType::A);
    assert_eq!(addrs(&r), vec!["198.51.100.99"]);
}

#[test]
fn example_pools_answer() {
    let s = Server::example();
    let a = addrs(&s.query("www.example.test.", RecordType::A));
    let b = addrs(&s.query("www.example.test.", RecordType::A));
    assert_eq!(a.len(), 2);
    assert_ne!(a[0], b[0], "www rotates");
    assert_eq!(addrs(&s.query("db.example.test.", RecordType::A)), vec!["192.0.2.40"]);
    assert_eq!(addrs(&s.query("api.example.test.", RecordType::A)).len(), 1);
}

/// `n` members 10.0.x.y (or 2001:db8::x when `v6`), weights 1 to 5, regions us and eu.
fn many_members(n: usize, v6: bool) -> String {
    (0..n)
        .map(|i| {
            let a = if v6 { format!("2001:db8::{i:x}") } else { format!("10.0.{}.{}", i / 256, i % 256) };
            format!("[[pool.member]]\naddress=\"{a}\"\nweight={}\nregion=\"{}\"\n", 1 + i % 5, ["us", "eu"][i % 2])
        })
        .collect()
}

/// A reply to `name` `t` over UDP (EDNS payload `payload`, or no EDNS) or TCP: its
/// wire size, the size limit it had to keep to, and the parsed message.
fn sized_reply(s: &Server, name: &str, t: RecordType, how: &str) -> (usize, usize, hickory_proto::op::Message) {
    let (m, limit, tcp) = match how {
        "udp 1232" => (msg(name, t), 1232, false),
        "udp no EDNS" => (msg_plain(name, t), 512, false),
        _ => (msg(name, t), 65_535, true),
    };
    let packet = m.to_vec().unwrap();
    let bytes = if tcp { tcp_raw(s.dns, &packet) } else { udp_raw(s.dns, &packet) };
    let bytes = bytes.unwrap_or_else(|| panic!("{name} {how}: no answer"));
    let r = hickory_proto::op::Message::from_vec(&bytes).unwrap();
    (bytes.len(), limit, r)
}

#[test]
fn large_pools_answer_as_many_members_as_fit_without_truncation() {
    let n = 5_000;
    let mut pools = "[regions]\ndefault=[\"us\",\"eu\"]\n".to_string();
    for policy in ["weighted", "affinity", "geo", "random", "round-robin", "failover"] {
        // geo answers from one of the two regions: give it twice as many members.
        let m = many_members(if policy == "geo" { 2 * n } else { n }, false);
        pools += &format!("[[pool]]\nname=\"{policy}.p.test.\"\npolicy=\"{policy}\"\n{m}");
    }
    pools += &format!("[[pool]]\nname=\"six.p.test.\"\npolicy=\"weighted\"\n{}", many_members(3_000, true));
    pools += &format!("[[pool]]\nname=\"capped.p.test.\"\nmax_answers=100\n{}", many_members(200, false));
    let s = pool_server(&pools);
    let record = |t: RecordType| if t == RecordType::A { 16 } else { 28 };
    let cases = [
        ("weighted.p.test.", RecordType::A),
        ("affinity.p.test.", RecordType::A),
        ("geo.p.test.", RecordType::A),
        ("random.p.test.", RecordType::A),
        ("round-robin.p.test.", RecordType::A),
        ("failover.p.test.", RecordType::A),
        ("six.p.test.", RecordType::AAAA),
    ];
    for (name, t) in cases {
        for how in ["udp 1232", "udp no EDNS", "tcp"] {
            let (len, limit, r) = sized_reply(&s, name, t, how);
            let what = format!("{name} {t} {how}: {len} bytes, {} answers", r.answers.len());
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{what}");
            assert!(!r.metadata.truncation, "{what}: TC set");
            assert!(len <= limit, "{what}: over {limit}");
            assert!(len + record(t) > limit, "{what}: another member would have fit in {limit}");
            assert_eq!(r.edns.is_some(), how != "udp no EDNS", "{what}: OPT");
            let got = addrs(&r);
            assert_eq!(got.len(), r.answers.len(), "{what}: only member addresses");
            let distinct: std::collections::HashSet<_> = got.iter().collect();
            assert_eq!(distinct.len(), got.len(), "{what}: a member twice");
        }
    }
    // The 200-member pool with max_answers = 100: 100 over TCP, what fits in 512 bytes over UDP.
    assert_eq!(sized_reply(&s, "capped.p.test.", RecordType::A, "tcp").2.answers.len(), 100);
    let (len, _, r) = sized_reply(&s, "capped.p.test.", RecordType::A, "udp no EDNS");
    assert!(!r.metadata.truncation && len <= 512 && len + 16 > 512, "{len} bytes, {} answers", r.answers.len());
}

#[test]
fn a_large_pool_answer_is_the_first_members_of_the_policy_order() {
    let n = 5_000;
    let pools = format!(
        "[[pool]]\nname=\"www.p.test.\"\npolicy=\"affinity\"\n{}\
         [[pool]]\nname=\"failover.p.test.\"\npolicy=\"failover\"\n{}",
        many_members(n, false),
        many_members(n, false)
    );
    let s = pool_server(&pools);
    for name in ["www.p.test.", "failover.p.test."] {
        let all = addrs(&sized_reply(&s, name, RecordType::A, "tcp").2);
        assert!(all.len() > 4_000 && all.len() < n, "{name}: {} over TCP", all.len());
        for how in ["udp 1232", "udp no EDNS"] {
            let some = addrs(&sized_reply(&s, name, RecordType::A, how).2);
            assert!(some.len() > 20, "{name} {how}: {}", some.len());
            assert_eq!(some, all[..some.len()], "{name} {how}: not the first of the order");
        }
    }
    let declared: Vec<String> = (0..20).map(|i| format!("10.0.0.{i}")).collect();
    assert_eq!(addrs(&s.query("failover.p.test.", RecordType::A))[..20], declared);
    // Through a CNAME (alias -> www, the affinity pool) the members fit after the CNAME.
    let (len, limit, r) = sized_reply(&s, "alias.p.test.", RecordType::A, "udp 1232");
    assert!(!r.metadata.truncation && len <= limit && len + 16 > limit, "{len} bytes");
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
}

/// dig, a real resolver-side client, gets a large pool's answer whole over UDP and
/// TCP: no TC flag (dig would say "Truncated, retrying in TCP mode").
#[test]
fn dig_gets_a_large_pool_answer_without_truncation() {
    let dig = |args: &[&str]| std::process::Command::new("dig").args(args).output().ok();
    if dig(&["-v"]).is_none() {
        eprintln!(
            "SKIPPED dig_gets_a_large_pool_answer_without_truncation: dig is not installed (apt-get install dnsutils)"
        );
        return;
    }
    let s =
        pool_server(&format!("[[pool]]\nname=\"big.p.test.\"\npolicy=\"affinity\"\n{}", many_members(6_000, false)));
    let port = s.dns.port().to_string();
    for (transport, at_least, at_most) in [("+notcp", 60, 80), ("+tcp", 4_000, 4_096)] {
        let args = ["@127.0.0.1", "-p", &port, "+norec", "+time=5", "+tries=1", transport, "big.p.test", "A"];
        let out = dig(&args).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        assert!(out.contains("status: NOERROR") && out.contains("flags: qr aa;"), "{transport}: {out}");
        let answers: usize = out
            .split("ANSWER: ")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{transport}: no ANSWER count in {out}"));
        assert!((at_least..=at_most).contains(&answers), "{transport}: {answers} answers");
        assert_eq!(out.matches("\tIN\tA\t10.0.").count(), answers, "{transport}");
    }
}
