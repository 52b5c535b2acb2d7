//! Writes the synthetic test GeoIP databases into geoip/:
//! `cargo run --example geoip-gen`. See geoip/README.md.

#[path = "../tests/it/geoip_gen.rs"]
mod geoip_gen;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip");
    let source = std::fs::read_to_string(dir.join("test-networks.txt")).expect("geoip/test-networks.txt");
    for (shape, file) in [(geoip_gen::Shape::GeoIp2, "test-country.mmdb"), (geoip_gen::Shape::Flat, "test-flat.mmdb")] {
        let bytes = geoip_gen::build(shape, &source);
        std::fs::write(dir.join(file), &bytes).expect("write database");
        println!("geoip/{file}: {} bytes", bytes.len());
    }
}
