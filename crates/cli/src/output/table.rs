//! Aligned plain-text tables: a header row, then rows, columns padded to their widest cell and
//! separated by two spaces. No colours, so output is the same in a pipe and on a terminal.

/// Space between columns.
const GAP: &str = "  ";

#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines ending in `\n`; the last column is not padded.
    pub fn render(&self) -> String {
        let width = |cell: &str| cell.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[i] - width(cell)));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut table = Table::new(&["ID", "STATE", "HOST"]);
        table.push(vec!["a-long-id".into(), "TASK_RUNNING".into(), "h1".into()]);
        table.push(vec!["b".into(), "TASK_KILLED".into()]);
        assert_eq!(
            table.render(),
            "ID         STATE         HOST\n\
             a-long-id  TASK_RUNNING  h1\n\
             b          TASK_KILLED\n"
        );
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn wide_characters_count_once() {
        let mut table = Table::new(&["A", "B"]);
        table.push(vec!["é…".into(), "x".into()]);
        assert_eq!(table.render(), "A   B\né…  x\n");
    }
}
