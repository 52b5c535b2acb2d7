//! The README's "Install" block, run as written: `sudo`, `systemctl` and `cargo`
//! are stood in for and every absolute path is moved under a temporary root, then
//! the installed config passes `lbdns check --no-secrets`, as the unit's
//! `ExecStartPre` would on a real machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// The shell block after the `<!-- install -->` marker in the README.
fn install_block() -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let at = readme.find("<!-- install -->\n```sh\n").expect("README has no <!-- install --> block");
    let body = &readme[at + "<!-- install -->\n```sh\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

/// `/etc/…`, `/usr/…` and `/var/…` as command arguments become `$ROOT/…`.
fn under_root(block: &str) -> String {
    let mut out = String::new();
    for line in block.lines() {
        let mut l = line.to_string();
        for dir in ["/etc/", "/usr/", "/var/"] {
            l = l.replace(&format!(" {dir}"), &format!(" \"$ROOT\"{dir}"));
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn shim(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    write(&path, &format!("#!/bin/sh\n{script}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A checkout holding what the block reads: dist/, zones/ and the built binary
/// where `cargo build --release` leaves it.
fn checkout(dir: &Path) {
    for f in ["dist/lbdns.toml", "dist/lbdns.service", "zones/example.test.zone"] {
        std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
        std::fs::copy(manifest_dir().join(f), dir.join(f)).unwrap();
    }
    std::fs::create_dir_all(dir.join("target/release")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_lbdns"), dir.join("target/release/lbdns")).unwrap();
}

#[test]
fn the_readme_install_block_installs_a_config_that_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, root, bin) = (tmp.path().join("src"), tmp.path().join("root"), tmp.path().join("bin"));
    for d in [&src, &root, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    checkout(&src);
    // What every Debian system has already.
    for d in ["usr/local/bin", "etc/systemd/system"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let log = tmp.path().join("calls");
    shim(&bin, "sudo", "exec \"$@\"");
    shim(&bin, "systemctl", &format!("echo \"systemctl $*\" >> '{}'", log.display()));
    shim(&bin, "cargo", &format!("echo \"cargo $*\" >> '{}'", log.display()));
    let script = format!("set -euo pipefail\n{}", under_root(&install_block()));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&src)
        .env("ROOT", &root)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the install block failed: {err}\n---\n{script}");

    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls, "cargo build --release\nsystemctl daemon-reload\nsystemctl enable --now lbdns\n");
    let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("usr/local/bin/lbdns"), 0o755);
    assert_eq!(mode("etc/lbdns/admin.token"), 0o600, "the token must be root-only");
    assert_eq!(std::fs::read_to_string(root.join("etc/lbdns/admin.token")).unwrap().len(), 48);
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/lbdns.service")).unwrap();
    assert!(unit.contains("ExecStartPre=/usr/local/bin/lbdns check --config /etc/lbdns/lbdns.toml"), "{unit}");

    // What the unit's ExecStartPre checks, minus the credential only systemd provides.
    let config = root.join("etc/lbdns/lbdns.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for want in ["\"0.0.0.0:53\"", "state_dir = \"/var/lib/lbdns\"", "/run/credentials/lbdns.service/admin.token"] {
        assert!(text.contains(want), "installed config lacks {want}");
    }
    let out = Command::new(root.join("usr/local/bin/lbdns"))
        .args(["check", "--no-secrets", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "lbdns check of the installed config: {stderr}");
    assert!(stdout.contains(": ok (1 zone,"), "{stdout}");
}
