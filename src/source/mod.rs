//! Where the bytes come from: an HTTP(S) URL, a local file or standard input.
//!
//! Every source is opened as the same thing, a stream of byte blocks, so the fetcher actor does not
//! care where data comes from and can resume any of them by byte offset later.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::durable::SourceIdentity;
use crate::error::SourceError;
use crate::recycle::Recycler;

mod mapped;
pub mod range;
mod segmented;

/// A parsed `job.source` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `http://` or `https://` URL.
    Http(String),
    /// A local file.
    File(PathBuf),
    /// `-`: standard input.
    Stdin,
}

impl SourceSpec {
    /// Classifies a source string, refusing URL schemes wxflow cannot fetch.
    pub fn parse(text: &str) -> Result<SourceSpec, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must be a URL, a file path or \"-\" for standard input".into());
        }
        if text == "-" {
            return Ok(SourceSpec::Stdin);
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" if !rest.is_empty() => Ok(SourceSpec::Http(text.to_string())),
                "http" | "https" => Err("URL has no host".into()),
                "file" => Ok(SourceSpec::File(PathBuf::from(rest))),
                other => Err(format!(
                    "unsupported scheme `{other}://`; use http://, https://, a file path or \"-\""
                )),
            };
        }
        Ok(SourceSpec::File(PathBuf::from(text)))
    }

    /// A short name for logs and messages.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Http(url) => url.clone(),
            SourceSpec::File(path) => path.display().to_string(),
            SourceSpec::Stdin => "standard input".into(),
        }
    }
}

/// Blocks of input bytes in order; errors carry the byte offset reached.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>;

/// An opened source: its blocks and, when known, its total length (for the progress bar).
pub struct Opened {
    /// The bytes, from the requested offset on.
    pub stream: ByteStream,
    /// Total length of the whole source if the file size or Content-Length is known.
    pub len: Option<u64>,
    /// What the source is, for checkpoints: a resumed run must read the same data.
    pub identity: SourceIdentity,
}

/// Where a resumed read starts, and what the source must still be.
#[derive(Debug, Clone)]
pub struct ResumeFrom {
    /// First byte to read.
    pub offset: u64,
    /// Byte to stop before, when only a piece is wanted (a replay); `None` reads to the end.
    pub until: Option<u64>,
    /// The identity recorded in the checkpoint.
    pub expect: SourceIdentity,
    /// The checkpoint folder, for messages; empty when a running job reopens its source (a
    /// retry, a cluster range's probe), where a change means the data changed under the job.
    pub dir: String,
}

impl ResumeFrom {
    /// The error for a source that is no longer what was expected: changed since a checkpoint
    /// (rerun with `--fresh`), or changed while this job was reading it (run again once the
    /// source is complete; `--fresh` would not help).
    fn changed(&self, what: &str, changes: String) -> SourceError {
        let what = what.to_string();
        match self.dir.is_empty() {
            true => SourceError::ChangedDuringRun { what, changes },
            false => SourceError::Changed { what, dir: self.dir.clone(), changes },
        }
    }

    fn check(&self, what: &str, now: &SourceIdentity) -> Result<(), SourceError> {
        let mut changes = self.expect.changes(now);
        if changes.is_empty() && now.size.is_some_and(|size| size < self.offset) {
            changes.push(format!(
                "now {} bytes, shorter than the checkpoint's byte {}",
                now.size.unwrap_or(0),
                self.offset
            ));
        }
        if changes.is_empty() {
            return Ok(());
        }
        Err(self.changed(what, changes.join(", ")))
    }
}

/// Timeouts and read sizes for opening a source.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Size of each read from files and stdin.
    pub block_size: usize,
    /// HTTP connect timeout.
    pub connect_timeout: Duration,
    /// HTTP per-read timeout.
    pub read_timeout: Duration,
    /// Parallel ranged connections for an HTTP source (1 = one ordinary download).
    pub connections: usize,
    /// Read regular files by mapping them (`source/mapped.rs`) rather than with `read`.
    pub map_files: bool,
}

/// Opens the source, from the start or (resuming) from a byte offset after checking that it is
/// still the same data; nothing is read yet beyond what HTTP needs for the status line.
pub async fn open(
    spec: &SourceSpec,
    opts: &OpenOptions,
    from: Option<&ResumeFrom>,
) -> Result<Opened, SourceError> {
    let mut opened = match spec {
        SourceSpec::File(path) => open_file(path, opts, from).await?,
        SourceSpec::Stdin => Opened {
            stream: read_aligned(std::io::stdin(), opts.block_size, "standard input".into(), 0, None),
            len: None,
            identity: SourceIdentity {
                location: "-".into(),
                size: None,
                etag: None,
                last_modified: None,
                mtime_ns: None,
            },
        },
        SourceSpec::Http(url) => open_http(url, opts, from).await?,
    };
    if let Some(from @ ResumeFrom { until: Some(until), .. }) = from {
        opened.stream = range::limit(opened.stream, from.offset, *until);
    }
    Ok(opened)
}

