//! Classic pcap files decoded by every thread at once. A file is cut at fixed offsets into
//! chunks; each thread claims the next chunk, reads it (`pread`, its own file handle), finds where
//! its first record starts, frames its records and decodes their headers into transport packets.
//! The calling thread, between chunks of its own, applies the chunks to the flow table in file
//! order: the flow table and everything above it depend on every packet before (`pipeline`'s note),
//! so that half stays one sequence while reading, framing and headers, most of the time, run apart.
//!
//! The result is the one-thread result, not an approximation of it:
//! - a chunk's first record is a guess (`PcapReader::chain`), checked when the chunk before it is
//!   applied: that chunk's last record ends where the next one really starts. A wrong guess is
//!   framed again from the right offset.
//! - a chunk stops at the first record the careful reader would report (corrupt, cut short): from
//!   there on the file is read as `Records` reads it, the reader resumed with the state it would
//!   have had (record number, last timestamp), so the anomalies and the resynchronisation are its.
//! - a record's number is unknown until the chunks before it are applied: packets and anomalies
//!   carry numbers within their chunk, shifted when applied.
//! - sweeps depend on the records before: every record leaves its time (its packet, or a tick) and
//!   the applying thread sweeps exactly where one pass would.
//! - IP fragments are handed over whole; the applying thread reassembles them in order.
//!
//! Why this beats the two-thread pipeline on two cores: there the reading thread is the bound
//! (its `read()` copy alone is half of its time); here both cores read, each what it parses.

use std::collections::BTreeMap;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::packets::{PacketSink, Packets};
use super::records::{RecordSink, Records};
use super::state::State;
use super::{conclude, nothing_decoded, threads_for, CaptureInfo, Options, Output, Stats, WHERE};
use crate::anomaly::{Anomalies, Position};
use crate::capture::linktype::{self, Link};
use crate::capture::pcap::{Chain, PcapReader, HEADER};
use crate::capture::source::READ_CHUNK;
use crate::capture::{CaptureReader, Record, Source};
use crate::error::{Error, Result};
use crate::flow::PacketMeta;

/// Bytes per chunk: large enough that claiming, checking and handing over cost nothing per
/// packet, small enough that both threads start at once and the chunks in flight stay few (and
/// in cache: on the 2 GB benchmark capture 4 MiB chunks decode 2-3 % faster than 8 MiB, with
/// ~20 MiB less resident).
pub const CHUNK: u64 = 4 << 20;
/// Bounds on `Options::chunk_bytes` (tests split small captures into chunks of a few records).
const MIN_CHUNK: u64 = 64;
const MAX_CHUNK: u64 = 256 << 20;
/// Chunks claimed at most ahead of the one being applied: bounds the memory held
/// (`WINDOW` × (`CHUNK` + its packets)).
const WINDOW: u64 = 6;
/// Bytes per read: what the kernel copies in is parsed while still in the core's cache
/// (`READ_CHUNK`'s note).
const PIECE: usize = READ_CHUNK;
const FILE_HEADER: u64 = 24;
/// Reads start at file offsets and buffer addresses that are multiples of this: the kernel's copy
/// out of the page cache (a third of the decode's time) runs up to twice as fast between
/// cache-line-aligned source and destination as it does between ones 8 or 24 bytes apart (the
/// allocator's buffers start 16 bytes into a line, the records after a 24-byte file header).
const ALIGN: usize = 64;

/// One record's part of a chunk, with payloads as ranges of the chunk's buffer.
#[derive(Debug)]
enum Item {
    Packet {
        at: Position,
        meta: PacketMeta,
        seq: u32,
        start: u32,
        len: u32,
    },
    /// A record that produced no packet: only its time matters (sweeps).
    Tick(i64),
    /// An IP fragment's record, decoded by the applying thread.
    Whole {
        at: Position,
        ts: i64,
        orig_len: u32,
        start: u32,
        len: u32,
    },
}

/// The worker's sink: packets into items.
#[derive(Default)]
struct Collect {
    items: Vec<Item>,
    deferred: bool,
}

/// Where `part` lies in `whole`, as a range (empty when it does not).
fn range_of(part: &[u8], whole: &[u8]) -> (u32, u32) {
    let base = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if part.is_empty() || at < base || at + part.len() > base + whole.len() {
        return (0, 0);
    }
    ((at - base) as u32, part.len() as u32)
}

