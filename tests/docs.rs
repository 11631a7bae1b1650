//! The documentation names only what exists. Every repository path, test or
//! function, metric and command named in README.md, CONTRIBUTING.md, SECURITY.md
//! and docs/ is checked: paths against the tree, test and function names against
//! the `fn`s of src/, tests/ and benches/, metrics against src/metrics.rs,
//! `gatehouse` and `kubectl gatehouse` subcommands and flags against the
//! binaries' `--help`, `cargo test --test X` against the test targets, and "N
//! CRDs" against crds/. A rename that leaves the docs behind fails here.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level folders a path in the docs starts with.
const ROOTS: &[&str] = &[
    "src/",
    "tests/",
    "docs/",
    "hack/",
    "config/",
    "charts/",
    "examples/",
    "benches/",
    "crds/",
    ".github/",
    ".ci/",
];

/// One markdown file.
struct Doc {
    file: String,
    text: String,
}

fn docs() -> Vec<Doc> {
    let mut files = vec![
        "README.md".to_string(),
        "CONTRIBUTING.md".into(),
        "SECURITY.md".into(),
    ];
    let mut manual: Vec<String> = Tree::scan(&repo())
        .files
        .into_iter()
        .filter(|f| f.starts_with("docs/") && f.ends_with(".md"))
        .collect();
    manual.sort();
    files.extend(manual);
    files
        .into_iter()
        .map(|file| Doc {
            text: std::fs::read_to_string(repo().join(&file)).unwrap(),
            file,
        })
        .collect()
}

/// Code the docs show: an inline `span`, or one line of a fenced block (a line
/// ending in `\` joined with the next).
struct Code {
    file: String,
    line: usize,
    text: String,
}

impl Code {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

fn code(doc: &Doc) -> Vec<Code> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in doc.text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
            text.push_str(line);
            match text.strip_suffix('\\') {
                Some(more) => pending = Some((start, format!("{more} "))),
                None => out.push(Code {
                    file: doc.file.clone(),
                    line: start,
                    text,
                }),
            }
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(span), Some(_)) = (parts.next(), parts.next()) {
            out.push(Code {
                file: doc.file.clone(),
                line: i + 1,
                text: span.to_string(),
            });
        }
    }
    out
}

/// Relative link targets, `[text](target)`, by line.
fn links(doc: &Doc) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in doc.text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target: String = rest
                .chars()
                .take_while(|c| *c != ')' && !c.is_whitespace())
                .collect();
            let external = target.contains("://") || target.starts_with("mailto:") || target.starts_with('#');
            if !external && !target.is_empty() {
                out.push((i + 1, target));
            }
        }
    }
    out
}

/// The files of the repository (not target/ or .git/), by path from its root.
#[derive(Clone)]
struct Tree {
    files: BTreeSet<String>,
}

impl Tree {
    fn scan(root: &Path) -> Tree {
        fn walk(root: &Path, dir: &Path, files: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name == "target" || name == ".git" {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, files);
                } else {
                    files.insert(path.strip_prefix(root).unwrap().to_string_lossy().to_string());
                }
            }
        }
        let mut files = BTreeSet::new();
        walk(root, root, &mut files);
        Tree { files }
    }

    /// A file, or a folder holding one.
    fn has(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let dir = format!("{path}/");
        self.files.contains(path)
            || self
                .files
                .range(dir.clone()..)
                .next()
                .is_some_and(|f| f.starts_with(&dir))
    }
}