/// A file's identity: its canonical path, size and modification time.
fn file_identity(path: &Path, meta: &std::fs::Metadata) -> SourceIdentity {
    let location = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128);
    SourceIdentity { location, size: Some(meta.len()), etag: None, last_modified: None, mtime_ns }
}

async fn open_file(
    path: &Path,
    opts: &OpenOptions,
    from: Option<&ResumeFrom>,
) -> Result<Opened, SourceError> {
    let open_err = |source| SourceError::Open {
        path: path.to_path_buf(),
        cwd: std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string()),
        source,
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    if meta.is_dir() {
        return Err(open_err(std::io::Error::other("it is a directory, not a file")));
    }
    let len = meta.is_file().then_some(meta.len());
    let identity = file_identity(path, &meta);
    let mut file = file;
    let offset = match from {
        Some(from) => {
            from.check(&path.display().to_string(), &identity)?;
            file.seek(SeekFrom::Start(from.offset)).map_err(open_err)?;
            from.offset
        }
        None => 0,
    };
    let what = path.display().to_string();
    // A file is read up to the size it had when it was opened (what its identity records), mapped
    // or not; a replay's `until` is applied by `open`, as for every source. A size of 0 may be a
    // file whose size the kernel does not know (/proc): read it all.
    let end = len.filter(|&len| len > 0);
    let stream = match end {
        Some(end) if opts.map_files => mapped::map_aligned(file, end, opts.block_size, what, offset),
        _ => read_aligned(file, opts.block_size, what, offset, end),
    };
    Ok(Opened { stream, len, identity })
}

/// Reads a blocking source (file, stdin) on its own thread into line-aligned blocks of about
/// `block` bytes, up to byte `end` if given: a file's size when it was opened. A file that ends
/// before it (truncated by another program mid-run) is a read error, not a shorter input: its
/// reports would silently cover part of it.
///
/// The kernel copies straight into the block's buffer (`read_to_end` fills spare capacity without
/// zeroing it) and the block is handed on without further copies; only the partial line at its
/// end is copied into the next buffer, and buffers are recycled ([`crate::recycle`]). The
/// chunker takes such blocks as whole chunks.
fn read_aligned<R: Read + Send + 'static>(
    reader: R,
    block: usize,
    what: String,
    offset: u64,
    end: Option<u64>,
) -> ByteStream {
    let mut blocks = AlignedBlocks {
        reader,
        block: block.max(1),
        tail: Bytes::new(),
        offset,
        end,
        eof: false,
        buffers: Recycler::new(KEEP_BUFFERS),
    };
    blocks_from_thread(move || blocks.next_block(&what))
}

