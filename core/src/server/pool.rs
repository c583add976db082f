//! [`ChunkPool`]: the larger buffers streamed responses are encoded into, shared by every
//! connection of one server and kept for reuse.
//!
//! Each chunk of a streamed body is one write to the socket, and on loopback each write also
//! wakes the reader: the fewer writes, the faster the scrape. On the benchmarks' 2.3 MB
//! exposition (`cargo bench -p diag-benches -- serve_large`, wrk with 4 connections, 2 cores)
//! diag-tokio served 840–920 scrapes/s in 64 KiB chunks; continuing in pooled chunks after a
//! first 64 KiB one, 980–1,000 with 512 KiB chunks, 1,010–1,050 with 1 MiB and 1,070–1,100
//! with 2 MiB; all in pooled 2 MiB chunks, 1,070–1,130 (prometheus-client's hyper example,
//! which writes its whole body at once: 340–370). Giving every connection 2 MiB would put 2 GiB at risk with
//! 1024 connections; the pool bounds the total instead
//! ([`Limits::chunk_pool_bytes`](crate::http::Limits::chunk_pool_bytes)), and a scrape that
//! finds it empty goes on in its own `chunk_bytes` chunks. Pooled buffers are allocated zeroed
//! once and then reused as they are (the encoder overwrites what it sends), so a chunk costs
//! no allocation and no clearing. Encoding a 2 MiB chunk takes about 0.65 ms, the longest a
//! scrape holds a runtime thread between yields (prometheus-client's handler holds it for the
//! whole encode, 4 ms there).

use core::mem;
use std::boxed::Box;
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

/// Size of the buffers of a server's pool.
pub(crate) const POOL_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// Buffers of `size` bytes, at most `max` of them in existence.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    inner: Mutex<Inner>,
    size: usize,
    max: usize,
}

#[derive(Debug)]
struct Inner {
    free: Vec<Box<[u8]>>,
    /// Buffers allocated so far, free or in use.
    made: usize,
}

impl ChunkPool {
    /// A pool of `size`-byte buffers taking at most `budget_bytes` (rounded down to whole
    /// buffers); `None` if that is none.
    pub(crate) fn new(budget_bytes: usize, size: usize) -> Option<Arc<Self>> {
        let max = budget_bytes.checked_div(size).unwrap_or(0);
        (max > 0).then(|| Arc::new(Self { inner: Mutex::new(Inner { free: Vec::new(), made: 0 }), size, max }))
    }

    /// A free buffer, or a new one while fewer than the maximum exist.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Pooled> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let buf = match inner.free.pop() {
            Some(buf) => buf,
            None if inner.made < self.max => {
                inner.made += 1;
                drop(inner);
                std::vec![0; self.size].into_boxed_slice()
            }
            None => return None,
        };
        Some(Pooled { buf, len: 0, pool: Arc::clone(self) })
    }

    fn give(&self, buf: Box<[u8]>) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).free.push(buf);
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).free.len()
    }
}

/// A pooled buffer; its first `len` bytes are the chunk. Back in the pool when dropped, which
/// for a chunk handed to hyper (as the owner of a [`Bytes`](bytes::Bytes)) is once it is sent.
#[derive(Debug)]
pub(crate) struct Pooled {
    buf: Box<[u8]>,
    len: usize,
    pool: Arc<ChunkPool>,
}

impl Pooled {
    /// The whole buffer, to fill.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Keeps the first `len` bytes as the chunk.
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len());
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(mem::take(&mut self.buf));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_bounded_and_come_back_when_dropped() {
        assert!(ChunkPool::new(999, 1000).is_none());
        assert!(ChunkPool::new(1000, 0).is_none());
        let pool = ChunkPool::new(2100, 1000).unwrap();
        let mut a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none(), "at most two");
        a.space()[..3].copy_from_slice(b"abc");
        a.set_len(3);
        let bytes = bytes::Bytes::from_owner(a);
        assert_eq!(&bytes[..], b"abc");
        drop(b);
        assert_eq!(pool.free(), 1);
        drop(bytes);
        assert_eq!(pool.free(), 2, "a chunk handed out as Bytes comes back once dropped");
        let c = pool.take().unwrap();
        assert_eq!(c.as_ref(), b"", "a reused buffer starts empty");
        assert_eq!(pool.free(), 1);
    }
}
