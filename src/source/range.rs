//! Byte ranges that own whole lines: how one source is split into pieces that can be processed
//! apart (by several workers of a cluster) and still see every line exactly once.
//!
//! A range `[a, b)` owns the lines whose first byte lies in `[a, b)`. A line's first byte is byte 0
//! or the byte after a `\n`. So a range reads from `a - 1`, skips through the first `\n` (the tail
//! of a line owned by the range before it, or just the `\n` ending it), and reads past `b` to finish
//! its last line. Whatever the boundaries, consecutive ranges tile the source: this is what lets a
//! merge of their partial states equal one pass.

use futures_util::StreamExt;

use super::{ByteStream, OpenOptions, ResumeFrom, SourceSpec};
use crate::durable::SourceIdentity;
use crate::error::SourceError;

/// `[start, end)` of a source's bytes; it owns the lines that begin inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Byte after the last (the next range's start).
    pub end: u64,
}

impl ByteRange {
    /// Where to start reading: one byte early, to see whether a line begins at `start`.
    pub fn read_from(&self) -> u64 {
        self.start.saturating_sub(1)
    }

    /// The owned lines within a whole source held in memory, as a span of `data` — the reference
    /// the streaming [`line_start_at`] is tested against.
    pub fn owned_span(&self, data: &[u8]) -> std::ops::Range<usize> {
        let first = line_start_from(data, self.start);
        first..line_start_from(data, self.end).max(first)
    }
}

/// The first line start at or after byte `at` of `data` (its length if none): byte 0, or the
/// byte after a `\n`.
fn line_start_from(data: &[u8], at: u64) -> usize {
    match at as usize {
        0 => 0,
        at if at > data.len() => data.len(),
        at => memchr::memchr(b'\n', &data[at - 1..]).map_or(data.len(), |i| at + i),
    }
}

/// The first line start at or after byte `at` of a source (its size if none), found by reading
/// from `at - 1` up to the first `\n`: the streaming counterpart of [`ByteRange::owned_span`]'s
/// bounds. A cluster worker turns its range `[a, b)` into the line-aligned `[s, e)` it owns this
/// way, and then reads exactly those bytes.
pub async fn line_start_at(
    spec: &SourceSpec,
    opts: &OpenOptions,
    expect: &SourceIdentity,
    at: u64,
) -> Result<u64, SourceError> {
    let size = expect.size.unwrap_or(u64::MAX);
    if at == 0 || at >= size {
        return Ok(at.min(size));
    }
    // Ask for a window at a time (a closed range: the server sends no more than that), doubling
    // it for long lines.
    let (mut pos, mut window) = (at - 1, PROBE);
    while pos < size {
        let until = pos.saturating_add(window).min(size);
        let from = ResumeFrom { offset: pos, until: Some(until), expect: expect.clone(), dir: String::new() };
        let mut stream = super::open(spec, opts, Some(&from)).await?.stream;
        while let Some(block) = stream.next().await {
            let block = block?;
            if let Some(i) = memchr::memchr(b'\n', &block) {
                return Ok(pos + i as u64 + 1);
            }
            pos += block.len() as u64;
        }
        if pos < until {
            break; // the source ended early
        }
        window = window.saturating_mul(2);
    }
    Ok(pos)
}

/// The first window [`line_start_at`] reads: lines are far shorter.
const PROBE: u64 = 16 << 10;

