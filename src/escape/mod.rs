//! Escaping at the borders where text from the cluster meets something that
//! interprets it. Every name, label, reason and comment may be hostile: RBAC
//! object names may hold anything but `/` and `%`, subject names even a newline,
//! and a request's reason is free text. One function per border, each tested:
//!
//! - [`shell`]: a command a person is told to run, built as an argv and quoted
//!   word by word, so no name can add a command or split into arguments.
//! - [`terminal`]: what the plugin prints, without control characters, so no
//!   name can move the cursor, clear the screen or write the clipboard (OSC 52).
//! - [`csv`]: a spreadsheet cell that can never be a formula (OWASP CSV injection).
//! - [`markdown`]: text in a Teams card, with Markdown markup shown as written.
//!
//! The Slack renderer keeps its own escaping (`notify/render/slack.rs`): Slack's
//! mrkdwn has three control characters and that function is its whole story.

pub mod csv;
pub mod markdown;
pub mod shell;
pub mod terminal;

/// Characters a terminal acts on or that reorder what it shows: C0 controls
/// (newline and tab included), DEL, C1 controls, and the Unicode bidirectional
/// controls and line separators, with which a name could display as another
/// (CVE-2021-42574, "Trojan Source").
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::is_control;

    #[test]
    fn controls_are_c0_del_c1_and_bidi_overrides() {
        for c in [
            '\0', '\n', '\t', '\r', '\x1b', '\x07', '\x7f', '\u{80}', '\u{9b}', '\u{9f}', '\u{202e}',
            '\u{2066}', '\u{2029}',
        ] {
            assert!(is_control(c), "{c:?}");
        }
        for c in ['a', ' ', '~', '\u{a0}', 'é', '名', '\u{1f600}'] {
            assert!(!is_control(c), "{c:?}");
        }
    }
}
