//! The checkpoint actor: accounts for every row, and commits aligned checkpoints.
//!
//! Chunks finish out of order; the checkpoint actor holds finished chunks until all earlier ones
//! are done, then advances the watermark (the byte offset before which everything is processed),
//! writes their rejects to `rejects.csv` in line order, and only then releases their tickets.
//!
//! Task actors hand over one partial state per epoch (see [`crate::actors::epoch`]). Once an
//! epoch's chunks are all accounted for and all three partials have arrived, the epoch commits:
//! the partials are merged into the committed states, and a [`Snapshot`] of the position, row
//! counts, `rejects.csv` length and states is written durably. A resumed run starts from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use actix::{Actor, Context, Handler, Message, ResponseFuture};

use crate::actors::backpressure::Ticket;
use crate::actors::epoch::CloseEpoch;
use crate::actors::supervisor::guarded;
use crate::actors::task::{EpochPartial, Partial};
use crate::durable::store::{Staged, Store};
use crate::durable::{Position, Snapshot, SourceIdentity, FORMAT_VERSION};
use crate::error::OutputError;
use crate::output::RejectsWriter;
use crate::parse::Reject;
use crate::progress::Progress;
use crate::report::RowCounts;
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;
use crate::tasks::Analysis;

/// How many rejects are kept in memory to quote in error messages.
const EXAMPLES: usize = 5;

/// A chunk's accounting, sent by the router.
pub struct ChunkDone {
    /// Chunk number.
    pub seq: u64,
    /// Epoch of the chunk.
    pub epoch: u64,
    /// Byte offset just past the chunk.
    pub end: u64,
    /// Line number of the chunk's first line.
    pub first_line: u64,
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

/// Asks for the final accounting and states (answered once the last epoch has committed) and
/// commits `rejects.csv`.
pub struct FinishCheckpoint;

impl Message for FinishCheckpoint {
    type Result = Result<CheckpointReport, OutputError>;
}

/// The three analysis states.
#[derive(Debug, Clone)]
pub struct States {
    /// Hottest times.
    pub hottest: Hottest,
    /// Temperature-band window.
    pub window: Window,
    /// Forecast.
    pub forecast: Forecast,
}

/// Final accounting and results.
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
    /// The final analysis states.
    pub states: States,
    /// Checkpoints written for this job, earlier runs included.
    pub checkpoints: u64,
}

/// Facts the fetcher learns once (the source's identity, the header) that every checkpoint needs.
#[derive(Debug, Default)]
pub struct JobFacts {
    /// Identity of the source as opened.
    pub identity: OnceLock<SourceIdentity>,
    /// The header line and the blank lines before it.
    pub header: OnceLock<(Vec<u8>, u64)>,
    /// The header's schema, for actors that parse chunks again (replay).
    pub schema: OnceLock<Arc<crate::schema::Schema>>,
}

/// Where and whether checkpoints are written.
pub struct Durability {
    /// The checkpoint folder.
    pub store: Store,
    /// Write checkpoints at all (epochs are tracked either way).
    pub enabled: bool,
    /// Settings that change results.
    pub settings: BTreeMap<String, String>,
    /// Runs before this one (0 for a fresh run).
    pub runs_before: u32,
    /// Checkpoints written by earlier runs.
    pub checkpoints_before: u64,
    /// What the fetcher learnt.
    pub facts: Arc<JobFacts>,
    /// Armed faults.
    pub faults: Arc<crate::faults::Faults>,
    /// The job's failure channel.
    pub failures: crate::actors::supervisor::Failures,
    /// The job's record of restarts and retries, saved with each checkpoint.
    pub supervisor: crate::actors::supervisor::SharedSupervisor,
}

/// Where the chunk accounting stood when an epoch's last chunk was completed.
#[derive(Debug, Clone, Copy)]
struct Mark {
    position: Position,
    rows: RowCounts,
    /// Length of rejects.csv holding exactly the rejects of the chunks before `position`.
    rejects_len: Option<u64>,
}

/// The partials of one epoch received so far.
#[derive(Default)]
struct Parts {
    hottest: Option<Hottest>,
    window: Option<Window>,
    forecast: Option<Forecast>,
}