/// Normalises `a/./b/../c` (no leading `..` past the root).
fn normal(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// A word of code that names a repository path, without what follows it
/// (`:12`, `#anchor`) or a glob's tail (`tests/security/*.rs`: the folder).
fn repository_path(word: &str) -> Option<String> {
    let word = word
        .trim_start_matches(|c: char| "\"'(".contains(c))
        .trim_end_matches(|c: char| "\"'(),;.".contains(c));
    if !ROOTS.iter().any(|r| word.starts_with(r)) {
        return None;
    }
    let end = word.find([':', '#', '*', '{', '<', '$']).unwrap_or(word.len());
    let path = &word[..end];
    let path = if end < word.len() && word.as_bytes()[end] != b':' && word.as_bytes()[end] != b'#' {
        &path[..path.rfind('/').map_or(0, |i| i + 1)]
    } else {
        path
    };
    Some(normal(path))
}

/// Paths in code and links that are not in the tree.
fn missing_paths(tree: &Tree, docs: &[Doc]) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut missing = Vec::new();
    for doc in docs {
        for c in code(doc) {
            for word in c.text.split_whitespace() {
                if let Some(path) = repository_path(word) {
                    checked += 1;
                    if !tree.has(&path) {
                        missing.push(format!("{}: `{word}` does not exist", c.at()));
                    }
                }
            }
        }
        let dir = Path::new(&doc.file)
            .parent()
            .unwrap()
            .to_string_lossy()
            .to_string();
        for (line, target) in links(doc) {
            let path = normal(&format!("{dir}/{}", target.split('#').next().unwrap()));
            checked += 1;
            if !tree.has(&path) {
                missing.push(format!("{}:{line}: link ({target}) does not exist", doc.file));
            }
        }
        missing.extend(layout_table(tree, doc, &mut checked));
    }
    (checked, missing)
}

/// A table row whose first cell names folders (CONTRIBUTING's layout) names
/// the files it lists by their names in those folders: `watch.rs` in the row of
/// `src/controller/` is `src/controller/watch.rs` (or deeper).
fn layout_table(tree: &Tree, doc: &Doc, checked: &mut usize) -> Vec<String> {
    let mut missing = Vec::new();
    for (i, line) in doc.text.lines().enumerate() {
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').collect();
        let spans =
            |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(String::from).collect() };
        let dirs: Vec<String> = spans(cells[0])
            .into_iter()
            .filter(|s| s.ends_with('/') && repository_path(s).is_some())
            .collect();
        if dirs.is_empty() {
            continue;
        }
        for cell in &cells {
            for name in spans(cell) {
                let named_file = name.rsplit_once('.').is_some_and(|(stem, ext)| {
                    !stem.is_empty() && ["rs", "yaml", "md", "sh", "json", "txt", "toml"].contains(&ext)
                });
                if repository_path(&name).is_some() || name.contains(' ') || !named_file {
                    continue;
                }
                *checked += 1;
                let found = dirs.iter().any(|d| {
                    tree.files
                        .iter()
                        .any(|f| f.starts_with(d.as_str()) && (f.ends_with(&format!("/{name}"))))
                });
                if !found {
                    missing.push(format!(
                        "{}:{}: `{name}` is in none of {}",
                        doc.file,
                        i + 1,
                        dirs.join(", ")
                    ));
                }
            }
        }
    }
    missing
}

/// Every `fn NAME` of src/, tests/ and benches/ (tests included).
fn functions(tree: &Tree) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in &tree.files {
        if !(f.ends_with(".rs")
            && (f.starts_with("src/") || f.starts_with("tests/") || f.starts_with("benches/")))
        {
            continue;
        }
        let text = std::fs::read_to_string(repo().join(f)).unwrap();
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if pair[0] == "fn" {
                names.insert(pair[1].to_string());
            }
        }
    }
    names
}

/// The metric names src/metrics.rs registers (the `gatehouse_` prefix and the
/// `_total` of counters added by the registry).
fn metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("src/metrics.rs")).unwrap();
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}

/// The snake_case words of code, outside repository paths.
fn snake_words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
        .filter(|token| repository_path(token).is_none())
        .flat_map(|token| token.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !w.contains("__")
                && !w.ends_with('_')
        })
}

