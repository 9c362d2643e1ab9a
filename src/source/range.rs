//! Byte ranges that own whole lines: how one source is split into pieces that can be processed
//! apart (by several workers of a cluster) and still see every line exactly once.
//!
//! A range `[a, b)` owns the lines whose first byte lies in `[a, b)`. A line's first byte is byte 0
//! or the byte after a `\n`. So a range reads from `a - 1`, skips through the first `\n` (the tail
//! of a line owned by the range before it, or just the `\n` ending it), and reads past `b` to finish
//! its last line. Whatever the boundaries, consecutive ranges tile the source: this is what lets a
//! merge of their partial states equal one pass.

use bytes::Bytes;
use futures_util::StreamExt;

use super::ByteStream;
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
    /// the streaming [`owned_lines`] is tested against.
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

/// The owned lines of `range`, from a stream that begins at `range.read_from()` (as a source
/// opened there gives it): the same bytes as [`ByteRange::owned_span`], with the same errors.
pub fn owned_lines(stream: ByteStream, range: ByteRange) -> ByteStream {
    let state = Owned { at: range.read_from(), range, started: range.start == 0, done: false };
    Box::pin(stream.scan(state, |s, item| std::future::ready(s.next(item))).filter_map(std::future::ready))
}

/// Progress of [`owned_lines`] through the stream.
struct Owned {
    /// Byte offset of the next block's first byte.
    at: u64,
    range: ByteRange,
    /// The first owned line has begun.
    started: bool,
    /// The last owned line has ended.
    done: bool,
}

impl Owned {
    /// What to pass on of one block: `Some(None)` drops it, `None` ends the stream.
    fn next(&mut self, item: Result<Bytes, SourceError>) -> Option<Option<Result<Bytes, SourceError>>> {
        if self.done || self.range.end == 0 {
            return None;
        }
        let mut block = match item {
            Ok(block) => block,
            Err(e) => return Some(Some(Err(e))),
        };
        self.at += block.len() as u64;
        if !self.started {
            let Some(i) = memchr::memchr(b'\n', &block) else { return Some(None) };
            block = block.slice(i + 1..);
            self.started = true;
            if self.at - block.len() as u64 >= self.range.end {
                self.done = true; // the first line that begins after `start` begins after `end` too
                return None;
            }
        }
        // The last owned line is the one holding byte `end - 1`: it ends at the first `\n` at or
        // after that byte.
        if self.at >= self.range.end {
            let block_start = self.at - block.len() as u64;
            let from = ((self.range.end - 1).saturating_sub(block_start) as usize).min(block.len());
            if let Some(i) = memchr::memchr(b'\n', &block[from..]) {
                self.done = true;
                return Some(Some(Ok(block.slice(..from + i + 1))));
            }
        }
        Some(Some(Ok(block)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned_by_stream(data: &[u8], range: ByteRange, block: usize) -> Vec<u8> {
        let from = (range.read_from() as usize).min(data.len());
        let blocks: Vec<Result<Bytes, SourceError>> =
            data[from..].chunks(block.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let stream: ByteStream = Box::pin(futures_util::stream::iter(blocks));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(owned_lines(stream, range).map(|b| b.unwrap()).collect::<Vec<_>>()).concat()
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
        assert_eq!(owned_by_stream(b"aaaaaa\n\n", r(1, 2), 1), b"");
        for block in 1..6 {
            assert_eq!(owned_by_stream(data, r(1, 4), block), b"cd\n", "block {block}");
            assert_eq!(owned_by_stream(data, r(4, 11), block), b"ef\ngh", "block {block}");
        }
    }

    proptest! {
        /// Consecutive ranges, wherever they are cut, give every byte of the source exactly once,
        /// and the stream adapter agrees with the in-memory reference for any block size.
        #[test]
        fn consecutive_ranges_tile_the_source(
            lines in prop::collection::vec("[a-c]{0,6}", 0..30),
            trailing_newline in any::<bool>(),
            cuts in prop::collection::vec(0usize..200, 0..6),
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
                prop_assert_eq!(&owned_by_stream(&data, range, block), &reference, "{:?}", range);
                joined.extend(reference);
            }
            prop_assert_eq!(joined, data);
        }
    }
}
