//! pcap and pcapng files decoded by every thread at once. A file is cut at fixed offsets into
//! chunks (`split`); each thread claims the next chunk (`claims`), reads it (`reads`: `pread`, its
//! own file handle), finds where its first record starts, frames its records and decodes their
//! headers into transport packets (`framing`). The calling thread, between chunks of its own,
//! applies the chunks to the flow table in file order (`apply`): the flow table and everything
//! above it depend on every packet before (`pipeline`'s note), so that half stays one sequence
//! while reading, framing and headers, most of the time, run apart.
//!
//! The result is the one-thread result, not an approximation of it:
//! - a chunk's first record is a guess (`PcapReader::chain`, `Preamble::chain`: records that
//!   chain, pcapng blocks whose length agrees at both ends), checked when the chunk before it is
//!   applied: that chunk's last record ends where the next one really starts. A wrong guess is
//!   framed again from the right offset.
//! - a chunk stops at the first record the careful reader would report (corrupt, cut short) or
//!   that changes what the reader knows (a pcapng section or interface declared after the
//!   preamble): from there on the file is read as `RecordReader` reads it, the reader resumed with the
//!   state it would have had (record number, last timestamp, interfaces), so the anomalies and
//!   the resynchronisation are its.
//! - a record's number is unknown until the chunks before it are applied: packets and anomalies
//!   carry numbers within their chunk, shifted when applied.
//! - sweeps depend on the records before: every record leaves its time (its packet, or a tick) and
//!   the applying thread sweeps exactly where one pass would.
//! - IP fragments are handed over whole; the applying thread reassembles them in order.
//!
//! Why this beats the two-thread pipeline on two cores: there the reading thread is the bound
//! (its `read()` copy alone is half of its time); here both cores read, each what it parses.

mod apply;
mod claims;
mod framing;
mod reads;
mod split;
#[cfg(test)]
pub(super) mod tests;

pub use split::suits;

use std::path::Path;

use super::driver::{ended, Ended, Schedule};
use super::options::{threads_for, Options};
use super::packets::HeaderDecoder;
use super::records::RecordReader;
use super::state::FlowStage;
use crate::anomaly::Anomalies;
use crate::error::Result;
use apply::Applier;
use split::{chunk_bytes, probe, Planned};

/// Files that split decoded in chunks on every thread, the others one record at a time on the
/// calling thread.
pub struct Chunks {
    applier: Applier,
    opts: Options,
    threads: usize,
    chunk: u64,
}

impl Chunks {
    pub fn new(opts: &Options) -> Self {
        Chunks {
            applier: Applier {
                packets: HeaderDecoder::new(opts, FlowStage::new(opts)),
                headers: Anomalies::default(),
                stats: Default::default(),
            },
            opts: opts.clone(),
            threads: threads_for(opts).max(1),
            chunk: chunk_bytes(opts),
        }
    }
}

impl Schedule for Chunks {
    fn input(&mut self, records: &mut RecordReader, path: &Path) -> Result<()> {
        let capture = records.captures.len() as u32;
        let a = &mut self.applier;
        match probe(path, self.chunk, capture) {
            Some(Planned::Pcap(plan)) => a.decode_file(records, &plan, &self.opts, self.threads),
            Some(Planned::Pcapng(plan)) => a.decode_file(records, &plan, &self.opts, self.threads),
            None => records.decode_path(path, &mut a.packets),
        }
    }

    fn end(self) -> Result<Ended> {
        let Applier {
            packets,
            headers,
            stats,
        } = self.applier;
        // In record order: the headers decoded in chunks, then what the flow stage (and the
        // records it decoded whole) raised.
        let mut e = ended(packets);
        e.counters.add(&stats);
        Ok(Ended {
            table: e.headers,
            headers,
            ..e
        })
    }
}
