//! Builds the synthetic test GeoIP databases from `geoip/test-networks.txt`.
//! Shared by `examples/geoip-gen.rs` (which writes them) and the test that checks
//! the committed files are exactly what this produces.

use std::time::{Duration, UNIX_EPOCH};

use mmdb_writer::Writer;
use mmdb_writer::ipnet::IpNet;
use serde_json::json;

/// A fixed build epoch, so that the output is byte-for-byte reproducible.
const EPOCH: u64 = 1_764_028_800; // 2025-11-25T00:00:00Z

#[derive(Clone, Copy)]
pub enum Shape {
    /// GeoIP2/GeoLite2 Country: country.iso_code, registered_country, continent.code.
    GeoIp2,
    /// ip-location-db / DB-IP Lite: {country_code}.
    Flat,
}

fn continent(country: &str) -> &'static str {
    match country {
        "JP" => "AS",
        "US" => "NA",
        "DE" | "FR" => "EU",
        other => panic!("add {other} to the generator's continent list"),
    }
}

/// The database bytes for `source` (the text of test-networks.txt).
pub fn build(shape: Shape, source: &str) -> Vec<u8> {
    let db_type = match shape {
        Shape::GeoIp2 => "lbdns-Test-GeoIP2-Country",
        Shape::Flat => "lbdns-Test-Flat-Country",
    };
    let mut w = Writer::builder(db_type)
        .description(&[("en", "lbdns synthetic test database: documentation prefixes only")])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(EPOCH))
        .build();
    for line in source.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let net: IpNet = parts.next().unwrap().parse().unwrap();
        let cc = parts.next().unwrap();
        let record = match shape {
            Shape::GeoIp2 => json!({
                "country": {"iso_code": cc},
                "registered_country": {"iso_code": cc},
                "continent": {"code": continent(cc)},
            }),
            Shape::Flat => json!({"country_code": cc}),
        };
        w.insert(net, &record).unwrap();
    }
    w.to_bytes().unwrap()
}