/// Test and function names (snake_case, three words or more) that no `fn`
/// has, and `gatehouse_*` metrics src/metrics.rs does not register.
fn missing_names(
    functions: &BTreeSet<String>,
    metrics: &BTreeSet<String>,
    docs: &[Doc],
) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut missing = Vec::new();
    for doc in docs {
        for c in code(doc) {
            for word in snake_words(&c.text) {
                if let Some(metric) = word.strip_prefix("gatehouse_") {
                    checked += 1;
                    let registered = ["_total", "_bucket", "_count", "_sum", ""]
                        .iter()
                        .any(|suffix| metric.strip_suffix(suffix).is_some_and(|m| metrics.contains(m)));
                    if !registered && !functions.contains(word) {
                        missing.push(format!(
                            "{}: metric `{word}` is not registered in src/metrics.rs",
                            c.at()
                        ));
                    }
                } else if word.matches('_').count() >= 2 {
                    checked += 1;
                    if !functions.contains(word) {
                        missing.push(format!(
                            "{}: no `fn {word}` in src/, tests/ or benches/ (a test renamed? \
                             snake_case names of three words or more are read as function names)",
                            c.at()
                        ));
                    }
                }
            }
        }
    }
    (checked, missing)
}

/// What a binary's `--help` says a command takes.
#[derive(Default, Debug)]
struct Help {
    commands: BTreeMap<String, Help>,
    /// Flags (`--namespace`, `-n`), and whether each takes a value.
    flags: BTreeMap<String, bool>,
}

impl Help {
    fn of(binary: &str, path: &[String]) -> Help {
        let out = Command::new(binary).args(path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{binary} {path:?} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut help = Help::default();
        let mut section = "";
        for line in text.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                section = line;
                continue;
            }
            let trimmed = line.trim_start();
            if section == "Commands:" && line.starts_with("  ") && !line.starts_with("   ") {
                let name = trimmed.split_whitespace().next().unwrap_or_default();
                if name != "help" {
                    let mut sub = path.to_vec();
                    sub.push(name.to_string());
                    help.commands.insert(name.to_string(), Help::of(binary, &sub));
                }
            } else if section == "Options:" && trimmed.starts_with('-') && !trimmed.starts_with("- ") {
                // `-n, --namespace <NAMESPACE>  The namespace`: the flags, and
                // whether they take a value, before the description.
                let spec = trimmed.split("  ").next().unwrap_or_default();
                let value = spec.contains('<');
                for flag in spec.split(", ") {
                    let flag = flag.split_whitespace().next().unwrap_or_default();
                    help.flags.insert(flag.trim_end_matches("...").to_string(), value);
                }
            }
        }
        help.flags.insert("--help".into(), false);
        help.flags.insert("-h".into(), false);
        help
    }
}

/// Splits a shell line into words, quotes kept together, and into commands at
/// `|`, `;`, `&&`, `||`, `$(`, `(` and `)`.
fn commands(line: &str) -> Vec<Vec<String>> {
    let mut all = vec![Vec::new()];
    let mut word = String::new();
    let mut quote = None;
    let mut chars = line.chars().peekable();
    let end_word = |word: &mut String, all: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            all.last_mut().unwrap().push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if word.is_empty() => break,
            (None, c) if c.is_whitespace() => end_word(&mut word, &mut all),
            (None, '|' | ';' | '&' | '(' | ')') => {
                end_word(&mut word, &mut all);
                all.push(Vec::new());
            }
            (None, '$') if chars.peek() == Some(&'(') => {}
            (None, c) => word.push(c),
        }
    }
    end_word(&mut word, &mut all);
    all.into_iter().filter(|c| !c.is_empty()).collect()
}

