//! Line numbers of chunks, found after they are parsed.
//!
//! The chunker used to count every chunk's line breaks before handing it on, so that the parser
//! could number the chunk's lines: one more pass over every byte, on the thread that reads the
//! input (4–5% of a file run's samples), while the parse worker counts the same lines anyway. Now
//! a worker parses a chunk numbering its lines from 0 and gives the [`LineLedger`] the chunk and
//! its line count. Chunks arrive out of order from several workers; the ledger keeps those whose
//! predecessors are still being parsed, and the worker that hands in the missing one gets back
//! every chunk it completes, in order, each with its first line. No worker waits for another.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The first line of each chunk of one run, from the line counts of the chunks before it; holds
/// chunks (`T`) that finished before a chunk ahead of them.
#[derive(Debug)]
pub struct LineLedger<T> {
    state: Mutex<State<T>>,
    numbered: Condvar,
}

#[derive(Debug)]
struct State<T> {
    /// The first chunk not numbered yet, and its first line.
    next: (u64, u64),
    /// Chunks handed in before a chunk ahead of them, with their line counts.
    early: BTreeMap<u64, (u64, T)>,
}

impl<T> LineLedger<T> {
    /// A ledger whose chunk `seq` starts at line `line` (the line after the header, or where a
    /// resumed run continues).
    pub fn new(seq: u64, line: u64) -> LineLedger<T> {
        LineLedger {
            state: Mutex::new(State { next: (seq, line), early: BTreeMap::new() }),
            numbered: Condvar::new(),
        }
    }

    /// Hands in chunk `seq`, which has `lines` lines; answers every chunk this completes (none,
    /// if a chunk before it is still missing), in order, with its first line.
    pub fn number(&self, seq: u64, lines: u64, chunk: T) -> Vec<(u64, T)> {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.early.insert(seq, (lines, chunk));
        let mut done = Vec::new();
        while let Some((lines, chunk)) = s.early.remove(&s.next.0) {
            let (seq, line) = s.next;
            done.push((line, chunk));
            s.next = (seq + 1, line + lines);
        }
        if !done.is_empty() {
            self.numbered.notify_all();
        }
        done
    }

    /// The first line of chunk `seq`, the next one to be cut, once every chunk before it has
    /// been handed in; `None` if `timeout` passes first (or `seq` is already numbered).
    pub fn first_line_of(&self, seq: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            match s.next.0 {
                next if next == seq => return Some(s.next.1),
                next if next > seq => return None,
                _ => {}
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            s = self.numbered.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn chunks_handed_in_order_are_numbered_at_once() {
        let ledger = LineLedger::new(5, 3);
        assert_eq!(ledger.number(5, 10, 'a'), vec![(3, 'a')]);
        assert_eq!(ledger.number(6, 0, 'b'), vec![(13, 'b')]);
        assert_eq!(ledger.number(7, 4, 'c'), vec![(13, 'c')]);
        assert_eq!(ledger.first_line_of(8, Duration::ZERO), Some(17));
        assert_eq!(ledger.first_line_of(7, Duration::ZERO), None, "numbered already");
    }

    /// Chunks handed in out of order (from threads) come back once each, in order, with the
    /// first lines of a sequential count.
    #[test]
    fn chunks_handed_in_out_of_order_come_back_in_order() {
        let ledger = Arc::new(LineLedger::new(0, 2));
        let lines = [7u64, 1, 0, 12, 5, 3, 9, 2];
        let order = [3usize, 1, 7, 0, 2, 6, 5, 4];
        let workers: Vec<_> = order
            .iter()
            .map(|&i| {
                let ledger = ledger.clone();
                std::thread::spawn(move || ledger.number(i as u64, lines[i], i))
            })
            .collect();
        let mut got: Vec<(u64, usize)> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        got.sort_by_key(|&(_, i)| i);
        let firsts: Vec<u64> =
            lines.iter().scan(2u64, |line, n| Some(std::mem::replace(line, *line + n))).collect();
        assert_eq!(got, firsts.into_iter().zip(0..).collect::<Vec<_>>());
        assert_eq!(ledger.first_line_of(8, Duration::ZERO), Some(2 + 39));
    }

    #[test]
    fn a_missing_chunk_holds_the_rest_and_the_next_first_line() {
        let ledger = LineLedger::new(0, 1);
        assert!(ledger.number(1, 4, "second").is_empty());
        assert!(ledger.number(2, 4, "third").is_empty());
        assert_eq!(ledger.first_line_of(3, Duration::from_millis(20)), None, "chunk 0 never came");
        assert_eq!(ledger.number(0, 2, "first"), vec![(1, "first"), (3, "second"), (7, "third")]);
        assert_eq!(ledger.first_line_of(3, Duration::ZERO), Some(11));
    }
}
