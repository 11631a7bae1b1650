//! `gatehouse usage ingest` and `simulate --audit`: audit events from files or
//! standard input into a [`UsageBook`], and the book as a table or JSON. The
//! reading and attribution rules are in [`crate::usage`]; this is the shell
//! around them (files, the clock of `now`, rendering).

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::{
    table::Table,
    usage::{self, attribute::Cause, decode::Limits, read_events, Settings, UsageBook},
};

/// Why audit input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file could not be opened or read (or its gzip stream is corrupt).
    #[error("{path}: {source}")]
    Read {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Reads every file (`-` is standard input) into a new book. Events after
/// `until` are left out (simulate's `--now`: they have not happened yet).
pub fn ingest_paths(
    paths: &[PathBuf],
    settings: Settings,
    until: Option<DateTime<Utc>>,
) -> Result<UsageBook, IngestError> {
    let mut book = UsageBook::new(settings);
    for path in paths {
        let input: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(path).map_err(|source| IngestError::Read {
                path: path.clone(),
                source,
            })?)
        };
        ingest_reader(&mut book, input, until).map_err(|e| IngestError::Read {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    if let Some(now) = until {
        book.prune(now);
    }
    Ok(book)
}

/// Reads one stream of events into `book`.
pub fn ingest_reader(
    book: &mut UsageBook,
    input: impl Read,
    until: Option<DateTime<Utc>>,
) -> Result<(), usage::decode::DecodeError> {
    let decoded = read_events(input, Limits::default(), &mut |e| {
        let late = until.is_some_and(|u| usage::attribute::timestamp(&e).is_some_and(|t| t > u));
        if !late {
            usage::ingest(book, &e);
        }
    })?;
    book.add_malformed(decoded.malformed);
    Ok(())
}

/// One pair in the report.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PairReport {
    /// `RoleBinding ns/name` or `ClusterRoleBinding name`.
    pub binding: String,
    /// `User alice`, `Group sre`, `ServiceAccount ns/name`.
    pub subject: String,
    /// The role the binding granted when last used.
    pub role: String,
    /// The first and last request credited.
    pub first_used_at: DateTime<Utc>,
    /// The last request credited.
    pub last_used_at: DateTime<Utc>,
    /// Requests within the retention.
    pub requests: u64,
    /// Most frequent actions first.
    pub top_actions: Vec<String>,
    /// Who acted through it (user names), most active first.
    pub actors: Vec<String>,
}

/// The book as `usage ingest` prints it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The earliest event seen.
    pub observed_since: Option<DateTime<Utc>>,
    /// The latest event seen.
    pub observed_until: Option<DateTime<Utc>>,
    /// One entry per binding × subject.
    pub pairs: Vec<PairReport>,
    /// Allowed requests no binding is credited with, by cause.
    pub unattributed: std::collections::BTreeMap<&'static str, u64>,
    /// Events that were not uses (earlier stages, denied, no decision).
    pub ignored: u64,
    /// Unreadable events, skipped.
    pub malformed: u64,
    /// Uses of pairs beyond the cap, not kept.
    pub dropped: u64,
    /// The limit every reader of this report must know.
    pub note: &'static str,
}

/// What every usage report says.
pub const ATTRIBUTION_NOTE: &str =
    "RBAC credits each request to the first binding that allows it: access also granted by another binding may show as unused";

/// The report of a book.
pub fn report(book: &UsageBook) -> Report {
    Report {
        observed_since: book.observed_since,
        observed_until: book.observed_until,
        pairs: book
            .pairs()
            .into_iter()
            .map(|(k, p)| PairReport {
                binding: k.binding.to_string(),
                subject: k.subject.to_string(),
                role: p.role.to_string(),
                first_used_at: p.first_used,
                last_used_at: p.last_used,
                requests: p.requests(),
                top_actions: p
                    .actions
                    .ranked()
                    .into_iter()
                    .map(|(a, _)| a.to_string())
                    .collect(),
                actors: p
                    .actors
                    .ranked()
                    .into_iter()
                    .map(|(a, _)| a.to_string())
                    .collect(),
            })
            .collect(),
        unattributed: Cause::ALL
            .iter()
            .filter_map(|c| book.unattributed.get(c).map(|n| (c.as_str(), *n)))
            .collect(),
        ignored: book.ignored,
        malformed: book.malformed,
        dropped: book.dropped,
        note: ATTRIBUTION_NOTE,
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The report as text: a heading, one line per pair, the counts.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "observed {} .. {}; {} binding x subject pairs used\n",
        time(r.observed_since),
        time(r.observed_until),
        r.pairs.len()
    );
    let mut t = Table::new(&[
        "BINDING",
        "SUBJECT",
        "ROLE",
        "LAST USED",
        "REQUESTS",
        "TOP ACTIONS",
    ])
    .gap(2);
    for p in &r.pairs {
        t.row(vec![
            p.binding.clone(),
            p.subject.clone(),
            p.role.clone(),
            time(Some(p.last_used_at)),
            p.requests.to_string(),
            p.top_actions
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    if !r.pairs.is_empty() {
        out += &t.render();
    }
    let causes: Vec<String> = r.unattributed.iter().map(|(c, n)| format!("{c} {n}")).collect();
    out += &format!(
        "not credited to a binding: {}\nignored (earlier stage, denied, no decision): {}; malformed: {}; over the pair cap: {}\nnote: {}\n",
        if causes.is_empty() { "none".into() } else { causes.join(", ") },
        r.ignored,
        r.malformed,
        r.dropped,
        r.note
    );
    out
}
