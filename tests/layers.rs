//! The top-level modules of src/ behave as if they were crates: each imports
//! only modules of a lower layer, so no folder imports one above it and there is
//! no cycle between two of them. And the decision cores do no I/O and read no
//! clock. Read from the source (`crate::` paths outside comments), so a new
//! upward `use` fails here, naming the file.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Lowest first. A module may import modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    // The wire format and what needs nothing of ours.
    &["api", "digest", "escape", "admission"],
    // The decision core of requests, and what is made from the wire format alone.
    &["decide", "labels", "table", "crdgen", "rbac", "metrics", "usage"],
    // The certification core; the install manifests.
    &["certify", "install", "ingest"],
    // What the operator knows of the cluster, in memory.
    &["store", "audit"],
    // Notifications (read memory, count in metrics), `gatehouse simulate`.
    &["notify", "simulate"],
    // The operator shell and the plugin.
    &["controller", "cli"],
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `pub mod` lines of src/lib.rs.
fn top_level_modules() -> Vec<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/layers.rs: add it where it belongs"))
}

/// The Rust files of a top-level module (`src/X.rs`, or everything under `src/X/`).
fn files(module: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let file = src().join(format!("{module}.rs"));
    let mut out = Vec::new();
    if file.exists() {
        out.push(file);
    }
    if src().join(module).is_dir() {
        walk(&src().join(module), &mut out);
    }
    out
}

/// The code of a file without its comments (doc links are not imports).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names: `crate::X`, and each first
/// name in `crate::{X, Y::..}`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // The names at depth 0 of the group.
        let mut depth = 0;
        let mut start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if c.is_whitespace() => {}
                _ if start && depth == 0 => {
                    found.insert(ident(&group[i..]));
                    start = false;
                }
                _ => {}
            }
        }
    }
    found.remove("");
    found
}

#[test]
fn no_module_imports_one_of_a_layer_above_or_beside_it() {
    let modules = top_level_modules();
    assert!(
        modules.len() >= 15 && modules.contains(&"controller".to_string()),
        "{modules:?}"
    );
    let mut upward = Vec::new();
    let mut edges = 0;
    for module in &modules {
        let own = layer(module);
        for file in files(module) {
            for import in imports(&code(&file)) {
                if &import == module || !modules.contains(&import) {
                    continue;
                }
                edges += 1;
                if layer(&import) >= own {
                    upward.push(format!(
                        "{} ({module}, layer {own}) imports crate::{import} (layer {})",
                        file.strip_prefix(src().parent().unwrap()).unwrap().display(),
                        layer(&import)
                    ));
                }
            }
        }
    }
    assert!(edges > 100, "only {edges} imports found: is the parser broken?");
    assert!(
        upward.is_empty(),
        "imports upward or sideways:\n{}",
        upward.join("\n")
    );
}

/// The cores take `now` and every object as parameters: nothing in them may
/// reach the cluster, the network, the files or the clock.
#[test]
fn the_decision_cores_do_no_io_and_read_no_clock() {
    let forbidden = [
        "kube::Client",
        "kube::Api",
        "kube::api::",
        "tokio",
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
    ];
    let mut found = Vec::new();
    for module in ["decide", "certify", "usage"] {
        for file in files(module) {
            let code = code(&file);
            for f in forbidden.iter().filter(|f| code.contains(**f)) {
                found.push(format!("{}: {f}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_import_reader_sees_grouped_and_nested_paths() {
    let code = "use crate::{\n    api::{A, B},\n    store::{self, Cache},\n    metrics,\n};\nlet x = crate::notify::Notifier::default();";
    let names: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(names, ["api", "metrics", "notify", "store"]);
}
