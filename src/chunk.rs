//! Cutting a byte stream into line-aligned chunks.
//!
//! Blocks arrive from the network or disk with arbitrary boundaries. The chunker re-cuts them so
//! that no line is split between chunks (each chunk parses on its own, in any order, on any worker)
//! and records where each chunk starts: its byte offset (what a resumed run fetches from). Chunks
//! share the read buffer (`Bytes`), so cutting copies nothing. Their line numbers are found after
//! parsing, by [`crate::actors::lines::LineLedger`]: the parser counts lines anyway, and counting
//! them here as well cost a pass over every byte.

use bytes::Bytes;

use crate::recycle::Recycler;

use crate::error::DataError;

/// A line-aligned piece of input and where it came from.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Position in the stream of chunks, from 0.
    pub seq: u64,
    /// Byte offset of `data[0]` in the input.
    pub offset: u64,
    /// Whole lines, each ending in `\n` except possibly the last line of the input.
    pub data: Bytes,
}

impl Chunk {
    /// Byte offset just past this chunk: where the next one starts.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }

    /// Where the chunk lies, without its bytes, once its first line is known; `at_end` if it is
    /// the input's last chunk.
    pub fn span(&self, first_line: u64, at_end: bool) -> Span {
        Span { seq: self.seq, offset: self.offset, end: self.end(), first_line, at_end }
    }
}

/// Where a chunk lies in the input: what travels with its readings so that a restarted actor can
/// read exactly that chunk again from the source (see [`crate::actors::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Chunk number.
    pub seq: u64,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// Byte offset just past it.
    pub end: u64,
    /// Line number of its first line.
    pub first_line: u64,
    /// It is the last chunk of the input (a final line may lack its line break).
    pub at_end: bool,
}

/// Re-cuts blocks into chunks of about `target` bytes that end on a line break.
///
/// Blocks that are whole chunks already (the file reader's) are handed on as they are. Others
/// (network reads) are copied into a buffer; once it holds `target` bytes it is frozen and chunks
/// are cut from it without another copy, and what is left after the last cut (part of one read,
/// usually) is copied into the next buffer. The buffers go round ([`Recycler`]): a fresh 1.25 MiB
/// allocation per chunk cost a 1 GiB download 60-70 k page faults.
#[derive(Debug)]
pub struct Chunker {
    /// Bytes copied in and not yet frozen: an unshared buffer that came from `buffers`.
    buf: Vec<u8>,
    /// A frozen buffer being cut into chunks (it comes before `buf`); empty between the calls of
    /// a `next_chunk` loop.
    ready: Bytes,
    aligned: Option<Bytes>,
    /// The rest of a network read beyond what the next cut needs: it is copied in only after
    /// that cut, into the next buffer, so that no byte is copied twice (copying whole reads made
    /// the bytes after a cut go in with them and then be copied again by `thaw`).
    pending: Bytes,
    buffers: Recycler<u8>,
    target: usize,
    max_line: usize,
    next_seq: u64,
    /// The chunk number the chunker started at.
    first_seq: u64,
    offset: u64,
    /// The next line's number, while only header lines (`take_line`) have been handed out.
    line: u64,
}

/// Most idle copy buffers a chunker keeps: more than the chunks a pipeline holds at its default
/// bounds, so none is freed in a steady run.
const KEEP_BUFFERS: usize = 16;

impl Chunker {
    /// A chunker whose first byte is at `offset` and first line is `line`.
    pub fn new(target: usize, max_line: usize, offset: u64, line: u64) -> Chunker {
        Chunker {
            buf: Vec::new(),
            ready: Bytes::new(),
            aligned: None,
            pending: Bytes::new(),
            buffers: Recycler::new(KEEP_BUFFERS),
            target: target.max(1),
            max_line,
            next_seq: 0,
            first_seq: 0,
            offset,
            line,
        }
    }

    /// Numbers chunks from `seq` on (a resumed run continues the numbering).
    pub fn starting_at(mut self, seq: u64) -> Chunker {
        (self.next_seq, self.first_seq) = (seq, seq);
        self
    }

    /// Appends a block read from the source.
    pub fn push(&mut self, block: &[u8]) {
        self.thaw();
        self.flush_aligned();
        self.absorb_pending();
        self.append(block);
    }