impl PacketSink for Collect {
    #[inline]
    fn packet(
        &mut self,
        at: Position,
        p: &PacketMeta,
        seq: u32,
        payload: &[u8],
        block: Option<&Arc<Vec<u8>>>,
        _an: &mut Anomalies,
    ) {
        // Always in the chunk's buffer: reassembled datagrams are not decoded here.
        let (start, len) = block.map_or((0, 0), |b| range_of(payload, b));
        self.items.push(Item::Packet {
            at,
            meta: *p,
            seq,
            start,
            len,
        });
    }

    fn sweep(&mut self, _now: i64) {}

    fn defer_fragment(&mut self) -> bool {
        self.deferred = true;
        true
    }
}

/// A file to decode in chunks.
#[derive(Debug, Clone)]
struct Plan {
    path: PathBuf,
    len: u64,
    reader: PcapReader,
    capture: u32,
    chunk: u64,
}

impl Plan {
    /// A plan when `path` is an uncompressed classic pcap file of at least two chunks whose link
    /// type is decoded; None sends it to the one-record-at-a-time reader.
    fn probe(path: &Path, chunk: u64, capture: u32) -> Option<Plan> {
        // Told by its name before it is opened: opening a FIFO or a device consumes it (a writer
        // that finished before the stream's real reader opens it would leave that reader waiting
        // for ever), so only a regular file is opened here.
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let f = File::open(path).ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() || meta.len() < FILE_HEADER + 2 * chunk {
            return None;
        }
        let mut head = [0u8; FILE_HEADER as usize];
        read_at(&f, &mut head, 0)
            .ok()
            .filter(|&n| n == head.len())?;
        let reader = PcapReader::from_header(&head)?;
        if matches!(linktype::network_layer(reader.link, &[]), Ok(Link::Unknown)) {
            return None;
        }
        Some(Plan {
            path: path.to_path_buf(),
            len: meta.len(),
            reader,
            capture,
            chunk,
        })
    }

    fn chunks(&self) -> u64 {
        (self.len - FILE_HEADER).div_ceil(self.chunk)
    }

