//! The fetcher actor: reads the source, checks the header, and cuts line-aligned chunks.
//!
//! It admits each chunk through the [`Gate`] before handing it to the parse pool, so when
//! consumers fall behind the fetcher stops reading and the source (a TCP connection, a file) is
//! simply not read further: back-pressure reaches the network.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use crossbeam_channel::Sender;
use futures_util::StreamExt;

use crate::actors::backpressure::Gate;
use crate::actors::parsers::ParseJob;
use crate::chunk::{Chunk, Chunker};
use crate::config::Columns;
use crate::error::{DataError, Error};
use crate::progress::Progress;
use crate::schema::{parse_header, sniff, Schema};
use crate::source::{self, OpenOptions, SourceSpec};

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
    /// Chunks cut.
    pub chunks: u64,
    /// Blank lines before the header.
    pub leading_blank: u64,
    /// The header's schema.
    pub schema: Arc<Schema>,
}

/// Reads one source.
pub struct Fetcher {
    spec: SourceSpec,
    open: OpenOptions,
    chunk_size: usize,
    max_line: usize,
    columns: Columns,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
}

impl Fetcher {
    /// A fetcher for `spec`, cutting chunks of about `chunk_size` bytes.
    pub fn new(
        spec: SourceSpec,
        open: OpenOptions,
        (chunk_size, max_line): (usize, usize),
        columns: Columns,
        gate: Arc<Gate>,
        progress: Arc<Progress>,
    ) -> Fetcher {
        Fetcher { spec, open, chunk_size, max_line, columns, gate, progress }
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;
}

impl Handler<Fetch> for Fetcher {
    type Result = ResponseFuture<Result<FetchReport, Error>>;

    fn handle(&mut self, msg: Fetch, _ctx: &mut Self::Context) -> Self::Result {
        let run = Run {
            spec: self.spec.clone(),
            open: self.open.clone(),
            chunker: Chunker::new(self.chunk_size, self.max_line, 0, 1),
            columns: self.columns.clone(),
            gate: self.gate.clone(),
            progress: self.progress.clone(),
            jobs: msg.jobs,
            leading_blank: 0,
            sniffed: false,
        };
        Box::pin(run.fetch())
    }
}

/// State of one read of the source.
struct Run {
    spec: SourceSpec,
    open: OpenOptions,
    chunker: Chunker,
    columns: Columns,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
    jobs: Sender<ParseJob>,
    leading_blank: u64,
    sniffed: bool,
}

impl Run {
    async fn fetch(mut self) -> Result<FetchReport, Error> {
        let opened = source::open(&self.spec, &self.open).await?;
        self.progress.set_total(opened.len);
        let mut stream = opened.stream;
        let mut schema: Option<Arc<Schema>> = None;
        let mut bytes = 0u64;
        loop {
            let block = stream.next().await.transpose()?;
            let eof = block.is_none();
            if let Some(block) = block {
                bytes += block.len() as u64;
                self.progress.bytes_read(block.len() as u64);
                self.chunker.push_bytes(block);
            }
            if schema.is_none() {
                schema = self.header(eof)?.map(Arc::new);
            }
            let Some(schema) = &schema else { continue };
            while let Some(chunk) = self.chunker.next_chunk()? {
                self.dispatch(chunk, schema, false).await?;
            }
            if eof {
                while let Some(chunk) = self.chunker.finish() {
                    let last = self.chunker.buffered() == 0;
                    self.dispatch(chunk, schema, last).await?;
                }
                let chunks = self.chunker.chunks();
                return Ok(FetchReport {
                    bytes,
                    chunks,
                    leading_blank: self.leading_blank,
                    schema: schema.clone(),
                });
            }
        }
    }

    /// Finds and checks the header once enough bytes have arrived; `None` means "need more".
    fn header(&mut self, eof: bool) -> Result<Option<Schema>, Error> {
        if !self.sniffed && (self.chunker.buffered() >= 1024 || eof || self.chunker.has_line()) {
            sniff(self.chunker.peek())?;
            self.sniffed = true;
        }
        while let Some(line) = self.chunker.take_line()? {
            let text = trim_line_end(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                self.leading_blank += 1;
                continue;
            }
            return Ok(Some(parse_header(text, self.chunker.line() - 1, &self.columns)?));
        }
        if !eof {
            return Ok(None);
        }
        // The input ended inside its first non-blank line: that line is the header.
        let line_no = self.chunker.line();
        let rest = self.chunker.finish().map(|c| c.data).unwrap_or_default();
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Err(DataError::Empty { expected: expected_columns(&self.columns) }.into());
        }
        parse_header(trim_line_end(&rest), line_no, &self.columns)?;
        Err(DataError::HeaderOnly { bytes: rest.len() as u64 }.into())
    }

    async fn dispatch(&mut self, chunk: Chunk, schema: &Arc<Schema>, at_end: bool) -> Result<(), Error> {
        let ticket = self.gate.enter().await;
        tracing::trace!(seq = chunk.seq, offset = chunk.offset, "chunk admitted");
        let job = ParseJob { chunk, schema: schema.clone(), at_end, ticket };
        self.jobs.try_send(job).map_err(|e| Error::Internal(format!("parse queue refused a chunk: {e}")))
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn expected_columns(c: &Columns) -> String {
    [&c.date, &c.time, &c.outside, &c.hi, &c.low].map(|s| s.as_str()).join(", ")
}
