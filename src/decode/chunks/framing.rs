//! One chunk framed into records and decoded through their headers, by whichever thread claimed
//! it: where its first record starts (a guess when unknown), its records up to the first one only
//! the careful reader may read, each record's packets as items whose payloads are ranges of the
//! chunk's buffer.

use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[cfg(test)]
use std::sync::atomic::Ordering;

use super::reads::{lock, Bytes, Spares, ALIGN, PIECE};
use super::split::Plan;
use crate::anomaly::{Anomalies, Position};
use crate::capture::pcap::{Chain, PcapReader, HEADER};
use crate::capture::pcapng::framing::Preamble;
use crate::capture::pcapng::PcapngReader;
use crate::capture::{CaptureReader, Record};
use crate::decode::boundary::WHERE;
use crate::decode::options::Options;
use crate::decode::output::Stats;
use crate::decode::packets::{HeaderDecoder, PacketSink};
use crate::decode::queue::{Batch, Item, Loc};
use crate::decode::records::RecordSink;
use crate::error::{Error, Result};
use crate::flow::PacketMeta;

/// Tests make whichever thread frames the record at this offset panic.
#[cfg(test)]
pub static PANIC_AT_OFFSET: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(u64::MAX);

/// A record as a chunk frames it: its facts, its data as a range of its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rec {
    pub ts_ns: i64,
    pub link: u32,
    pub orig_len: u32,
    pub start: usize,
    pub len: usize,
    /// The second of its timestamp, as the classic reader remembers it (0 for pcapng).
    pub sec: u32,
}

/// A container whose records a thread frames from the middle of a file: exactly those the
/// careful reader (`CaptureReader`) reads without a word; at any other it stops.
pub trait Container: Clone + Send + Sync {
    /// What the header of a record says, read before the rest of it.
    type Head: Copy;
    /// Offsets a record may start at are multiples of this.
    const STEP: usize;
    /// Bytes of a record's header.
    const HEADER: usize;
    const FORMAT: &'static str;
    /// The header at the start of `b`, when it is one the careful reader takes without a word.
    fn head(&self, b: &[u8]) -> Option<Self::Head>;
    /// Bytes of the record with this header.
    fn need(head: &Self::Head) -> usize;
    /// The record `b` (all `need` bytes): Some(Some) one with a packet, Some(None) one skipped
    /// silently, None one the careful reader must read.
    fn frame(&self, head: &Self::Head, b: &[u8]) -> Option<Option<Rec>>;
    /// Whether records seem to start at the beginning of `b` (`PcapReader::chain`).
    fn chain(&self, b: &[u8], eof: bool) -> Chain;
    /// The careful reader, resumed after `index` records, the last of them at second `last_sec`,
    /// time `last_ts`.
    fn resume(&self, index: u64, last_sec: Option<u32>, last_ts: Option<i64>) -> CaptureReader;
}

impl Container for PcapReader {
    type Head = crate::capture::pcap::Plain;
    const STEP: usize = 1;
    const HEADER: usize = HEADER;
    const FORMAT: &'static str = "pcap";

    #[inline]
    fn head(&self, b: &[u8]) -> Option<Self::Head> {
        self.ordinary_at(b)
    }

    #[inline]
    fn need(head: &Self::Head) -> usize {
        head.need
    }

    #[inline]
    fn frame(&self, p: &Self::Head, _: &[u8]) -> Option<Option<Rec>> {
        Some(Some(Rec {
            ts_ns: self.ts_ns(p.sec, p.frac),
            link: self.link,
            orig_len: p.orig_len,
            start: HEADER,
            len: p.need - HEADER,
            sec: p.sec,
        }))
    }

    fn chain(&self, b: &[u8], eof: bool) -> Chain {
        PcapReader::chain(self, b, eof)
    }

    fn resume(&self, index: u64, last_sec: Option<u32>, _: Option<i64>) -> CaptureReader {
        CaptureReader::Pcap(PcapReader::resume(self, index, last_sec))
    }
}

impl Container for Preamble {
    type Head = (u32, usize);
    const STEP: usize = 4;
    const HEADER: usize = 12;
    const FORMAT: &'static str = "pcapng";