/// Tracks progress, writes rejects and commits checkpoints.
pub struct Checkpoint {
    next_seq: u64,
    pending: BTreeMap<u64, ChunkDone>,
    rows: RowCounts,
    watermark: u64,
    line: u64,
    epoch: u64,
    marks: BTreeMap<u64, Mark>,
    closes: BTreeMap<u64, CloseEpoch>,
    parts: BTreeMap<u64, Parts>,
    next_commit: u64,
    last_epoch: Option<u64>,
    stopping: bool,
    committed: States,
    done: bool,
    waiting: Option<tokio::sync::oneshot::Sender<Result<CheckpointReport, OutputError>>>,
    examples: Vec<Reject>,
    writer: Option<RejectsWriter>,
    failure: Option<OutputError>,
    progress: Arc<Progress>,
    durability: Durability,
    written: u64,
    /// The fsyncs of the checkpoint written last, running on a thread of their own.
    syncing: Option<Syncing>,
}

/// Where a checkpoint actor starts: the beginning of the input, or a resumed snapshot.
pub struct Start {
    /// Position of the first chunk to come.
    pub position: Position,
    /// Rows already accounted for.
    pub rows: RowCounts,
    /// Committed states.
    pub states: States,
}

impl Checkpoint {
    /// A checkpoint actor writing rejects to `writer`, starting from `start`.
    pub fn new(
        writer: RejectsWriter,
        start: Start,
        progress: Arc<Progress>,
        durability: Durability,
    ) -> Checkpoint {
        let epoch = 0; // epochs are numbered per run, like the fetcher's
        Checkpoint {
            next_seq: start.position.chunk,
            pending: BTreeMap::new(),
            rows: start.rows,
            watermark: start.position.byte,
            line: start.position.line,
            epoch,
            marks: BTreeMap::new(),
            closes: BTreeMap::new(),
            parts: BTreeMap::new(),
            next_commit: epoch,
            last_epoch: None,
            stopping: false,
            committed: start.states,
            done: false,
            waiting: None,
            examples: Vec::new(),
            writer: Some(writer),
            failure: None,
            progress,
            durability,
            written: 0,
            syncing: None,
        }
    }

    fn complete(&mut self, done: ChunkDone) {
        if done.epoch != self.epoch {
            self.mark(self.epoch);
            self.epoch = done.epoch;
        }
        self.rows.read += done.lines;
        self.rows.processed += done.processed;
        self.rows.blank += done.blank;
        let done_rejected = done.rejects.len() as u64;
        self.rows.rejected += done_rejected;
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
        self.line = done.first_line + done.lines;
        self.progress.rows_done(done.processed);
        self.progress.rows_rejected(done_rejected);
        tracing::trace!(seq = done.seq, watermark = self.watermark, "checkpoint advanced");
    }

    /// Records where epoch `epoch` ends: the current accounting.
    fn mark(&mut self, epoch: u64) {
        if self.marks.contains_key(&epoch) {
            return;
        }
        let position = Position { byte: self.watermark, chunk: self.next_seq, line: self.line };
        let rejects_len = match self.writer.as_mut().map(RejectsWriter::written_len) {
            Some(Ok(len)) => Some(len),
            Some(Err(e)) => {
                self.failure.get_or_insert(e);
                None
            }
            None => None,
        };
        self.marks.insert(epoch, Mark { position, rows: self.rows, rejects_len });
    }

    /// Marks closed epochs whose chunks are all accounted for, then commits what is ready.
    fn advance(&mut self) {
        let ready: Vec<u64> =
            self.closes.values().filter(|c| c.next_seq == self.next_seq).map(|c| c.epoch).collect();
        for epoch in ready {
            self.mark(epoch);
        }
        self.closes.retain(|_, c| c.next_seq > self.next_seq);
        while self.try_commit() {}
    }

    fn try_commit(&mut self) -> bool {
        let e = self.next_commit;
        let ready = self.marks.contains_key(&e)
            && self
                .parts
                .get(&e)
                .is_some_and(|p| p.hottest.is_some() && p.window.is_some() && p.forecast.is_some());
        if !ready {
            return false;
        }
        let mark = self.marks.remove(&e).expect("checked");
        let parts = self.parts.remove(&e).expect("checked");
        self.committed.hottest.merge(parts.hottest.expect("checked"));
        self.committed.window.merge(parts.window.expect("checked"));
        self.committed.forecast.merge(parts.forecast.expect("checked"));
        self.next_commit += 1;
        if self.durability.enabled && (self.last_epoch != Some(e) || self.stopping) {
            self.write(mark);
        }
        if self.last_epoch == Some(e) {
            self.done = true;
            self.answer();
        }
        true
    }

