//! Local files read by mapping them into memory, block by block, instead of copying them.
//!
//! A `read` makes the kernel copy every byte from the page cache into a buffer: on a 1 GiB run
//! that copy was a fifth of the CPU time of a job whose two cores are both busy. A mapped block is
//! the page cache itself: the reader thread maps about a block's worth of the file, cuts it after
//! its last line break and hands the whole lines on as a chunk that owns its mapping
//! ([`Bytes::from_owner`]); the mapping goes when the chunk is dropped. At most the blocks in
//! flight are mapped at once, and only the pages already parsed are resident, so memory stays
//! bounded (lower than with read buffers: nothing is copied into the process's own memory).
//!
//! The file is read up to the size it had when it was opened (the size the checkpoint records). A
//! file truncated while it is mapped would end the process with `SIGBUS`, which no `read` error
//! can be turned into; `pipeline.map_files = false` reads with `read` instead.

use std::fs::File;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

use super::ByteStream;
use crate::error::SourceError;

/// Streams `file` from `offset` to `len` as line-aligned mapped blocks of about `block` bytes.
pub(super) fn map_aligned(file: File, len: u64, block: usize, what: String, offset: u64) -> ByteStream {
    let mut blocks = MappedBlocks { file, len, block: block.max(1) as u64, pos: offset };
    super::blocks_from_thread(move || blocks.next_block(&what))
}

/// The state of [`map_aligned`]'s thread: the next byte to hand on.
struct MappedBlocks {
    file: File,
    len: u64,
    block: u64,
    pos: u64,
}

impl MappedBlocks {
    /// The next block: whole lines up to the last line break within a block's length of `pos`
    /// (within two, for a long line; everything mapped if there is none, or at the end).
    fn next_block(&mut self, what: &str) -> Option<Result<Bytes, SourceError>> {
        if self.pos >= self.len {
            return None;
        }
        let mut reach = self.block;
        loop {
            let end = self.len.min(self.pos + reach);
            let map = match self.map(end) {
                Ok(map) => map,
                Err(e) => {
                    let detail = format!("mapping bytes {}..{end}: {e}", self.pos);
                    return Some(Err(SourceError::Read { what: what.to_string(), byte: self.pos, detail }));
                }
            };
            let cut = match memchr::memrchr(b'\n', &map) {
                _ if end == self.len => map.len(),
                Some(pos) => pos + 1,
                None if reach == self.block => {
                    reach = 2 * self.block; // a line longer than a block: look one further
                    continue;
                }
                None => map.len(),
            };
            self.pos += cut as u64;
            return Some(Ok(Bytes::from_owner(map).slice(..cut)));
        }
    }

    /// Maps bytes `pos..end`. Pages are mapped as the parser first touches them (the kernel maps
    /// 16 at a time around a fault): filling the page tables here at once (`MAP_POPULATE`) was
    /// slower and kept every queued block resident, and asking for read-ahead (`MADV_WILLNEED`)
    /// was slower hot and cold.
    fn map(&self, end: u64) -> std::io::Result<Mmap> {
        let len = usize::try_from(end - self.pos).map_err(std::io::Error::other)?;
        // SAFETY: the mapping is read-only and private. Another process writing the file while it
        // is mapped changes the bytes read, as it would with `read`; truncating it raises SIGBUS
        // (the module documentation says so, and how to read without mapping).
        unsafe { MmapOptions::new().offset(self.pos).len(len).map(&self.file) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    fn blocks(input: &[u8], block: usize, offset: u64) -> Vec<Bytes> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(input).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let stream = map_aligned(file, input.len() as u64, block, "test".into(), offset);
            stream.map(|b| b.unwrap()).collect::<Vec<_>>().await
        })
    }

    #[test]
    fn mapped_blocks_are_line_aligned_and_complete() {
        let input: &[u8] = b"aa\nbbbb\nc\ndddddddddddd\ne";
        for block in 1..30 {
            let got = blocks(input, block, 0);
            assert_eq!(got.concat(), input, "block {block}");
            for b in &got[..got.len() - 1] {
                assert!(b.ends_with(b"\n") || b.len() >= 2 * block, "block {block}: {b:?}");
                assert!(b.len() <= 2 * block, "block {block}: {b:?}");
            }
        }
    }

    #[test]
    fn mapping_starts_anywhere_and_crosses_pages() {
        // Offsets that are not page-aligned, and blocks spanning several pages.
        let input: Vec<u8> = (0..20_000u32).flat_map(|i| format!("{i},x\n").into_bytes()).collect();
        for offset in [0u64, 1, 4095, 4096, 70_001] {
            let offset = offset.min(input.len() as u64);
            for block in [4096, 10_000, 65_536] {
                let got = blocks(&input, block, offset);
                assert_eq!(got.concat(), &input[offset as usize..], "offset {offset} block {block}");
            }
        }
    }

    #[test]
    fn an_empty_rest_gives_no_blocks() {
        assert!(blocks(b"a\nb\n", 8, 4).is_empty());
        assert!(blocks(b"", 8, 0).is_empty());
    }
}
