//! One HTTP source over several connections at once (`pipeline.connections`), for servers that
//! cap each connection far below what wxflow can parse.
//!
//! The source is cut into pieces of [`PIECE`] bytes; up to `connections` pieces download at the
//! same time, each over its own ranged request (`Range: bytes=A-B`, with `If-Range` so that every
//! piece comes from the same version), and the pieces are handed on in order, as one stream of
//! blocks, exactly as a single download would be. The consumer reads the oldest piece while the
//! next ones download; a piece holds at most [`PIECE`] bytes in memory until it is read (a byte
//! semaphore per piece), so memory stays within `connections × PIECE` however large the source
//! is. A server that ignores `Range` gets one ordinary download instead. A piece that fails ends
//! the stream with the byte offset reached, so the fetcher's retry reopens from there.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Semaphore};

use super::{error_chain, http_client, http_identity, ByteStream, OpenOptions, Opened, ResumeFrom};
use crate::error::SourceError;

/// Bytes per piece: large enough that a request's round trip is small beside its transfer, small
/// enough that `connections` pieces in memory stay modest.
pub const PIECE: u64 = 8 << 20;

/// A piece's bytes as they arrive; the piece's byte semaphore bounds what waits here.
type PieceRx = mpsc::Receiver<Result<Bytes, SourceError>>;

/// What every piece request needs.
#[derive(Clone)]
struct Fetch {
    client: reqwest::Client,
    url: String,
    validator: Option<String>,
}

/// Opens `url` from `from` (or the start) over `opts.connections` ranged connections; `None` when
/// the server does not serve ranges, so the caller opens it as one download instead.
pub(super) async fn open(
    url: &str,
    opts: &OpenOptions,
    from: Option<&ResumeFrom>,
) -> Result<Option<Opened>, SourceError> {
    let client = http_client(url, opts)?;
    let start = from.map_or(0, |f| f.offset);
    let expected = from.and_then(|f| f.expect.etag.clone().or_else(|| f.expect.last_modified.clone()));
    let probe = Fetch { client, url: url.to_string(), validator: expected };
    let first = probe.request(start, start + PIECE).await?;
    let status = first.status();
    if let (Some(from), reqwest::StatusCode::RANGE_NOT_SATISFIABLE) = (from, status) {
        let changes = format!("it no longer reaches the checkpoint's byte {}", from.offset);
        return Err(from.changed(url, changes));
    }
    if status != reqwest::StatusCode::PARTIAL_CONTENT {
        return Ok(None); // 200 (ranges ignored, or another version) or an error: one download decides
    }
    let identity = http_identity(url, &first, true);
    if let Some(from) = from {
        from.check(url, &identity)?;
    }
    let Some(total) = identity.size else { return Ok(None) };
    let fetch =
        Fetch { validator: identity.etag.clone().or_else(|| identity.last_modified.clone()), ..probe };
    let stream = in_order(fetch, first, start, total, opts.connections.max(1));
    Ok(Some(Opened { stream, len: Some(total), identity }))
}

impl Fetch {
    /// Asks for bytes `[a, b)` of this version of the source.
    async fn request(&self, a: u64, b: u64) -> Result<reqwest::Response, SourceError> {
        let mut request =
            self.client.get(&self.url).header(reqwest::header::RANGE, format!("bytes={a}-{}", b - 1));
        if let Some(v) = &self.validator {
            request = request.header(reqwest::header::IF_RANGE, v.as_str());
        }
        request
            .send()
            .await
            .map_err(|e| SourceError::Connect { url: self.url.clone(), detail: error_chain(&e) })
    }
}

/// Downloads `[start, total)` in pieces, `connections` at a time, and yields their bytes in order.
fn in_order(
    fetch: Fetch,
    first: reqwest::Response,
    start: u64,
    total: u64,
    connections: usize,
) -> ByteStream {
    let (tx, rx) = mpsc::channel::<Result<Bytes, SourceError>>(2);
    tokio::spawn(async move {
        let mut pieces: VecDeque<(PieceRx, Arc<Semaphore>)> = VecDeque::new();
        let mut next = (start + PIECE).min(total);
        pieces.push_back(spawn_piece(&fetch, start, next, Some(first)));
        loop {
            while pieces.len() < connections && next < total {
                let end = (next + PIECE).min(total);
                pieces.push_back(spawn_piece(&fetch, next, end, None));
                next = end;
            }
            let Some((mut piece, room)) = pieces.pop_front() else { return };
            while let Some(item) = piece.recv().await {
                let failed = item.is_err();
                if let Ok(block) = &item {
                    room.add_permits(block.len().min(PIECE as usize));
                }
                if tx.send(item).await.is_err() || failed {
                    return; // the reader stopped, or this piece failed: the fetcher retries from here
                }
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// Starts downloading `[a, b)` (using `response` if its request was already made); its bytes wait
/// in the returned channel, at most [`PIECE`] of them at a time.
fn spawn_piece(
    fetch: &Fetch,
    a: u64,
    b: u64,
    response: Option<reqwest::Response>,
) -> (PieceRx, Arc<Semaphore>) {
    let (tx, rx) = mpsc::channel(1024);
    let room = Arc::new(Semaphore::new(PIECE as usize));
    let (fetch, held) = (fetch.clone(), room.clone());
    tokio::spawn(async move {
        if let Err(e) = download(&fetch, a, b, response, &tx, &held).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    (rx, room)
}

async fn download(
    fetch: &Fetch,
    a: u64,
    b: u64,
    response: Option<reqwest::Response>,
    tx: &mpsc::Sender<Result<Bytes, SourceError>>,
    room: &Semaphore,
) -> Result<(), SourceError> {
    let response = match response {
        Some(r) => r,
        None => fetch.request(a, b).await?,
    };
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(SourceError::Read {
            what: fetch.url.clone(),
            byte: a,
            detail: format!(
                "the server answered {} to a request for bytes {a} to {b} of the same version (If-Range), \
                 so the source changed or stopped serving ranges",
                response.status()
            ),
        });
    }
    let mut body = response.bytes_stream();
    let mut at = a;
    while let Some(next) = body.next().await {
        let block = next.map_err(|e| SourceError::Read {
            what: fetch.url.clone(),
            byte: at,
            detail: error_chain(&e),
        })?;
        let block = block.slice(..block.len().min((b - at) as usize));
        let wanted = block.len().min(PIECE as usize) as u32;
        tokio::select! {
            permits = room.acquire_many(wanted) => match permits {
                Ok(permits) => permits.forget(),
                Err(_) => return Ok(()),
            },
            () = tx.closed() => return Ok(()), // the reader went away: stop downloading
        }
        at += block.len() as u64;
        if tx.send(Ok(block)).await.is_err() || at >= b {
            return Ok(());
        }
    }
    if at < b {
        return Err(SourceError::Read {
            what: fetch.url.clone(),
            byte: at,
            detail: format!("the connection ended after {} of the {} bytes asked for", at - a, b - a),
        });
    }
    Ok(())
}
