//! Checkpoint intervals ("epochs"): which chunks a checkpoint covers.
//!
//! The fetcher numbers every chunk with the epoch it belongs to and, every `every_chunks` chunks
//! (or `every_secs`), closes the epoch by telling everyone how many chunks it had. Task actors fold
//! an epoch's chunks into a fresh partial state and hand it over once they have absorbed all of
//! them; the checkpoint actor merges those partials in epoch order. So a checkpoint never stops
//! the pipeline and never copies a task's whole state per chunk, and it is aligned: every state in
//! it covers exactly the same chunks.

use std::time::{Duration, Instant};

use actix::Message;

/// Closes an epoch: it holds the chunks numbered up to `next_seq` (exclusive), `chunks` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Chunks in the epoch.
    pub chunks: u64,
    /// Number of the first chunk after the epoch.
    pub next_seq: u64,
    /// The input ended with this epoch.
    pub last: bool,
    /// The run is stopping (a signal) after this epoch: checkpoint it, do not finish the job.
    pub stop: bool,
}

impl Message for CloseEpoch {
    type Result = ();
}

/// The fetcher's side: assigns chunks to epochs and decides when to close one.
#[derive(Debug)]
pub struct Epochs {
    every: u64,
    every_secs: Duration,
    epoch: u64,
    chunks: u64,
    started: Instant,
}

impl Epochs {
    /// Epochs of `every` chunks or `every_secs`, numbered from `first`.
    pub fn new(every: u64, every_secs: Duration, first: u64) -> Epochs {
        Epochs { every: every.max(1), every_secs, epoch: first, chunks: 0, started: Instant::now() }
    }

    /// The epoch of the next chunk.
    pub fn current(&self) -> u64 {
        self.epoch
    }

    /// Counts a chunk just cut (number `seq`); returns the close message if the epoch is now full.
    pub fn cut(&mut self, seq: u64) -> Option<CloseEpoch> {
        self.chunks += 1;
        let due = self.chunks >= self.every || self.started.elapsed() >= self.every_secs;
        due.then(|| self.close(seq + 1, false))
    }

    /// Closes the current epoch, however many chunks it has (the end of the input).
    pub fn close(&mut self, next_seq: u64, last: bool) -> CloseEpoch {
        let close = CloseEpoch { epoch: self.epoch, chunks: self.chunks, next_seq, last, stop: false };
        self.epoch += 1;
        self.chunks = 0;
        self.started = Instant::now();
        close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_every_n_chunks_and_at_the_end() {
        let mut e = Epochs::new(2, Duration::from_secs(3600), 5);
        assert_eq!(e.cut(0), None);
        assert_eq!(e.cut(1), Some(CloseEpoch { epoch: 5, chunks: 2, next_seq: 2, last: false, stop: false }));
        assert_eq!(e.current(), 6);
        assert_eq!(e.cut(2), None);
        assert_eq!(
            e.close(3, true),
            CloseEpoch { epoch: 6, chunks: 1, next_seq: 3, last: true, stop: false }
        );
    }
}
