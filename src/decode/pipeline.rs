//! The pass on two threads: the calling thread reads records and decodes their headers (`Records`,
//! `Packets`), a second thread keeps the flow table and the application decoders (`State`).
//! Transport packets cross in batches through a bounded queue, in record order, with their payloads
//! left in the read buffers they were read into (shared blocks, not copies), so the flow table sees
//! exactly the packets the one-thread pass would and the result is the same.
//!
//! Used for what `chunks` cannot split (pcapng, compressed input, stdin). Why neither splits the
//! flow table: it is path-dependent. A port a portmapper hands out in one chunk decides how a flow
//! in a later chunk is decoded; a reply is matched to a call by XID across any border; a stream's
//! reassembly and its flow's orientation depend on everything before. The first half has none of
//! that state (bar IP fragments) and is where most of the time goes, so it is the half that runs
//! apart.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

use super::packets::{PacketSink, Packets};
use super::records::Records;
use super::state::State;
use super::{conclude, internal, nothing_decoded, panic_message, Options, Output, WHERE};
use crate::anomaly::{Anomalies, Position};
use crate::error::{Error, Result};
use crate::flow::PacketMeta;

/// Packets per batch: large enough that the queue costs little per packet, small enough that the
/// second thread starts at once and the blocks held stay few.
const BATCH: usize = 4096;
/// Batches queued at most; with the batch being filled and the one being decoded, this bounds the
/// read buffers held (each batch holds the few blocks its payloads lie in).
const QUEUED: usize = 4;
/// Bytes of reassembled datagrams a batch copies before it is sent.
const ARENA: usize = 4 << 20;

/// Where a payload lies: in one of the batch's blocks, or in its arena.
#[derive(Debug, Clone, Copy)]
struct Loc {
    block: u32,
    start: u32,
    len: u32,
}

const IN_ARENA: u32 = u32::MAX;

#[derive(Debug)]
enum Item {
    Packet {
        at: Position,
        meta: PacketMeta,
        seq: u32,
        payload: Loc,
    },
    Sweep(i64),
}

const _: () = assert!(std::mem::size_of::<Item>() <= 128);

#[derive(Debug)]
struct Batch {
    blocks: Vec<Arc<Vec<u8>>>,
    arena: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            blocks: Vec::new(),
            arena: Vec::new(),
            items: Vec::with_capacity(BATCH),
        }
    }

    fn payload(&self, l: Loc) -> &[u8] {
        let whole: &[u8] = if l.block == IN_ARENA {
            &self.arena
        } else {
            self.blocks
                .get(l.block as usize)
                .map_or(&[], |b| b.as_slice())
        };
        let start = l.start as usize;
        whole.get(start..start + l.len as usize).unwrap_or(&[])
    }
}

/// The first thread's sink: fills batches and queues them for the second thread.
struct Feeder {
    tx: Option<SyncSender<Batch>>,
    back: Receiver<Batch>,
    batch: Batch,
}

impl Feeder {
    fn send(&mut self) {
        let next = self.back.try_recv().unwrap_or_else(|_| Batch::new());
        let full = std::mem::replace(&mut self.batch, next);
        if let Some(tx) = &self.tx {
            if tx.send(full).is_err() {
                // The second thread ended early (it failed): stop reading.
                self.tx = None;
            }
        }
    }

    /// Where `bytes` lie: in `block` (registered with the batch once), else copied to the arena.
    #[inline]
    fn locate(&mut self, bytes: &[u8], block: Option<&Arc<Vec<u8>>>) -> Loc {
        if bytes.is_empty() {
            return Loc {
                block: IN_ARENA,
                start: 0,
                len: 0,
            };
        }
        if let Some(b) = block {
            let base = b.as_ptr() as usize;
            let at = bytes.as_ptr() as usize;
            if at >= base && at + bytes.len() <= base + b.len() {
                let same = self
                    .batch
                    .blocks
                    .last()
                    .is_some_and(|last| Arc::ptr_eq(last, b));
                if !same {
                    self.batch.blocks.push(Arc::clone(b));
                }
                return Loc {
                    block: (self.batch.blocks.len() - 1) as u32,
                    start: (at - base) as u32,
                    len: bytes.len() as u32,
                };
            }
        }
        let start = self.batch.arena.len() as u32;
        self.batch.arena.extend_from_slice(bytes);
        Loc {
            block: IN_ARENA,
            start,
            len: bytes.len() as u32,
        }
    }

