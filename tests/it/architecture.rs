//! The layering `docs/architecture.md` describes, checked on the source tree: the server
//! crate's top-level modules form no import circle, `protocol` stays pure (no actix, no
//! diesel, no store), only `store` speaks diesel, and no source file grows past what one
//! reads in a sitting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SERVER_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/latchkey-server/src");
/// Past this a file is split along its concepts (CONVENTIONS.md 12).
const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of the server crate belongs to (`http/token/mod.rs` → `http`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Code lines only: `//` comments (docs included) are left out, so a module may name
/// another in its documentation.
fn code(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which top-level modules each top-level module names through `crate::…` (or the macros
/// `$crate::…` expand to), outside its unit tests.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(SERVER_SRC);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top_module(src, f);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        let body = code(text.split("#[cfg(test)]").next().unwrap_or(""));
        let deps = graph.entry(from.clone()).or_default();
        for m in &modules {
            if *m != from
                && (body.contains(&format!("crate::{m}::"))
                    || body.contains(&format!("crate::{m};"))
                    || body.contains(&format!("crate::{m}}}"))
                    || body.contains(&format!("crate::{{{m}")))
            {
                deps.insert(m.clone());
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn server_modules_import_no_circle() {
    let graph = module_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import circle among the server crate's modules: {}\nfull graph: {graph:#?}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn protocol_is_pure_and_only_store_speaks_diesel() {
    let src = Path::new(SERVER_SRC);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for f in files {
        let module = top_module(src, &f);
        let text = code(&std::fs::read_to_string(&f).expect("read"));
        let rel = f
            .strip_prefix(src)
            .expect("under src")
            .display()
            .to_string();
        if module != "store" {
            assert!(
                !text.contains("diesel::") && !text.contains("diesel_async::"),
                "{rel} uses diesel: queries belong in store/"
            );
        }
        if module == "protocol" {
            for forbidden in ["actix_web", "crate::store", "crate::http", "tokio::"] {
                assert!(
                    !text.contains(forbidden),
                    "{rel} uses {forbidden}: protocol/ is pure (no I/O, no HTTP, no database)"
                );
            }
        }
    }
}

#[test]
fn no_source_file_in_crates_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these along their concepts: {long:#?}"
    );
}