/// Ends `stream` (which begins at byte `offset`) before byte `until`, for sources that cannot be
/// asked for a piece (files, whose reads run to the end).
pub fn limit(stream: ByteStream, offset: u64, until: u64) -> ByteStream {
    let left = until.saturating_sub(offset);
    Box::pin(stream.scan(left, |left, item| {
        let out = match item {
            _ if *left == 0 => None,
            Ok(block) => {
                let keep = (*left).min(block.len() as u64);
                *left -= keep;
                Some(Ok(block.slice(..keep as usize)))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The span `range` owns, found as a worker finds it: probing both bounds in a file.
    fn owned_by_probe(data: &[u8], range: ByteRange, block: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, data).unwrap();
        let spec = SourceSpec::File(path.clone());
        let opts = OpenOptions {
            block_size: block.max(1),
            connect_timeout: std::time::Duration::from_secs(1),
            read_timeout: std::time::Duration::from_secs(1),
            connections: 1,
            map_files: true,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let expect = super::super::open(&spec, &opts, None).await.unwrap().identity;
            let s = line_start_at(&spec, &opts, &expect, range.start).await.unwrap();
            let e = line_start_at(&spec, &opts, &expect, range.end).await.unwrap().max(s);
            let from = ResumeFrom { offset: s, until: Some(e), expect, dir: String::new() };
            let opened = super::super::open(&spec, &opts, Some(&from)).await.unwrap();
            opened.stream.map(|b| b.unwrap()).collect::<Vec<_>>().await.concat()
        })
    }

    #[test]
    fn a_range_owns_the_lines_that_begin_in_it() {
        let data = b"ab\ncd\nef\ngh";
        let r = |start, end| ByteRange { start, end };
        assert_eq!(&data[r(0, 1).owned_span(data)], b"ab\n");
        assert_eq!(&data[r(1, 3).owned_span(data)], b"", "line 2 begins at byte 3");
        assert_eq!(&data[r(1, 4).owned_span(data)], b"cd\n");
        assert_eq!(&data[r(3, 4).owned_span(data)], b"cd\n");
        assert_eq!(&data[r(4, 11).owned_span(data)], b"ef\ngh", "the last line has no line break");
        assert_eq!(&data[r(9, 20).owned_span(data)], b"gh");
        // Found by the property below: no line begins in [1, 2), though one begins just after.
        assert_eq!(&b"aaaaaa\n\n"[r(1, 2).owned_span(b"aaaaaa\n\n")], b"");
        assert_eq!(owned_by_probe(b"aaaaaa\n\n", r(1, 2), 1), b"");
        for block in 1..6 {
            assert_eq!(owned_by_probe(data, r(1, 4), block), b"cd\n", "block {block}");
            assert_eq!(owned_by_probe(data, r(4, 11), block), b"ef\ngh", "block {block}");
        }
    }

    #[test]
    fn a_line_longer_than_the_probe_window_is_found_by_wider_windows() {
        let mut data = vec![b'x'; 3 * PROBE as usize];
        data.extend_from_slice(b"\nnext\n");
        let long = data.len() - 5;
        assert_eq!(owned_by_probe(&data, ByteRange { start: 1, end: data.len() as u64 }, 4096), b"next\n");
        assert_eq!(owned_by_probe(&data, ByteRange { start: 0, end: 1 }, 4096).len(), long);
    }

    proptest! {
        /// Consecutive ranges, wherever they are cut, give every byte of the source exactly once,
        /// and probing the bounds in a file agrees with the in-memory reference for any block size.
        #[test]
        fn consecutive_ranges_tile_the_source(
            lines in prop::collection::vec("[a-c]{0,6}", 0..30),
            trailing_newline in any::<bool>(),
            cuts in prop::collection::vec(0usize..200, 0..4),
            block in 1usize..9,
        ) {
            let mut data = lines.join("\n").into_bytes();
            if trailing_newline && !data.is_empty() {
                data.push(b'\n');
            }
            let len = data.len() as u64;
            let mut bounds: Vec<u64> = cuts.iter().map(|c| (*c as u64).min(len)).collect();
            bounds.push(0);
            bounds.push(len);
            bounds.sort_unstable();
            bounds.dedup();
            let mut joined = Vec::new();
            for w in bounds.windows(2) {
                let range = ByteRange { start: w[0], end: w[1] };
                let reference = data[range.owned_span(&data)].to_vec();
                prop_assert_eq!(&owned_by_probe(&data, range, block), &reference, "{:?}", range);
                joined.extend(reference);
            }
            prop_assert_eq!(joined, data);
        }
    }
}
