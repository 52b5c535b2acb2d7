//! Client region: GeoIP of the ECS (or source) address, `[regions]`, and the ECS
//! scope of replies, against the synthetic test databases in geoip/.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::geoip_gen::{self, Shape};
use crate::harness::*;

/// Members: us 192.0.2.10 / 2001:db8::10, eu .20 / ::20, ap .30 / ::30.
fn members(drain_ap: bool) -> String {
    let mut s = String::new();
    for (region, n) in [("us", 10), ("eu", 20), ("ap", 30)] {
        let enabled = if drain_ap && region == "ap" { "enabled=false\n" } else { "" };
        s.push_str(&format!("[[pool.member]]\naddress=\"192.0.2.{n}\"\nregion=\"{region}\"\n{enabled}"));
        s.push_str(&format!("[[pool.member]]\naddress=\"2001:db8::{n}\"\nregion=\"{region}\"\n{enabled}"));
    }
    s
}

fn server(db: &str) -> Server {
    let db = manifest_dir().join("geoip").join(db);
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [geoip]\ndatabase=\"{}\"\n\
         [regions]\nJP=[\"ap\",\"us\"]\nDE=[\"us\",\"eu\"]\nEU=[\"eu\",\"us\"]\ndefault=[\"us\",\"eu\",\"ap\"]\n\
         [[zone]]\norigin=\"g.test.\"\nfile=\"g.zone\"\n\
         [[pool]]\nname=\"www.g.test.\"\npolicy=\"geo\"\nmax_answers=1\n{}\
         [[pool]]\nname=\"noap.g.test.\"\npolicy=\"geo\"\nmax_answers=1\n{}",
        db.display(),
        members(false),
        members(true)
    );
    Server::start(&cfg, &[("g.zone", &small_zone(""))])
}

fn ask(s: &Server, name: &str, t: RecordType, net: &str, prefix: u8) -> (Vec<String>, Option<(u8, u8)>) {
    let r = udp(s.dns, &msg_ecs(name, t, net, prefix));
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name} {t} via {net}/{prefix}");
    (addrs(&r), reply_ecs(&r).map(|e| (e.0, e.1)))
}

#[test]
fn each_test_network_gets_its_regions_members_and_scope() {
    let s = server("test-country.mmdb");
    // (client subnet, prefix, qtype, first answer, expected scope)
    let cases = [
        ("192.0.2.0", 24, RecordType::A, "192.0.2.30", 24), // JP -> ap; matched /25, used /24
        ("192.0.2.0", 25, RecordType::A, "192.0.2.30", 24), // longer than /24: truncated to /24
        ("198.51.100.0", 24, RecordType::A, "192.0.2.10", 24), // DE (country beats EU) -> us
        ("203.0.113.0", 24, RecordType::A, "192.0.2.20", 24), // FR -> continent EU -> eu
        ("198.51.100.0", 22, RecordType::A, "192.0.2.10", 22), // scope never above the source
        ("2001:db8::", 48, RecordType::AAAA, "2001:db8::30", 33), // JP
        ("2001:db8:8000::", 48, RecordType::AAAA, "2001:db8::10", 34), // DE
        ("2001:db8:c000::", 48, RecordType::AAAA, "2001:db8::20", 34), // FR
        ("2001:db8:c000::", 64, RecordType::AAAA, "2001:db8::20", 34), // /64 truncated to /56
    ];
    for (net, prefix, t, first, scope) in cases {
        let (a, ecs) = ask(&s, "www.g.test.", t, net, prefix);
        assert_eq!(a, vec![first], "{net}/{prefix} {t}");
        assert_eq!(ecs, Some((prefix, scope)), "{net}/{prefix} scope");
    }
}

#[test]
fn unknown_addresses_and_plain_queries_get_the_default_list() {
    let s = server("test-country.mmdb");
    // 233.252.0.0/24 (MCAST-TEST-NET) is not in the database.
    let (a, ecs) = ask(&s, "www.g.test.", RecordType::A, "233.252.0.0", 24);
    assert_eq!(a, vec!["192.0.2.10"]);
    assert!(ecs.is_some_and(|(src, scope)| src == 24 && scope <= 24));
    // No ECS: the source address 127.0.0.1 decides, and it is not in the database.
    for _ in 0..10 {
        assert_eq!(addrs(&s.query("www.g.test.", RecordType::A)), vec!["192.0.2.10"]);
    }
}

#[test]
fn a_region_with_nothing_eligible_moves_to_the_next() {
    let s = server("test-country.mmdb");
    let (a, _) = ask(&s, "noap.g.test.", RecordType::A, "192.0.2.0", 24);
    assert_eq!(a, vec!["192.0.2.10"], "JP falls from ap to us");
}