    /// Writes a snapshot of the committed states at `mark`; a failure is logged, not fatal: the
    /// previous checkpoint stays valid and the run goes on.
    fn write(&mut self, mark: Mark) {
        // The previous checkpoint must be on disk before this one pushes it to `previous`.
        if let Err(e) = self.synced() {
            self.fail(e);
            return;
        }
        let d = &self.durability;
        let (Some(identity), Some((header, leading_blank))) = (d.facts.identity.get(), d.facts.header.get())
        else {
            return;
        };
        let Some(rejects_len) = mark.rejects_len else { return };
        if self.failure.is_some() {
            return;
        }
        match self.writer.as_mut().map(RejectsWriter::sync) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.failure = Some(e);
                return;
            }
            None => return,
        }
        let record = d.supervisor.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = Snapshot {
            version: FORMAT_VERSION,
            source: identity.clone(),
            settings: d.settings.clone(),
            position: mark.position,
            rows: mark.rows,
            rejects_len,
            header: header.clone(),
            leading_blank: *leading_blank,
            runs: d.runs_before + 1,
            checkpoints: d.checkpoints_before + self.written + 1,
            restarts: record.counts(),
            retries: record.retries(),
            // Moved in and back out below: the largest state (it grows with the days seen) is
            // not copied for a checkpoint.
            hottest: std::mem::take(&mut self.committed.hottest),
            window: self.committed.window.clone(),
            forecast: self.committed.forecast.clone(),
        };
        drop(record);
        let staged = d.faults.on_checkpoint_write().and_then(|()| d.store.stage(&snapshot));
        self.committed.hottest = snapshot.hottest;
        match staged {
            Ok(staged) => {
                self.written += 1;
                tracing::debug!(
                    byte = mark.position.byte,
                    line = mark.position.line,
                    bytes = staged.bytes,
                    "checkpoint written"
                );
                self.syncing = Some(Syncing::start(staged));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Waits for the fsyncs of the checkpoint written last (done long since, usually: a
    /// checkpoint interval is tens of milliseconds of input, an fsync 1-3 ms).
    fn synced(&mut self) -> std::io::Result<()> {
        self.syncing.take().map_or(Ok(()), Syncing::wait)
    }

    /// A failure of the checkpoint actor: the previous checkpoint stays valid and supervision
    /// restarts the pipeline from it.
    fn fail(&self, e: std::io::Error) {
        let d = &self.durability;
        let detail = format!("writing a checkpoint in {} failed: {e}", d.store.dir().display());
        tracing::error!(actor = "checkpoint", "actor failed: {detail}");
        let _ = d.failures.try_send(crate::error::Error::ActorFailed { actor: "checkpoint", detail });
    }

    fn answer(&mut self) {
        if !self.done {
            return;
        }
        if let Some(tx) = self.waiting.take() {
            let _ = tx.send(self.finish());
        }
    }

    fn finish(&mut self) -> Result<CheckpointReport, OutputError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if let Err(source) = self.synced() {
            let path = self.durability.store.dir().to_path_buf();
            if self.stopping {
                // The run stops on the promise that its checkpoint is saved: it is not.
                return Err(OutputError::Write { path, source });
            }
            // A finished job discards its checkpoints anyway.
            tracing::warn!("syncing the last checkpoint in {} failed: {source}", path.display());
        }
        let mut writer = self.writer.take().expect("checkpoint finished twice");
        let rejects_path = if self.stopping {
            // A resumed run continues the partial file; it is committed only when the job ends.
            writer.sync()?;
            PathBuf::new()
        } else {
            writer.finish()?
        };
        Ok(CheckpointReport {
            rows: self.rows,
            watermark: self.watermark,
            chunks: self.next_seq,
            examples: std::mem::take(&mut self.examples),
            rejects_path,
            states: self.committed.clone(),
            checkpoints: self.durability.checkpoints_before + self.written,
        })
    }
}

/// The fsyncs of a staged checkpoint: running on a thread of their own, so that the actor thread,
/// which the task actors share, does not wait for the disk; or done in place if no thread starts.
///
/// Dropped before it was waited for (the checkpoint actor of a failed attempt goes away with its
/// arbiter, and the next attempt's actor stages a checkpoint that pushes this one to "previous"),
/// it still waits: the previous checkpoint must be on disk before the next one is staged, even
/// across a restart.
struct Syncing {
    aside: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    done: Option<std::io::Result<()>>,
}

impl Syncing {
    fn start(staged: Staged) -> Syncing {
        Syncing::run(move || staged.sync())
    }

    /// Runs `sync` on a thread of its own, or here if no thread starts.
    fn run<F: FnOnce() -> std::io::Result<()> + Send + 'static>(sync: F) -> Syncing {
        // The work goes over a channel, sent once the thread runs, so that it is still here to
        // run in place if the thread cannot be started.
        let (tx, rx) = std::sync::mpsc::sync_channel::<F>(1);
        let spawned = std::thread::Builder::new()
            .name("wxflow-fsync".into())
            .spawn(move || rx.recv().map_err(|_| std::io::Error::other("no checkpoint to sync"))?());
        match spawned {
            Ok(handle) => {
                let _ = tx.send(sync);
                Syncing { aside: Some(handle), done: None }
            }
            Err(_) => Syncing { aside: None, done: Some(sync()) },
        }
    }

    fn wait(mut self) -> std::io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self.aside.take() {
            Some(handle) => {
                handle.join().unwrap_or_else(|_| Err(std::io::Error::other("the thread syncing it panicked")))
            }
            None => self.done.take().unwrap_or(Ok(())),
        }
    }
}

