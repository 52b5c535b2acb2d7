//! The config parser: every problem at its line, all reported in one run.

use std::time::Duration;

use super::lines::{LineIndex, find_key_line};
use super::*;

fn p(text: &str) -> Result<Config, Problems> {
    parse(Path::new("/etc/lbdns/lbdns.toml"), text)
}

#[test]
fn key_lines_are_found_inside_their_table() {
    let text = "[dns]\nlisten = [\"x\"]\n[admin]\n# listen = \"old\"\nlistener_x = 1\n  listen = \"y\"\n[geoip]\n";
    assert_eq!(find_key_line(text, "[admin]", "listen"), 6);
    assert_eq!(find_key_line(text, "[admin]", "token_file"), 3, "absent: the table's line");
    assert_eq!(find_key_line(text, "[cluster]", "node"), 0);
}

#[test]
fn line_index_agrees_with_counting() {
    let text = "a\nbb\n\nccc\n";
    let idx = LineIndex::new(text);
    for off in 0..text.len() {
        assert_eq!(idx.line(off), line_of(text, off), "offset {off}");
    }
}

#[test]
fn bad_keys_are_all_reported_each_at_its_line() {
    let text = "[dns]\nlisten = [\"127.0.0.1:53\"]\nthreads = \"many\"\n[admin]\nlisten = \"127.0.0.1:8053\"\n\
                extra = [\n  1,\n  2,\n]\n[[pool]]\nname = \"w.t.\"\npolicy = \"x\"\nttl = -1\n[nope]\na = 1\n";
    let err = p(text).unwrap_err();
    let lines: Vec<usize> = err.0.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 6, 12, 13, 14], "{err}");
}

#[test]
fn a_blanked_required_key_is_not_reported_twice() {
    let err = p("[[pool]]\nname = 5\n[[pool]]\npolicy = \"y\"\n").unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].line, 2, "{err}");
}

#[test]
fn bad_keys_in_other_scripts_are_set_aside_too() {
    let err = p("[dns]\n\"listén\" = 1\n[admin]\n\"ключ\" = \"ü\"\n").unwrap_err();
    let lines: Vec<usize> = err.0.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4], "{err}");
}

#[test]
fn a_syntax_error_is_reported_alone() {
    let err = p("[dns]\nthreads = \"many\"\nlisten = [\n").unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
}

#[test]
fn geo_members_need_a_listed_region() {
    let pool = "[[pool]]\nname = \"g.t.\"\npolicy = \"geo\"\n[[pool.member]]\naddress = \"192.0.2.1\"\n";
    let ok = format!("[regions]\ndefault = [\"eu\"]\n{pool}region = \"eu\"\n");
    assert!(p(&ok).is_ok());
    let err = p(&format!("[regions]\ndefault = [\"eu\"]\n{pool}region = \"us\"\n")).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].line, 6, "{err}");
    assert!(err.0[0].message.contains("region \"us\" is in no [regions] list"), "{err}");
}

#[test]
fn unknown_key_names_line() {
    let err = p("[dns]\nlisten = [\"127.0.0.1:53\"]\nlisten_typo = 1\n").unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].line, 3, "{err}");
    assert!(err.0[0].message.contains("listen_typo"), "{err}");
}

#[test]
fn relative_paths_resolve_against_config_dir() {
    let c = p("[[zone]]\norigin = \"example.test\"\nfile = \"zones/x.zone\"\n").unwrap();
    assert_eq!(c.zones[0].file, PathBuf::from("/etc/lbdns/zones/x.zone"));
    assert_eq!(c.zones[0].origin.to_ascii(), "example.test.");
    assert_eq!(c.admin.state_dir, PathBuf::from("/etc/lbdns/state"));
}

