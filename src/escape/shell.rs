//! Commands a person is told to run (an item's `status.remediation.command`, the
//! plugin's hints, the commands in notifications): always an argv, rendered here
//! word by word, never a name pasted into a line.
//!
//! Words are quoted with the `shlex` crate, which quotes for every POSIX shell
//! (and fish) and knows the interactive pitfalls. A word holding a control
//! character (a newline in a subject's name, an escape sequence) is written as
//! `$'...'` with `\xHH` escapes instead: pasted into a terminal it shows no
//! control character, and bash, zsh, ksh and POSIX.1-2024 `sh` read it back
//! byte for byte. No argument of any program can hold a NUL byte, so NULs are
//! dropped; every command Gatehouse prints is guarded (the binding's uid), so a
//! name changed that way matches nothing rather than something else.

use std::borrow::Cow;

use super::is_control;

/// `word` as one word for a shell: unchanged when nothing in it is special.
pub fn quote(word: &str) -> Cow<'_, str> {
    if word.contains('\0') {
        return Cow::Owned(quote(&word.replace('\0', "")).into_owned());
    }
    if word.chars().any(is_control) {
        return Cow::Owned(dollar_quote(word));
    }
    // shlex refuses only NUL, which is gone by now.
    shlex::try_quote(word).unwrap_or_else(|_| Cow::Owned(dollar_quote(word)))
}

/// `$'...'`: printable ASCII as is, every other byte of a control character
/// (and `'`, `\`, `!`) as `\xHH`; other printable characters as they are.
/// Neither `'` nor `!` appears inside, so interactive bash's history expansion,
/// which scans quotes on its own, finds nothing to expand.
fn dollar_quote(word: &str) -> String {
    let mut out = String::from("$'");
    for c in word.chars() {
        let plain = match c {
            '\'' | '\\' | '!' => false,
            ' '..='~' => true,
            c => !c.is_ascii() && !is_control(c),
        };
        if plain {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('\'');
    out
}

/// The command line of `argv`: each word quoted, separated by spaces.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Commands joined by pipes: `echo BODY | kubectl ...`.
pub fn pipeline<S: AsRef<str>>(commands: &[&[S]]) -> String {
    commands
        .iter()
        .map(|argv| join(argv))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;

    /// What bash makes of `line`: the arguments `printf` received, as written
    /// (`printf '%s\0'` prints each followed by a NUL).
    pub(crate) fn bash_words(line: &str) -> Vec<String> {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .env("LC_ALL", "C")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "bash -c {line:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut words: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|w| String::from_utf8(w.to_vec()).expect("UTF-8 back"))
            .collect();
        words.pop();
        words
    }

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(quote("devs-edit"), "devs-edit");
        assert_eq!(
            quote("system:serviceaccount:ci:bot"),
            "system:serviceaccount:ci:bot"
        );
        assert_eq!(
            quote("/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/x"),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/x"
        );
        assert_eq!(quote("--type=json"), "'--type=json'");
    }

    #[test]
    fn shell_syntax_in_a_name_is_quoted() {
        assert_eq!(
            quote("gh-inj;touch${IFS}gh-pwned;true"),
            "'gh-inj;touch${IFS}gh-pwned;true'"
        );
        assert_eq!(quote("o'brien"), r#""o'brien""#);
        assert_eq!(quote(""), "''");
        assert_eq!(join(&["echo", "a b", "$(x)", "`y`"]), "echo 'a b' '$(x)' '`y`'");
    }

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(quote("a\nb"), r"$'a\x0ab'");
        assert_eq!(quote("\x1b]52;c;aGk=\x07"), r"$'\x1b]52;c;aGk=\x07'");
        assert_eq!(quote("it's\n!x"), r"$'it\x27s\x0a\x21x'");
        assert_eq!(quote("\u{202e}txt"), r"$'\xe2\x80\xaetxt'");
        assert_eq!(quote("é\t"), r"$'é\x09'");
        // Nothing a terminal acts on is left in the rendered line.
        assert!(!quote("\x1b[2J\u{9b}\u{2066}").chars().any(is_control));
    }

    #[test]
    fn nul_bytes_are_dropped() {
        assert_eq!(quote("a\0b"), "ab");
        assert_eq!(quote("a\0\nb"), r"$'a\x0ab'");
    }

    #[test]
    fn bash_reads_back_every_word_of_the_edge_cases() {
        let words = [
            "plain", "", " ", "a b", "'", "\"", "\\", "!", "!!", "^x", "$HOME", "${IFS}", "`id`", "$(id)",
            "a;b", "a|b", "a&b", "*", "?", "[a]", "{a,b}", "~", "#c", "x=y", "-n", "\n", "a\nb", "\r", "\t",
            "\x1b[2J", "\x7f", "\u{85}", "\u{202e}", "名前", "é'!\\\n",
        ];
        assert_eq!(bash_words(&join(&words)), words);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any words without NUL (no argument can hold one) come back exactly,
        /// and the line shows no control character.
        #[test]
        fn bash_reads_back_any_words(words in prop::collection::vec("[^\u{0}]{0,12}", 1..5)) {
            let line = join(&words);
            prop_assert!(!line.chars().any(is_control), "{line:?}");
            prop_assert_eq!(bash_words(&line), words);
        }
    }
}