impl Drop for Syncing {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("syncing a checkpoint of a stopped attempt failed: {e}");
        }
    }
}

impl Actor for Checkpoint {
    type Context = Context<Self>;
}

impl Handler<ChunkDone> for Checkpoint {
    type Result = ();

    fn handle(&mut self, msg: ChunkDone, _ctx: &mut Self::Context) {
        let failures = self.durability.failures.clone();
        guarded("checkpoint", &failures, || {
            self.durability.faults.on_chunk("checkpoint", msg.seq);
            self.pending.insert(msg.seq, msg);
            while let Some(done) = self.pending.remove(&self.next_seq) {
                self.complete(done);
                self.next_seq += 1;
            }
            self.advance();
        });
    }
}

impl Handler<CloseEpoch> for Checkpoint {
    type Result = ();

    fn handle(&mut self, msg: CloseEpoch, _ctx: &mut Self::Context) {
        if msg.last || msg.stop {
            self.last_epoch = Some(msg.epoch);
            self.stopping = msg.stop;
        }
        if msg.next_seq < self.next_seq {
            // Its chunks completed before the close arrived: the epoch change marked it already.
            debug_assert!(self.marks.contains_key(&msg.epoch) || self.next_commit > msg.epoch);
        } else {
            self.closes.insert(msg.epoch, msg);
        }
        self.advance();
    }
}

impl Handler<EpochPartial> for Checkpoint {
    type Result = ();

    fn handle(&mut self, msg: EpochPartial, _ctx: &mut Self::Context) {
        let parts = self.parts.entry(msg.epoch).or_default();
        match msg.partial {
            Partial::Hottest(h) => parts.hottest = Some(h),
            Partial::Window(w) => parts.window = Some(w),
            Partial::Forecast(f) => parts.forecast = Some(f),
        }
        self.advance();
    }
}

impl Handler<FinishCheckpoint> for Checkpoint {
    type Result = ResponseFuture<Result<CheckpointReport, OutputError>>;

    fn handle(&mut self, _msg: FinishCheckpoint, _ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting = Some(tx);
        self.answer();
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(OutputError::Write {
                    path: PathBuf::from("rejects.csv"),
                    source: std::io::Error::other(
                        "the checkpoint actor stopped before the last epoch committed",
                    ),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A pending sync dropped unwaited (a failed attempt's actor going away with its arbiter) is
    /// waited for: the next attempt must not stage over a checkpoint that is not on disk yet.
    #[test]
    fn a_dropped_sync_is_waited_for() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let syncing = Syncing::run(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        drop(syncing);
        assert!(done.load(Ordering::SeqCst), "the drop returned before the sync ended");
    }

    #[test]
    fn a_failed_sync_comes_back_from_wait() {
        let syncing = Syncing::run(|| Err(std::io::Error::other("disk gone")));
        assert_eq!(syncing.wait().map_err(|e| e.to_string()), Err("disk gone".to_string()));
    }
}
