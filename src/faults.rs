//! Deliberate faults, armed from `--fault SPEC` or `faults.inject`, so that users and tests can
//! prove that durability works by breaking a run on purpose, deterministically.
//!
//! Grammar (one spec per flag or list entry):
//!
//! ```text
//! abort@N            the process aborts at once when chunk N is cut (a deterministic kill -9)
//! disconnect@BYTES   the source stream fails after BYTES bytes, as if the connection reset
//!                    (once per job)
//! panic:ACTOR@N[xK]  ACTOR panics the first K times (default 1) chunk N reaches it; ACTOR is
//!                    fetcher, parser, router, hottest, window, forecast or checkpoint
//! slow:ACTOR:MS      ACTOR sleeps MS milliseconds per chunk
//! checkpoint-io@N    the N-th checkpoint write of the job fails with an I/O error
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::SourceError;

/// The grammar, quoted in every parse error so a bad spec can be fixed without the README.
pub const GRAMMAR: &str =
    "expected `abort@N` (the process aborts when chunk N is cut; chunks count from 0), \
     `disconnect@BYTES` (the source fails after BYTES bytes, once) or `panic:ACTOR@N` / `panic:ACTOR@NxK` \
     (ACTOR panics the first K times chunk N reaches it; ACTOR is one of fetcher, parser, router, hottest, \
     window, forecast, checkpoint), `slow:ACTOR:MS` (ACTOR sleeps MS ms per chunk, at most 60000) or \
     `checkpoint-io@N` (the N-th checkpoint write fails, from 1)";

/// The actors a fault can target and supervision counts restarts for.
pub const ACTORS: [&str; 7] = ["fetcher", "parser", "router", "hottest", "window", "forecast", "checkpoint"];

/// One armed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `abort@N`: abort the process when chunk `N` is cut, as `kill -9` would, but at a
    /// reproducible point.
    Abort {
        /// Chunk number.
        chunk: u64,
    },
    /// `disconnect@BYTES`: the source stream fails after `BYTES` bytes, once per job.
    Disconnect {
        /// Byte offset in the source.
        at: u64,
    },
    /// `slow:ACTOR:MS`: the actor sleeps this long for every chunk (back-pressure drills).
    Slow {
        /// One of [`ACTORS`].
        actor: &'static str,
        /// Delay per chunk.
        ms: u64,
    },
    /// `checkpoint-io@N`: the N-th checkpoint write of the job (from 1) fails with an I/O
    /// error, a failure of the checkpoint actor.
    CheckpointIo {
        /// Which write.
        nth: u64,
    },
    /// `panic:ACTOR@NxK`: the actor panics the first `times` times chunk `chunk` reaches it.
    Panic {
        /// One of [`ACTORS`].
        actor: &'static str,
        /// Chunk number.
        chunk: u64,
        /// How many times.
        times: u32,
    },
}

impl Fault {
    /// Parses one spec, refusing anything outside the grammar with the grammar in the message.
    pub fn parse(text: &str) -> Result<Fault, String> {
        let text = text.trim();
        let bad = || format!("fault `{text}` is not understood; {GRAMMAR}");
        if !text.contains('@') && !text.to_ascii_lowercase().starts_with("slow:") {
            return Err(bad());
        }
        let (kind, arg) = text.split_once('@').unwrap_or((text, ""));
        if let Some(rest) = text.to_ascii_lowercase().strip_prefix("slow:") {
            let (actor, ms) = rest.split_once(':').ok_or_else(bad)?;
            let actor = ACTORS.iter().find(|a| **a == actor.trim()).ok_or_else(bad)?;
            return Ok(Fault::Slow {
                actor,
                ms: ms.trim().parse().ok().filter(|&ms| ms <= 60_000).ok_or_else(bad)?,
            });
        }
        if let Some(actor) = kind.trim().to_ascii_lowercase().strip_prefix("panic:") {
            let actor = ACTORS.iter().find(|a| **a == actor.trim()).ok_or_else(bad)?;
            let (chunk, times) = arg.split_once(['x', 'X']).unwrap_or((arg, "1"));
            let chunk = chunk.trim().parse().map_err(|_| bad())?;
            let times = times.trim().parse().ok().filter(|&k| k > 0).ok_or_else(bad)?;
            return Ok(Fault::Panic { actor, chunk, times });
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "abort" => Ok(Fault::Abort { chunk: arg.trim().parse().map_err(|_| bad())? }),
            "checkpoint-io" => {
                Ok(Fault::CheckpointIo { nth: arg.trim().parse().ok().filter(|&n| n > 0).ok_or_else(bad)? })
            }
            "disconnect" => {
                Ok(Fault::Disconnect { at: crate::size::parse_size(arg).filter(|&n| n > 0).ok_or_else(bad)? })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Abort { chunk } => write!(f, "abort@{chunk}"),
            Fault::Disconnect { at } => write!(f, "disconnect@{at}"),
            Fault::Slow { actor, ms } => write!(f, "slow:{actor}:{ms}"),
            Fault::CheckpointIo { nth } => write!(f, "checkpoint-io@{nth}"),
            Fault::Panic { actor, chunk, times } => write!(f, "panic:{actor}@{chunk}x{times}"),
        }
    }
}

/// The armed faults of one job, asked by the actors at the points where a fault can fire.
///
/// What has fired is counted per job and shared by clones, so a restarted pipeline or actor of
/// the same job meets chunk N again knowing how often it already failed there (`xK`), while
/// another job in the same process (the daemon) starts afresh.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    armed: Vec<Fault>,
    fired: Arc<Fired>,
}

