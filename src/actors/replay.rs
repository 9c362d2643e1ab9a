//! Replay: reading chunks again from the source, for a task actor restarted on its own.
//!
//! A task actor that fails loses the partial states of its open epochs, so the chunks it had
//! folded into them must reach its new instance again. Those chunks left the in-flight bound long
//! ago, and keeping a log of every chunk for this purpose would be an unbounded buffer. Instead
//! each chunk carries its [`Span`] (byte range and first line), and replay reads exactly those
//! byte ranges again from the source — a seek for a file, `Range` with `If-Range` for HTTP,
//! checked against the identity the job opened, so a source that changed meanwhile is refused —
//! and parses them with the same parser. A reader thread yields one chunk's readings at a time
//! through a channel of one, so replay adds at most about two chunks to the memory in use.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::StreamExt;

use crate::actors::checkpoint::JobFacts;
use crate::chunk::Span;
use crate::parse::{parse_chunk, Reading};
use crate::source::{self, OpenOptions, ResumeFrom, SourceSpec};

/// Where a job's chunks can be read again.
#[derive(Debug)]
pub struct ReplaySource {
    /// The job's source.
    pub spec: SourceSpec,
    /// How to open it.
    pub open: OpenOptions,
    /// The identity and schema the fetcher found, which a re-read must match.
    pub facts: Arc<JobFacts>,
    /// Where the job's checkpoints are, for messages about a changed source.
    pub dir: String,
}

/// One replayed chunk: its span and readings, or why it could not be read.
pub type Replayed = Result<(Span, Vec<Reading>), String>;

impl ReplaySource {
    /// Standard input cannot be read twice; everything else can.
    pub fn can_replay(&self) -> bool {
        self.spec != SourceSpec::Stdin
    }

    /// Reads the chunks at `spans` (in chunk order) again, yielding them one by one in the same
    /// order. Dropping the iterator early stops the reads.
    pub fn replay(&self, spans: Vec<Span>) -> impl Iterator<Item = Replayed> {
        let (tx, rx) = crossbeam_channel::bounded::<Replayed>(1);
        let job = ReadAgain {
            spec: self.spec.clone(),
            open: self.open.clone(),
            facts: self.facts.clone(),
            dir: self.dir.clone(),
            spans,
        };
        let spawned = std::thread::Builder::new().name("wxflow-replay".into()).spawn(move || {
            if let Err(e) = job.run(&tx) {
                let _ = tx.send(Err(e));
            }
        });
        if let Err(e) = spawned {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = tx.send(Err(format!("cannot start a replay thread: {e}")));
            return rx.into_iter();
        }
        rx.into_iter()
    }
}

/// A replay's work, owned by its thread.
struct ReadAgain {
    spec: SourceSpec,
    open: OpenOptions,
    facts: Arc<JobFacts>,
    dir: String,
    spans: Vec<Span>,
}

impl ReadAgain {
    fn run(self, tx: &crossbeam_channel::Sender<Replayed>) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a replay runtime: {e}"))?;
        runtime.block_on(self.read(tx))
    }

    async fn read(&self, tx: &crossbeam_channel::Sender<Replayed>) -> Result<(), String> {
        let (Some(identity), Some(schema)) = (self.facts.identity.get(), self.facts.schema.get()) else {
            return Err("the source was never opened, so there is nothing to read again".into());
        };
        for run in contiguous(&self.spans) {
            let from = ResumeFrom {
                offset: run[0].offset,
                until: run.last().map(|s| s.end),
                expect: identity.clone(),
                dir: self.dir.clone(),
            };
            let opened =
                source::open(&self.spec, &self.open, Some(&from)).await.map_err(|e| e.to_string())?;
            let mut stream = opened.stream;
            let mut buf = BytesMut::new();
            for span in run {
                let len = (span.end - span.offset) as usize;
                while buf.len() < len {
                    match stream.next().await {
                        Some(Ok(block)) => buf.extend_from_slice(&block),
                        Some(Err(e)) => return Err(e.to_string()),
                        None => {
                            return Err(format!(
                                "the source ended at byte {} while reading chunk {} (bytes {} to {}) again",
                                span.offset + buf.len() as u64,
                                span.seq,
                                span.offset,
                                span.end
                            ))
                        }
                    }
                }
                let data = buf.split_to(len).freeze();
                let readings = parse_chunk(&data, span.first_line, schema, span.at_end).readings;
                if tx.send(Ok((*span, readings))).is_err() {
                    return Ok(()); // the actor stopped listening
                }
            }
        }
        Ok(())
    }
}

