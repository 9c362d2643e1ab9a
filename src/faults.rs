//! Deliberate faults, armed from `--fault SPEC` or `faults.inject`, so that users and tests can
//! prove that durability works by breaking a run on purpose, deterministically.
//!
//! Grammar (one spec per flag or list entry):
//!
//! ```text
//! abort@N      the process aborts at once when chunk N is cut (a deterministic kill -9)
//! ```

use std::fmt;

/// The grammar, quoted in every parse error so a bad spec can be fixed without the README.
pub const GRAMMAR: &str =
    "expected `abort@N` (N = chunk number, from 0): the process aborts when chunk N is cut";

/// One armed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `abort@N`: abort the process when chunk `N` is cut, as `kill -9` would, but at a
    /// reproducible point.
    Abort {
        /// Chunk number.
        chunk: u64,
    },
}

impl Fault {
    /// Parses one spec, refusing anything outside the grammar with the grammar in the message.
    pub fn parse(text: &str) -> Result<Fault, String> {
        let text = text.trim();
        let bad = || format!("fault `{text}` is not understood; {GRAMMAR}");
        let (kind, arg) = text.split_once('@').ok_or_else(bad)?;
        match kind.trim().to_ascii_lowercase().as_str() {
            "abort" => Ok(Fault::Abort { chunk: arg.trim().parse().map_err(|_| bad())? }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Abort { chunk } => write!(f, "abort@{chunk}"),
        }
    }
}

/// The armed faults of one job, asked by the actors at the points where a fault can fire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    armed: Vec<Fault>,
}

impl Faults {
    /// The given faults.
    pub fn new(armed: Vec<Fault>) -> Faults {
        Faults { armed }
    }

    /// Armed faults, for the warning logged when a run starts.
    pub fn armed(&self) -> &[Fault] {
        &self.armed
    }

    /// Adds faults (from `--fault` flags) to those from the configuration.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Fault>) {
        self.armed.extend(more);
    }

    /// Called by the fetcher as it cuts chunk `seq`: aborts the process if `abort@seq` is armed.
    pub fn on_chunk_cut(&self, seq: u64) {
        if self.armed.contains(&Fault::Abort { chunk: seq }) {
            tracing::warn!(chunk = seq, "fault abort@{seq}: aborting the process");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_grammar() {
        assert_eq!(Fault::parse("abort@12"), Ok(Fault::Abort { chunk: 12 }));
        assert_eq!(Fault::parse(" ABORT@ 3 ").map(|f| f.to_string()), Ok("abort@3".into()));
        for bad in ["abort", "abort@x", "abort@-1", "explode@3", ""] {
            let e = Fault::parse(bad).unwrap_err();
            assert!(e.contains(GRAMMAR), "{e}");
        }
    }
}
