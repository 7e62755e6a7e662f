//! Inventory errors: every one names the file, the line and the column, says what is wrong and
//! what would be right, because the person reading it has the file open in an editor.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in an inventory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based character column; 0 when the problem is about a whole line.
    pub column: usize,
    pub message: String,
    /// What a correct value looks like, when we can say.
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem of one file, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        let n = self.problems.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.file.display()
        )
    }
}

impl std::error::Error for InventoryError {}
