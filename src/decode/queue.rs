//! What crosses from the threads that decode headers to the thread that keeps the flow table,
//! whatever the schedule: batches of items in record order, with payloads left in the read
//! buffers they were read into (shared blocks, not copies), and how the applying thread takes
//! them. One type for the pipeline and the chunks, so both apply a packet the same way.

use std::sync::Arc;

use super::boundary::WHERE;
use super::packets::{HeaderDecoder, PacketSink};
use super::records::RecordSink;
use super::state::FlowStage;
use crate::anomaly::Position;
use crate::capture::Record;
use crate::flow::PacketMeta;

/// Where a payload lies: in one of the batch's blocks, or in its arena.
#[derive(Debug, Clone, Copy)]
pub struct Loc {
    pub block: u32,
    pub start: u32,
    pub len: u32,
}

pub const IN_ARENA: u32 = u32::MAX;

impl Loc {
    pub const EMPTY: Loc = Loc {
        block: IN_ARENA,
        start: 0,
        len: 0,
    };
}

/// One record's part of the pass, as the flow stage takes it.
#[derive(Debug)]
pub enum Item {
    /// A transport packet decoded from its headers.
    Packet {
        at: Position,
        meta: PacketMeta,
        seq: u32,
        payload: Loc,
    },
    /// Sweep idle flows out at this capture time: the decoding thread saw every record before
    /// and decided it (the pipeline).
    Sweep(i64),
    /// A record that produced no packet: only its time matters, the applying thread sweeps
    /// where one pass would (chunks, whose decoding threads do not know the records before).
    Tick(i64),
    /// An IP fragment's record, decoded whole by the applying thread: the datagram's other
    /// fragments may lie in other chunks.
    Whole {
        at: Position,
        ts: i64,
        link: u32,
        orig_len: u32,
        payload: Loc,
    },
}

const _: () = assert!(std::mem::size_of::<Item>() <= 128);

/// Items with the buffers their payloads lie in.
#[derive(Debug, Default)]
pub struct Batch {
    pub blocks: Vec<Arc<Vec<u8>>>,
    pub arena: Vec<u8>,
    pub items: Vec<Item>,
}

impl Batch {
    pub fn with_capacity(items: usize) -> Self {
        Batch {
            items: Vec::with_capacity(items),
            ..Batch::default()
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.blocks.clear();
        self.arena.clear();
    }

    #[inline]
    fn block(&self, l: Loc) -> Option<&Arc<Vec<u8>>> {
        self.blocks.get(l.block as usize)
    }

    #[inline]
    pub fn payload(&self, l: Loc) -> &[u8] {
        let whole: &[u8] = if l.block == IN_ARENA {
            &self.arena
        } else {
            self.block(l).map_or(&[], |b| b.as_slice())
        };
        let start = l.start as usize;
        whole.get(start..start + l.len as usize).unwrap_or(&[])
    }

    /// Where `bytes` lie: in `block` (registered once, as the batch's last block), else copied to
    /// the arena.
    #[inline]
    pub fn locate(&mut self, bytes: &[u8], block: Option<&Arc<Vec<u8>>>) -> Loc {
        if bytes.is_empty() {
            return Loc::EMPTY;
        }
        if let Some(b) = block {
            let base = b.as_ptr() as usize;
            let at = bytes.as_ptr() as usize;
            if at >= base && at + bytes.len() <= base + b.len() {
                let same = self.blocks.last().is_some_and(|last| Arc::ptr_eq(last, b));
                if !same {
                    self.blocks.push(Arc::clone(b));
                }
                return Loc {
                    block: (self.blocks.len() - 1) as u32,
                    start: (at - base) as u32,
                    len: bytes.len() as u32,
                };
            }
        }
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Loc {
            block: IN_ARENA,
            start,
            len: bytes.len() as u32,
        }
    }

    /// Applies the items in order to the flow stage; their records are numbered from `base`
    /// (chunks number their records from 0, not knowing how many came before).
    pub fn apply(&self, packets: &mut HeaderDecoder<FlowStage>, base: u64) {
        for item in &self.items {
            match *item {
                Item::Packet {
                    at,
                    ref meta,
                    seq,
                    payload,
                } => {
                    let at = numbered(at, base);
                    packets.tick(meta.ts);
                    packets.sink.packet(
                        at,
                        meta,
                        seq,
                        self.payload(payload),
                        &mut packets.anomalies,
                    );
                }
                Item::Sweep(now) => PacketSink::sweep(&mut packets.sink, now),
                Item::Tick(ts) => packets.tick(ts),
                Item::Whole {
                    at,
                    ts,
                    link,
                    orig_len,
                    payload,
                } => {
                    let at = numbered(at, base);
                    let empty = Arc::default();
                    let rec = Record {
                        ts_ns: ts,
                        link,
                        data: self.payload(payload),
                        block: self.block(payload).unwrap_or(&empty),
                        orig_len,
                        index: at.record_index,
                        offset: at.byte_offset,
                    };
                    RecordSink::record(packets, at, &rec);
                }
            }
        }
    }
}

/// `at`, numbered within its chunk, numbered within its file (the chunk's first record is number
/// `base`); also where a panic from here on happened.
#[inline]
fn numbered(mut at: Position, base: u64) -> Position {
    at.record_index += base;
    WHERE.with(|w| w.set((at.capture as usize, at.record_index, at.byte_offset)));
    at
}