    /// Moves pending input into the buffer until the next cut can be made (or all of it).
    fn feed(&mut self) {
        while !self.pending.is_empty() && cut_point(&self.buf, self.target).is_none() {
            let take = match self.target.checked_sub(self.buf.len()) {
                Some(short) if short > 0 => short,
                // A line longer than a chunk: up to its end.
                _ => memchr::memchr(b'\n', &self.pending).map_or(self.pending.len(), |pos| pos + 1),
            };
            let part = self.pending.split_to(take.min(self.pending.len()));
            self.append(&part);
        }
    }

    /// Moves all pending input into the buffer.
    fn absorb_pending(&mut self) {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.append(&rest);
        }
    }

    /// Copies `block` into the buffer.
    fn append(&mut self, block: &[u8]) {
        if self.buf.capacity() - self.buf.len() < block.len() {
            // None yet (after a freeze), or full (a long line, or a read larger than a chunk):
            // one from the recycler, the bytes moved over once.
            let mut larger = self.buffers.take(self.room().max(self.buf.len() + block.len()));
            larger.extend_from_slice(&self.buf);
            self.buffers.give_back(std::mem::replace(&mut self.buf, larger));
        }
        self.buf.extend_from_slice(block);
    }

    /// Room in a new buffer: a whole chunk and a network read, so that it rarely has to grow.
    fn room(&self) -> usize {
        self.target + self.target / 2
    }

    /// Freezes the buffer into `ready`, to cut chunks from it without copying; the next input
    /// goes into another one (taken by `append`).
    fn freeze(&mut self) {
        debug_assert!(self.ready.is_empty());
        self.ready = Bytes::from_owner(self.buffers.lend(std::mem::take(&mut self.buf)));
    }

    /// Puts what is left of `ready` back in front of the buffer (a copy of less than a chunk).
    fn thaw(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let mut joined = self.buffers.take(self.room().max(self.ready.len() + self.buf.len()));
        joined.extend_from_slice(&self.ready);
        joined.extend_from_slice(&self.buf);
        self.buffers.give_back(std::mem::replace(&mut self.buf, joined));
        self.ready = Bytes::new();
    }

    /// Appends a block, without copying it when it is already a whole chunk: line-aligned and
    /// no larger than twice the target (what [`crate::source`]'s file reader produces).
    pub fn push_bytes(&mut self, block: bytes::Bytes) {
        self.thaw();
        let whole = block.last() == Some(&b'\n') && block.len() <= 2 * self.target;
        let clean = self.buf.last().is_none_or(|&b| b == b'\n');
        if whole && clean && self.aligned.is_none() && self.pending.is_empty() {
            self.aligned = Some(block);
        } else {
            self.flush_aligned();
            self.absorb_pending();
            self.pending = block;
            self.feed();
        }
    }

    fn flush_aligned(&mut self) {
        if let Some(block) = self.aligned.take() {
            self.append(&block);
        }
    }

    /// Bytes buffered but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.ready.len() + self.buf.len() + self.pending.len() + self.aligned.as_ref().map_or(0, Bytes::len)
    }

    /// The buffered bytes, for sniffing the start of the input.
    pub fn peek(&self) -> &[u8] {
        match &self.aligned {
            _ if !self.ready.is_empty() => &self.ready,
            Some(block) if self.buf.is_empty() => block,
            _ => &self.buf,
        }
    }

    /// True when a whole line is buffered.
    pub fn has_line(&self) -> bool {
        memchr::memchr(b'\n', self.peek()).is_some()
    }

    /// Chunks handed out so far.
    pub fn chunks(&self) -> u64 {
        self.next_seq
    }

    /// Line number of the next line, while only header lines have been handed out (`take_line`):
    /// the first chunk's first line. Chunks are not counted (see the module doc).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Takes one whole line (with its line ending) if the buffer holds one: used for the header.
    pub fn take_line(&mut self) -> Result<Option<Bytes>, DataError> {
        self.thaw();
        self.flush_aligned();
        if memchr::memchr(b'\n', &self.buf).is_none() {
            self.absorb_pending();
        }
        match memchr::memchr(b'\n', &self.buf) {
            Some(pos) => {
                let line = Bytes::copy_from_slice(&self.buf[..=pos]);
                self.buf.drain(..=pos);
                self.offset += line.len() as u64;
                self.line += 1;
                Ok(Some(line))
            }
            None => self.check_line_length().map(|()| None),
        }
    }

    /// The next full chunk, if enough bytes are buffered; call repeatedly until `None`.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, DataError> {
        if self.ready.is_empty() {
            if self.aligned.is_some() && !self.buf.is_empty() {
                // Whole lines left from earlier blocks go first, as their own chunk.
                return Ok(Some(self.whole_buffer()));
            }
            if let Some(block) = self.aligned.take() {
                return Ok(Some(self.numbered(block)));
            }
            self.feed();
            match cut_point(&self.buf, self.target) {
                Some(_) => self.freeze(),
                // A line not ended yet: it waits for more input, unless it is already too long.
                None if self.buf.len() >= self.target => return self.check_line_length().map(|()| None),
                None => return Ok(None),
            }
        }
        match cut_point(&self.ready, self.target) {
            Some(cut) => Ok(Some(self.cut_ready(cut))),
            None => {
                // Less than a chunk left after the cuts: it goes in front of the pending input,
                // or waits in front of the next.
                self.thaw();
                match self.pending.is_empty() {
                    true => Ok(None),
                    false => self.next_chunk(),
                }
            }
        }
    }

    /// At the end of the input, the next of the remaining chunks (the last line may lack a line
    /// ending); call until `None`.
    pub fn finish(&mut self) -> Option<Chunk> {
        self.thaw();
        if !self.pending.is_empty() {
            self.flush_aligned();
            self.absorb_pending();
        }
        if self.aligned.is_some() && !self.buf.is_empty() {
            return Some(self.whole_buffer());
        }
        if let Some(block) = self.aligned.take() {
            return Some(self.numbered(block));
        }
        (!self.buf.is_empty()).then(|| self.whole_buffer())
    }

    /// The first `cut` bytes of `ready`, which end with a line break.
    fn cut_ready(&mut self, cut: usize) -> Chunk {
        let data = self.ready.split_to(cut);
        self.numbered(data)
    }

    /// The whole buffer as one chunk (its last line may lack a line ending).
    fn whole_buffer(&mut self) -> Chunk {
        let data = Bytes::from_owner(self.buffers.lend(std::mem::take(&mut self.buf)));
        self.numbered(data)
    }

    /// `data` as the next chunk: its number and byte offset.
    fn numbered(&mut self, data: Bytes) -> Chunk {
        let (seq, offset) = (self.next_seq, self.offset);
        self.next_seq += 1;
        self.offset += data.len() as u64;
        Chunk { seq, offset, data }
    }

    /// A line too long to hold: its number is known here only if no chunk was cut before it
    /// (the fetcher asks the ledger otherwise).
    fn check_line_length(&self) -> Result<(), DataError> {
        if self.buf.len() > self.max_line {
            return Err(DataError::LineTooLong {
                line: (self.next_seq == self.first_seq).then_some(self.line),
                byte: self.offset,
                limit: self.max_line as u64,
            });
        }
        Ok(())
    }
}

