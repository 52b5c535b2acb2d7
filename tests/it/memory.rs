//! How the built server uses the allocator (`src/memory.rs`): its threads share
//! one malloc arena, so memory freed by loading on one thread is not stranded in
//! another's arena; an operator's own `MALLOC_ARENA_MAX` is left in force.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use hickory_proto::rr::RecordType;

use crate::harness::*;

/// The binary started on a zone and a pool, past its ready line, after a query
/// and an admin request (so that the runtime's threads have allocated).
fn started(dir: &Path, env: &[(&str, &str)]) -> Child {
    let cfg = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
               [[zone]]\norigin=\"o.test.\"\nfile=\"o.zone\"\n\
               [[pool]]\nname=\"www.o.test.\"\n[[pool.member]]\naddress=\"192.0.2.7\"\n";
    write(&dir.join("lbdns.toml"), cfg);
    write(&dir.join("o.zone"), &small_zone(""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .arg("--config")
        .arg(dir.join("lbdns.toml"))
        .env("LBDNS_LOG", "error")
        .env_remove("MALLOC_ARENA_MAX")
        .env_remove("GLIBC_TUNABLES")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // lbdns ready dns=ADDR admin=ADDR
    let addr = |key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap().parse().unwrap();
    let (dns, admin): (std::net::SocketAddr, std::net::SocketAddr) = (addr("dns="), addr("admin="));
    assert_eq!(addrs(&udp(dns, &msg("www.o.test.", RecordType::A))), ["192.0.2.7"]);
    assert!(http_get(&format!("http://{admin}/metrics")).contains("lbdns_pool_answers"));
    child
}

/// glibc's arenas other than the main one: each is a 64 MiB-aligned mapping, its
/// used part read-write and the rest reserved (`---p`) up to 64 MiB.
fn thread_arenas(pid: u32) -> usize {
    const HEAP_MAX: u64 = 64 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let ranges: Vec<(u64, u64, String)> = maps
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (lo, hi) = f[0].split_once('-').unwrap();
            let n = |s| u64::from_str_radix(s, 16).unwrap();
            (n(lo), n(hi), f[1].to_string())
        })
        .collect();
    ranges
        .windows(2)
        .filter(|w| {
            let ((lo, hi, perms), (next_lo, next_hi, next_perms)) = (&w[0], &w[1]);
            lo % HEAP_MAX == 0 && perms == "rw-p" && hi == next_lo && next_perms == "---p" && next_hi - lo == HEAP_MAX
        })
        .count()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_server_threads_share_one_malloc_arena() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return skipped("glibc's arenas only");
    }
    let dir = tempfile::tempdir().unwrap();
    let child = started(dir.path(), &[]);
    let arenas = thread_arenas(child.id());
    stop(child);
    assert_eq!(arenas, 0, "threads got arenas of their own");

    // An operator's MALLOC_ARENA_MAX stays in force (the threads get theirs).
    let child = started(dir.path(), &[("MALLOC_ARENA_MAX", "8")]);
    let arenas = thread_arenas(child.id());
    stop(child);
    assert!(arenas > 0, "MALLOC_ARENA_MAX=8 was overridden");
}
