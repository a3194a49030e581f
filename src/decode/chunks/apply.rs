//! The calling thread's side of a file in chunks: the chunks applied to the flow stage in file
//! order, each first checked to begin where the one before really ended (else framed again from
//! there), and the careful reader resumed at the first record a chunk stopped on.

use std::sync::{Condvar, Mutex};

use super::claims::{helper, parse_or_none, Board, Next, Shared, StopOnDrop};
use super::framing::{Chunk, Container, Worker};
use super::split::Plan;
use crate::anomaly::{Anomalies, Position};
use crate::capture::Source;
use crate::decode::options::Options;
use crate::decode::output::{CaptureInfo, Stats};
use crate::decode::packets::HeaderDecoder;
use crate::decode::records::RecordReader;
use crate::decode::state::FlowStage;
use crate::error::Result;

/// The flow stage and what feeds it in order.
pub struct Applier {
    pub packets: HeaderDecoder<FlowStage>,
    /// The anomalies of the headers decoded in chunks, in record order.
    pub headers: Anomalies,
    /// The counters of the headers decoded in chunks.
    pub stats: Stats,
}

/// Where the careful reader takes over a file: the offset, the records before it, the last
/// record's second and time.
struct Resume {
    offset: u64,
    index: u64,
    last_sec: Option<u32>,
    last_ts: Option<i64>,
}

impl Applier {
    /// Applies chunk `c`, whose first record is number `base` of its file.
    fn apply(
        &mut self,
        records: &mut RecordReader,
        c: &mut Chunk,
        base: u64,
        info: &mut CaptureInfo,
    ) {
        c.batch.apply(&mut self.packets, base);
        if c.records > 0 {
            info.packets += c.records;
            info.link_types.extend(c.links.iter().copied());
            if let (Some(a), Some(b)) = (c.first_ts, c.max_ts) {
                info.first_ts = Some(info.first_ts.map_or(a, |t| t.min(a)));
                info.last_ts = Some(info.last_ts.map_or(b, |t| t.max(b)));
            }
            records.pos = Position {
                capture: records.pos.capture,
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
    pub fn decode_file<C: Container>(
        &mut self,
        records: &mut RecordReader,
        plan: &Plan<C>,
        opts: &Options,
        threads: usize,
    ) -> Result<()> {
        let mut info = CaptureInfo {
            path: plan.path.to_string_lossy().into_owned(),
            format: C::FORMAT,
            compression: "none",
            ..Default::default()
        };
        records.pos = Position {
            capture: plan.capture,
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
            self.chunks_in_order(records, plan, opts, &shared, &mut info)
        })?;
        match resume {
            Some(r) => {
                let mut src = Source::open_at(&plan.path, r.offset, opts.progress.clone())?;
                let mut reader = plan.container.resume(r.index, r.last_sec, r.last_ts);
                records.read(&mut reader, &mut src, &mut info, &mut self.packets);
            }
            None => info.bytes = plan.len,
        }
        records.captures.push(info);
        Ok(())
    }

    fn chunks_in_order<C: Container>(
        &mut self,
        records: &mut RecordReader,
        plan: &Plan<C>,
        opts: &Options,
        shared: &Shared,
        info: &mut CaptureInfo,
    ) -> Result<Option<Resume>> {
        let mut worker = Worker::new(plan, opts, &shared.spares)?;
        let mut expected = plan.data_start;
        let mut base = 0u64;
        let mut last_sec = None;
        let mut last_ts = None;
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
            self.apply(records, &mut c, base, info);
            base += c.records;
            expected = c.end;
            last_sec = c.last_sec.or(last_sec);
            last_ts = c.last_ts.or(last_ts);
            let dirty = c.dirty;
            shared.recycle(c);
            k += 1;
            shared.applied(k);
            if dirty {
                return Ok(Some(Resume {
                    offset: expected,
                    index: base,
                    last_sec,
                    last_ts,
                }));
            }
        }
        Ok(None)
    }
}
