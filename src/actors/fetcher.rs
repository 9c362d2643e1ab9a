//! The fetcher actor: reads the source, checks the header, and cuts line-aligned chunks.
//!
//! It admits each chunk through the [`Gate`] before handing it to the parse pool, so when
//! consumers fall behind the fetcher stops reading and the source (a TCP connection, a file) is
//! simply not read further: back-pressure reaches the network.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient, ResponseFuture};
use crossbeam_channel::Sender;
use futures_util::StreamExt;

use crate::actors::backpressure::Gate;
use crate::actors::checkpoint::JobFacts;
use crate::actors::epoch::{CloseEpoch, Epochs};
use crate::actors::lines::LineLedger;
use crate::actors::parsers::{ParseJob, Unnumbered};
use crate::chunk::{Chunk, Chunker};
use crate::durable::Position;
use crate::error::{DataError, Error};
use crate::faults::Faults;
use crate::progress::Progress;
use crate::schema::{parse_header, Columns, HeaderSearch, Schema};
use crate::source::{self, OpenOptions, ResumeFrom, SourceSpec};

/// Starts reading; answers when the whole input has been cut and handed to the parse pool.
pub struct Fetch {
    /// The parse pool's queue.
    pub jobs: Sender<ParseJob>,
}

impl Message for Fetch {
    type Result = Result<FetchReport, Error>;
}

/// What the fetcher saw.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// Bytes read.
    pub bytes: u64,
    /// Times the source was reopened after a failure.
    pub retries: u64,
    /// Chunks cut.
    pub chunks: u64,
    /// Blank lines before the header.
    pub leading_blank: u64,
    /// The header's schema.
    pub schema: Arc<Schema>,
}

/// Where a resumed fetch starts: the checkpoint's position and header.
#[derive(Debug, Clone)]
pub struct FetchFrom {
    /// Byte offset and expected identity of the source.
    pub from: ResumeFrom,
    /// Chunk and line numbers at that byte.
    pub position: Position,
    /// The header line recorded in the checkpoint.
    pub header: Vec<u8>,
    /// Blank lines before the header.
    pub leading_blank: u64,
}

/// How the fetcher cuts the input and what it tells the rest of the job.
pub struct FetchSetup {
    /// Source and how to open it.
    pub spec: SourceSpec,
    /// Timeouts and block size.
    pub open: OpenOptions,
    /// Target chunk size and longest line.
    pub sizes: (usize, usize),
    /// Header names.
    pub columns: Columns,
    /// Checkpoint interval: chunks and time.
    pub epochs: (u64, std::time::Duration),
    /// Where epoch closes go (the router).
    pub closes: Recipient<CloseEpoch>,
    /// Identity and header, for checkpoints.
    pub facts: Arc<JobFacts>,
    /// Armed faults.
    pub faults: Faults,
    /// Resume point, if any.
    pub resume: Option<FetchFrom>,
    /// How often a failed read is retried, and the first delay.
    pub retries: (u32, std::time::Duration),
    /// The job's record, where retries are counted.
    pub supervisor: crate::actors::supervisor::SharedSupervisor,
    /// Becomes `Some(signal)` when the run must stop (SIGINT, SIGTERM).
    pub stop: tokio::sync::watch::Receiver<Option<i32>>,
}

/// Reads one source.
pub struct Fetcher {
    setup: Arc<FetchSetup>,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
}

impl Fetcher {
    /// A fetcher for `setup`.
    pub fn new(setup: FetchSetup, gate: Arc<Gate>, progress: Arc<Progress>) -> Fetcher {
        Fetcher { setup: Arc::new(setup), gate, progress }
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;
}

impl Handler<Fetch> for Fetcher {
    type Result = ResponseFuture<Result<FetchReport, Error>>;

