//! Go's `%q` undone: the RBAC authorizer quotes every name in its reason with
//! `strconv.Quote`, so a binding or user name holding `"` or `to User "` comes out
//! escaped, and reading the quotes exactly is what keeps a hostile name from
//! posing as another binding or subject.

/// Reads one Go double-quoted string at the start of `s` (after the opening `"`
/// is checked). Returns the unquoted text and what follows the closing quote, or
/// `None` when `s` does not start with a well-formed quoted string or the text
/// is longer than `max` bytes. Bytes that are not UTF-8 (`\xff`) become U+FFFD.
pub fn unquote(s: &str, max: usize) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out: Vec<u8> = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let text = String::from_utf8_lossy(&out).into_owned();
                return Some((text, &body[i + 1..]));
            }
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'a' => out.push(0x07),
                    'b' => out.push(0x08),
                    'f' => out.push(0x0c),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(0x0b),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => out.push(u8::try_from(hex(&mut chars, 2)?).ok()?),
                    'u' => push_char(&mut out, char::from_u32(hex(&mut chars, 4)?)?),
                    'U' => push_char(&mut out, char::from_u32(hex(&mut chars, 8)?)?),
                    _ => return None,
                }
            }
            // strconv.Quote never leaves a raw newline inside the quotes.
            '\n' => return None,
            c => push_char(&mut out, c),
        }
        if out.len() > max {
            return None;
        }
    }
    None
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn hex(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<u32> {
    let mut v: u32 = 0;
    for _ in 0..digits {
        let (_, c) = chars.next()?;
        v = v.checked_mul(16)?.checked_add(c.to_digit(16)?)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn plain_and_escaped_text() {
        assert_eq!(unquote(r#""ops" of"#, 64), Some(("ops".into(), " of")));
        assert_eq!(
            unquote(r#""a\" to User \"root" x"#, 64),
            Some((r#"a" to User "root"#.into(), " x"))
        );
        assert_eq!(
            unquote(r#""tab\there\u00e9\x41""#, 64),
            Some(("tab\there\u{e9}A".into(), ""))
        );
        assert_eq!(unquote(r#""\U0001F600""#, 64), Some(("\u{1F600}".into(), "")));
    }

    #[test]
    fn malformed_or_long_text_is_refused() {
        for bad in [
            r#"ops""#,
            r#""open"#,
            r#""bad\q""#,
            r#""\x4""#,
            r#""\uD800""#,
            "\"a\nb\"",
        ] {
            assert_eq!(unquote(bad, 64), None, "{bad:?}");
        }
        assert_eq!(unquote(r#""abcdef""#, 3), None);
    }
}