#[test]
fn pool_checks_name_member_lines() {
    let text = "[[pool]]\nname = \"www.example.test.\"\nall_down = \"fallback\"\n\
                [[pool.member]]\naddress = \"192.0.2.1\"\nweight = 0\n\
                [[pool.member]]\naddress = \"192.0.2.1\"\n";
    let err = p(text).unwrap_err();
    let s = err.to_string();
    assert!(s.contains(":4: pool www.example.test.: member 192.0.2.1: weight must be at least 1"), "{s}");
    assert!(s.contains(":7: pool www.example.test.: duplicate member 192.0.2.1"), "{s}");
    assert!(s.contains("needs `fallback`"), "{s}");
}

#[test]
fn unknown_policy_is_an_error_with_line() {
    let err = p("[[pool]]\nname = \"a.example.\"\npolicy = \"fastest\"\n").unwrap_err();
    assert_eq!(err.0[0].line, 3, "{err}");
    assert!(err.0[0].message.contains("fastest"), "{err}");
}

#[test]
fn fallback_of_wrong_family() {
    let text = "[[pool]]\nname = \"a.example.\"\nall_down = \"fallback\"\nfallback = [\"2001:db8::1\"]\n\
                [[pool.member]]\naddress = \"192.0.2.1\"\n";
    let err = p(text).unwrap_err().to_string();
    assert!(err.contains("fallback 2001:db8::1 is IPv6 but the pool has no IPv6 member"), "{err}");
}

#[test]
fn pool_ttl_is_capped_at_2_31_minus_1() {
    let err = p("[[pool]]\nname = \"a.example.\"\nttl = 4294967295\n").unwrap_err();
    assert_eq!(err.0[0].line, 1, "{err}");
    assert!(err.0[0].message.contains("ttl 4294967295 is above 2^31-1"), "{err}");
    assert!(p("[[pool]]\nname = \"a.example.\"\nttl = 2147483647\n").is_ok());
}

#[test]
fn durations_parse() {
    let text =
        "[[pool]]\nname = \"a.example.\"\n[pool.health]\ncheck = \"http\"\ninterval = \"500ms\"\ntimeout = \"2s\"\n";
    let c = p(text).unwrap();
    assert_eq!(c.pools[0].health.0[0].interval, Duration::from_millis(500));
    assert_eq!(c.pools[0].health.0[0].timeout, Duration::from_secs(2));
    let err = p("[[pool]]\nname = \"a.example.\"\n[pool.health]\ninterval = \"soon\"\n").unwrap_err();
    assert_eq!(err.0[0].line, 4, "{err}");
}

/// A zone's `transfer` and `notify` entries: each bad one at its own line, a
/// `key:` naming no `[[tsig]]` key included; good ones parsed.
#[test]
fn transfer_entries_are_checked_each_at_its_line() {
    let text = "[[zone]]\norigin = \"a.test.\"\nfile = \"a.zone\"\ntransfer = [\n  \"192.0.2.0/24\",\n  \
                \"key:nokey.\",\n  \"not-an-address\",\n  \"2001:db8::1\",\n]\nnotify = [\"192.0.2.53:5300\", \
                \"192.0.2.54\"]\n\n[[zone]]\norigin = \"b.test.\"\nfile = \"b.zone\"\nnotify = [\n  \"bad:port:x\"]\n";
    let err = p(text).unwrap_err();
    let found: Vec<(usize, &str)> = err.0.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(found.len(), 3, "{err}");
    assert_eq!(found[0].0, 6, "{err}");
    assert!(found[0].1.contains("key:nokey. is not a [[tsig]] key"), "{err}");
    assert_eq!(found[1].0, 7, "{err}");
    assert!(found[1].1.contains("not an address, a CIDR or key:NAME"), "{err}");
    assert_eq!(found[2].0, 16, "{err}");

    let ok = text
        .replace("  \"key:nokey.\",\n  \"not-an-address\",\n", "")
        .replace("\"bad:port:x\"", "\"[2001:db8::5]:53\"");
    let c = p(&ok).unwrap();
    let t = &c.zones[0].transfer;
    assert!(t.allows("192.0.2.7".parse().unwrap(), None));
    assert!(t.allows("::ffff:192.0.2.7".parse().unwrap(), None), "a mapped address is the IPv4 one");
    assert!(t.allows("2001:db8::1".parse().unwrap(), None));
    assert!(!t.allows("198.51.100.1".parse().unwrap(), None));
    assert_eq!(t.notify[1], "192.0.2.54:53".parse().unwrap(), "port 53 by default");
    assert_eq!(t.pools, TransferPools::Healthy);
}

