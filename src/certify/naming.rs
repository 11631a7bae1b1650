//! Deterministic names: the same run and the same binding × subject always give the
//! same item name, so a controller restarted mid-launch creates nothing twice.
//!
//! The readable part of a name is cut and folded (`slug`), so names end in 64
//! bits of SHA-256 over the whole key: two different keys that share a name
//! would take a search of about 2^32 tries per pair of names to find, where
//! the 32-bit FNV hash used before took a second. Finding one is no longer
//! the attack; taking the name first is, and the launcher compares what it
//! finds under a name with what it meant to create.

use chrono::{DateTime, Utc};

use crate::api::Subject;

use super::inventory::BindingFacts;

/// FNV-1a over the text: stable across releases and platforms, unlike std's
/// hasher. Not collision-resistant: for simulated uids only, never for names.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Lowercase letters, digits and single dashes only: what a DNS label allows.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
        if out.len() >= max {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

/// `CAMPAIGN-YYYYMMDD-HHMM` of the run's start in UTC.
pub fn run_name(campaign: &str, started: DateTime<Utc>) -> String {
    let campaign: String = campaign.chars().take(253 - 14).collect();
    format!(
        "{}-{}",
        campaign.trim_end_matches(['-', '.']),
        started.format("%Y%m%d-%H%M")
    )
}

/// The first 64 bits of SHA-256 over the parts, in hex. Each part is prefixed
/// with its length, so no two different lists of parts hash the same input
/// (`a/b` + `c` and `a` + `b/c` do not meet).
pub fn key_hash(parts: &[&str]) -> String {
    let mut input = Vec::new();
    for p in parts {
        input.extend_from_slice(&(p.len() as u64).to_be_bytes());
        input.extend_from_slice(p.as_bytes());
    }
    let d = ring::digest::digest(&ring::digest::SHA256, &input);
    crate::digest::hex(&d.as_ref()[..8])
}

/// `RUN-BINDING-SUBJECT-HASH`, at most 253 characters. The hash covers the run,
/// the binding's kind, namespace, name and uid and the subject, so a re-created
/// binding gives a new item and two subjects whose names slug alike never collide.
pub fn item_name(run: &str, binding: &BindingFacts, subject: &Subject) -> String {
    // The serde names, as the kinds have always been written into item names.
    let (binding_kind, subject_kind) = (binding.kind.as_str(), subject.kind.as_str());
    let hash = key_hash(&[
        run,
        binding_kind,
        binding.namespace.as_deref().unwrap_or_default(),
        &binding.name,
        &binding.uid,
        subject_kind,
        subject.namespace.as_deref().unwrap_or_default(),
        &subject.name,
    ]);
    let readable = format!(
        "{}-{}-{}",
        slug(run, 120),
        slug(&binding.name, 60),
        slug(&subject.name, 50)
    );
    format!("{}-{hash}", readable.trim_end_matches('-'))
}
