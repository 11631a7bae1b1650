//! CSV cells a spreadsheet opens. Excel, LibreOffice and Google Sheets read a
//! cell starting with `=`, `+`, `-` or `@` as a formula (and a leading tab or
//! carriage return can hide one): a binding named `=HYPERLINK(...)` would run in
//! the auditor's spreadsheet. As OWASP advises, such a cell gets a leading `'`,
//! which spreadsheets show as text and do not display.

use std::borrow::Cow;

/// The cell, neutralised when a spreadsheet would read it as a formula.
pub fn neutral(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One CSV field (RFC 4180), neutralised, then quoted when it holds a comma, a
/// quote or a line break.
pub fn field(cell: &str) -> String {
    let cell = neutral(cell);
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutral("=1+2"), "'=1+2");
        assert_eq!(neutral("+1"), "'+1");
        assert_eq!(neutral("-2+3"), "'-2+3");
        assert_eq!(neutral("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutral("\t=1"), "'\t=1");
        assert_eq!(neutral("\r=1"), "'\r=1");
        assert_eq!(neutral("devs-edit"), "devs-edit");
        assert_eq!(neutral("a=1"), "a=1");
        assert_eq!(neutral(""), "");
    }

    #[test]
    fn fields_are_neutralised_then_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a, b"), "\"a, b\"");
        assert_eq!(field("say \"no\""), "\"say \"\"no\"\"\"");
        assert_eq!(field("one\ntwo"), "\"one\ntwo\"");
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(field("\r=1"), "\"'\r=1\"");
    }
}
