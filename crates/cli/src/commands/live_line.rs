//! One status line redrawn in place on a terminal (carriage return, clear the line), so a
//! deployment's progress reads as one changing line there; printed as one line per change when
//! stdout is a pipe or a file, where scripts and logs want every state.

use std::io::IsTerminal;

use super::emit;
use crate::output::progress::fit_to_width;

pub struct LiveLine {
    terminal_columns: Option<usize>,
    /// A line is on screen without its newline yet.
    open: bool,
}

impl LiveLine {
    pub fn new() -> Self {
        let terminal_columns = std::io::stdout().is_terminal().then(terminal_width);
        LiveLine {
            terminal_columns,
            open: false,
        }
    }

    /// Replaces the line on a terminal; elsewhere prints it as a line of its own.
    pub fn show(&mut self, line: &str) {
        match self.terminal_columns {
            // Cut to the width: a wrapped line could not be cleared by one carriage return.
            Some(columns) => {
                emit(&format!(
                    "\r\x1b[2K{}",
                    fit_to_width(line, columns.saturating_sub(1))
                ));
                self.open = true;
            }
            None => emit(&format!("{line}\n")),
        }
    }

    /// Prints the last line whole and ends it.
    pub fn finish(&mut self, line: &str) {
        if self.open {
            emit("\r\x1b[2K");
            self.open = false;
        }
        emit(&format!("{line}\n"));
    }
}

impl Drop for LiveLine {
    /// Leaves the cursor on a fresh line, so that an error printed next does not share it.
    fn drop(&mut self) {
        if self.open {
            emit("\n");
        }
    }
}

/// The terminal's width in columns (80 when it cannot be read).
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given; the pointer is valid for the call.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}
