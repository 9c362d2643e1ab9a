//! The checkpoint actor: tracks how far the input is fully processed and accounts for every row.
//!
//! Chunks finish out of order; the checkpoint actor holds finished chunks until all earlier ones
//! are done, then advances the watermark (the byte offset before which everything is processed),
//! writes their rejects to `rejects.csv` in line order, and only then releases their tickets. The
//! watermark is what a resumed run will restart from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult};

use crate::actors::backpressure::Ticket;
use crate::error::OutputError;
use crate::output::RejectsWriter;
use crate::parse::Reject;
use crate::progress::Progress;
use crate::report::RowCounts;

/// How many rejects are kept in memory to quote in error messages.
const EXAMPLES: usize = 5;

/// A chunk's accounting, sent by the router.
pub struct ChunkDone {
    /// Chunk number.
    pub seq: u64,
    /// Byte offset just past the chunk.
    pub end: u64,
    /// Lines in the chunk.
    pub lines: u64,
    /// Rows accepted.
    pub processed: u64,
    /// Blank lines.
    pub blank: u64,
    /// Rejected rows.
    pub rejects: Vec<Reject>,
    /// Admission ticket, released once the watermark passes this chunk.
    pub ticket: Arc<Ticket>,
}

impl Message for ChunkDone {
    type Result = ();
}

/// Asks for the final accounting and commits `rejects.csv`.
pub struct FinishCheckpoint;

impl Message for FinishCheckpoint {
    type Result = Result<CheckpointReport, OutputError>;
}

/// Final accounting.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    /// Row counts (blank lines before the header are added by the caller).
    pub rows: RowCounts,
    /// Byte offset up to which all input was processed.
    pub watermark: u64,
    /// Chunks accounted for.
    pub chunks: u64,
    /// The first few rejects, for messages.
    pub examples: Vec<Reject>,
    /// Where the rejects were written.
    pub rejects_path: PathBuf,
}

/// Tracks progress and writes rejects.
pub struct Checkpoint {
    next_seq: u64,
    pending: BTreeMap<u64, ChunkDone>,
    rows: RowCounts,
    watermark: u64,
    examples: Vec<Reject>,
    writer: Option<RejectsWriter>,
    failure: Option<OutputError>,
    progress: Arc<Progress>,
}

impl Checkpoint {
    /// A checkpoint writing rejects to `writer`, starting at byte `watermark`.
    pub fn new(writer: RejectsWriter, watermark: u64, progress: Arc<Progress>) -> Checkpoint {
        Checkpoint {
            next_seq: 0,
            pending: BTreeMap::new(),
            rows: RowCounts::default(),
            watermark,
            examples: Vec::new(),
            writer: Some(writer),
            failure: None,
            progress,
        }
    }

    fn complete(&mut self, done: ChunkDone) {
        self.rows.read += done.lines;
        self.rows.processed += done.processed;
        self.rows.blank += done.blank;
        self.rows.rejected += done.rejects.len() as u64;
        for r in &done.rejects {
            if let (Some(w), None) = (self.writer.as_mut(), &self.failure) {
                if let Err(e) = w.write(r) {
                    self.failure = Some(e);
                }
            }
        }
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(done.rejects.into_iter().take(room));
        self.watermark = done.end;
        self.progress.rows_done(done.processed);
        tracing::trace!(seq = done.seq, watermark = self.watermark, "checkpoint advanced");
    }
}

impl Actor for Checkpoint {
    type Context = Context<Self>;
}

impl Handler<ChunkDone> for Checkpoint {
    type Result = ();

    fn handle(&mut self, msg: ChunkDone, _ctx: &mut Self::Context) {
        self.pending.insert(msg.seq, msg);
        while let Some(done) = self.pending.remove(&self.next_seq) {
            self.next_seq += 1;
            self.complete(done);
        }
    }
}

impl Handler<FinishCheckpoint> for Checkpoint {
    type Result = MessageResult<FinishCheckpoint>;

    fn handle(&mut self, _msg: FinishCheckpoint, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.finish())
    }
}

impl Checkpoint {
    fn finish(&mut self) -> Result<CheckpointReport, OutputError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let writer = self.writer.take().expect("checkpoint finished twice");
        Ok(CheckpointReport {
            rows: self.rows,
            watermark: self.watermark,
            chunks: self.next_seq,
            examples: std::mem::take(&mut self.examples),
            rejects_path: writer.finish()?,
        })
    }
}
