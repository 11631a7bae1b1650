//! Audit events out of bytes: JSON lines (the log backend's format), an
//! `EventList` (the webhook backend's batch, or `kubectl get --raw` output), a
//! pretty-printed document, and any of them gzip-compressed. Reading is streaming
//! and bounded: no line or document beyond [`Limits`] is held in memory, and an
//! unreadable line or item is counted and skipped, never fatal.

use std::io::{BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

use super::event::{AuditEvent, ListItem};

/// How much one line or document may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest line of JSON lines (an `EventList` on one line included).
    pub max_line: usize,
    /// The largest document that spans several lines.
    pub max_document: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            max_document: 64 << 20,
        }
    }
}

/// What reading found besides the events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Events handed on.
    pub events: u64,
    /// Lines, documents or list items that are not readable events (too long,
    /// not JSON, wrong types).
    pub malformed: u64,
}

/// Reading failed below the format: the input itself could not be read (an I/O
/// error, a corrupt gzip stream).
#[derive(Debug, thiserror::Error)]
#[error("reading audit events: {0}")]
pub struct DecodeError(#[from] std::io::Error);

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads every event in `input` and hands each to `sink`.
pub fn read_events<R: Read>(
    input: R,
    limits: Limits,
    sink: &mut dyn FnMut(AuditEvent),
) -> Result<Decoded, DecodeError> {
    let mut buffered = BufReader::with_capacity(64 << 10, input);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    if gzip {
        read_plain(
            BufReader::with_capacity(64 << 10, MultiGzDecoder::new(buffered)),
            limits,
            sink,
        )
    } else {
        read_plain(buffered, limits, sink)
    }
}

/// Reads events from bytes already in memory (a webhook body).
pub fn events_in(
    body: &[u8],
    limits: Limits,
    sink: &mut dyn FnMut(AuditEvent),
) -> Result<Decoded, DecodeError> {
    read_events(body, limits, sink)
}

fn emit(doc: AuditEvent, tally: &mut Decoded, sink: &mut dyn FnMut(AuditEvent)) {
    match doc.items {
        Some(items) if doc.kind.as_deref() == Some("EventList") => {
            for item in items {
                match item {
                    ListItem::Event(mut e) => {
                        // A list inside a list item is not a format the API server writes.
                        e.items = None;
                        tally.events += 1;
                        sink(*e);
                    }
                    ListItem::Unreadable(_) => tally.malformed += 1,
                }
            }
        }
        _ => {
            let mut e = doc;
            e.items = None;
            tally.events += 1;
            sink(e);
        }
    }
}

/// Reads one line of at most `max` bytes into `buf`. Returns `Ok(None)` at the
/// end, `Ok(Some(false))` when the line was longer (its rest is skipped).
fn next_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = r.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > max && buf.last() != Some(&b'\n') {
        // Skip to the end of the overlong line without keeping it.
        loop {
            let chunk = r.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    r.consume(i + 1);
                    break;
                }
                None => {
                    let len = chunk.len();
                    r.consume(len);
                }
            }
        }
        return Ok(Some(false));
    }
    Ok(Some(true))
}

fn read_plain<R: BufRead>(
    mut r: R,
    limits: Limits,
    sink: &mut dyn FnMut(AuditEvent),
) -> Result<Decoded, DecodeError> {
    let mut tally = Decoded::default();
    let mut buf = Vec::new();
    let mut first = true;
    while let Some(fits) = next_line(&mut r, &mut buf, limits.max_line)? {
        if !fits {
            tally.malformed += 1;
            first = false;
            continue;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditEvent>(line) {
            Ok(doc) => emit(doc, &mut tally, sink),
            // A document spread over lines (pretty-printed JSON): read it whole.
            Err(e) if first && e.is_eof() => return read_document(buf, r, limits, tally, sink),
            Err(_) => tally.malformed += 1,
        }
        first = false;
    }
    Ok(tally)
}

fn read_document<R: BufRead>(
    mut head: Vec<u8>,
    r: R,
    limits: Limits,
    mut tally: Decoded,
    sink: &mut dyn FnMut(AuditEvent),
) -> Result<Decoded, DecodeError> {
    let room = limits.max_document.saturating_sub(head.len());
    let limit = u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1);
    r.take(limit).read_to_end(&mut head)?;
    if head.len() > limits.max_document {
        tally.malformed += 1;
        return Ok(tally);
    }
    for doc in serde_json::Deserializer::from_slice(&head).into_iter::<AuditEvent>() {
        match doc {
            Ok(doc) => emit(doc, &mut tally, sink),
            Err(_) => {
                // The stream cannot be resynchronised after a syntax error.
                tally.malformed += 1;
                break;
            }
        }
    }
    Ok(tally)
}
