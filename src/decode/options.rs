//! What a decode is asked for: limits, threads, where finished flows go.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::flow::{Flow, FlowLimits};
use crate::packet::frag::FragLimits;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub flows: FlowLimits,
    pub frags: FragLimits,
    /// Bytes read from the files so far (compressed bytes for compressed files), for a progress bar
    /// another thread draws while the decode runs.
    pub progress: Option<Arc<AtomicU64>>,
    /// Threads to decode with: 1 runs everything on the calling thread, more split classic pcap
    /// files into chunks (`chunks`) or run the pipeline; 0 means as many as the machine has cores.
    pub threads: usize,
    /// Where finished flows go while decoding; without it they stay in memory until the end.
    pub spill: Option<FlowSpill>,
    /// Bytes per chunk when a classic pcap file is split across threads; 0 means
    /// `chunks::CHUNK` (4 MiB); held within 64 bytes and 256 MiB. Tests set it small to split
    /// small files at many places.
    pub chunk_bytes: u64,
}

/// The finished flows handed out while the decode goes on, at least `rows` at a time, each batch
/// in order of creation (ids grow, batches may interleave: a long flow finishes late). Without it
/// a flood of short flows (10 million SYNs) would be held whole until the end. An error from the
/// sink stops the handing out; the decode ends with `Output::spill_error`.
#[derive(Clone)]
pub struct FlowSpill {
    pub rows: usize,
    pub sink: Arc<FlowSink>,
}

pub type FlowSink = dyn Fn(Vec<Flow>) -> std::result::Result<(), String> + Send + Sync;

impl std::fmt::Debug for FlowSpill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSpill")
            .field("rows", &self.rows)
            .finish()
    }
}

/// How often (in capture time) idle flows and stale fragments are swept out.
pub const SWEEP_NS: i64 = 10_000_000_000;

/// How many threads `opts.threads` asks for.
pub fn threads_for(opts: &Options) -> usize {
    match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
