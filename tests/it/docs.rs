//! Documentation cannot rot: every TOML example in the README parses as a config
//! (or as a fragment of one), and the example config passes `check` (see cli.rs).

use crate::harness::manifest_dir;

#[test]
fn every_toml_block_in_the_readme_parses() {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let mut blocks = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").unwrap();
        let block = &body[..end];
        rest = &body[end + 3..];
        blocks += 1;
        // A `[pool.health]`, `[[pool.health]]` or `[[pool.member]]` fragment needs a pool around it.
        let fragment = ["[pool.health]", "[[pool.health]]", "[[pool.member]]"];
        let text = if fragment.iter().any(|f| block.trim_start().starts_with(f)) {
            format!("[[pool]]\nname = \"x.example.test.\"\n{block}")
        } else {
            block.to_string()
        };
        if let Err(e) = lbdns::config::parse(&manifest_dir().join("lbdns.toml"), &text) {
            panic!("README TOML block {blocks} does not parse:\n{e}\n---\n{block}");
        }
    }
    assert!(blocks >= 2, "found {blocks} TOML blocks");
}
