//! Buffers that go round instead of being allocated afresh for every chunk.
//!
//! The hot path fills two large buffers per chunk: the reader's block (about 1 MiB of input) and
//! the parse worker's readings (about 0.5 MiB per MiB of input). Allocated afresh, both came back
//! from the allocator as new pages, each faulted in and zeroed by the kernel before being
//! overwritten: the readings' page faults alone were 87% of a 1 GiB run's faults. A [`Recycled`]
//! buffer goes back to its [`Recycler`] when it is dropped (by the last task actor, or with the
//! last slice of a block), and the next chunk fills it again.
//!
//! A recycler only ever holds buffers that were in use at the same time before, so peak memory
//! does not grow; its bound caps how many it keeps when fewer are in use later.

use std::ops::Deref;

use crossbeam_channel::{Receiver, Sender};

/// Where idle buffers wait; cheap to clone, every clone shares them.
#[derive(Clone)]
pub struct Recycler<T> {
    home: Sender<Vec<T>>,
    free: Receiver<Vec<T>>,
}

impl<T> std::fmt::Debug for Recycler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recycler").field("idle", &self.free.len()).finish()
    }
}

impl<T: Send + 'static> Recycler<T> {
    /// A recycler that keeps at most `keep` idle buffers; more are freed.
    pub fn new(keep: usize) -> Recycler<T> {
        let (home, free) = crossbeam_channel::bounded(keep.max(1));
        Recycler { home, free }
    }

    /// An empty buffer with room for `capacity` items: a returned one when there is one.
    pub fn take(&self, capacity: usize) -> Vec<T> {
        match self.free.try_recv() {
            Ok(mut buf) => {
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// Lends `buf` out; it comes back here when the [`Recycled`] is dropped.
    pub fn lend(&self, buf: Vec<T>) -> Recycled<T> {
        Recycled { buf, home: self.home.clone() }
    }

    /// Keeps `buf`, which nobody else holds, for a later [`Recycler::take`] (or frees it if the
    /// recycler is full); one that never allocated is not worth a place.
    pub fn give_back(&self, buf: Vec<T>) {
        if buf.capacity() > 0 {
            let _ = self.home.try_send(buf);
        }
    }
}

/// A buffer on loan; reads as a slice, returns to its [`Recycler`] on drop.
pub struct Recycled<T> {
    buf: Vec<T>,
    home: Sender<Vec<T>>,
}

impl<T> Deref for Recycled<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf
    }
}

/// So that a byte buffer can back a [`bytes::Bytes`] (`Bytes::from_owner`).
impl AsRef<[u8]> for Recycled<u8> {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl<T> Drop for Recycled<T> {
    fn drop(&mut self) {
        // A full recycler (or one nobody takes from any more) lets the buffer be freed.
        let _ = self.home.try_send(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_block_comes_back_when_its_last_slice_is_dropped() {
        let recycler = Recycler::<u8>::new(2);
        let mut buf = recycler.take(1024);
        buf.extend_from_slice(b"abc\ndef\n");
        let ptr = buf.as_ptr();
        let whole = Bytes::from_owner(recycler.lend(buf));
        let tail = whole.slice(4..);
        drop(whole);
        assert!(recycler.free.is_empty(), "a slice still holds it");
        assert_eq!(&tail[..], b"def\n");
        drop(tail);
        let again = recycler.take(16);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0), "the same allocation, emptied");
        assert!(again.capacity() >= 1024);
    }

    #[test]
    fn keeps_no_more_than_its_bound() {
        let recycler = Recycler::<u64>::new(1);
        let (a, b) = (recycler.lend(recycler.take(8)), recycler.lend(recycler.take(8)));
        drop((a, b));
        assert_eq!(recycler.free.len(), 1);
    }

    #[test]
    fn a_recycled_buffer_reads_as_its_items() {
        let recycler = Recycler::new(1);
        let mut buf = recycler.take(4);
        buf.extend([1u32, 2, 3]);
        assert_eq!(&*recycler.lend(buf), &[1, 2, 3]);
    }
}
