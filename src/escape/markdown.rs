//! Text in a Microsoft Teams Adaptive Card. A TextBlock's text and a FactSet's
//! titles and values are Markdown (bold, italic, lists, links): a reason
//! `[Approve here](https://evil.example)` would show as a link, `**urgent**` as
//! bold, a line `- approved by security` as a list. Every character Markdown
//! gives a meaning to is escaped with a backslash (CommonMark escapes any ASCII
//! punctuation), so the card shows the text as written. Adaptive Cards have no
//! HTML; `{{DATE(...)}}` functions are broken by escaping the braces.

/// `s` with its Markdown markup escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut line_start = true;
    let mut digits = false;
    for c in s.chars() {
        let special = match c {
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '~' | '{' | '}' | '#' => true,
            // Block markers mean something only at the start of a line (after
            // spaces): a list (`-`, `+`), a numbered list (`1.`, `1)`).
            '-' | '+' => line_start,
            '.' | ')' => digits,
            _ => false,
        };
        if special {
            out.push('\\');
        }
        out.push(c);
        match c {
            '\n' | '\r' => {
                line_start = true;
                digits = false;
            }
            ' ' | '\t' if line_start => {}
            '0'..='9' if line_start || digits => {
                line_start = false;
                digits = true;
            }
            _ => {
                line_start = false;
                digits = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_shown_as_written() {
        assert_eq!(escape("plain text, 2026-01-02"), "plain text, 2026-01-02");
        assert_eq!(
            escape("[Approve here](https://evil.example)"),
            r"\[Approve here\](https://evil.example)"
        );
        assert_eq!(escape("**urgent** _now_ `x`"), r"\*\*urgent\*\* \_now\_ \`x\`");
        assert_eq!(
            escape("<at>everyone</at> & {{DATE(x)}}"),
            r"\<at\>everyone\</at\> & \{\{DATE(x)\}\}"
        );
        assert_eq!(
            escape("# big\n> quote"),
            r"\# big
\> quote"
        );
    }

    #[test]
    fn list_markers_are_escaped_only_where_they_start_a_line() {
        assert_eq!(
            escape("- approved\n  + by\n1. security\n12) x"),
            "\\- approved\n  \\+ by\n1\\. security\n12\\) x"
        );
        assert_eq!(escape("devs-edit v1.2 a+b (x)"), "devs-edit v1.2 a+b (x)");
    }
}