/// What the armed faults of one job have done so far.
#[derive(Debug, Default)]
struct Fired {
    /// How often each armed panic fired, by (actor, chunk).
    panics: Mutex<Vec<(&'static str, u64, u32)>>,
    /// Checkpoint writes attempted, for `checkpoint-io@N`.
    writes: AtomicU64,
    /// Whether `disconnect@` fired: it fires once, so that the retry it provokes can succeed.
    disconnected: AtomicBool,
}

impl PartialEq for Faults {
    fn eq(&self, other: &Faults) -> bool {
        self.armed == other.armed
    }
}

impl Eq for Faults {}

impl Faults {
    /// The given faults.
    pub fn new(armed: Vec<Fault>) -> Faults {
        Faults { armed, fired: Arc::default() }
    }

    /// Armed faults, for the warning logged when a run starts.
    pub fn armed(&self) -> &[Fault] {
        &self.armed
    }

    /// Adds faults (from `--fault` flags) to those from the configuration.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Fault>) {
        self.armed.extend(more);
    }

    /// Called by each actor as chunk `seq` reaches it: panics if `panic:actor@seq` is armed and has
    /// fired fewer times than asked (supervision is what must catch it).
    pub fn on_chunk(&self, actor: &'static str, seq: u64) {
        for fault in &self.armed {
            if let Fault::Slow { actor: a, ms } = *fault {
                if a == actor {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            }
        }
        for fault in &self.armed {
            let Fault::Panic { actor: a, chunk, times } = *fault else { continue };
            if a != actor || chunk != seq {
                continue;
            }
            let mut fired = self.fired.panics.lock().unwrap_or_else(|e| e.into_inner());
            let count = match fired.iter_mut().find(|(x, c, _)| *x == actor && *c == seq) {
                Some(entry) => &mut entry.2,
                None => {
                    fired.push((actor, seq, 0));
                    &mut fired.last_mut().expect("just pushed").2
                }
            };
            if *count < times {
                *count += 1;
                let n = *count;
                drop(fired);
                panic!("injected fault panic:{actor}@{seq} (time {n} of {times})");
            }
        }
    }

    /// Called before each checkpoint write: fails the N-th write of this job if
    /// `checkpoint-io@N` is armed.
    pub fn on_checkpoint_write(&self) -> std::io::Result<()> {
        let n = self.fired.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.armed.contains(&Fault::CheckpointIo { nth: n }) {
            return Err(std::io::Error::other(format!("injected fault checkpoint-io@{n}")));
        }
        Ok(())
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
        if self.fired.disconnected.swap(true, Ordering::SeqCst) {
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
        assert_eq!(
            Fault::parse("panic:window@12"),
            Ok(Fault::Panic { actor: "window", chunk: 12, times: 1 })
        );
        assert_eq!(Fault::parse("panic:router@3x4").map(|f| f.to_string()), Ok("panic:router@3x4".into()));
        for bad in ["panic:nobody@3", "panic:window@", "panic:window@3x0", "panic@3"] {
            assert!(Fault::parse(bad).unwrap_err().contains("fetcher, parser, router"), "{bad}");
        }
        for bad in [
            "abort",
            "abort@x",
            "abort@-1",
            "explode@3",
            "",
            "disconnect@0",
            "disconnect@lots",
            "slow:window",
        ] {
            let e = Fault::parse(bad).unwrap_err();
            assert!(e.contains(GRAMMAR), "{e}");
        }
    }
}