/// The program a command runs, if it is one of ours, and its arguments.
enum Program<'a> {
    Gatehouse(&'a [String]),
    Plugin(&'a [String]),
    Cargo(&'a [String]),
}

fn program(words: &[String]) -> Option<Program<'_>> {
    let start = words
        .iter()
        .position(|w| !(w == "$" || (w.contains('=') && !w.starts_with('-'))))?;
    let words = &words[start..];
    let first = words[0].rsplit('/').next().unwrap_or_default();
    match first {
        "gatehouse" => Some(Program::Gatehouse(&words[1..])),
        "kubectl-gatehouse" => Some(Program::Plugin(&words[1..])),
        "kubectl" if words.get(1).is_some_and(|w| w == "gatehouse") => Some(Program::Plugin(&words[2..])),
        "cargo" if words.get(1).is_some_and(|w| w == "run") => {
            let dash = words.iter().position(|w| w == "--");
            let flags = &words[2..dash.unwrap_or(words.len())];
            let bin = flags.windows(2).find(|p| p[0] == "--bin").map(|p| p[1].as_str());
            let rest = dash.map_or(&words[words.len()..], |d| &words[d + 1..]);
            match bin {
                None | Some("gatehouse") => Some(Program::Gatehouse(rest)),
                Some("kubectl-gatehouse") => Some(Program::Plugin(rest)),
                Some(_) => None,
            }
        }
        "cargo" => Some(Program::Cargo(&words[1..])),
        _ => None,
    }
}

/// Where the arguments leave the help: an unknown subcommand or flag.
fn wrong_arguments(help: &Help, args: &[String]) -> Option<String> {
    let mut level = help;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" || arg.starts_with(['>', '<', '[', '{']) || arg.contains("...") {
            return None;
        }
        if let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) {
            if flag.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let name = arg.split('=').next().unwrap_or_default();
            let known = if flag.starts_with('-') {
                level.flags.get(name).copied()
            } else {
                // `-vv`: a cluster of short flags; the last may take a value.
                let shorts: Vec<Option<bool>> = flag
                    .chars()
                    .map(|c| level.flags.get(&format!("-{c}")).copied())
                    .collect();
                shorts
                    .iter()
                    .all(Option::is_some)
                    .then(|| shorts.last().copied().flatten().unwrap_or(false))
            };
            match known {
                None => return Some(format!("no flag {name}")),
                Some(true) if !arg.contains('=') && (flag.starts_with('-') || flag.len() == 1) => {
                    args.next();
                }
                Some(_) => {}
            }
            continue;
        }
        if level.commands.is_empty() {
            // Positional arguments: the flags after them still count.
            continue;
        }
        if arg.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return None;
        }
        let mut next = None;
        for part in arg.split('/') {
            match level.commands.get(part) {
                Some(sub) => next = next.or(Some(sub)),
                None => return Some(format!("no subcommand `{part}`")),
            }
        }
        level = next.unwrap_or(level);
    }
    None
}

/// `cargo test --test X`, `cargo bench --bench X`: the targets exist.
fn wrong_cargo(tree: &Tree, args: &[String]) -> Option<String> {
    for pair in args.windows(2) {
        let kind = match pair[0].as_str() {
            "--test" => "tests",
            "--bench" => "benches",
            _ => continue,
        };
        let name = &pair[1];
        let target = [format!("{kind}/{name}.rs"), format!("{kind}/{name}/main.rs")];
        if !target.iter().any(|t| tree.files.contains(t)) {
            return Some(format!("no {kind} target `{name}`"));
        }
    }
    None
}

/// Commands the binaries' help or the cargo targets do not have.
fn wrong_commands(tree: &Tree, gatehouse: &Help, plugin: &Help, docs: &[Doc]) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for doc in docs {
        for c in code(doc) {
            for words in commands(&c.text) {
                let problem = match program(&words) {
                    Some(Program::Gatehouse(args)) => wrong_arguments(gatehouse, args),
                    Some(Program::Plugin(args)) => wrong_arguments(plugin, args),
                    Some(Program::Cargo(args)) => wrong_cargo(tree, args),
                    None => continue,
                };
                checked += 1;
                if let Some(problem) = problem {
                    wrong.push(format!("{}: `{}`: {problem}", c.at(), words.join(" ")));
                }
            }
        }
    }
    (checked, wrong)
}

/// "three CRDs", "6 CRDs": the number of files in crds/.
fn wrong_counts(tree: &Tree, docs: &[Doc]) -> Vec<String> {
    let crds = tree
        .files
        .iter()
        .filter(|f| f.starts_with("crds/") && f.ends_with(".yaml"))
        .count();
    let numbers = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    let mut wrong = Vec::new();
    for doc in docs {
        for (i, line) in doc.text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for pair in words.windows(2) {
                if !pair[1]
                    .trim_end_matches(|c: char| !c.is_alphanumeric())
                    .eq("CRDs")
                {
                    continue;
                }
                let said = pair[0].to_lowercase();
                let n = numbers
                    .iter()
                    .position(|w| *w == said)
                    .or_else(|| said.parse().ok());
                if n.is_some_and(|n| n != crds) {
                    wrong.push(format!(
                        "{}:{}: \"{} {}\", crds/ has {crds}",
                        doc.file,
                        i + 1,
                        pair[0],
                        pair[1]
                    ));
                }
            }
        }
    }
    wrong
}