    fn handle(&mut self, msg: Fetch, _ctx: &mut Self::Context) -> Self::Result {
        let s = &self.setup;
        let (chunk_size, max_line) = s.sizes;
        let start = s.resume.as_ref().map_or(Position { byte: 0, chunk: 0, line: 1 }, |r| r.position);
        let run = Run {
            setup: s.clone(),
            chunker: Chunker::new(chunk_size, max_line, start.byte, start.line).starting_at(start.chunk),
            epochs: Epochs::new(s.epochs.0, s.epochs.1, 0),
            gate: self.gate.clone(),
            progress: self.progress.clone(),
            jobs: msg.jobs,
            leading_blank: 0,
            search: HeaderSearch { sniffed: s.resume.is_some(), leading_blank: 0 },
            lines: None,
        };
        Box::pin(async move {
            use futures_util::FutureExt;
            std::panic::AssertUnwindSafe(run.fetch()).catch_unwind().await.unwrap_or_else(|panic| {
                let detail = crate::actors::supervisor::panic_text(panic.as_ref());
                tracing::error!(actor = "fetcher", "actor failed: {detail}");
                Err(Error::ActorFailed { actor: "fetcher", detail })
            })
        })
    }
}

/// State of one read of the source.
struct Run {
    setup: Arc<FetchSetup>,
    chunker: Chunker,
    epochs: Epochs,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
    jobs: Sender<ParseJob>,
    leading_blank: u64,
    search: HeaderSearch,
    /// Numbers the chunks' lines; made when the first chunk is cut (after the header).
    lines: Option<Arc<LineLedger<Unnumbered>>>,
}

impl Run {
    async fn fetch(mut self) -> Result<FetchReport, Error> {
        let setup = self.setup.clone();
        let opened = source::open(&setup.spec, &setup.open, setup.resume.as_ref().map(|r| &r.from)).await?;
        self.progress.set_total(opened.len);
        let _ = setup.facts.identity.set(opened.identity);
        let mut stream = opened.stream;
        let mut schema: Option<Arc<Schema>> = match &setup.resume {
            Some(r) => {
                self.leading_blank = r.leading_blank;
                let _ = setup.facts.header.set((r.header.clone(), r.leading_blank));
                Some(Arc::new(parse_header(&r.header, 1, &setup.columns)?))
            }
            None => None,
        };
        if let Some(s) = &schema {
            let _ = setup.facts.schema.set(s.clone());
        }
        let mut bytes = 0u64;
        let start = setup.resume.as_ref().map_or(0, |r| r.from.offset);
        let mut retry = Retry::new(setup.retries);
        let mut failed = None;
        let mut stop = setup.stop.clone();
        loop {
            if let Some(e) = failed.take() {
                stream = retry.reopen(&setup, e, start + bytes).await?;
            }
            let next = tokio::select! {
                biased;
                signal = stopped(&mut stop) => return Err(self.stop(signal)),
                next = stream.next() => next,
            };
            let block = match next {
                Some(Ok(block)) => {
                    let (block, error) = setup.faults.on_block(start + bytes, block);
                    failed = error;
                    Some(block)
                }
                Some(Err(e)) => {
                    failed = Some(e);
                    continue;
                }
                None => None,
            };
            let eof = block.is_none();
            if let Some(block) = block {
                bytes += block.len() as u64;
                self.progress.bytes_read(block.len() as u64);
                self.chunker.push_bytes(block);
            }
            if schema.is_none() {
                schema = self.header(eof)?.map(Arc::new);
                if let Some(s) = &schema {
                    let _ = setup.facts.schema.set(s.clone());
                }
            }
            let Some(schema) = &schema else { continue };
            while let Some(chunk) = self.next_chunk()? {
                self.dispatch(chunk, schema, false).await?;
            }
            if eof {
                while let Some(chunk) = self.chunker.finish() {
                    let last = self.chunker.buffered() == 0;
                    self.dispatch(chunk, schema, last).await?;
                }
                let chunks = self.chunker.chunks();
                setup.closes.do_send(self.epochs.close(chunks, true));
                return Ok(FetchReport {
                    bytes,
                    retries: retry.count,
                    chunks,
                    leading_blank: self.leading_blank,
                    schema: schema.clone(),
                });
            }
        }
    }

    /// Stops reading: closes the current epoch as the last one of this run, so the checkpoint
    /// actor commits a checkpoint of everything dispatched; the partial chunk buffered is dropped
    /// (a resumed run reads it again).
    fn stop(&mut self, signal: i32) -> Error {
        tracing::warn!(signal, "stopping: checkpointing what was read");
        let mut close = self.epochs.close(self.chunker.chunks(), false);
        close.stop = true;
        self.setup.closes.do_send(close);
        Error::Interrupted { signal, byte: 0, saved: String::new() }
    }

    /// Finds and checks the header once enough bytes have arrived; `None` means "need more".
    fn header(&mut self, eof: bool) -> Result<Option<Schema>, Error> {
        let Some((schema, header)) = self.search.step(&mut self.chunker, eof, &self.setup.columns)? else {
            return Ok(None);
        };
        self.leading_blank = self.search.leading_blank;
        let _ = self.setup.facts.header.set((header, self.leading_blank));
        Ok(Some(schema))
    }