/// Where to end a chunk of about `target` bytes at the start of `buf`: after the last line break
/// within `target` bytes, or else after the first one beyond (a single long line). `None` when
/// fewer than `target` bytes are buffered or no line break has arrived yet.
pub fn cut_point(buf: &[u8], target: usize) -> Option<usize> {
    if buf.len() < target {
        return None;
    }
    match memchr::memrchr(b'\n', &buf[..target]) {
        Some(pos) => Some(pos + 1),
        None => memchr::memchr(b'\n', &buf[target..]).map(|pos| target + pos + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Network reads (`push_bytes`, copied in no further than the next cut needs) and copied
    /// slices (`push`) give the same chunks, at the same offsets and line numbers, whatever the
    /// read size: the cut depends on the bytes only. Lines longer than the target included. (A
    /// read that ends a line and finds the buffer at a line's start becomes a chunk of its own,
    /// as a file block does; the reads here are made to end inside lines to test the copy path.)
    #[test]
    fn network_reads_cut_where_copied_blocks_do() {
        let mut input = Vec::new();
        for i in 0..400u32 {
            let width = [3, 17, 60, 250][(i % 4) as usize] + (i as usize * 7) % 13;
            input.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, width));
            input.push(b'\n');
        }
        input.extend_from_slice(b"no line ending");
        for target in [1, 64, 100, 1000, 4096] {
            let want = cut_all(&input, target, 1 << 20);
            for read in [1, 7, 64, 333, 1000, 5000, 1 << 20] {
                let mut c = Chunker::new(target, 1 << 20, 0, 1);
                let mut got = Vec::new();
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let mut end = read.min(rest.len());
                    while end < rest.len() && rest[end - 1] == b'\n' {
                        end += 1;
                    }
                    let (piece, more) = rest.split_at(end);
                    rest = more;
                    c.push_bytes(Bytes::copy_from_slice(piece));
                    while let Some(chunk) = c.next_chunk().unwrap() {
                        got.push(chunk);
                    }
                }
                got.extend(std::iter::from_fn(|| c.finish()));
                let key = |c: &Chunk| (c.seq, c.offset, c.data.clone());
                assert_eq!(
                    got.iter().map(key).collect::<Vec<_>>(),
                    want.iter().map(key).collect::<Vec<_>>(),
                    "target {target}, reads of {read}"
                );
                assert_eq!(c.buffered(), 0);
            }
        }
    }

    fn cut_all(input: &[u8], target: usize, block: usize) -> Vec<Chunk> {
        let mut c = Chunker::new(target, 1 << 20, 0, 1);
        let mut out = Vec::new();
        for piece in input.chunks(block) {
            c.push(piece);
            while let Some(chunk) = c.next_chunk().unwrap() {
                out.push(chunk);
            }
        }
        out.extend(c.finish());
        out
    }

    #[test]
    fn chunks_are_line_aligned_and_cover_the_input() {
        let input = b"a,1\nbb,2\n\nccc,3\ndddd,4";
        for target in 1..30 {
            for block in 1..30 {
                let chunks = cut_all(input, target, block);
                let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
                assert_eq!(joined, input);
                let mut offset = 0;
                for (i, c) in chunks.iter().enumerate() {
                    assert_eq!((c.seq, c.offset), (i as u64, offset));
                    offset = c.end();
                    if i + 1 < chunks.len() {
                        assert_eq!(c.data.last(), Some(&b'\n'));
                    }
                }
            }
        }
    }

    #[test]
    fn header_line_then_chunks_with_offsets() {
        let mut c = Chunker::new(8, 100, 0, 1);
        c.push(b"h1,h2\r\nx,1\r\ny,2\r\n");
        assert_eq!(&c.take_line().unwrap().unwrap()[..], b"h1,h2\r\n");
        let first = c.next_chunk().unwrap().unwrap();
        assert_eq!((first.offset, &first.data[..]), (7, &b"x,1\r\n"[..]));
        assert_eq!(c.line(), 2, "the first chunk's first line");
        let rest = c.next_chunk().unwrap().or_else(|| c.finish()).unwrap();
        assert_eq!(rest.offset, 12);
        assert_eq!(rest.end(), 17);
    }

    #[test]
    fn aligned_blocks_become_chunks_without_copying() {
        let mut c = Chunker::new(8, 100, 0, 1);
        let block = Bytes::from_static(b"a,1\nb,2\n");
        c.push_bytes(block.clone());
        let chunk = c.next_chunk().unwrap().unwrap();
        assert_eq!(chunk.data.as_ptr(), block.as_ptr(), "zero-copy");
        assert_eq!(chunk.offset, 0);
        // An unaligned block, then an aligned one: content, order and numbering stay right.
        c.push_bytes(Bytes::from_static(b"c,3\nd,"));
        assert!(c.next_chunk().unwrap().is_none());
        c.push_bytes(Bytes::from_static(b"4\n"));
        let mut rest = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            rest.push(chunk);
        }
        rest.extend(c.finish());
        let joined: Vec<u8> = rest.iter().flat_map(|c| c.data.to_vec()).collect();
        assert_eq!(joined, b"c,3\nd,4\n");
        assert_eq!(rest[0].offset, 8);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_an_error() {
        let mut c = Chunker::new(4, 16, 0, 1);
        c.push(&[b'x'; 40]);
        assert!(matches!(c.next_chunk(), Err(DataError::LineTooLong { line: Some(1), byte: 0, limit: 16 })));
        // After a chunk, the line's number is not known here (the fetcher asks the ledger).
        let mut c = Chunker::new(4, 16, 0, 1);
        c.push(b"a,1\n");
        c.push(&[b'x'; 40]);
        assert_eq!(c.next_chunk().unwrap().map(|c| c.offset), Some(0));
        let after = (0..3).map(|_| c.next_chunk()).find(|r| !matches!(r, Ok(None)));
        assert!(
            matches!(after, Some(Err(DataError::LineTooLong { line: None, byte: 4, limit: 16 }))),
            "{after:?}"
        );
    }
}
