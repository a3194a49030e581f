//! Decompression on threads of its own, overlapped with decoding.
//!
//! A producer inflates into blocks of `BLOCK` bytes and sends them, in order, through bounded
//! channels; the reading side (`Pipelined`) hands them to `Source` as a plain `Read`. At most
//! `QUEUE` blocks wait per stream, so memory stays bounded whatever the file's size.
//!
//! A zstd file made of several frames (pzstd, `zstd --patch-from`-less concatenations, seekable
//! archives) is split at its frame boundaries, found from the frame and block headers (which carry
//! every block's size), and the frames are decompressed on several threads, delivered in order.
//! gzip members cannot be found without inflating them (a member states no compressed size,
//! except in BGZF's extra field, which captures do not use), so gzip gets the overlap only.
//!
//! Errors stay those of a serial decode: a frame is decompressed by the same streaming decoder,
//! which delivers every block it completed before a damaged one, then its error; anything the
//! frame scan does not understand (a cut or corrupt header) is left, with the rest of the file, to
//! one streaming decoder, which fails exactly where a serial read would.

use std::io::{self, BufReader, Cursor, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

/// Bytes per block handed from a producer to the reader.
pub const BLOCK: usize = 4 << 20;
/// Blocks waiting in a single stream (gzip, one big zstd frame): 16 MiB.
const QUEUE: usize = 4;
/// Blocks waiting per zstd frame in flight, when frames are decompressed in parallel.
const FRAME_QUEUE: usize = 2;
/// The largest compressed frame held whole for a parallel decode; a longer first frame means a
/// file of one big frame (what `zstd` writes), streamed instead.
const MAX_FRAME: usize = 32 << 20;
/// Bytes asked of the raw file per read while scanning for frames.
const RAW_READ: usize = 1 << 20;
/// Below zstd's largest block (128 KiB), so a damaged block fails a call of its own and the
/// blocks before it are delivered.
const CAPPED_READ: usize = 32 << 10;

/// A block of a stream; an empty block ends the stream (a stream whose producer went away without
/// it was cut short by a failure, not finished).
type Chunk = io::Result<Vec<u8>>;
/// The streams in order; `None` ends the input.
type Streams = Receiver<Option<Receiver<Chunk>>>;

/// A reader asked for at most `CAPPED_READ` bytes per call.
pub struct Capped<R>(pub R);

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(CAPPED_READ);
        self.0.read(buf.get_mut(..n).unwrap_or_default())
    }
}

/// Blocks the reader is done with, for the producers to fill again (bounded: extra ones are freed).
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let mut b = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        b.resize(BLOCK, 0);
        b
    }

    fn give(&self, b: Vec<u8>) {
        if let Ok(mut p) = self.0.lock() {
            if p.len() < 2 * QUEUE {
                p.push(b);
            }
        }
    }
}

