//! Plain-text tables as `kubectl` prints them: the plugin's and `simulate`'s.
//! Cells come from the cluster: each is one line with its control characters
//! escaped ([`crate::escape::terminal::line`]), so no cell moves the cursor or
//! forges a row.

use crate::escape::terminal::line;

/// Columns padded to their widest cell; a row may carry indented notes below it.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
    gap: usize,
}

impl Table {
    /// A table with these column headers, columns three spaces apart (kubectl's spacing).
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_string()).collect(),
            rows: Vec::new(),
            gap: 3,
        }
    }

    /// Sets the number of spaces between columns.
    pub fn gap(mut self, spaces: usize) -> Self {
        self.gap = spaces;
        self
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        let cells = cells.iter().map(|c| line(c).into_owned()).collect();
        self.rows.push((cells, Vec::new()));
        self
    }

    /// Adds a note, printed indented under the last row.
    pub fn note(&mut self, text: String) -> &mut Self {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.push(line(&text).into_owned());
        }
        self
    }

    /// The table as text, one line per row, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                s.push_str(cell);
                if i + 1 < columns {
                    s.push_str(&" ".repeat(width - cell.chars().count() + self.gap));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        for (cells, notes) in &self.rows {
            out.push_str(&line(cells));
            for note in notes {
                out.push_str(&format!("    {note}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_notes_follow_their_row() {
        let mut t = Table::new(&["NAME", "PHASE"]).gap(2);
        t.row(vec!["alice-view".into(), "Active".into()]);
        t.note("granted until 13:00".into());
        t.row(vec!["bo".into(), "Pending".into()]);
        assert_eq!(
            t.render(),
            "NAME        PHASE\nalice-view  Active\n    granted until 13:00\nbo          Pending\n"
        );
    }

    #[test]
    fn a_cell_cannot_forge_a_row_or_reach_the_terminal() {
        let mut t = Table::new(&["NAME", "REASON"]).gap(2);
        t.row(vec!["x".into(), "ok\nevil  Approved\x1b]52;c;aGk=\x07".into()]);
        t.note("\x1b[2J".into());
        assert_eq!(
            t.render(),
            "NAME  REASON\nx     ok\\nevil  Approved\\x1b]52;c;aGk=\\x07\n    \\x1b[2J\n"
        );
    }

    #[test]
    fn default_spacing_is_kubectls_and_missing_cells_print_empty() {
        let mut t = Table::new(&["A", "B", "C"]);
        t.row(vec!["x".into()]);
        assert_eq!(t.render(), "A   B   C\nx\n");
    }
}
