//! The pass on two threads: the calling thread reads records and decodes their headers (`RecordReader`,
//! `HeaderDecoder`), a second thread keeps the flow table and the application decoders (`FlowStage`).
//! Transport packets cross in batches through a bounded queue, in record order, with their payloads
//! left in the read buffers they were read into (shared blocks, not copies), so the flow table sees
//! exactly the packets the one-thread pass would and the result is the same.
//!
//! Used for what `chunks` cannot split (compressed input, stdin, a link type not decoded, a pcapng
//! file whose first packet comes after its first 64 KiB). Why neither splits the flow table: it is
//! path-dependent. A port a portmapper hands out in one chunk decides how a flow
//! in a later chunk is decoded; a reply is matched to a call by XID across any border; a stream's
//! reassembly and its flow's orientation depend on everything before. The first half has none of
//! that state (bar IP fragments) and is where most of the time goes, so it is the half that runs
//! apart.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::boundary::{internal, panic_message, WHERE};
use super::driver::{Ended, Schedule};
use super::options::Options;
use super::packets::{HeaderDecoder, PacketSink};
use super::queue::{Batch, Item};
use super::records::RecordReader;
use super::state::FlowStage;
use crate::anomaly::{Anomalies, Position};
use crate::error::Result;
use crate::flow::PacketMeta;

/// Packets per batch: large enough that the queue costs little per packet, small enough that the
/// second thread starts at once and the blocks held stay few.
const BATCH: usize = 4096;
/// Batches queued at most; with the batch being filled and the one being decoded, this bounds the
/// read buffers held (each batch holds the few blocks its payloads lie in).
const QUEUED: usize = 4;
/// Bytes of reassembled datagrams a batch copies before it is sent.
const ARENA: usize = 4 << 20;

/// The first thread's sink: fills batches and queues them for the second thread.
struct Feeder {
    tx: Option<SyncSender<Batch>>,
    back: Receiver<Batch>,
    batch: Batch,
}

impl Feeder {
    fn send(&mut self) {
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        if let Some(tx) = &self.tx {
            if tx.send(full).is_err() {
                // The second thread ended early (it failed): stop reading.
                self.tx = None;
            }
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
        let payload = self.batch.locate(payload, block);
        self.push(Item::Packet {
            at,
            meta: *p,
            seq,
            payload,
        });
    }

    fn sweep(&mut self, now: i64) {
        self.push(Item::Sweep(now));
    }
}

/// What the second thread ends with: the flow stage, or the panic it caught and where.
type Second = std::result::Result<HeaderDecoder<FlowStage>, ((usize, u64, u64), String)>;

/// The second thread: batches in order into the flow table, each batch returned for reuse.
fn second_half(opts: &Options, rx: Receiver<Batch>, back: Sender<Batch>) -> Second {
    let run = catch_unwind(AssertUnwindSafe(|| {
        // The first thread decides the sweeps (`Item::Sweep`): this one never sweeps by itself.
        let mut packets = HeaderDecoder::for_chunks(opts, FlowStage::new(opts));
        for mut batch in rx {
            batch.apply(&mut packets, 0);
            batch.clear();
            // The first thread may have finished already; then the batch is simply dropped.
            let _ = back.send(batch);
        }
        packets
    }));
    run.map_err(|p| (WHERE.with(Cell::get), panic_message(&*p)))
}

/// Records and headers on the calling thread, the flow stage on a second.
pub struct Pipeline {
    packets: HeaderDecoder<Feeder>,
    second: JoinHandle<Second>,
    paths: Vec<std::path::PathBuf>,
}

impl Pipeline {
    pub fn new(opts: &Options, paths: &[std::path::PathBuf]) -> Self {
        let (tx, rx) = sync_channel::<Batch>(QUEUED);
        let (back_tx, back_rx) = channel::<Batch>();
        let theirs = opts.clone();
        let second = std::thread::spawn(move || second_half(&theirs, rx, back_tx));
        // If this thread panics, unwinding drops the sender and the second thread's loop ends.
        let feeder = Feeder {
            tx: Some(tx),
            back: back_rx,
            batch: Batch::with_capacity(BATCH),
        };
        Pipeline {
            packets: HeaderDecoder::new(opts, feeder),
            second,
            paths: paths.to_vec(),
        }
    }
}

impl Schedule for Pipeline {
    fn input(&mut self, records: &mut RecordReader, path: &Path) -> Result<()> {
        records.decode_path(path, &mut self.packets)
    }

    fn stopped(&self) -> bool {
        self.packets.sink.stopped()
    }

    fn end(self) -> Result<Ended> {
        let (counters, headers, mut feeder) = self.packets.end();
        feeder.send();
        feeder.tx = None;
        let second = self
            .second
            .join()
            .unwrap_or_else(|p| Err((WHERE.with(Cell::get), panic_message(&*p))));
        let packets = second.map_err(|(at, message)| internal(&self.paths, at, message))?;
        let (_, table, state) = packets.end();
        Ok(Ended {
            headers,
            table,
            counters,
            state,
        })
    }
}