/// Runs a blocking block producer on its own thread (`wxflow-read`) until it is done or fails,
/// handing the blocks on as a stream. Two blocks at most wait in the channel, so a stalled
/// pipeline stops the reads.
fn blocks_from_thread<F>(mut next: F) -> ByteStream
where
    F: FnMut() -> Option<Result<Bytes, SourceError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, SourceError>>(2);
    let spawned = std::thread::Builder::new().name("wxflow-read".into()).spawn(move || {
        while let Some(item) = next() {
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    if let Err(e) = spawned {
        return Box::pin(futures_util::stream::once(async move {
            Err(SourceError::Read { what: "a reader thread".into(), byte: 0, detail: e.to_string() })
        }));
    }
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// Most idle read buffers [`read_aligned`] keeps for reuse: more than the chunks a pipeline holds
/// at its default bounds (8 in flight, 2 queued blocks), so none is freed in a steady run.
const KEEP_BUFFERS: usize = 16;

/// Room kept in each read buffer beyond the block for the partial line carried over, so that a
/// recycled buffer rarely has to grow.
const TAIL_ROOM: usize = 64 * 1024;

/// The state of [`read_aligned`]'s thread.
struct AlignedBlocks<R> {
    reader: R,
    block: usize,
    tail: Bytes,
    /// Byte offset of `tail`'s first byte.
    offset: u64,
    /// Where the input must end, if known.
    end: Option<u64>,
    eof: bool,
    buffers: Recycler<u8>,
}

impl<R: Read> AlignedBlocks<R> {
    /// The next block: whole lines up to the last line break read so far (or everything, at the
    /// end of input or after a line longer than two blocks).
    fn next_block(&mut self, what: &str) -> Option<Result<Bytes, SourceError>> {
        loop {
            if self.eof {
                let rest = std::mem::take(&mut self.tail);
                return (!rest.is_empty()).then_some(Ok(rest));
            }
            let mut buf = self.buffers.take(self.tail.len().max(TAIL_ROOM) + self.block);
            buf.extend_from_slice(&self.tail);
            let read_at = self.offset + self.tail.len() as u64;
            let want =
                self.end.map_or(self.block as u64, |end| end.saturating_sub(read_at).min(self.block as u64));
            let got = match (&mut self.reader).take(want).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let byte = self.offset + buf.len() as u64;
                    self.eof = true;
                    self.tail = Bytes::new();
                    return Some(Err(SourceError::Read {
                        what: what.to_string(),
                        byte,
                        detail: e.to_string(),
                    }));
                }
            };
            let reached = read_at + got as u64;
            if let Some(end) = self.end.filter(|&end| (got as u64) < want && reached < end) {
                self.eof = true;
                self.tail = Bytes::new();
                let detail = format!(
                    "the file ended at byte {reached} but had {end} bytes when the run opened it: another \
                     program truncated or rewrote it; run again once it is complete"
                );
                // The lines read since the last block are dropped with the error: the input is
                // not usable past this block, and the error says how far it was handed on.
                return Some(Err(SourceError::Read { what: what.to_string(), byte: self.offset, detail }));
            }
            self.eof = (got as u64) < want || self.end.is_some_and(|end| reached >= end);
            let data = Bytes::from_owner(self.buffers.lend(buf));
            let cut = match memchr::memrchr(b'\n', &data) {
                Some(pos) if !self.eof => pos + 1,
                None if !self.eof && data.len() < 2 * self.block => {
                    self.tail = data; // no line break yet: read more
                    continue;
                }
                _ => data.len(),
            };
            self.tail = data.slice(cut..);
            self.offset += cut as u64;
            return Some(Ok(data.slice(..cut)));
        }
    }
}

/// Maps a stream's errors to [`SourceError::Read`] carrying the byte offset reached, so a failure
/// mid-download says how far it got.
fn counted<S, E: 'static>(stream: S, what: String, start: u64, detail: fn(&E) -> String) -> ByteStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
{
    let mut offset = start;
    Box::pin(stream.map(move |item| match item {
        Ok(bytes) => {
            offset += bytes.len() as u64;
            Ok(bytes)
        }
        Err(e) => Err(SourceError::Read { what: what.clone(), byte: offset, detail: detail(&e) }),
    }))
}

/// The HTTP client every request of a source uses: timeouts and a user agent.
fn http_client(url: &str, opts: &OpenOptions) -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .user_agent(concat!("wxflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Connect { url: url.to_string(), detail: error_chain(&e) })
}

async fn open_http(url: &str, opts: &OpenOptions, from: Option<&ResumeFrom>) -> Result<Opened, SourceError> {
    // A replay asks for a closed range: one request serves it.
    if opts.connections > 1 && from.is_none_or(|f| f.until.is_none()) {
        if let Some(opened) = segmented::open(url, opts, from).await? {
            return Ok(opened);
        }
        tracing::warn!(url, "the server does not serve byte ranges; downloading over one connection");
    }
    let connect_err =
        |e: reqwest::Error| SourceError::Connect { url: url.to_string(), detail: error_chain(&e) };
    let client = http_client(url, opts)?;
    let mut request = client.get(url);
    if let Some(from) = from {
        let last = from.until.filter(|&u| u > from.offset).map(|u| (u - 1).to_string()).unwrap_or_default();
        request = request.header(reqwest::header::RANGE, format!("bytes={}-{last}", from.offset));
        if let Some(validator) = from.expect.etag.as_ref().or(from.expect.last_modified.as_ref()) {
            request = request.header(reqwest::header::IF_RANGE, validator.as_str());
        }
    }
    let response = request.send().await.map_err(connect_err)?;
    let status = response.status();
    if let (Some(from), reqwest::StatusCode::RANGE_NOT_SATISFIABLE) = (from, status) {
        let changes = format!("it no longer reaches the checkpoint's byte {}", from.offset);
        return Err(from.changed(url, changes));
    }
    if !status.is_success() {
        return Err(SourceError::HttpStatus { url: url.to_string(), status: status.to_string() });
    }
    let partial = status == reqwest::StatusCode::PARTIAL_CONTENT;
    let identity = http_identity(url, &response, partial);
    let len = identity.size;
    let mut skip = 0;
    if let Some(from) = from {
        from.check(url, &identity)?;
        if !partial {
            // Same validators, but the whole body: the server ignores Range. Read and drop the
            // bytes before the checkpoint rather than refuse (documented in the README).
            tracing::warn!(
                url,
                offset = from.offset,
                "the server ignored the Range request; skipping {} bytes already processed",
                from.offset
            );
            skip = from.offset;
        }
    }
    let start = from.map_or(0, |f| f.offset);
    let body =
        counted(response.bytes_stream(), url.to_string(), start - skip, |e: &reqwest::Error| error_chain(e));
    Ok(Opened { stream: skip_bytes(body, skip), len, identity })
}

/// An HTTP source's identity from a response: total size (from `Content-Range` for a 206), ETag and
/// Last-Modified.
fn http_identity(url: &str, response: &reqwest::Response, partial: bool) -> SourceIdentity {
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let size = if partial {
        header(reqwest::header::CONTENT_RANGE)
            .and_then(|range| range.rsplit('/').next().and_then(|total| total.trim().parse().ok()))
    } else {
        response.content_length()
    };
    SourceIdentity {
        location: url.to_string(),
        size,
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
        mtime_ns: None,
    }
}

/// Drops the first `skip` bytes of a stream.
fn skip_bytes(stream: ByteStream, mut skip: u64) -> ByteStream {
    if skip == 0 {
        return stream;
    }
    Box::pin(stream.filter_map(move |item| {
        let out = match item {
            Ok(block) if skip >= block.len() as u64 => {
                skip -= block.len() as u64;
                None
            }
            Ok(mut block) => {
                let rest = block.split_off(skip as usize);
                skip = 0;
                Some(Ok(rest))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    }))
}

/// Joins an error and its causes: reqwest's top-level message alone ("error sending request")
/// does not tell the user that the connection was refused.
/// An error and its causes on one line, for messages about network failures.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(input: &'static [u8], block: usize) -> Vec<Bytes> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let stream = read_aligned(input, block, "test".into(), 0, None);
            stream.map(|b| b.unwrap()).collect::<Vec<_>>().await
        })
    }

    #[test]
    fn reader_blocks_are_line_aligned_and_complete() {
        let input: &[u8] = b"aa\nbbbb\nc\ndddddddddddd\ne";
        for block in 1..12 {
            let got = blocks(input, block);
            assert_eq!(got.concat(), input, "block {block}");
            for b in &got[..got.len() - 1] {
                assert!(b.ends_with(b"\n") || b.len() >= 2 * block, "block {block}: {b:?}");
            }
        }
    }

    fn read_all(input: &'static [u8], block: usize, end: Option<u64>) -> Vec<Result<Bytes, SourceError>> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(read_aligned(input, block, "test".into(), 0, end).collect::<Vec<_>>())
    }

    #[test]
    fn a_file_is_read_up_to_its_size_at_open_and_ending_before_it_is_an_error() {
        for block in 1..8 {
            let got: Vec<Bytes> =
                read_all(b"a\nb\nc\n", block, Some(4)).into_iter().map(Result::unwrap).collect();
            assert_eq!(
                got.concat(),
                b"a\nb\n",
                "block {block}: the bytes appended after opening are not read"
            );
            let got = read_all(b"a\nb\n", block, Some(10));
            let (last, before) = got.split_last().unwrap();
            let handed: Vec<u8> = before.iter().flat_map(|b| b.as_ref().unwrap().to_vec()).collect();
            assert!(b"a\nb\n".starts_with(&handed), "block {block}: {handed:?}");
            let err = last.as_ref().unwrap_err().to_string();
            assert!(
                err.contains("the file ended at byte 4 but had 10 bytes when the run opened it"),
                "{err}"
            );
        }
    }

    #[test]
    fn classifies_sources() {
        assert_eq!(SourceSpec::parse("-"), Ok(SourceSpec::Stdin));
        assert_eq!(
            SourceSpec::parse("http://www.fifeweather.co.uk/cowdenbeath/200606.csv"),
            Ok(SourceSpec::Http("http://www.fifeweather.co.uk/cowdenbeath/200606.csv".into()))
        );
        assert_eq!(SourceSpec::parse("data/x.csv"), Ok(SourceSpec::File("data/x.csv".into())));
        assert!(SourceSpec::parse("ftp://host/x").unwrap_err().contains("unsupported scheme `ftp://`"));
        assert!(SourceSpec::parse("https://").is_err());
        assert!(SourceSpec::parse("  ").is_err());
    }
}
