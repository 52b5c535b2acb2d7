//! Replays, through the same checks the fuzz targets run (`lbdns::fuzzing`), the
//! seed inputs in fuzz/seeds/ and every input fuzzing found a problem with, kept in
//! tests/fuzz-regressions/<target>/. A file there is a bug that must stay fixed.

use std::path::Path;

use crate::harness::manifest_dir;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in
        [manifest_dir().join("fuzz/seeds").join(target), manifest_dir().join("tests/fuzz-regressions").join(target)]
    {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{} fails again", rel(&path));
            n += 1;
        }
    }
    n
}

fn rel(p: &Path) -> String {
    p.strip_prefix(manifest_dir()).unwrap_or(p).display().to_string()
}

#[test]
fn udp_inputs() {
    assert!(replay("udp", lbdns::fuzzing::udp) >= 90);
}

#[test]
fn tcp_inputs() {
    assert!(replay("tcp", lbdns::fuzzing::tcp) >= 6);
}

#[test]
fn zone_inputs() {
    assert!(replay("zone", lbdns::fuzzing::zone) >= 3);
}

#[test]
fn config_inputs() {
    assert!(replay("config", lbdns::fuzzing::config) >= 2);
}
