//! No import circles between the crate's modules (issue 17): a module may only import
//! modules below it. The graph is built from the source text, at the granularity the
//! redesign talks about: top-level modules (`src/x.rs` or `src/x/`), and each file
//! (or folder) of `src/persist/` on its own. Test-only code (`#[cfg(test)] mod`) does not count.
//! The leaves (`net`, `counters`, `problem`, `secrets`, `shutdown`) import nothing at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Directories whose files are separate nodes of the graph.
const SPLIT: &[&str] = &["persist"];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir` (also read by `limits.rs`).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a file belongs to: `persist/sqlite` for `src/persist/sqlite.rs`,
/// `persist/etcd` for `src/persist/etcd/watch.rs`, `dns` for `src/dns/udp.rs`,
/// `geoip` for `src/geoip.rs`.
fn node_of(rel: &Path) -> String {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [dir, file, ..] if SPLIT.contains(&dir.as_str()) && file != "mod" => format!("{dir}/{file}"),
        [first, ..] => first.clone(),
        [] => unreachable!(),
    }
}

/// The file without plain comments and without `#[cfg(test)]` modules. Doc
/// comments stay: a doc link (`[x](crate::a::b)`) is a reference rustdoc
/// resolves, and counts as an import as a `use` does.
fn production_text(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") && !t.starts_with("///") && !t.starts_with("//!") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|l| l.contains("mod ") && l.contains('{')) {
            // Skip the module: count braces until they balance.
            let mut depth = 0i32;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                if depth <= 0 && l.contains('}') {
                    break;
                }
            }
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The identifiers at the start of each path after `prefix::`, including each
/// member of a `prefix::{a, b::c}` group, each with the segment after it if any.
fn paths_after(text: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let two = |s: &str| -> (String, Option<String>) {
        let first = ident(s.trim_start());
        let rest = s.trim_start()[first.len()..].strip_prefix("::").map(ident).filter(|n| !n.is_empty());
        (first, rest)
    };
    let mut out = Vec::new();
    let needle = format!("{prefix}::");
    for (i, _) in text.match_indices(&needle) {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let after = &text[i + needle.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(body.split(',').map(two).filter(|(f, _)| !f.is_empty()));
        } else {
            out.push(two(after));
        }
    }
    out
}

fn import_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        if rel.iter().count() == 1 && matches!(rel.to_str(), Some("lib.rs" | "main.rs")) {
            continue; // the roots declare every module; they are above everything
        }
        let from = node_of(rel);
        let text = production_text(&std::fs::read_to_string(&file).unwrap());
        let dir = rel.parent().and_then(|d| d.to_str()).filter(|d| !d.is_empty());
        let mut targets: Vec<String> = paths_after(&text, "crate")
            .into_iter()
            .map(|(first, second)| match second {
                Some(s) if SPLIT.contains(&first.as_str()) && is_child(&src.join(&first), &s) => {
                    format!("{first}/{s}")
                }
                _ => first,
            })
            .collect();
        // `super::x` (and `x::` in a mod.rs) inside a split directory names a sibling file.
        if let Some(d) = dir.filter(|d| SPLIT.contains(d)) {
            let is_mod = rel.file_name().is_some_and(|f| f == "mod.rs");
            let relative = if is_mod { relative_uses(&text) } else { paths_after(&text, "super") };
            for (first, _) in relative {
                if is_child(&src.join(d), &first) {
                    targets.push(format!("{d}/{first}"));
                } else if !is_mod && !first.is_empty() {
                    targets.push(d.to_string());
                }
            }
        }
        let known = |t: &String| src.join(format!("{t}.rs")).exists() || src.join(t).is_dir();
        let edges = graph.entry(from.clone()).or_default();
        edges.extend(targets.into_iter().filter(|t| *t != from && known(t)));
    }
    graph
}

/// Whether `name` is a module of its own (`name.rs` or `name/`) in `dir`.
fn is_child(dir: &Path, name: &str) -> bool {
    !name.is_empty() && (dir.join(format!("{name}.rs")).exists() || dir.join(name).is_dir())
}

/// `use x::...` lines in a mod.rs, where `x` is a child module.
fn relative_uses(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("use "))
        .filter(|l| !l.starts_with("crate") && !l.starts_with("super") && !l.starts_with("std"))
        .map(|l| (l.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect(), None))
        .collect()
}

/// A shortest path of edges from `from` to `to`, if there is one.
fn path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    while let Some(n) = queue.pop_front() {
        for m in graph.get(&n).into_iter().flatten() {
            if prev.contains_key(m) {
                continue;
            }
            prev.insert(m.clone(), n.clone());
            if m == to {
                let mut p = vec![to.to_string()];
                while p.last().map(String::as_str) != Some(from) || p.len() == 1 {
                    let back = prev[p.last().unwrap()].clone();
                    p.push(back);
                }
                p.reverse();
                return Some(p);
            }
            queue.push_back(m.clone());
        }
    }
    None
}

