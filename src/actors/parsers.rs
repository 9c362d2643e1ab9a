//! The parse pool: worker threads that turn chunks into readings.
//!
//! Parsing is the CPU-heavy step, so it runs on plain threads fed by a bounded crossbeam channel
//! rather than on the actor system's event loop. A panic while parsing is caught and reported as a
//! fatal error so that the job fails instead of waiting forever for the lost chunk.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix::Addr;
use crossbeam_channel::{Receiver, Sender};

use crate::actors::backpressure::Ticket;
use crate::actors::lines::LineLedger;
use crate::actors::router::{ParsedChunk, Router};
use crate::chunk::{Chunk, Span};
use crate::error::Error;
use crate::parse::{parse_chunk_into, Parsed, Reading};
use crate::recycle::Recycler;
use crate::schema::Schema;
use crate::tasks::DaySpan;

/// A chunk to parse.
pub struct ParseJob {
    /// The chunk.
    pub chunk: Chunk,
    /// Where the columns are.
    pub schema: Arc<Schema>,
    /// Last chunk of the input.
    pub at_end: bool,
    /// Epoch of the chunk.
    pub epoch: u64,
    /// Admission ticket.
    pub ticket: Arc<Ticket>,
    /// Where the chunk's first line is found, from the line counts of the chunks before it.
    pub lines: Arc<LineLedger<Unnumbered>>,
}

/// Running parse workers and the sending side of their queue.
pub struct ParsePool {
    jobs: Option<Sender<ParseJob>>,
    workers: Vec<JoinHandle<()>>,
}

impl ParsePool {
    /// Starts `workers` threads; the queue holds `capacity` chunks (the gate's bound, so a send
    /// never blocks the fetcher).
    pub fn start(
        workers: usize,
        capacity: usize,
        router: Addr<Router>,
        fatal: tokio::sync::mpsc::Sender<Error>,
        faults: Arc<crate::faults::Faults>,
    ) -> ParsePool {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        // Every chunk in flight may hold a readings vector; keep that many for reuse.
        let recycler = Recycler::new(capacity.max(1) + workers.max(1));
        let workers = (0..workers.max(1))
            .map(|i| {
                let (rx, router, fatal, faults) = (rx.clone(), router.clone(), fatal.clone(), faults.clone());
                let recycler = recycler.clone();
                std::thread::Builder::new()
                    .name(format!("wxflow-parse-{i}"))
                    .spawn(move || work(&rx, &router, &fatal, &faults, &recycler))
                    .expect("spawning a parse thread")
            })
            .collect();
        ParsePool { jobs: Some(tx), workers }
    }

    /// The queue the fetcher feeds.
    pub fn sender(&self) -> Sender<ParseJob> {
        self.jobs.clone().expect("pool is running")
    }

    /// Closes the queue and waits for the workers to finish what they hold.
    pub fn shutdown(mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn work(
    rx: &Receiver<ParseJob>,
    router: &Addr<Router>,
    fatal: &tokio::sync::mpsc::Sender<Error>,
    faults: &crate::faults::Faults,
    recycler: &Recycler<Reading>,
) {
    for job in rx {
        let chunk = &job.chunk;
        let _span =
            tracing::debug_span!("chunk", seq = chunk.seq, offset = chunk.offset, bytes = chunk.data.len())
                .entered();
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            faults.on_chunk("parser", chunk.seq);
            let readings = recycler.take(0); // parse_chunk_into reserves what the chunk needs
            parse_chunk_into(&chunk.data, 0, &job.schema, job.at_end, readings) // lines from 0
        }));
        match parsed {
            Ok(parsed) => {
                let seq = chunk.seq;
                let done = Unnumbered {
                    span: chunk.span(0, job.at_end),
                    epoch: job.epoch,
                    parsed,
                    ticket: job.ticket,
                };
                for (first_line, chunk) in job.lines.number(seq, done.parsed.lines, done) {
                    router.do_send(chunk.numbered(first_line, recycler));
                }
            }
            Err(panic) => {
                let detail = format!(
                    "{} (on chunk {} at byte {})",
                    crate::actors::supervisor::panic_text(panic.as_ref()),
                    chunk.seq,
                    chunk.offset
                );
                tracing::error!(actor = "parser", "actor failed: {detail}");
                let _ = fatal.try_send(Error::ActorFailed { actor: "parser", detail });
                return;
            }
        }
    }
}

/// A parsed chunk whose lines are numbered from 0, waiting for its first line (see
/// [`LineLedger`]).
pub struct Unnumbered {
    span: Span,
    epoch: u64,
    parsed: Parsed,
    ticket: Arc<Ticket>,
}

impl Unnumbered {
    /// The router's message for this chunk, its lines moved to `first_line`.
    fn numbered(mut self, first_line: u64, recycler: &Recycler<Reading>) -> ParsedChunk {
        renumber(&mut self.parsed, first_line);
        ParsedChunk {
            span: Span { first_line, ..self.span },
            epoch: self.epoch,
            days: DaySpan::of(&self.parsed.readings),
            readings: recycler.lend(std::mem::take(&mut self.parsed.readings)),
            parsed: self.parsed,
            ticket: self.ticket,
        }
    }
}

/// Moves the lines of a chunk parsed from line 0 to `first_line`: a pass over the readings (one
/// add each, usually on readings this thread has just written, in its cache) and the rejects.
pub fn renumber(parsed: &mut Parsed, first_line: u64) {
    if first_line != 0 {
        parsed.readings.iter_mut().for_each(|r| r.line += first_line);
        parsed.rejects.iter_mut().for_each(|r| r.line += first_line);
    }
}