fn report(what: &str, (checked, problems): (usize, Vec<String>), at_least: usize) {
    assert!(
        checked >= at_least,
        "only {checked} {what} found: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "{} of {checked} {what}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_path_the_docs_name_exists() {
    report("paths", missing_paths(&Tree::scan(&repo()), &docs()), 200);
}

#[test]
fn every_test_function_and_metric_the_docs_name_exists() {
    let tree = Tree::scan(&repo());
    report(
        "names",
        missing_names(&functions(&tree), &metrics(), &docs()),
        100,
    );
}

#[test]
fn every_command_the_docs_show_is_in_the_help() {
    let gatehouse = Help::of(env!("CARGO_BIN_EXE_gatehouse"), &[]);
    let plugin = Help::of(env!("CARGO_BIN_EXE_kubectl-gatehouse"), &[]);
    assert!(
        gatehouse.commands.contains_key("simulate")
            && plugin.commands["certify"].commands.contains_key("report")
    );
    let tree = Tree::scan(&repo());
    report(
        "commands",
        wrong_commands(&tree, &gatehouse, &plugin, &docs()),
        80,
    );
}

#[test]
fn the_number_of_crds_the_docs_give_is_the_number_there_are() {
    let wrong = wrong_counts(&Tree::scan(&repo()), &docs());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checks themselves: a doc naming a file, a test, a metric and a command
/// passes on the tree it describes and fails once each is renamed.
#[test]
fn a_rename_the_docs_missed_is_caught() {
    let doc = |text: &str| Doc {
        file: "docs/x.md".into(),
        text: text.into(),
    };
    let tree = Tree::scan(&repo());
    let page = doc(
        "Memory is bounded (`src/store/trim.rs`, [wire](../src/store/wire.rs));\n\
         | `src/store/` | `certify.rs` (what wakes an item) |\n\
         ```sh\ncargo test --test docs a_rename_the_docs_missed_is_caught\n```\n",
    );
    assert_eq!(
        missing_paths(&tree, std::slice::from_ref(&page)).1,
        Vec::<String>::new()
    );
    let mut renamed = tree.clone();
    for f in ["src/store/trim.rs", "src/store/wire.rs", "src/store/certify.rs"] {
        assert!(renamed.files.remove(f), "{f}");
    }
    assert_eq!(missing_paths(&renamed, &[page]).1.len(), 3);

    let fns = functions(&tree);
    let names = doc("`a_rename_the_docs_missed_is_caught`, `gatehouse_reconcile_errors_total`");
    assert_eq!(
        missing_names(&fns, &metrics(), std::slice::from_ref(&names)).1,
        Vec::<String>::new()
    );
    let renamed = doc("`a_rename_the_docs_missed_is_noticed`, `gatehouse_reconcile_failures_total`");
    assert_eq!(missing_names(&fns, &metrics(), &[renamed]).1.len(), 2);

    let plugin = Help::of(env!("CARGO_BIN_EXE_kubectl-gatehouse"), &[]);
    let gatehouse = Help::default();
    let commands = doc("`kubectl gatehouse --context bob certify approve ITEM --all-recommended`");
    assert_eq!(
        wrong_commands(&tree, &gatehouse, &plugin, &[commands]).1,
        Vec::<String>::new()
    );
    let renamed = doc("`kubectl gatehouse certify accept ITEM`, `kubectl gatehouse list --everyone`, `cargo test --test e2e_grants`");
    assert_eq!(wrong_commands(&tree, &gatehouse, &plugin, &[renamed]).1.len(), 3);

    assert_eq!(wrong_counts(&tree, &[doc("The three CRDs")]).len(), 1);
}