    #[inline]
    fn push(&mut self, item: Item) {
        self.batch.items.push(item);
        if self.batch.items.len() >= BATCH || self.batch.arena.len() >= ARENA {
            self.send();
        }
    }
}

impl PacketSink for Feeder {
    #[inline]
    fn stopped(&self) -> bool {
        self.tx.is_none()
    }

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
        let loc = self.locate(payload, block);
        self.push(Item::Packet {
            at,
            meta: *p,
            seq,
            payload: loc,
        });
    }

    fn sweep(&mut self, now: i64) {
        self.push(Item::Sweep(now));
    }
}

/// What the second thread ends with: the flow table and its anomalies, or the panic it caught
/// and where.
type Second = std::result::Result<(State, Anomalies), ((usize, u64, u64), String)>;

/// The second thread: batches in order into the flow table, each batch returned for reuse.
fn second_half(opts: &Options, rx: Receiver<Batch>, back: Sender<Batch>) -> Second {
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut state = State::new(opts);
        let mut an = Anomalies::default();
        for mut batch in rx {
            for item in &batch.items {
                match *item {
                    Item::Packet {
                        at,
                        ref meta,
                        seq,
                        payload,
                    } => {
                        WHERE.with(|w| {
                            w.set((at.capture as usize, at.record_index, at.byte_offset))
                        });
                        state.packet(at, meta, seq, batch.payload(payload), &mut an);
                    }
                    Item::Sweep(now) => PacketSink::sweep(&mut state, now),
                }
            }
            batch.items.clear();
            batch.blocks.clear();
            batch.arena.clear();
            // The first thread may have finished already; then the batch is simply dropped.
            let _ = back.send(batch);
        }
        (state, an)
    }));
    run.map_err(|p| (WHERE.with(Cell::get), panic_message(&*p)))
}

/// `super::decode_paths` on two threads.
pub fn decode_paths(paths: &[PathBuf], opts: Options) -> Result<Output> {
    let (tx, rx) = sync_channel::<Batch>(QUEUED);
    let (back_tx, back_rx) = channel::<Batch>();
    let mut records = Records::new(&opts);
    let (first, second) = std::thread::scope(|s| {
        let opts = &opts;
        let handle = s.spawn(move || second_half(opts, rx, back_tx));
        // Owned by this closure: if this thread panics, unwinding drops the sender, the second
        // thread's loop ends, and the scope can join it.
        let feeder = Feeder {
            tx: Some(tx),
            back: back_rx,
            batch: Batch::new(),
        };
        let mut packets = Packets::new(opts, feeder);
        let mut format_errors = Vec::new();
        let mut failed = None;
        for (i, p) in paths.iter().enumerate() {
            WHERE.with(|w| w.set((i, 0, 0)));
            match records.decode_path(p, &mut packets) {
                Ok(()) => {}
                Err(e @ Error::Format { .. }) => format_errors.push(e),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            if packets.sink.stopped() {
                break;
            }
        }
        packets.sink.send();
        packets.sink.tx = None;
        let second = handle
            .join()
            .unwrap_or_else(|p| Err((WHERE.with(Cell::get), panic_message(&*p))));
        (failed.map_or(Ok((format_errors, packets)), Err), second)
    });
    let (state, own) = second.map_err(|(at, message)| internal(paths, at, message))?;
    let (format_errors, mut packets) = first?;
    nothing_decoded(paths, format_errors)?;
    // In record order: the containers', the headers', then the flow table's at the same record.
    let theirs = std::mem::take(&mut packets.anomalies);
    let mut anomalies = Anomalies::merge(std::mem::take(&mut records.anomalies), theirs);
    anomalies = Anomalies::merge(anomalies, own);
    let before_end = anomalies.total();
    let (stats, _) = packets.finish(&mut anomalies, records.pos);
    Ok(conclude(records, anomalies, before_end, stats, state))
}