/// Splits spans (in chunk order) into runs of adjacent byte ranges, each read with one request.
fn contiguous(spans: &[Span]) -> Vec<&[Span]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=spans.len() {
        if i == spans.len() || spans[i].offset != spans[i - 1].end {
            if i > start {
                runs.push(&spans[start..i]);
            }
            start = i;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(seq: u64, offset: u64, end: u64) -> Span {
        Span { seq, offset, end, first_line: 0, at_end: false }
    }

    #[test]
    fn adjacent_chunks_are_read_in_one_run() {
        let spans = [span(3, 10, 20), span(4, 20, 30), span(6, 40, 50), span(7, 50, 55)];
        let runs = contiguous(&spans);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], &spans[..2]);
        assert_eq!(runs[1], &spans[2..]);
        assert!(contiguous(&[]).is_empty());
    }

    #[test]
    fn reads_exactly_the_chunks_asked_for_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        let header = "Date,Time,Outside Temperature,Hi Temperature,Low Temperature\n";
        let rows = ["01/06/2006,00:00,10.0,11.0,9.0\n", "01/06/2006,00:30,12.5,13.0,12.0\n", "bad\n"];
        std::fs::write(&path, format!("{header}{}", rows.concat())).unwrap();
        let facts = Arc::new(JobFacts::default());
        let meta = std::fs::metadata(&path).unwrap();
        let identity = crate::durable::SourceIdentity {
            location: std::fs::canonicalize(&path).unwrap().display().to_string(),
            size: Some(meta.len()),
            etag: None,
            last_modified: None,
            mtime_ns: meta
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_nanos() as i128),
        };
        let _ = facts.identity.set(identity);
        let columns = crate::schema::Columns {
            date: "Date".into(),
            time: "Time".into(),
            outside: "Outside Temperature".into(),
            hi: "Hi Temperature".into(),
            low: "Low Temperature".into(),
        };
        let schema = crate::schema::parse_header(header.trim_end().as_bytes(), 1, &columns).unwrap();
        let _ = facts.schema.set(Arc::new(schema));
        let source = ReplaySource {
            spec: SourceSpec::File(path),
            open: OpenOptions {
                block_size: 7,
                connect_timeout: std::time::Duration::from_secs(1),
                read_timeout: std::time::Duration::from_secs(1),
                connections: 1,
                map_files: true,
            },
            facts,
            dir: "checkpoints".into(),
        };
        let h = header.len() as u64;
        let (a, b) = (rows[0].len() as u64, rows[1].len() as u64);
        let spans = vec![
            Span { seq: 1, offset: h + a, end: h + a + b, first_line: 3, at_end: false },
            Span { seq: 2, offset: h + a + b, end: h + a + b + 4, first_line: 4, at_end: true },
        ];
        let got: Vec<Replayed> = source.replay(spans.clone()).collect();
        assert_eq!(got.len(), 2);
        let (s1, r1) = got[0].clone().unwrap();
        assert_eq!((s1, r1.len()), (spans[0], 1));
        assert_eq!(r1[0].outside.to_string(), "12.5");
        assert_eq!(got[1].clone().unwrap().1.len(), 0, "the bad row is a reject, not a reading");
    }
}