/// Reads `r` to its end in blocks sent to `tx`, then the empty block that ends the stream; a read
/// error is sent after the bytes before it. False when the stream ended early (an error, or the
/// reader went away).
fn pump(mut r: impl Read, tx: &SyncSender<Chunk>, pool: &Pool) -> bool {
    loop {
        let mut buf = pool.take();
        let mut n = 0;
        let mut failed = None;
        let mut eof = false;
        while n < buf.len() {
            match r.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        buf.truncate(n);
        if n > 0 && tx.send(Ok(buf)).is_err() {
            return false;
        }
        if let Some(e) = failed {
            let _ = tx.send(Err(e));
            return false;
        }
        if eof {
            return tx.send(Ok(Vec::new())).is_ok();
        }
    }
}

/// The reading end: the blocks of each stream in turn, streams in the order they were started.
pub struct Pipelined {
    streams: Streams,
    current: Option<Receiver<Chunk>>,
    block: Vec<u8>,
    pos: usize,
    pool: Pool,
    failed: bool,
}

impl Pipelined {
    fn new(streams: Streams, pool: Pool) -> Self {
        Pipelined {
            streams,
            current: None,
            block: Vec::new(),
            pos: 0,
            pool,
            failed: false,
        }
    }
}

impl Read for Pipelined {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = self.block.get(self.pos..).unwrap_or_default();
            if !left.is_empty() {
                let n = left.len().min(out.len());
                if let (Some(dst), Some(src)) = (out.get_mut(..n), left.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                return Ok(n);
            }
            if self.failed {
                return Ok(0);
            }
            let Some(rx) = &self.current else {
                match self.streams.recv() {
                    Ok(Some(rx)) => self.current = Some(rx),
                    Ok(None) => return Ok(0),
                    Err(_) => return Err(self.fail()),
                }
                continue;
            };
            match rx.recv() {
                Ok(Ok(b)) if b.is_empty() => self.current = None,
                Ok(Ok(b)) => {
                    let done = std::mem::replace(&mut self.block, b);
                    if done.capacity() > 0 {
                        self.pool.give(done);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => return Err(self.fail()),
            }
        }
    }
}

impl Pipelined {
    /// A producer went away mid-stream (it could not start, or panicked).
    #[cold]
    fn fail(&mut self) -> io::Error {
        self.failed = true;
        io::Error::other("decompression thread stopped")
    }
}

/// Starts a stream of up to `queue` waiting blocks: its receiver goes to the reader (in order),
/// its sender to the producer.
fn open_stream(
    streams: &SyncSender<Option<Receiver<Chunk>>>,
    queue: usize,
) -> Option<SyncSender<Chunk>> {
    let (tx, rx) = sync_channel(queue);
    streams.send(Some(rx)).ok()?;
    Some(tx)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
}

/// gzip (every member in turn) inflated on a thread of its own.
pub fn gzip(raw: BufReader<Box<dyn Read + Send>>) -> io::Result<Pipelined> {
    let (stx, srx) = sync_channel(1);
    let pool = Pool::default();
    let p = pool.clone();
    spawn("pw-gunzip", move || {
        if let Some(tx) = open_stream(&stx, QUEUE) {
            if pump(flate2::bufread::MultiGzDecoder::new(raw), &tx, &p) {
                let _ = stx.send(None);
            }
        }
    })?;
    Ok(Pipelined::new(srx, pool))
}

/// zstd decompressed on up to `workers` threads (frames in parallel), plus the one that reads.
pub fn zstd(raw: BufReader<Box<dyn Read + Send>>, workers: usize) -> io::Result<Pipelined> {
    let workers = workers.max(1);
    let (stx, srx) = sync_channel(workers + 1);
    let pool = Pool::default();
    let p = pool.clone();
    spawn("pw-unzstd", move || split_frames(raw, &stx, &p, workers))?;
    Ok(Pipelined::new(srx, pool))
}

/// One whole compressed frame, and where its blocks go.
struct Job {
    frame: Vec<u8>,
    tx: SyncSender<Chunk>,
}

/// Runs on the reading thread: cuts the file into frames for the workers while every frame is
/// small enough to hold; streams whatever is left otherwise.
fn split_frames(
    raw: BufReader<Box<dyn Read + Send>>,
    streams: &SyncSender<Option<Receiver<Chunk>>>,
    pool: &Pool,
    workers: usize,
) {
    let mut raw = raw;
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut jobs: Option<SyncSender<Job>> = None;
    loop {
        let scan = frame_len(&pending);
        match scan {
            Scan::Skip(n) => {
                pending.drain(..n);
                continue;
            }
            Scan::Frame(n) => {
                if jobs.is_none() {
                    jobs = start_workers(workers, pool);
                }
                let Some(j) = &jobs else {
                    break;
                };
                let rest = pending.split_off(n);
                let frame = std::mem::replace(&mut pending, rest);
                let Some(tx) = open_stream(streams, FRAME_QUEUE) else {
                    return;
                };
                // A worker gone (the reader's error drops them all) leaves its stream without
                // the block that ends it: the reader reports that, if it still reads.
                if j.send(Job { frame, tx }).is_err() {
                    return;
                }
                continue;
            }
            Scan::More if !eof && pending.len() < MAX_FRAME => {
                let at = pending.len();
                pending.resize(at + RAW_READ, 0);
                let got = loop {
                    match raw.read(pending.get_mut(at..).unwrap_or_default()) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        r => break r,
                    }
                };
                match got {
                    Ok(k) => {
                        pending.truncate(at + k);
                        eof = k == 0;
                    }
                    Err(_) => {
                        // The streaming decoder below meets the same error and reports it.
                        pending.truncate(at);
                        break;
                    }
                }
                continue;
            }
            Scan::More if eof && pending.is_empty() => {
                let _ = streams.send(None);
                return;
            }
            Scan::More | Scan::Bad => break,
        }
    }
    // Once the earlier frames are delivered, one decoder reads the rest as a serial decode would.
    drop(jobs);
    let Some(tx) = open_stream(streams, QUEUE) else {
        return;
    };
    let rest = BufReader::with_capacity(RAW_READ, Cursor::new(pending).chain(raw));
    match zstd::stream::read::Decoder::with_buffer(rest) {
        Ok(d) => {
            if pump(Capped(d), &tx, pool) {
                let _ = streams.send(None);
            }
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    }
}

/// Workers taking frames in file order from one queue (the earliest frame is always being worked
/// on, so the reader never waits on a frame nobody holds).
fn start_workers(workers: usize, pool: &Pool) -> Option<SyncSender<Job>> {
    let (jtx, jrx) = sync_channel::<Job>(workers);
    let jrx = Arc::new(Mutex::new(jrx));
    for i in 0..workers {
        let jrx = Arc::clone(&jrx);
        let pool = pool.clone();
        let work = move || loop {
            let job = match jrx.lock() {
                Ok(q) => q.recv(),
                Err(_) => return,
            };
            let Ok(Job { frame, tx }) = job else {
                return;
            };
            match zstd::stream::read::Decoder::with_buffer(frame.as_slice()) {
                Ok(d) => {
                    pump(Capped(d), &tx, &pool);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        };
        if spawn(&format!("pw-unzstd-{i}"), work).is_err() && i == 0 {
            return None;
        }
    }
    Some(jtx)
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A whole zstd frame of this many bytes.
    Frame(usize),
    /// A skippable frame of this many bytes (no content).
    Skip(usize),
    /// The bytes end inside the frame.
    More,
    /// Not a frame this scan understands.
    Bad,
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

fn le(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(n)?)?;
    Some(s.iter().rev().fold(0, |v, &x| (v << 8) | u64::from(x)))
}

/// The length of the frame `b` starts with, from its header and its blocks' headers
/// (RFC 8878 sections 3.1.1 and 3.1.1.2).
fn frame_len(b: &[u8]) -> Scan {
    let Some(magic) = le(b, 0, 4) else {
        return Scan::More;
    };
    let magic = magic as u32;
    if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
        return match le(b, 4, 4) {
            Some(n) if b.len() as u64 >= 8 + n => Scan::Skip(8 + n as usize),
            _ => Scan::More,
        };
    }
    if magic != ZSTD_MAGIC {
        return Scan::Bad;
    }
    let Some(&fhd) = b.get(4) else {
        return Scan::More;
    };
    if fhd & 0x08 != 0 {
        return Scan::Bad;
    }
    let single_segment = fhd & 0x20 != 0;
    let dict_id = match fhd & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let content_size = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut at = 5 + usize::from(!single_segment) + dict_id + content_size;
    loop {
        let Some(h) = le(b, at, 3) else {
            return Scan::More;
        };
        let size = (h >> 3) as usize;
        at += 3 + match (h >> 1) & 3 {
            0 | 2 => size,
            1 => 1,
            _ => return Scan::Bad,
        };
        if h & 1 == 1 {
            break;
        }
    }
    if fhd & 0x04 != 0 {
        at += 4;
    }
    if at > b.len() {
        Scan::More
    } else {
        Scan::Frame(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend(zstd::bulk::compress(p, 3).unwrap());
        }
        out
    }

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
            .collect()
    }

    fn drain(mut r: impl Read) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut buf = vec![0; 100_000];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    fn raw(bytes: Vec<u8>) -> BufReader<Box<dyn Read + Send>> {
        BufReader::new(Box::new(Cursor::new(bytes)))
    }

    fn serial(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
        drain(Capped(
            zstd::stream::read::Decoder::with_buffer(BufReader::new(bytes)).unwrap(),
        ))
    }

    #[test]
    fn frame_len_walks_the_block_headers() {
        let a = data(300_000, 1);
        let one = frames(&[&a]);
        assert_eq!(frame_len(&one), Scan::Frame(one.len()));
        assert_eq!(frame_len(&one[..one.len() - 1]), Scan::More);
        let mut skip = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        assert_eq!(frame_len(&skip), Scan::Skip(11));
        skip.truncate(10);
        assert_eq!(frame_len(&skip), Scan::More);
        assert_eq!(frame_len(b"PK\x03\x04rest"), Scan::Bad);
    }

    #[test]
    fn several_frames_come_out_in_order_on_several_workers() {
        let parts: Vec<Vec<u8>> = (0..9).map(|i| data(700_000 + i * 3_000, i as u8)).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut file = frames(&refs);
        // A skippable frame between two others has no content.
        let cut = frames(&refs[..4]).len();
        let skippable = [0x5e, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 7, 7];
        file.splice(cut..cut, skippable);
        for workers in [1, 2, 3] {
            let (out, err) = drain(zstd(raw(file.clone()), workers).unwrap());
            assert_eq!(err, None);
            assert_eq!(out, parts.concat(), "{workers} workers");
        }
    }

    #[test]
    fn a_file_cut_mid_frame_fails_as_a_serial_read_does() {
        let parts: Vec<Vec<u8>> = (0..4).map(|i| data(900_000, i)).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let file = frames(&refs);
        for cut in [file.len() - 5, file.len() / 2, 7] {
            let head = file[..cut].to_vec();
            let want = serial(&head);
            assert!(want.1.is_some());
            let got = drain(zstd(raw(head), 2).unwrap());
            assert_eq!(got.0.len(), want.0.len(), "cut at {cut}");
            assert!(got.0 == want.0, "cut at {cut}");
            assert_eq!(got.1, want.1, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_after_a_frame_fails_as_a_serial_read_does() {
        let parts: Vec<Vec<u8>> = (0..3).map(|i| data(500_000, i)).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut file = frames(&refs);
        file.extend_from_slice(b"not a frame at all, just trailing bytes");
        let want = serial(&file);
        let got = drain(zstd(raw(file), 3).unwrap());
        assert_eq!(got.0.len(), parts.concat().len());
        assert!(got.0 == want.0);
        assert_eq!(got.1, want.1);
        assert!(got.1.is_some());
    }

    #[test]
    fn one_big_frame_is_streamed() {
        let a = data(3 * BLOCK + 12_345, 5);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut enc, &a).unwrap();
        let file = enc.finish().unwrap();
        let (out, err) = drain(zstd(raw(file), 2).unwrap());
        assert_eq!(err, None);
        assert!(out == a);
    }

    #[test]
    fn gzip_members_inflate_on_their_own_thread() {
        use flate2::write::GzEncoder;
        let parts: Vec<Vec<u8>> = (0..3).map(|i| data(2 * BLOCK / 3, i)).collect();
        let mut file = Vec::new();
        for p in &parts {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, p).unwrap();
            file.extend(e.finish().unwrap());
        }
        let (out, err) = drain(gzip(raw(file.clone())).unwrap());
        assert_eq!(err, None);
        assert!(out == parts.concat());
        let cut = file[..file.len() - 100].to_vec();
        let (out, err) = drain(gzip(raw(cut.clone())).unwrap());
        let want = drain(flate2::bufread::MultiGzDecoder::new(BufReader::new(
            &cut[..],
        )));
        assert!(out == want.0);
        assert_eq!(err, want.1);
        assert!(err.is_some());
    }
}