    /// The next chunk, if enough input is buffered. A line too long to hold is reported with its
    /// number once the chunks before it are parsed (the chunker does not count lines).
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        match self.chunker.next_chunk() {
            Err(DataError::LineTooLong { line: None, byte, limit }) => {
                let seq = self.chunker.chunks();
                let line = self.lines.as_ref().and_then(|l| l.first_line_of(seq, NUMBERING_WAIT));
                Err(DataError::LineTooLong { line, byte, limit }.into())
            }
            other => Ok(other?),
        }
    }

    async fn dispatch(&mut self, chunk: Chunk, schema: &Arc<Schema>, at_end: bool) -> Result<(), Error> {
        let ticket = self.gate.enter().await;
        let seq = chunk.seq;
        self.setup.faults.on_chunk_cut(seq);
        self.setup.faults.on_chunk("fetcher", seq);
        tracing::trace!(seq, offset = chunk.offset, "chunk admitted");
        let line = self.chunker.line();
        let lines = self.lines.get_or_insert_with(|| Arc::new(LineLedger::new(seq, line))).clone();
        let job =
            ParseJob { chunk, schema: schema.clone(), at_end, epoch: self.epochs.current(), ticket, lines };
        self.jobs.try_send(job).map_err(|e| Error::Internal(format!("parse queue refused a chunk: {e}")))?;
        if let Some(close) = self.epochs.cut(seq) {
            self.setup.closes.do_send(close);
        }
        Ok(())
    }
}

/// How long a line too long to hold waits for the chunks before it to be numbered (they are
/// being parsed; only a stuck worker makes the error go without its line number).
const NUMBERING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves with the signal once a stop is requested; never, if the sender is gone.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<Option<i32>>) -> i32 {
    match stop.wait_for(Option::is_some).await {
        Ok(signal) => signal.unwrap_or(15),
        Err(_) => std::future::pending().await,
    }
}

/// Retries of a failed read: exponential backoff with jitter, continuing from the byte reached.
struct Retry {
    left: u32,
    delay: std::time::Duration,
    count: u64,
}

/// The longest wait between two attempts.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

impl Retry {
    fn new((retries, first): (u32, std::time::Duration)) -> Retry {
        Retry { left: retries, delay: first, count: 0 }
    }

    /// Reopens the source at `offset` after `error`, waiting longer after each failure; gives up
    /// (returning the last error) when retries run out, for standard input (it cannot be re-read),
    /// and at once for answers that will not change (4xx, a changed source).
    async fn reopen(
        &mut self,
        setup: &FetchSetup,
        mut error: crate::error::SourceError,
        offset: u64,
    ) -> Result<source::ByteStream, Error> {
        let identity = setup.facts.identity.get().cloned();
        let (Some(expect), false) = (identity, setup.spec == SourceSpec::Stdin) else {
            return Err(error.into());
        };
        let first = error.to_string();
        let tried = self.count;
        loop {
            if !transient(&error) {
                return Err(error.into());
            }
            if self.left == 0 {
                let retried = self.count - tried;
                if retried == 0 {
                    return Err(error.into());
                }
                return Err(crate::error::SourceError::Read {
                    what: setup.spec.describe(),
                    byte: offset,
                    detail: format!(
                        "{first}; {retried} retries from byte {offset} failed, the last with: {error}"
                    ),
                }
                .into());
            }
            self.left -= 1;
            self.count += 1;
            setup.supervisor.lock().unwrap_or_else(|e| e.into_inner()).retried();
            let wait = crate::actors::supervisor::jittered(self.delay, 0.25);
            tracing::warn!(
                "reading {} failed at byte {offset} ({error}); retry {} in {} ms, from byte {offset}",
                setup.spec.describe(),
                self.count,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
            self.delay = (self.delay * 2).min(MAX_BACKOFF);
            let from = ResumeFrom { offset, until: None, expect: expect.clone(), dir: String::new() };
            match source::open(&setup.spec, &setup.open, Some(&from)).await {
                Ok(opened) => return Ok(opened.stream),
                Err(e) => error = e,
            }
        }
    }
}

/// Worth retrying: a connection that broke or timed out, or a server error (5xx).
fn transient(e: &crate::error::SourceError) -> bool {
    use crate::error::SourceError;
    match e {
        SourceError::Read { .. } | SourceError::Connect { .. } => true,
        SourceError::HttpStatus { status, .. } => status.starts_with('5'),
        SourceError::Open { .. } | SourceError::Changed { .. } | SourceError::ChangedDuringRun { .. } => {
            false
        }
    }
}