#[test]
fn the_flat_database_shape_works_with_built_in_continents() {
    let s = server("test-flat.mmdb");
    assert_eq!(ask(&s, "www.g.test.", RecordType::A, "192.0.2.0", 24).0, vec!["192.0.2.30"]);
    assert_eq!(ask(&s, "www.g.test.", RecordType::A, "198.51.100.0", 24).0, vec!["192.0.2.10"]);
    // FR has no key of its own: its continent (EU, from the built-in table) decides.
    assert_eq!(ask(&s, "www.g.test.", RecordType::A, "203.0.113.0", 24).0, vec!["192.0.2.20"]);
}

#[test]
fn malformed_ecs_gets_formerr() {
    let s = server("test-country.mmdb");
    let q = msg("www.g.test.", RecordType::A);
    let mut raw = q.to_vec().unwrap();
    // Append an ECS option by hand: family 1, source /24, but 4 address bytes.
    let opt = [0u8, 8, 0, 8, 0, 1, 24, 0, 198, 51, 100, 7];
    let rdlen_at = raw.len() - 2;
    raw[rdlen_at..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
    raw.extend_from_slice(&opt);
    let r = Message::from_vec(&udp_raw(s.dns, &raw).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // Well-formed, the same option is answered.
    let opt_ok = [0u8, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100];
    let mut raw = q.to_vec().unwrap();
    let rdlen_at = raw.len() - 2;
    raw[rdlen_at..].copy_from_slice(&(opt_ok.len() as u16).to_be_bytes());
    raw.extend_from_slice(&opt_ok);
    let r = Message::from_vec(&udp_raw(s.dns, &raw).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), vec!["192.0.2.10"]);
}

#[test]
fn test_databases_regenerate_identically() {
    let dir = manifest_dir().join("geoip");
    let source = std::fs::read_to_string(dir.join("test-networks.txt")).unwrap();
    for (shape, file) in [(Shape::GeoIp2, "test-country.mmdb"), (Shape::Flat, "test-flat.mmdb")] {
        let committed = std::fs::read(dir.join(file)).unwrap();
        assert!(
            geoip_gen::build(shape, &source) == committed,
            "geoip/{file} differs: run `cargo run --example geoip-gen`"
        );
    }
}

#[test]
fn example_geo_pool_answers_by_subnet() {
    let s = Server::example();
    let r = udp(s.dns, &msg_ecs("geo.example.test.", RecordType::A, "198.51.100.0", 24));
    assert_eq!(addrs(&r), vec!["192.0.2.51"], "DE is in Europe: the eu member");
    assert_eq!(reply_ecs(&r).map(|e| (e.0, e.1)), Some((24, 24)));
}

#[test]
fn sighup_swaps_in_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(manifest_dir().join("geoip/test-networks.txt")).unwrap();
    write_bytes(&dir.path().join("geo.mmdb"), &geoip_gen::build(Shape::GeoIp2, &source));
    let cfg = format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n[geoip]\ndatabase=\"geo.mmdb\"\n\
         [regions]\nJP=[\"ap\",\"us\"]\nEU=[\"eu\",\"us\"]\ndefault=[\"us\",\"eu\",\"ap\"]\n\
         [[zone]]\norigin=\"g.test.\"\nfile=\"g.zone\"\n\
         [[pool]]\nname=\"www.g.test.\"\npolicy=\"geo\"\nmax_answers=1\n{}",
        members(false)
    );
    write(&dir.path().join("lbdns.toml"), &cfg);
    write(&dir.path().join("g.zone"), &small_zone(""));
    let r = crate::cli::spawn(&dir.path().join("lbdns.toml"));
    let first = || addrs(&udp(r.dns, &msg_ecs("www.g.test.", RecordType::A, "203.0.113.0", 24)));
    assert_eq!(first(), vec!["192.0.2.20"], "FR: eu");
    // The same network now says JP.
    let moved = source.replace("203.0.113.0/25       FR", "203.0.113.0/25       JP");
    write_bytes(&dir.path().join("geo.mmdb"), &geoip_gen::build(Shape::GeoIp2, &moved));
    let pid = r.child.id().to_string();
    std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while first() != vec!["192.0.2.30"] {
        assert!(std::time::Instant::now() < deadline, "new database not in effect after SIGHUP");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn write_bytes(path: &std::path::Path, bytes: &[u8]) {
    // Write then rename, as an operator's update would, so a reload never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
