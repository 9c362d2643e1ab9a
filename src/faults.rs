//! Deliberate faults, armed from `--fault SPEC` or `faults.inject`, so that users and tests can
//! prove that durability works by breaking a run on purpose, deterministically.
//!
//! Grammar (one spec per flag or list entry):
//!
//! ```text
//! abort@N            the process aborts at once when chunk N is cut (a deterministic kill -9)
//! disconnect@BYTES   the source stream fails after BYTES bytes, as if the connection reset
//!                    (once per process)
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::error::SourceError;

/// The grammar, quoted in every parse error so a bad spec can be fixed without the README.
pub const GRAMMAR: &str =
    "expected `abort@N` (the process aborts when chunk N is cut; chunks count from 0) or \
     `disconnect@BYTES` (the source fails after BYTES bytes, once)";

/// Whether a `disconnect@` fault has fired in this process: it fires once, so that the retry it
/// provokes can succeed.
static DISCONNECTED: AtomicBool = AtomicBool::new(false);

/// One armed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `abort@N`: abort the process when chunk `N` is cut, as `kill -9` would, but at a
    /// reproducible point.
    Abort {
        /// Chunk number.
        chunk: u64,
    },
    /// `disconnect@BYTES`: the source stream fails after `BYTES` bytes, once per process.
    Disconnect {
        /// Byte offset in the source.
        at: u64,
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
            "disconnect" => Ok(Fault::Disconnect {
                at: crate::config::parse_size(arg).filter(|&n| n > 0).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Abort { chunk } => write!(f, "abort@{chunk}"),
            Fault::Disconnect { at } => write!(f, "disconnect@{at}"),
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

impl Faults {
    /// Called by the fetcher with each block read at byte `offset`: if `disconnect@BYTES` is armed,
    /// falls inside the block and has not fired yet, returns the bytes before it and the read
    /// error a reset connection would give; otherwise the block as it is.
    pub fn on_block(&self, offset: u64, block: Bytes) -> (Bytes, Option<SourceError>) {
        let end = offset + block.len() as u64;
        let hit = self.armed.iter().find_map(|f| match f {
            Fault::Disconnect { at } if offset <= *at && *at < end => Some(*at),
            _ => None,
        });
        let Some(at) = hit else { return (block, None) };
        if DISCONNECTED.swap(true, Ordering::SeqCst) {
            return (block, None);
        }
        tracing::warn!(byte = at, "fault disconnect@{at}: the source stream fails here");
        let error = SourceError::Read {
            what: "the source".into(),
            byte: at,
            detail: format!("connection reset (injected by the fault disconnect@{at})"),
        };
        (block.slice(..(at - offset) as usize), Some(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_grammar() {
        assert_eq!(Fault::parse("abort@12"), Ok(Fault::Abort { chunk: 12 }));
        assert_eq!(Fault::parse(" ABORT@ 3 ").map(|f| f.to_string()), Ok("abort@3".into()));
        assert_eq!(Fault::parse("disconnect@1MiB"), Ok(Fault::Disconnect { at: 1 << 20 }));
        for bad in ["abort", "abort@x", "abort@-1", "explode@3", "", "disconnect@0", "disconnect@lots"] {
            let e = Fault::parse(bad).unwrap_err();
            assert!(e.contains(GRAMMAR), "{e}");
        }
    }
}