/// Every import circle, one per strongly connected group, as `a -> b -> a`.
fn circles(graph: &Graph) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in graph.keys() {
        if seen.contains(n) {
            continue;
        }
        if let Some(p) = path(graph, n, n) {
            let group: BTreeSet<&String> =
                graph.keys().filter(|m| path(graph, n, m).is_some() && path(graph, m, n).is_some()).collect();
            seen.extend(group.iter().map(|m| m.to_string()));
            let names: Vec<&str> = group.iter().map(|s| s.as_str()).collect();
            out.push(format!("{{{}}}: {}", names.join(", "), p.join(" -> ")));
        }
    }
    out
}

#[test]
fn no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(graph.contains_key("control") && graph.contains_key("dns"), "the scan found the modules");
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles between modules (each must point one way):\n{}", found.join("\n"));
}

/// Inside each directory module the files form a graph of their own (`super::x`
/// or `crate::module::x` naming a sibling file): it has no circles either. `mod.rs`, which declares
/// the files and which they all may use, is left out.
#[test]
fn no_import_circles_between_the_files_of_a_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut scanned = 0;
    for dir in std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        let mut graph = Graph::new();
        let d = dir.file_name().unwrap().to_string_lossy().to_string();
        // A sibling is named as `super::x` or, the long way, `crate::d::x`.
        let by_crate = format!("crate::{d}");
        for file in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let Some(name) = file.file_name().and_then(|f| f.to_str()?.strip_suffix(".rs")) else { continue };
            if name == "mod" {
                continue;
            }
            let text = production_text(&std::fs::read_to_string(&file).unwrap());
            let edges = graph.entry(name.to_string()).or_default();
            let named = paths_after(&text, "super").into_iter().chain(paths_after(&text, &by_crate));
            edges.extend(named.map(|(f, _)| f).filter(|f| f != name && is_child(&dir, f)));
            scanned += 1;
        }
        found.extend(circles(&graph).into_iter().map(|c| format!("{d}/: {c}")));
    }
    assert!(scanned > 30, "the scan found the files ({scanned})");
    assert!(found.is_empty(), "import circles between the files of a module:\n{}", found.join("\n"));
}

/// The leaves every layer may use: they import nothing from the crate.
const LEAVES: &[&str] = &["net", "counters", "problem", "secrets", "shutdown"];

#[test]
fn leaves_import_nothing_from_the_crate() {
    let graph = import_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for leaf in LEAVES {
        let edges = graph.get(*leaf).unwrap_or_else(|| panic!("no module {leaf}"));
        assert!(edges.is_empty(), "the leaf {leaf} imports {edges:?}");
    }
}

/// The writer (`control`) speaks in typed requests, replies and errors; HTTP is
/// `admin`'s business, so control imports neither it nor an HTTP crate.
#[test]
fn control_never_imports_axum_http_or_admin() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    let edges = graph.get("control").expect("a control module");
    for module in ["admin", "http", "redirect"] {
        assert!(!edges.contains(module), "control imports crate::{module}");
    }
    let mut files = Vec::new();
    rust_files(&src.join("control"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = production_text(&std::fs::read_to_string(&file).unwrap());
        for krate in ["axum", "http", "hyper", "tower"] {
            assert!(paths_after(&text, krate).is_empty(), "{} uses the {krate} crate", file.display());
        }
    }
}

#[test]
fn the_check_sees_a_circle() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    graph.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circles(&graph), vec!["{a, b, c}: a -> b -> c -> a".to_string()]);
}

#[test]
fn paths_are_read_from_use_groups_and_expressions() {
    let text = production_text(
        "use crate::{config::Problem, zone};\nlet x = crate::store::etcd::entries();\n// crate::admin\n\
         /// See [`Writer`](crate::control::Writer).\n#[cfg(test)]\nmod tests {\n    use crate::health;\n}\n",
    );
    let found = paths_after(&text, "crate");
    let firsts: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(firsts, ["config", "zone", "store", "control"]);
    assert_eq!(found[2].1.as_deref(), Some("etcd"));
}

/// The two store backends stand side by side behind `persist::Store` and the
/// shared encoding: neither imports the other.
#[test]
fn sqlite_and_etcd_never_import_each_other() {
    let graph = import_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let sqlite = graph.get("persist/sqlite").expect("a persist/sqlite module");
    let etcd = graph.get("persist/etcd").expect("a persist/etcd module");
    assert!(sqlite.contains("persist") && etcd.contains("persist/encoding"), "the scan sees their imports");
    assert!(!sqlite.contains("persist/etcd"), "persist/sqlite imports persist/etcd");
    assert!(!etcd.contains("persist/sqlite"), "persist/etcd imports persist/sqlite");
}