    #[inline]
    fn head(&self, b: &[u8]) -> Option<Self::Head> {
        Preamble::head(self, b)
    }

    #[inline]
    fn need(head: &Self::Head) -> usize {
        head.1
    }

    #[inline]
    fn frame(&self, &(btype, _): &Self::Head, b: &[u8]) -> Option<Option<Rec>> {
        let f = Preamble::frame(self, btype, b)?;
        Some(f.map(|f| Rec {
            ts_ns: f.ts_ns,
            link: f.link,
            orig_len: f.orig_len,
            start: f.start,
            len: f.caplen,
            sec: 0,
        }))
    }

    fn chain(&self, b: &[u8], eof: bool) -> Chain {
        Preamble::chain(self, b, eof)
    }

    fn resume(&self, index: u64, _: Option<u32>, last_ts: Option<i64>) -> CaptureReader {
        let r: PcapngReader = Preamble::resume(self, index, last_ts);
        CaptureReader::Pcapng(r)
    }
}

/// The worker's sink: packets into items.
#[derive(Default)]
pub struct Collect {
    items: Vec<Item>,
    deferred: bool,
}

/// Where `part` lies in `whole`, as a location in a batch whose only block is `whole`.
fn range_of(part: &[u8], whole: &[u8]) -> Loc {
    let base = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if part.is_empty() || at < base || at + part.len() > base + whole.len() {
        return Loc::EMPTY;
    }
    Loc {
        block: 0,
        start: (at - base) as u32,
        len: part.len() as u32,
    }
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
        let payload = block.map_or(Loc::EMPTY, |b| range_of(payload, b));
        self.items.push(Item::Packet {
            at,
            meta: *p,
            seq,
            payload,
        });
    }

    fn sweep(&mut self, _now: i64) {}

    fn defer_fragment(&mut self) -> bool {
        self.deferred = true;
        true
    }
}

/// A chunk framed and decoded up to the flow table.
pub struct Chunk {
    pub k: u64,
    /// Offset of its first record; None when no record boundary was found in it.
    pub first: Option<u64>,
    /// Offset past its last record: where the next record starts.
    pub end: u64,
    pub records: u64,
    /// It stopped at `end` on a record only the careful reader may read.
    pub dirty: bool,
    /// Of its last record: the second and the time (what the careful reader resumes with).
    pub last_sec: Option<u32>,
    pub last_ts: Option<i64>,
    pub first_ts: Option<i64>,
    pub max_ts: Option<i64>,
    pub last_offset: u64,
    /// The link types of its records.
    pub links: Vec<u32>,
    /// Its items, whose payloads lie in its one block: the chunk's bytes.
    pub batch: Batch,
    pub stats: Stats,
    pub anomalies: Anomalies,
}

impl Chunk {
    /// Chunk `k`, starting at `offset`, with nothing found in it yet.
    pub fn none(k: u64, offset: u64) -> Self {
        Chunk {
            k,
            first: None,
            end: offset,
            records: 0,
            dirty: false,
            last_sec: None,
            last_ts: None,
            first_ts: None,
            max_ts: None,
            last_offset: offset,
            links: Vec::new(),
            batch: Batch::default(),
            stats: Stats::default(),
            anomalies: Anomalies::default(),
        }
    }
}

/// What a thread needs to frame and decode chunks.
pub struct Worker<'a, C> {
    file: File,
    pub plan: &'a Plan<C>,
    packets: HeaderDecoder<Collect>,
    progress: Option<&'a AtomicU64>,
    spares: &'a Spares,
    /// The number of the first record of the chunk being framed, when known (for the message of
    /// a panic).
    first_index: Option<u64>,
}

impl<'a, C: Container> Worker<'a, C> {
    pub fn new(plan: &'a Plan<C>, opts: &'a Options, spares: &'a Spares) -> Result<Self> {
        let file = File::open(&plan.path).map_err(|source| Error::Open {
            path: plan.path.clone(),
            source,
        })?;
        Ok(Worker {
            file,
            plan,
            packets: HeaderDecoder::for_chunks(opts, Collect::default()),
            progress: opts.progress.as_deref(),
            spares,
            first_index: None,
        })
    }

