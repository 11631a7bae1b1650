//! What the plugin prints to a terminal. A request's reason, a reviewer's
//! comment or a binding's name could otherwise carry escape sequences: OSC 52
//! writes the reader's clipboard, CSI sequences clear the screen or hide text,
//! a carriage return or a newline forges a line of a table. Control characters
//! are shown as escapes (`\x1b`, `\n`, `\u{202e}`), so a reviewer sees that
//! something is there and what.

use std::{borrow::Cow, io::Write};

use super::is_control;

fn escaped(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_control(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// One line of output (a table cell, a `Field: value`): every control
/// character escaped, newlines and tabs too.
pub fn line(s: &str) -> Cow<'_, str> {
    escaped(s, |_| false)
}

/// Text of several lines: newlines and tabs kept, every other control
/// character escaped.
pub fn text(s: &str) -> Cow<'_, str> {
    escaped(s, |c| c == '\n' || c == '\t')
}

/// A writer that passes everything through [`text`]: the last guard in front of
/// the terminal, so no command's output can carry an escape sequence even where
/// a renderer forgot a field. Bytes that are not UTF-8 are shown as `\xHH`.
pub struct Guard<'a> {
    inner: &'a mut dyn Write,
    /// The start of a character whose other bytes are still to come.
    partial: Vec<u8>,
}

impl<'a> Guard<'a> {
    /// Guards `inner`.
    pub fn new(inner: &'a mut dyn Write) -> Self {
        Guard {
            inner,
            partial: Vec::new(),
        }
    }
}

impl Write for Guard<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        let mut rest: &[u8] = &std::mem::take(&mut self.partial);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(&text(s));
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&text(std::str::from_utf8(valid).unwrap_or_default()));
                    match e.error_len() {
                        Some(n) => {
                            for b in &after[..n] {
                                out.push_str(&format!("\\x{b:02x}"));
                            }
                            rest = &after[n..];
                        }
                        None => {
                            self.partial = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Guard<'_> {
    /// A character cut off at the end is shown as its bytes.
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let shown: String = self.partial.iter().map(|b| format!("\\x{b:02x}")).collect();
            let _ = self.inner.write_all(shown.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OSC52: &str = "\x1b]52;c;aGk=\x07";

    #[test]
    fn a_line_shows_every_control_character_as_an_escape() {
        assert_eq!(line("plain text, é 名"), "plain text, é 名");
        assert_eq!(line(&format!("x{OSC52}\x1b[2Jy")), r"x\x1b]52;c;aGk=\x07\x1b[2Jy");
        assert_eq!(line("a\nb\tc\rd"), r"a\nb\tc\rd");
        assert_eq!(line("\x7f\u{9b}31m"), r"\x7f\x9b31m");
        assert_eq!(line("admin\u{202e}txt.exe"), r"admin\u{202e}txt.exe");
    }

    #[test]
    fn text_keeps_its_lines_and_tabs() {
        assert_eq!(text("a\n\tb\r\x1b[2J"), "a\n\tb\\r\\x1b[2J");
    }

    #[test]
    fn the_guard_escapes_across_writes_and_split_characters() {
        let mut out = Vec::new();
        {
            let mut g = Guard::new(&mut out);
            g.write_all(b"ok\n\x1b]52;").unwrap();
            // "é" (c3 a9) split over two writes, then a lone invalid byte.
            g.write_all(b"\xc3").unwrap();
            g.write_all(b"\xa9\xff\x07\n").unwrap();
            // A cut-off character at the end.
            g.write_all(b"\xe2\x80").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok\n\\x1b]52;é\\xff\\x07\n\\xe2\\x80"
        );
    }
}