/// `transfer_pools = "healthy"` needs one view of health: refused with
/// `[cluster] health = "local"`, where `"enabled"` is fine.
#[test]
fn healthy_transfers_need_one_view_of_health() {
    let cluster = "[cluster]\nstore = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nhealth = \"local\"\n";
    let zone = "[[zone]]\norigin = \"a.test.\"\nfile = \"a.zone\"\ntransfer = [\"127.0.0.1\"]\n";
    let err = p(&format!("{cluster}{zone}")).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].line, 5, "the zone's line: {err}");
    assert!(err.0[0].message.contains("transfer_pools = \"enabled\""), "{err}");
    assert!(p(&format!("{cluster}{zone}transfer_pools = \"enabled\"\n")).is_ok());
    assert!(p(&format!("{}{zone}", cluster.replace("local", "quorum"))).is_ok());
}

/// Pools with the same checks hold one copy of them (shared), those without
/// `[pool.health]` the one default; different checks are apart.
#[test]
fn equal_health_checks_are_held_once() {
    let pool = |n: u32, health: &str| format!("[[pool]]\nname = \"p{n}.t.\"\n{health}");
    let tcp = "[pool.health]\ncheck = \"tcp\"\nport = 80\n";
    let text =
        [pool(0, ""), pool(1, ""), pool(2, tcp), pool(3, tcp), pool(4, "[pool.health]\ncheck = \"tcp\"\nport = 81\n")]
            .concat();
    let c = p(&text).unwrap();
    let same = |a: usize, b: usize| std::sync::Arc::ptr_eq(&c.pools[a].health.0, &c.pools[b].health.0);
    assert!(same(0, 1) && same(2, 3));
    assert!(!same(1, 2) && !same(3, 4));
    assert_eq!(c.pools[3].health.0[0].port, Some(80));
    assert_eq!(c.pools[4].health.0[0].port, Some(81));
}

/// A member is held in 48 bytes (100,000 pools of 4 members are 400,000 of
/// them): the region and the probe address, which few members have, are boxed.
/// They read and write as before, in TOML and in the API's JSON.
#[test]
fn members_are_small_and_read_as_before() {
    assert!(std::mem::size_of::<MemberConfig>() <= 48, "{}", std::mem::size_of::<MemberConfig>());
    let text = "[[pool]]\nname = \"a.t.\"\npolicy = \"geo\"\n[[pool.member]]\naddress = \"192.0.2.1\"\nregion = \"eu\"\n\
                probe = \"10.0.0.1:8080\"\n[[pool.member]]\naddress = \"192.0.2.2\"\nregion = \"us\"\n\
                [regions]\ndefault = [\"eu\", \"us\"]\n";
    let c = p(text).unwrap();
    let m = &c.pools[0].members;
    assert_eq!((m[0].region.as_deref(), m[0].probe.as_deref()), (Some("eu"), Some(&"10.0.0.1:8080".parse().unwrap())));
    assert_eq!((m[1].region.as_deref(), m[1].probe.as_deref()), (Some("us"), None));
    let json = serde_json::to_value(&m[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"address": "192.0.2.1", "weight": 1, "region": "eu", "enabled": true, "probe": "10.0.0.1:8080"})
    );
    assert_eq!(serde_json::from_value::<MemberConfig>(json).unwrap(), m[0]);
}

/// A pool's member list holds no spare room (it is kept as long as the pool).
#[test]
fn member_lists_have_no_spare_capacity() {
    let member = |i: usize| format!("[[pool.member]]\naddress = \"192.0.2.{i}\"\n");
    for n in 1..=9 {
        let members: String = (1..=n).map(member).collect();
        let c = p(&format!("[[pool]]\nname = \"a.t.\"\n{members}")).unwrap();
        assert_eq!(c.pools[0].members.capacity(), n, "{n} members");
    }
}