    /// Frames and decodes chunk `k`, from `first` when known, else from the first offset that
    /// looks like a record boundary; `first_index`: the number of its first record, when known.
    pub fn parse(&mut self, k: u64, first: Option<u64>, first_index: Option<u64>) -> Chunk {
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
        chunk.batch.items = std::mem::take(&mut self.packets.sink.items);
        chunk.stats = std::mem::take(&mut self.packets.stats);
        chunk.anomalies = std::mem::take(&mut self.packets.anomalies);
        chunk.batch.blocks.push(bytes.data);
        chunk
    }

    /// The first offset in the chunk where records seem to start.
    fn boundary(&mut self, bytes: &mut Bytes) -> Option<usize> {
        let c = &self.plan.container;
        bytes.ensure(&self.file, bytes.start + PIECE, self.progress);
        // Records start at file offsets that are multiples of `STEP`.
        let mut i = bytes.start + (bytes.offset_of(bytes.start) as usize).wrapping_neg() % C::STEP;
        while i < bytes.span {
            match c.chain(bytes.get(i), bytes.eof) {
                Chain::Yes => return Some(i),
                Chain::No => i += C::STEP,
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
        let c = &self.plan.container;
        let capture = self.plan.capture;
        // The span ends at the file's length: past it nothing is read.
        while pos < bytes.span {
            bytes.ensure(&self.file, pos + C::HEADER, self.progress);
            let Some(head) = c.head(bytes.get(pos)) else {
                chunk.dirty = true;
                break;
            };
            let need = C::need(&head);
            bytes.ensure(&self.file, pos + need, self.progress);
            if bytes.filled < pos + need {
                // Cut short by the file's end (or a read error): the careful reader's to tell.
                chunk.dirty = true;
                break;
            }
            let whole = bytes.data.get(pos..pos + need).unwrap_or(&[]);
            let r = match c.frame(&head, whole) {
                Some(Some(r)) => r,
                Some(None) => {
                    pos += need;
                    continue;
                }
                None => {
                    chunk.dirty = true;
                    break;
                }
            };
            let offset = bytes.offset_of(pos);
            let index = self.first_index.unwrap_or(0) + chunk.records;
            WHERE.with(|w| w.set((capture as usize, index, offset)));
            #[cfg(test)]
            if PANIC_AT_OFFSET.load(Ordering::Relaxed) == offset {
                panic!("injected at offset {offset}");
            }
            let ts = r.ts_ns;
            let at = Position {
                capture,
                record_index: chunk.records,
                byte_offset: offset,
            };
            let data = bytes
                .data
                .get(pos + r.start..pos + r.start + r.len)
                .unwrap_or(&[]);
            let rec = Record {
                ts_ns: ts,
                link: r.link,
                data,
                block: &bytes.data,
                orig_len: r.orig_len,
                index: chunk.records,
                offset,
            };
            let before = self.packets.sink.items.len();
            RecordSink::record(&mut self.packets, at, &rec);
            let sink = &mut self.packets.sink;
            if sink.deferred {
                sink.deferred = false;
                sink.items.push(Item::Whole {
                    at,
                    ts,
                    link: r.link,
                    orig_len: r.orig_len,
                    payload: range_of(data, &bytes.data),
                });
            } else if sink.items.len() == before {
                sink.items.push(Item::Tick(ts));
            }
            if chunk.links.last() != Some(&r.link) && !chunk.links.contains(&r.link) {
                chunk.links.push(r.link);
            }
            chunk.records += 1;
            chunk.last_sec = Some(r.sec);
            chunk.last_ts = Some(ts);
            chunk.first_ts = Some(chunk.first_ts.map_or(ts, |t| t.min(ts)));
            chunk.max_ts = Some(chunk.max_ts.map_or(ts, |t| t.max(ts)));
            chunk.last_offset = offset;
            pos += need;
        }
        chunk.end = bytes.offset_of(pos);
    }
}