    /// Where chunk `k` begins: the records whose header starts in `start(k)..start(k + 1)` are its.
    fn start(&self, k: u64) -> u64 {
        FILE_HEADER.saturating_add(k.saturating_mul(self.chunk))
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

/// A chunk's bytes, read a piece at a time as the framing needs them. Positions are indices
/// in `data`. Reading starts at `base`, the file offset at or before the chunk's first byte that
/// is a multiple of `ALIGN`, into position `pad`, the first whose address is one: the chunk's
/// first byte lies at `start`.
struct Bytes {
    data: Arc<Vec<u8>>,
    filled: usize,
    pad: usize,
    start: usize,
    base: u64,
    /// Where reading must stop (the file's length when the decode began).
    limit: u64,
    /// The position where the chunk ends: the records starting before it are its own.
    span: usize,
    eof: bool,
}

impl Bytes {
    /// The bytes of the chunk from file offset `from` to `stop`, to be read into `data`.
    fn new(data: Vec<u8>, from: u64, stop: u64, limit: u64) -> Self {
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
    fn offset_of(&self, pos: usize) -> u64 {
        self.base + pos.saturating_sub(self.pad) as u64
    }

    /// Reads until the bytes up to position `want` are in, or the file ends.
    #[inline]
    fn ensure(&mut self, f: &File, want: usize, progress: Option<&AtomicU64>) {
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

    fn get(&self, from: usize) -> &[u8] {
        self.data.get(from..self.filled).unwrap_or(&[])
    }
}

/// A chunk framed and decoded up to the flow table.
struct Chunk {
    k: u64,
    /// Offset of its first record; None when no record boundary was found in it.
    first: Option<u64>,
    /// Offset past its last record: where the next record starts.
    end: u64,
    records: u64,
    /// It stopped at `end` on a record only the careful reader may read.
    dirty: bool,
    last_sec: Option<u32>,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    last_offset: u64,
    items: Vec<Item>,
    bytes: Arc<Vec<u8>>,
    stats: Stats,
    anomalies: Anomalies,
}

impl Chunk {
    /// Chunk `k`, starting at `offset`, with nothing found in it yet.
    fn none(k: u64, offset: u64) -> Self {
        Chunk {
            k,
            first: None,
            end: offset,
            records: 0,
            dirty: false,
            last_sec: None,
            first_ts: None,
            last_ts: None,
            last_offset: offset,
            items: Vec::new(),
            bytes: Arc::new(Vec::new()),
            stats: Stats::default(),
            anomalies: Anomalies::default(),
        }
    }
}

/// Buffers and item lists of applied chunks, for the next ones.
type Spares = Mutex<Vec<(Vec<u8>, Vec<Item>)>>;

/// What a thread needs to frame and decode chunks.
struct Worker<'a> {
    file: File,
    plan: &'a Plan,
    packets: Packets<Collect>,
    progress: Option<&'a AtomicU64>,
    spares: &'a Spares,
    /// The number of the first record of the chunk being framed, when known (for the message of
    /// a panic).
    first_index: Option<u64>,
}

impl<'a> Worker<'a> {
    fn new(plan: &'a Plan, opts: &'a Options, spares: &'a Spares) -> Result<Self> {
        let file = File::open(&plan.path).map_err(|source| Error::Open {
            path: plan.path.clone(),
            source,
        })?;
        Ok(Worker {
            file,
            plan,
            packets: Packets::for_chunks(opts, Collect::default()),
            progress: opts.progress.as_deref(),
            spares,
            first_index: None,
        })
    }

    /// Frames and decodes chunk `k`, from `first` when known, else from the first offset that
    /// looks like a record boundary; `first_index`: the number of its first record, when known.
    fn parse(&mut self, k: u64, first: Option<u64>, first_index: Option<u64>) -> Chunk {
        let plan = self.plan;
        let base = plan.start(k);
        let stop = plan.start(k + 1).min(plan.len);
        self.first_index = first_index;
        let (mut data, mut items) = lock(self.spares).pop().unwrap_or_default();
        let size = plan.chunk as usize + PIECE + ALIGN;
        if data.len() < size {
            data.resize(size, 0);
        }
        items.clear();
        let mut bytes = Bytes::new(data, base, stop, plan.len);
        let mut chunk = Chunk::none(k, base);
        // Fresh, also after a panic this worker's caller caught (`parse_or_none`).
        self.packets.sink = Collect {
            items,
            deferred: false,
        };
        self.packets.stats = Stats::default();
        self.packets.anomalies = Anomalies::default();
        let start = match first {
            Some(off) => Some(bytes.start + off.saturating_sub(base) as usize),
            None => self.boundary(&mut bytes),
        };
        if let Some(pos) = start {
            chunk.first = Some(bytes.offset_of(pos));
            self.frame(&mut bytes, pos, &mut chunk);
        }
        chunk.items = std::mem::take(&mut self.packets.sink.items);
        chunk.stats = std::mem::take(&mut self.packets.stats);
        chunk.anomalies = std::mem::take(&mut self.packets.anomalies);
        chunk.bytes = bytes.data;
        chunk
    }

    /// The first offset in the chunk where records seem to start.
    fn boundary(&mut self, bytes: &mut Bytes) -> Option<usize> {
        let reader = &self.plan.reader;
        bytes.ensure(&self.file, bytes.start + PIECE, self.progress);
        let mut i = bytes.start;
        while i < bytes.span {
            match reader.chain(bytes.get(i), bytes.eof) {
                Chain::Yes => return Some(i),
                Chain::No => i += 1,
                Chain::More => {
                    let more = bytes.filled + PIECE;
                    bytes.ensure(&self.file, more, self.progress);
                }
            }
        }
        None
    }

    /// Frames the records from `pos` on whose header starts in the chunk, each through the
    /// headers into the chunk's items.
    fn frame(&mut self, bytes: &mut Bytes, mut pos: usize, chunk: &mut Chunk) {
        let reader = &self.plan.reader;
        let capture = self.plan.capture;
        // The span ends at the file's length: past it nothing is read.
        while pos < bytes.span {
            bytes.ensure(&self.file, pos + HEADER, self.progress);
            let Some(p) = reader.ordinary_at(bytes.get(pos)) else {
                chunk.dirty = true;
                break;
            };
            bytes.ensure(&self.file, pos + p.need, self.progress);
            if bytes.filled < pos + p.need {
                // Cut short by the file's end (or a read error): the careful reader's to tell.
                chunk.dirty = true;
                break;
            }
            let offset = bytes.offset_of(pos);
            let index = self.first_index.unwrap_or(0) + chunk.records;
            WHERE.with(|w| w.set((capture as usize, index, offset)));
            #[cfg(test)]
            if tests::PANIC_AT_OFFSET.load(Ordering::Relaxed) == offset {
                panic!("injected at offset {offset}");
            }
            let ts = reader.ts_ns(p.sec, p.frac);
            let at = Position {
                capture,
                record_index: chunk.records,
                byte_offset: offset,
            };
            let data = bytes.data.get(pos + HEADER..pos + p.need).unwrap_or(&[]);
            let rec = Record {
                ts_ns: ts,
                link: reader.link,
                data,
                block: &bytes.data,
                orig_len: p.orig_len,
                index: chunk.records,
                offset,
            };
            let before = self.packets.sink.items.len();
            RecordSink::record(&mut self.packets, at, &rec);
            let sink = &mut self.packets.sink;
            if sink.deferred {
                sink.deferred = false;
                let (start, len) = range_of(data, &bytes.data);
                sink.items.push(Item::Whole {
                    at,
                    ts,
                    orig_len: p.orig_len,
                    start,
                    len,
                });
            } else if sink.items.len() == before {
                sink.items.push(Item::Tick(ts));
            }
            chunk.records += 1;
            chunk.last_sec = Some(p.sec);
            chunk.first_ts = Some(chunk.first_ts.map_or(ts, |t| t.min(ts)));
            chunk.last_ts = Some(chunk.last_ts.map_or(ts, |t| t.max(ts)));
            chunk.last_offset = offset;
            pos += p.need;
        }
        chunk.end = bytes.offset_of(pos);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the threads meet: which chunk is claimed next, which are done, which is applied.
#[derive(Default)]
struct Board {
    claimed: u64,
    applied: u64,
    done: BTreeMap<u64, Box<Chunk>>,
    stop: bool,
}

struct Shared {
    board: Mutex<Board>,
    changed: Condvar,
    spares: Spares,
    chunks: u64,
}

enum Next {
    Apply(Box<Chunk>),
    Parse(u64),
}

impl Shared {
    /// The next chunk a helper may claim; None when there is none or the decode stops.
    fn claim(&self) -> Option<u64> {
        let mut b = lock(&self.board);
        loop {
            if b.stop || b.claimed >= self.chunks {
                return None;
            }
            if b.claimed < b.applied + WINDOW {
                b.claimed += 1;
                return Some(b.claimed - 1);
            }
            b = self.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// For the applying thread: chunk `k` when it is done, else a chunk to frame meanwhile.
    fn next(&self, k: u64) -> Next {
        let mut b = lock(&self.board);
        loop {
            if let Some(c) = b.done.remove(&k) {
                return Next::Apply(c);
            }
            if b.claimed < self.chunks && b.claimed < k + WINDOW {
                b.claimed += 1;
                return Next::Parse(b.claimed - 1);
            }
            b = self.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn deliver(&self, c: Chunk) {
        lock(&self.board).done.insert(c.k, Box::new(c));
        self.changed.notify_all();
    }

    fn applied(&self, k: u64) {
        lock(&self.board).applied = k;
        self.changed.notify_all();
    }

    fn recycle(&self, c: Box<Chunk>) {
        let mut items = c.items;
        items.clear();
        if let Ok(data) = Arc::try_unwrap(c.bytes) {
            let mut spares = lock(&self.spares);
            if spares.len() < WINDOW as usize + 2 {
                spares.push((data, items));
            }
        }
    }
}

/// Stops the helpers however the applying thread leaves (a panic included), so the scope can
/// join them.
struct StopOnDrop<'a>(&'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        lock(&self.0.board).stop = true;
        self.0.changed.notify_all();
    }
}

/// `Worker::parse` on a chunk ahead of the one being applied, where a panic would name the
/// record by its number within the chunk: after one, the chunk is delivered as having nothing,
/// the applying thread frames it again itself when its turn comes, knowing the record numbers,
/// and the panic recurs there with them.
fn parse_or_none(worker: &mut Worker<'_>, k: u64) -> Chunk {
    let first = (k == 0).then_some(FILE_HEADER);
    catch_unwind(AssertUnwindSafe(|| worker.parse(k, first, None)))
        .unwrap_or_else(|_| Chunk::none(k, worker.plan.start(k)))
}

fn helper(shared: &Shared, plan: &Plan, opts: &Options) {
    let Ok(mut worker) = Worker::new(plan, opts, &shared.spares) else {
        return;
    };
    while let Some(k) = shared.claim() {
        shared.deliver(parse_or_none(&mut worker, k));
    }
}

/// The calling thread's side of one pass: the flow table and what feeds it in order.
struct Applier {
    records: Records,
    packets: Packets<State>,
    /// The anomalies of the headers decoded in chunks, in record order.
    headers: Anomalies,
    /// The counters of the headers decoded in chunks.
    stats: Stats,
}

/// `at`, numbered within its chunk, numbered within its file (the chunk's first record is number
/// `base`); also where a panic from here on happened.
#[inline]
fn numbered(mut at: Position, base: u64) -> Position {
    at.record_index += base;
    WHERE.with(|w| w.set((at.capture as usize, at.record_index, at.byte_offset)));
    at
}

/// Where the careful reader takes over a file: the offset, the records before it, the last
/// record's second.
type Resume = (u64, u64, Option<u32>);

impl Applier {
    /// Applies chunk `c`, whose first record is number `base` of its file.
    fn apply(&mut self, c: &mut Chunk, base: u64, link: u32, info: &mut CaptureInfo) {
        let bytes: &[u8] = &c.bytes;
        let slice = |start: u32, len: u32| {
            let start = start as usize;
            bytes.get(start..start + len as usize).unwrap_or(&[])
        };
        let packets = &mut self.packets;
        for item in &c.items {
            match *item {
                Item::Packet {
                    at,
                    ref meta,
                    seq,
                    start,
                    len,
                } => {
                    let at = numbered(at, base);
                    packets.tick(meta.ts);
                    packets
                        .sink
                        .packet(at, meta, seq, slice(start, len), &mut packets.anomalies);
                }
                Item::Tick(ts) => packets.tick(ts),
                Item::Whole {
                    at,
                    ts,
                    orig_len,
                    start,
                    len,
                } => {
                    let at = numbered(at, base);
                    let rec = Record {
                        ts_ns: ts,
                        link,
                        data: slice(start, len),
                        block: &c.bytes,
                        orig_len,
                        index: at.record_index,
                        offset: at.byte_offset,
                    };
                    RecordSink::record(packets, at, &rec);
                }
            }
        }
        if c.records > 0 {
            info.packets += c.records;
            info.link_types.insert(link);
            if let (Some(a), Some(b)) = (c.first_ts, c.last_ts) {
                info.first_ts = Some(info.first_ts.map_or(a, |t| t.min(a)));
                info.last_ts = Some(info.last_ts.map_or(b, |t| t.max(b)));
            }
            self.records.pos = Position {
                capture: self.records.pos.capture,
                record_index: base + c.records - 1,
                byte_offset: c.last_offset,
            };
        }
        self.stats.add(&c.stats);
        self.headers
            .append_shifted(std::mem::take(&mut c.anomalies), base);
    }

    /// One file in chunks on `threads` threads; the careful reader takes over at the first
    /// record it must read.
    fn decode_file(&mut self, plan: &Plan, opts: &Options, threads: usize) -> Result<()> {
        let capture = plan.capture;
        let mut info = CaptureInfo {
            path: plan.path.to_string_lossy().into_owned(),
            format: "pcap",
            compression: "none",
            ..Default::default()
        };
        self.records.pos = Position {
            capture,
            record_index: 0,
            byte_offset: 0,
        };
        let shared = Shared {
            board: Mutex::new(Board::default()),
            changed: Condvar::new(),
            spares: Mutex::new(Vec::new()),
            chunks: plan.chunks(),
        };
        let resume = std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(|| helper(&shared, plan, opts));
            }
            let _stop = StopOnDrop(&shared);
            self.chunks_in_order(plan, opts, &shared, &mut info)
        })?;
        match resume {
            Some((offset, index, last_sec)) => {
                let mut src = Source::open_at(&plan.path, offset, opts.progress.clone())?;
                let mut reader = CaptureReader::Pcap(plan.reader.resume(index, last_sec));
                self.records
                    .read(&mut reader, &mut src, &mut info, &mut self.packets);
            }
            None => info.bytes = plan.len,
        }
        self.records.captures.push(info);
        Ok(())
    }

    fn chunks_in_order(
        &mut self,
        plan: &Plan,
        opts: &Options,
        shared: &Shared,
        info: &mut CaptureInfo,
    ) -> Result<Option<Resume>> {
        let mut worker = Worker::new(plan, opts, &shared.spares)?;
        let mut expected = FILE_HEADER;
        let mut base = 0u64;
        let mut last_sec = None;
        let mut k = 0;
        while k < shared.chunks {
            let mut c = match shared.next(k) {
                Next::Apply(c) => c,
                Next::Parse(j) => {
                    shared.deliver(parse_or_none(&mut worker, j));
                    continue;
                }
            };
            if expected >= plan.start(k + 1) {
                // A record that began in an earlier chunk covers this one.
                shared.recycle(c);
                k += 1;
                shared.applied(k);
                continue;
            }
            if c.first != Some(expected) {
                shared.recycle(c);
                c = Box::new(worker.parse(k, Some(expected), Some(base)));
            }
            self.apply(&mut c, base, plan.reader.link, info);
            base += c.records;
            expected = c.end;
            last_sec = c.last_sec.or(last_sec);
            let dirty = c.dirty;
            shared.recycle(c);
            k += 1;
            shared.applied(k);
            if dirty {
                return Ok(Some((expected, base, last_sec)));
            }
        }
        Ok(None)
    }
}

/// Whether `decode_paths` suits `paths`: at least one classic pcap file large enough to split,
/// and no other large input (a large pcapng or compressed file decodes faster in the pipeline;
/// small ones are read on the calling thread). Standard input cannot be split.
pub fn suits(paths: &[PathBuf], opts: &Options) -> bool {
    let chunk = chunk_bytes(opts);
    let mut any = false;
    for p in paths {
        if p.as_os_str() == "-" {
            return false;
        }
        if Plan::probe(p, chunk, 0).is_some() {
            any = true;
        } else if std::fs::metadata(p).is_ok_and(|m| m.len() >= 4 * chunk) {
            return false;
        }
    }
    any
}

/// The chunk size asked for, within bounds: every chunk in flight holds a buffer of its size, and
/// below a few records per chunk the claiming costs more than the framing.
fn chunk_bytes(opts: &Options) -> u64 {
    match opts.chunk_bytes {
        0 => CHUNK,
        n => n.clamp(MIN_CHUNK, MAX_CHUNK),
    }
}

/// `super::decode_paths` with the classic pcap files among `paths` decoded in chunks on every
/// thread, the others one record at a time on the calling thread.
pub fn decode_paths(paths: &[PathBuf], opts: Options) -> Result<Output> {
    let threads = threads_for(&opts).max(1);
    let chunk = chunk_bytes(&opts);
    let mut a = Applier {
        records: Records::new(&opts),
        packets: Packets::new(&opts, State::new(&opts)),
        headers: Anomalies::default(),
        stats: Stats::default(),
    };
    let mut format_errors = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        WHERE.with(|w| w.set((i, 0, 0)));
        let capture = a.records.captures.len() as u32;
        let done = match Plan::probe(p, chunk, capture) {
            Some(plan) => a.decode_file(&plan, &opts, threads),
            None => a.records.decode_path(p, &mut a.packets),
        };
        match done {
            Ok(()) => {}
            Err(e @ Error::Format { .. }) => format_errors.push(e),
            Err(e) => return Err(e),
        }
    }
    nothing_decoded(paths, format_errors)?;
    // In record order: the containers', the headers', then the flow table's at the same record.
    let Applier {
        mut records,
        mut packets,
        headers,
        stats,
    } = a;
    let theirs = std::mem::take(&mut packets.anomalies);
    let mut anomalies = Anomalies::merge(std::mem::take(&mut records.anomalies), headers);
    anomalies = Anomalies::merge(anomalies, theirs);
    let before_end = anomalies.total();
    packets.stats.add(&stats);
    let (stats, state) = packets.finish(&mut anomalies, records.pos);
    Ok(conclude(records, anomalies, before_end, stats, state))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::flow::FlowLimits;
    use crate::packet::emit::{ethernet_frame, EthernetRepr, IpRepr, Ipv4Repr, UdpRepr, L4};
    use std::sync::atomic::AtomicU64;

    /// Tests make whichever thread frames the record at this offset panic.
    pub static PANIC_AT_OFFSET: AtomicU64 = AtomicU64::new(u64::MAX);

    /// A small deterministic generator (tests must not depend on a crate's random numbers).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    fn ip_repr(src: u8, dst: u8, id: u16, frag: u16) -> IpRepr<'static> {
        IpRepr::V4(Ipv4Repr {
            id,
            dont_frag: false,
            more_frags: frag & 0x2000 != 0,
            frag_offset: (frag & 0x1fff) * 8,
            ..Ipv4Repr::new([10, 0, 0, src], [10, 0, 0, dst], 0, 0)
        })
    }

    /// A frame from 10.0.0.`src` to 10.0.0.`dst` of `body` (a whole datagram or a fragment's
    /// piece); `frag` as the header's flags and offset field.
    fn ipv4(src: u8, dst: u8, id: u16, frag: u16, proto: u8, body: &[u8]) -> Vec<u8> {
        let eth = EthernetRepr {
            dst: [2, 0, 0, 0, 0, dst],
            src: [2, 0, 0, 0, 0, src],
            ..EthernetRepr::default()
        };
        ethernet_frame(&eth, ip_repr(src, dst, id, frag), &L4::Raw(proto), body)
    }

    /// A UDP datagram from 10.0.0.`src` to 10.0.0.`dst`, to be sent whole or in pieces.
    fn udp(src: u8, dst: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        UdpRepr { sport, dport }.emit(&mut u, &ip_repr(src, dst, 0, 0), payload);
        u
    }

    fn record(us: u64, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let (sec, frac) = ((us / 1_000_000) as u32, (us % 1_000_000) as u32);
        for x in [sec, frac, data.len() as u32, data.len() as u32] {
            v.extend(x.to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    /// Records of UDP conversations with idle gaps longer than the timeout, ARP between them (a
    /// record without a packet can be the one that sweeps), fragmented datagrams, records longer
    /// than a small chunk, and payloads that look like records (wrong guesses of a chunk's first
    /// record); `corrupt`: a zero-length record and garbage after two thirds, a cut last record.
    fn capture(seed: u64, corrupt: bool) -> Vec<u8> {
        let mut r = Lcg(seed);
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        f.extend(65_535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        let mut us = 1_700_000_000_000_000u64;
        for i in 0..3000u64 {
            us += r.next(400_000);
            let (a, b) = (1 + r.next(6) as u8, 100 + r.next(3) as u8);
            let port = 1000 + r.next(5) as u16;
            match r.next(100) {
                0..=9 => {
                    let mut arp = vec![0xff; 6];
                    arp.extend([2, 0, 0, 0, 0, a, 0x08, 0x06]);
                    arp.extend([0; 28]);
                    f.extend(record(us, &arp));
                }
                10..=14 => {
                    let body = udp(a, b, port, 53, &[i as u8; 40]);
                    let id = i as u16;
                    f.extend(record(us, &ipv4(a, b, id, 0x2000, 17, &body[..24])));
                    us += r.next(3000);
                    f.extend(record(us, &ipv4(a, b, id, 3, 17, &body[24..])));
                }
                15 => f.extend(record(
                    us,
                    &ipv4(a, b, 1, 0, 17, &udp(a, b, port, 2049, &[7; 3000])),
                )),
                16..=18 => {
                    let mut fake = Vec::new();
                    for k in 0..5 {
                        fake.extend(record(us + k, &[0x45; 8]));
                    }
                    f.extend(record(
                        us,
                        &ipv4(a, b, 1, 0, 17, &udp(a, b, port, 111, &fake)),
                    ));
                }
                _ => {
                    let len = r.next(600) as usize;
                    let (s, d, sp, dp) = if r.next(2) == 0 {
                        (a, b, port, 53)
                    } else {
                        (b, a, 53, port)
                    };
                    f.extend(record(
                        us,
                        &ipv4(s, d, 1, 0, 17, &udp(s, d, sp, dp, &vec![9; len])),
                    ));
                }
            }
            if corrupt && i == 2000 {
                f.extend(record(us, &[]));
                f.extend([0xee; 77]);
                // Records of 1970 the resynchronisation skips, knowing the last record's time.
                f.extend(record(5_000_000, &[1; 20]));
                f.extend(record(5_000_001, &[1; 20]));
            }
        }
        if corrupt {
            f.extend(&record(us, &[5; 300])[..100]);
        }
        f
    }

    fn options(threads: usize, chunk_bytes: u64) -> Options {
        Options {
            threads,
            chunk_bytes,
            flows: FlowLimits {
                max_flows: 64,
                idle_timeout_ns: 5_000_000_000,
            },
            ..Options::default()
        }
    }

    fn summary(out: &Output) -> String {
        crate::tables::fingerprint(out)
    }

    #[test]
    fn a_chunk_is_read_cache_line_aligned_at_its_own_offsets() {
        let dir = std::env::temp_dir().join(format!("pw-chunks-align-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bytes");
        let file: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &file).unwrap();
        let f = File::open(&path).unwrap();
        for from in [0u64, 24, 700, 4096 + 13, 19_990] {
            let stop = (from + 3000).min(20_000);
            let mut b = Bytes::new(vec![0; 4000 + ALIGN], from, stop, 20_000);
            assert_eq!(b.offset_of(b.start), from);
            assert_eq!(b.base % ALIGN as u64, 0, "{from}");
            assert_eq!((b.data.as_ptr() as usize + b.filled) % ALIGN, 0, "{from}");
            assert_eq!(b.span - b.start, (stop - from) as usize);
            b.ensure(&f, b.start + 200, None);
            let want = &file[from as usize..(from as usize + 200).min(20_000)];
            assert_eq!(&b.get(b.start)[..want.len()], want, "{from}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn chunks_decode_what_one_pass_does() {
        let dir = std::env::temp_dir().join(format!("pw-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let clean = dir.join("clean.pcap");
        let broken = dir.join("broken.pcap");
        std::fs::write(&clean, capture(1, false)).unwrap();
        std::fs::write(&broken, capture(2, true)).unwrap();
        for paths in [
            vec![clean.clone()],
            vec![broken.clone()],
            vec![clean.clone(), broken.clone()],
        ] {
            let one = super::super::decode_paths(&paths, options(1, 0)).unwrap();
            assert!(
                one.stats.reassembled > 50 && one.stats.non_ip > 100,
                "{:?}",
                one.stats
            );
            assert!(
                one.stats.flows_expired + one.stats.flows_split_idle > 10,
                "{:?}",
                one.stats
            );
            for (threads, chunk) in [(2, 700), (2, 4096), (3, 1500), (2, 64 << 10)] {
                let opts = options(threads, chunk);
                assert!(suits(&paths, &opts));
                let many = decode_paths(&paths, opts).unwrap();
                assert_eq!(summary(&one), summary(&many), "{paths:?} {threads} {chunk}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_opened_to_be_probed() {
        // Opening a FIFO waits for a writer and, once one came, consumes what it wrote: the probe
        // must tell it apart by its name alone (no writer ever comes here).
        let dir = std::env::temp_dir().join(format!("pw-chunks-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("live.pcap");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let paths = vec![fifo.clone()];
        std::thread::spawn(move || tx.send(suits(&paths, &options(2, 0))).ok());
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(got, Ok(false), "the probe opened the FIFO");
    }

    #[test]
    fn a_panic_in_any_thread_names_the_record() {
        let dir = std::env::temp_dir().join(format!("pw-chunks-panic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clean.pcap");
        std::fs::write(&path, capture(3, false)).unwrap();
        let paths = vec![path.clone()];
        let one = super::super::decode_paths(&paths, options(1, 0)).unwrap();
        // Records far enough apart that some fall in chunks the helper frames, some in the
        // applying thread's: with 40 chunks, both kinds are met.
        let mut seen = Vec::new();
        for at in [0.3, 0.5, 0.7, 0.9] {
            let target = (one.stats.records as f64 * at) as u64;
            let offset = offset_of(&path, target);
            PANIC_AT_OFFSET.store(offset, Ordering::Relaxed);
            let err = crate::decode::decode_paths_catching(&paths, options(2, 2048));
            PANIC_AT_OFFSET.store(u64::MAX, Ordering::Relaxed);
            match err {
                Err(Error::Internal {
                    path: p,
                    record_index,
                    byte_offset,
                    message,
                }) => {
                    assert_eq!(
                        (p, record_index, byte_offset),
                        (path.clone(), target, offset)
                    );
                    assert_eq!(message, format!("injected at offset {offset}"));
                }
                other => panic!("expected Error::Internal, got {:?}", other.map(|_| ())),
            }
            seen.push(target);
        }
        assert_eq!(seen.len(), 4);
        assert!(decode_paths(&paths, options(2, 2048)).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The byte offset of record `index` of a classic pcap file.
    fn offset_of(path: &Path, index: u64) -> u64 {
        let bytes = std::fs::read(path).unwrap();
        let mut at = FILE_HEADER as usize;
        for _ in 0..index {
            let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            at += HEADER + incl as usize;
        }
        at as u64
    }
}
