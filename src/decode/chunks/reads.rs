//! A chunk's bytes, read with `pread` on its own file handle in pieces parsed while still in the
//! core's cache, at cache-line-aligned file offsets and addresses.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::capture::source::READ_CHUNK;
use crate::decode::queue::Item;

/// Bytes per read: what the kernel copies in is parsed while still in the core's cache
/// (`READ_CHUNK`'s note).
pub const PIECE: usize = READ_CHUNK;
/// Reads start at file offsets and buffer addresses that are multiples of this: the kernel's copy
/// out of the page cache (a third of the decode's time) runs up to twice as fast between
/// cache-line-aligned source and destination as it does between ones 8 or 24 bytes apart (the
/// allocator's buffers start 16 bytes into a line, the records after a 24-byte file header).
pub const ALIGN: usize = 64;

#[cfg(unix)]
pub fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(windows)]
pub fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

/// A chunk's bytes, read a piece at a time as the framing needs them. Positions are indices
/// in `data`. Reading starts at `base`, the file offset at or before the chunk's first byte that
/// is a multiple of `ALIGN`, into position `pad`, the first whose address is one: the chunk's
/// first byte lies at `start`.
pub struct Bytes {
    pub data: Arc<Vec<u8>>,
    pub filled: usize,
    pub pad: usize,
    pub start: usize,
    pub base: u64,
    /// Where reading must stop (the file's length when the decode began).
    pub limit: u64,
    /// The position where the chunk ends: the records starting before it are its own.
    pub span: usize,
    pub eof: bool,
}

impl Bytes {
    /// The bytes of the chunk from file offset `from` to `stop`, to be read into `data`.
    pub fn new(data: Vec<u8>, from: u64, stop: u64, limit: u64) -> Self {
        let lead = (from % ALIGN as u64) as usize;
        let pad = data.as_ptr().align_offset(ALIGN).min(ALIGN);
        let start = pad + lead;
        Bytes {
            data: Arc::new(data),
            filled: pad,
            pad,
            start,
            base: from - lead as u64,
            limit,
            span: start + stop.saturating_sub(from) as usize,
            eof: false,
        }
    }

    /// The file offset of position `pos`.
    pub fn offset_of(&self, pos: usize) -> u64 {
        self.base + pos.saturating_sub(self.pad) as u64
    }

    /// Reads until the bytes up to position `want` are in, or the file ends.
    #[inline]
    pub fn ensure(&mut self, f: &File, want: usize, progress: Option<&AtomicU64>) {
        // Almost always true: a record lies in the piece already read.
        if self.filled < want {
            self.fill(f, want, progress);
        }
    }

    #[inline(never)]
    fn fill(&mut self, f: &File, want: usize, progress: Option<&AtomicU64>) {
        while self.filled < want && !self.eof {
            let at = self.offset_of(self.filled);
            let left = self.limit.saturating_sub(at);
            let Some(data) = Arc::get_mut(&mut self.data) else {
                self.eof = true;
                return;
            };
            if data.len() < want {
                data.resize(want.div_ceil(PIECE) * PIECE, 0);
            }
            // Whole pieces up to the chunk's end, past it only what the last record needs (the
            // next chunk reads the rest).
            let n = PIECE.min(data.len() - self.filled).min(left as usize).min(
                self.span
                    .saturating_sub(self.filled)
                    .max(want - self.filled),
            );
            let Some(space) = data.get_mut(self.filled..self.filled + n) else {
                self.eof = true;
                return;
            };
            match read_at(f, space, at) {
                Ok(0) => self.eof = true,
                Ok(k) => {
                    self.filled += k;
                    if let Some(p) = progress {
                        p.fetch_add(k as u64, Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The careful reader takes over where the chunk stops, and reports the error.
                Err(_) => self.eof = true,
            }
        }
    }

    pub fn get(&self, from: usize) -> &[u8] {
        self.data.get(from..self.filled).unwrap_or(&[])
    }
}

/// Buffers and item lists of applied chunks, for the next ones.
pub type Spares = Mutex<Vec<(Vec<u8>, Vec<Item>)>>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
