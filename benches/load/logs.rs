//! The operator's log files: their end (when it dies), and the warnings and
//! errors it wrote, grouped by what they say.

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

/// The last `n` lines of a file (empty if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Log lines of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// How many lines.
    pub count: usize,
    /// Level, target, message and the gist of the error, names and numbers blanked.
    pub kind: String,
    /// The first such line, cut to 400 characters.
    pub example: String,
}

/// Blanks what differs between lines of one kind: quoted names and digits.
fn gist(text: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if quoted {
                    out.push_str("\"…\"");
                }
            }
            _ if quoted => {}
            '0'..='9' => {
                if !out.ends_with('N') {
                    out.push('N');
                }
            }
            _ => out.push(c),
        }
    }
    out.chars().take(140).collect()
}

/// The kind of a WARN or ERROR line (`TIMESTAMP LEVEL target: message k=v ... error=...`).
fn kind_of(line: &str) -> String {
    let body = line.split_once(' ').map_or(line, |(_, rest)| rest).trim();
    let message: Vec<&str> = body.split(' ').take_while(|t| !t.contains('=')).collect();
    let mut kind = message.join(" ");
    if let Some((_, error)) = body.split_once(" error=") {
        kind.push_str(" — ");
        kind.push_str(&gist(error));
    }
    kind
}

/// Warning and error lines of a log, by kind, most frequent first.
pub fn problems(path: &Path) -> (usize, usize, Vec<Problem>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut warnings, mut errors) = (0, 0);
    let mut by_kind: BTreeMap<String, Problem> = BTreeMap::new();
    for line in text.lines() {
        let warn = line.contains(" WARN ");
        let error = line.contains(" ERROR ");
        if !(warn || error) {
            continue;
        }
        warnings += usize::from(warn);
        errors += usize::from(error);
        let kind = kind_of(line);
        by_kind
            .entry(kind.clone())
            .or_insert_with(|| Problem {
                count: 0,
                kind,
                example: line.chars().take(400).collect(),
            })
            .count += 1;
    }
    let mut list: Vec<Problem> = by_kind.into_values().collect();
    list.sort_by_key(|p| std::cmp::Reverse(p.count));
    (warnings, errors, list)
}
