//! The one pass over the captures, in two halves: `records` (capture files into records) and
//! `packets` (records through the headers into the flow table and application decoders of
//! `state`). One thread runs both back to back. With more threads, `chunks` splits classic pcap
//! files so every thread reads and decodes headers while the calling thread applies the packets
//! in order; other inputs go through `pipeline` (the halves on two threads joined by a queue).
//! Every way, the packets reach the flow table in order, so the result is the same, row for row.

mod chunks;
mod packets;
mod pipeline;
mod records;
mod state;

pub use records::first_timestamp;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::anomaly::Anomalies;
use crate::app::Apps;
use crate::capture::Source;
use crate::error::{Error, Result};
use crate::flow::{Flow, FlowLimits};
use crate::packet::frag::FragLimits;

pub use packets::{PacketSink, Packets};
pub use records::{RecordSink, Records};
pub use state::State;

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

/// Counters over the whole decode, reported as `stats`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub records: u64,
    pub frame_bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub icmpv6: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    pub unknown_link: u64,
    /// Encapsulation headers opened (GRE, ERSPAN, VXLAN, Geneve, IP in IP).
    pub tunnelled: u64,
    /// Frames whose encapsulation is not decoded (counted by kind in the anomalies).
    pub encap_undecoded: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub reassembled: u64,
    pub fragments_evicted: u64,
    pub fragments_expired: u64,
    pub flows: u64,
    pub flows_evicted: u64,
    pub flows_expired: u64,
    pub flows_split_idle: u64,
    pub flows_split_reuse: u64,
    pub anomalies: u64,
    pub anomalies_dropped: u64,
}

impl Stats {
    /// Adds the counters of another part of the same pass.
    pub fn add(&mut self, o: &Stats) {
        let Stats {
            records,
            frame_bytes,
            ipv4,
            ipv6,
            tcp,
            udp,
            icmp,
            icmpv6,
            other_ip,
            non_ip,
            unknown_link,
            tunnelled,
            encap_undecoded,
            malformed,
            fragments,
            reassembled,
            fragments_evicted,
            fragments_expired,
            flows,
            flows_evicted,
            flows_expired,
            flows_split_idle,
            flows_split_reuse,
            anomalies,
            anomalies_dropped,
        } = o;
        self.records += records;
        self.frame_bytes += frame_bytes;
        self.ipv4 += ipv4;
        self.ipv6 += ipv6;
        self.tcp += tcp;
        self.udp += udp;
        self.icmp += icmp;
        self.icmpv6 += icmpv6;
        self.other_ip += other_ip;
        self.non_ip += non_ip;
        self.unknown_link += unknown_link;
        self.tunnelled += tunnelled;
        self.encap_undecoded += encap_undecoded;
        self.malformed += malformed;
        self.fragments += fragments;
        self.reassembled += reassembled;
        self.fragments_evicted += fragments_evicted;
        self.fragments_expired += fragments_expired;
        self.flows += flows;
        self.flows_evicted += flows_evicted;
        self.flows_expired += flows_expired;
        self.flows_split_idle += flows_split_idle;
        self.flows_split_reuse += flows_split_reuse;
        self.anomalies += anomalies;
        self.anomalies_dropped += anomalies_dropped;
    }

    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("records", self.records),
            ("frame_bytes", self.frame_bytes),
            ("ipv4", self.ipv4),
            ("ipv6", self.ipv6),
            ("tcp", self.tcp),
            ("udp", self.udp),
            ("icmp", self.icmp),
            ("icmpv6", self.icmpv6),
            ("other_ip", self.other_ip),
            ("non_ip", self.non_ip),
            ("unknown_link", self.unknown_link),
            ("tunnelled", self.tunnelled),
            ("encap_undecoded", self.encap_undecoded),
            ("malformed", self.malformed),
            ("fragments", self.fragments),
            ("reassembled", self.reassembled),
            ("fragments_evicted", self.fragments_evicted),
            ("fragments_expired", self.fragments_expired),
            ("flows", self.flows),
            ("flows_evicted", self.flows_evicted),
            ("flows_expired", self.flows_expired),
            ("flows_split_idle", self.flows_split_idle),
            ("flows_split_reuse", self.flows_split_reuse),
            ("anomalies", self.anomalies),
            ("anomalies_dropped", self.anomalies_dropped),
        ]
    }
}

/// What was learned of each input file.
#[derive(Debug, Clone, Default)]
pub struct CaptureInfo {
    pub path: String,
    pub format: &'static str,
    pub compression: &'static str,
    pub link_types: BTreeSet<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// Why the file could not be read, when it could not.
    pub error: Option<String>,
}

pub struct Output {
    pub flows: Vec<Flow>,
    pub apps: Apps,
    pub anomalies: Anomalies,
    pub stats: Stats,
    pub captures: Vec<CaptureInfo>,
    pub border: Border,
    /// Why the spill's sink failed, when it did: the flows it did not take are lost.
    pub spill_error: Option<String>,
}

/// What the end of the input changed: the facts a merge of separately decoded inputs needs to
/// know whether this decode, continued by a later input, would have gone differently.
#[derive(Debug, Clone, Copy, Default)]
pub struct Border {
    /// Flows still in the table when the input ended (a later input would have expired them).
    pub live_flows: u64,
    /// Holes skipped when the streams still open were closed at the end: what waited behind
    /// them is decoded with the time of the close, which one pass would have made later. (The
    /// other rows a close produces, calls never answered and handshakes cut short, carry their
    /// own times and are sorted by them.)
    pub end_gaps: u64,
    /// Anomalies the end reported (fragments never completed, stream gaps flushed).
    pub end_anomalies: u64,
    /// Mapping rows withdrawn at the end (any-version answers the input contradicts): the
    /// endpoints they taught were learned while decoding, but the table no longer names them.
    pub withdrawn_mappings: u64,
}

thread_local! {
    /// Where the decoder is (input index, record index, byte offset), for the message of a panic
    /// caught at the boundary.
    static WHERE: Cell<(usize, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

#[cfg(test)]
thread_local! {
    /// Tests make the decoder panic at this record to prove the boundary catches it.
    static PANIC_AT_RECORD: Cell<Option<u64>> = const { Cell::new(None) };
}

/// How often (in capture time) idle flows and stale fragments are swept out.
pub const SWEEP_NS: i64 = 10_000_000_000;

/// Everything on the calling thread.
pub struct Decoder {
    records: Records,
    packets: Packets<State>,
}

impl Decoder {
    pub fn new(opts: Options) -> Self {
        Decoder {
            records: Records::new(&opts),
            packets: Packets::new(&opts, State::new(&opts)),
        }
    }

    /// Decodes one file or `-`. Unreadable files are errors; a file that is no capture is recorded
    /// (anomaly + capture row with its error) and returned as `Error::Format`.
    pub fn decode_path(&mut self, path: &Path) -> Result<()> {
        self.records.decode_path(path, &mut self.packets)
    }

    pub fn decode_source(
        &mut self,
        src: &mut Source,
        name: &str,
    ) -> std::result::Result<(), String> {
        self.records.decode_source(src, name, &mut self.packets)
    }

    pub fn finish(self) -> Output {
        finish(self.records, self.packets)
    }
}

/// Joins the results: anomalies merged in record order (the containers' and the rest's), then
/// what the end of the input reports (fragments never completed, streams still open).
fn finish(mut records: Records, mut packets: Packets<State>) -> Output {
    let theirs = std::mem::take(&mut packets.anomalies);
    let mut anomalies = Anomalies::merge(std::mem::take(&mut records.anomalies), theirs);
    let before_end = anomalies.total();
    let (stats, state) = packets.finish(&mut anomalies, records.pos);
    conclude(records, anomalies, before_end, stats, state)
}

/// The flow table's end: streams still open closed, flows and counters out. `before_end`: the
/// anomalies counted before the end of the input was reported.
fn conclude(
    records: Records,
    mut anomalies: Anomalies,
    before_end: u64,
    mut stats: Stats,
    state: State,
) -> Output {
    let at = records.pos;
    let done = state.finish(&mut anomalies, at, records.last_ts());
    let border = Border {
        live_flows: done.live_at_end,
        end_gaps: done.end_gaps,
        end_anomalies: anomalies.total().saturating_sub(before_end),
        withdrawn_mappings: done.apps.know.withdrawn,
    };
    stats.flows_evicted = done.evicted;
    stats.flows_expired = done.expired;
    stats.flows_split_idle = done.split_idle;
    stats.flows_split_reuse = done.split_reuse;
    stats.flows = done.flows.len() as u64 + done.spilled;
    stats.anomalies = anomalies.total();
    stats.anomalies_dropped = anomalies.dropped;
    Output {
        flows: done.flows,
        apps: done.apps,
        anomalies,
        stats,
        captures: records.captures,
        border,
        spill_error: done.spill_error,
    }
}

/// How many threads `opts.threads` asks for.
pub fn threads_for(opts: &Options) -> usize {
    match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Decodes several inputs in the order given, as one pass with one flow table (a conversation
/// that spans rotated files stays one flow). A file that is no capture is skipped with an anomaly;
/// if no input at all could be read, that is the error.
pub fn decode_paths(paths: &[PathBuf], opts: Options) -> Result<Output> {
    if threads_for(&opts) > 1 {
        if chunks::suits(paths, &opts) {
            return chunks::decode_paths(paths, opts);
        }
        return pipeline::decode_paths(paths, opts);
    }
    let mut dec = Decoder::new(opts);
    let mut format_errors = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        WHERE.with(|w| w.set((i, 0, 0)));
        match dec.decode_path(p) {
            Ok(()) => {}
            Err(e @ Error::Format { .. }) => format_errors.push(e),
            Err(e) => return Err(e),
        }
    }
    nothing_decoded(paths, format_errors)?;
    Ok(dec.finish())
}

/// The error when no input at all could be read.
fn nothing_decoded(paths: &[PathBuf], mut format_errors: Vec<Error>) -> Result<()> {
    if !paths.is_empty() && format_errors.len() == paths.len() {
        if let [only] = format_errors.as_mut_slice() {
            return Err(std::mem::replace(
                only,
                Error::NothingDecoded(String::new()),
            ));
        }
        let msgs: Vec<String> = format_errors.iter().map(ToString::to_string).collect();
        return Err(Error::NothingDecoded(msgs.join("; ")));
    }
    Ok(())
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// `Error::Internal` for a panic at `(input, record, offset)`.
fn internal(paths: &[PathBuf], at: (usize, u64, u64), message: String) -> Error {
    let (input, record_index, byte_offset) = at;
    Error::Internal {
        path: paths.get(input).cloned().unwrap_or_default(),
        record_index,
        byte_offset,
        message,
    }
}

/// `decode_paths`, with any panic turned into `Error::Internal` naming where it happened.
pub fn decode_paths_catching(paths: &[PathBuf], opts: Options) -> Result<Output> {
    let result = catch_unwind(AssertUnwindSafe(|| decode_paths(paths, opts)));
    match result {
        Ok(r) => r,
        Err(payload) => Err(internal(
            paths,
            WHERE.with(Cell::get),
            panic_message(&*payload),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_an_error_naming_the_capture_and_record() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let paths = vec![dir.join("tcp_basic.pcap"), dir.join("sample.pcap")];
        PANIC_AT_RECORD.with(|p| p.set(Some(100)));
        let err = decode_paths_catching(&paths, Options::default());
        PANIC_AT_RECORD.with(|p| p.set(None));
        match err {
            Err(Error::Internal {
                path,
                record_index,
                byte_offset,
                message,
            }) => {
                // The first file has fewer records: the panic happens in the second.
                assert_eq!((path, record_index), (paths[1].clone(), 100));
                assert!(byte_offset > 24, "{byte_offset}");
                assert_eq!(message, "injected at record 100");
            }
            other => panic!("expected Error::Internal, got {:?}", other.map(|_| ())),
        }
        assert!(decode_paths_catching(&paths, Options::default()).is_ok());
    }

    use super::*;

    fn eth_ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        use crate::packet::emit::{ethernet_frame, IpRepr, Ipv4Repr, UdpRepr, L4};
        let ip = Ipv4Repr {
            id: 1,
            ..Ipv4Repr::new(src, dst, 0, 0)
        };
        let udp = L4::Udp(UdpRepr { sport, dport });
        ethernet_frame(&Default::default(), IpRepr::V4(ip), &udp, data)
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for (i, f) in frames.iter().enumerate() {
            for x in [100 + i as u32, 0, f.len() as u32, f.len() as u32] {
                v.extend(x.to_le_bytes());
            }
            v.extend(f);
        }
        v
    }

    #[test]
    fn udp_exchange_is_one_flow() {
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let req = eth_ipv4_udp(a, b, 700, 514, &[1; 40]);
        let rep = eth_ipv4_udp(b, a, 514, 700, &[2; 28]);
        let mut src = Source::from_bytes(pcap(&[req, rep]));
        let mut d = Decoder::new(Options::default());
        d.decode_source(&mut src, "mem").unwrap();
        let out = d.finish();
        assert_eq!(out.flows.len(), 1);
        let f = &out.flows[0];
        assert_eq!(
            (f.client.to_string(), f.client_port, f.server_port),
            ("10.0.0.1".into(), 700, 514)
        );
        assert_eq!(
            (f.packets, f.bytes, f.payload),
            ([1, 1], [82, 70], [40, 28])
        );
        assert_eq!(f.outcome().name(), "completed");
        assert_eq!(out.anomalies.total(), 0);
    }

    /// A table small enough that flows finish (evicted) before the end of `sample.pcap`.
    fn few_flows() -> FlowLimits {
        FlowLimits {
            max_flows: 4,
            ..FlowLimits::default()
        }
    }

    /// Decodes `sample.pcap` with the spill handing out `rows` flows at a time: the flows handed
    /// out, then the rest, and the output.
    fn spilled(rows: usize, threads: usize) -> (Vec<Vec<u64>>, Output) {
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = got.clone();
        let opts = Options {
            threads,
            flows: few_flows(),
            spill: Some(FlowSpill {
                rows,
                sink: Arc::new(move |flows: Vec<Flow>| {
                    let ids = flows.iter().map(|f| f.id).collect();
                    into.lock().map_err(|e| e.to_string())?.push(ids);
                    Ok(())
                }),
            }),
            ..Options::default()
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], opts).unwrap();
        let batches = std::mem::take(&mut *got.lock().unwrap());
        (batches, out)
    }

    #[test]
    fn the_spill_hands_out_every_finished_flow_once_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let opts = Options {
            flows: few_flows(),
            ..Options::default()
        };
        let whole = decode_paths(&[dir.join("sample.pcap")], opts).unwrap();
        let all: Vec<u64> = whole.flows.iter().map(|f| f.id).collect();
        for threads in [1, 2] {
            let (batches, out) = spilled(3, threads);
            assert!(batches.len() > 2, "{batches:?}");
            let mut ids: Vec<u64> = Vec::new();
            for b in &batches {
                assert!(b.len() >= 3 && b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
                ids.extend(b);
            }
            ids.extend(out.flows.iter().map(|f| f.id));
            ids.sort_unstable();
            assert_eq!(ids, all);
            assert_eq!(out.stats.flows, whole.stats.flows);
            assert!(out.spill_error.is_none());
        }
    }

    #[test]
    fn a_failing_spill_stops_and_is_reported() {
        let opts = Options {
            spill: Some(FlowSpill {
                rows: 1,
                sink: Arc::new(|_| Err("disk full".into())),
            }),
            flows: few_flows(),
            ..Options::default()
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], opts).unwrap();
        assert_eq!(out.spill_error.as_deref(), Some("disk full"));
    }

    #[test]
    fn not_a_capture() {
        let mut src = Source::from_bytes(b"HELO world, this is not a capture".to_vec());
        let mut d = Decoder::new(Options::default());
        let e = d.decode_source(&mut src, "x").unwrap_err();
        assert!(e.contains("bad magic 48 45 4c 4f"), "{e}");
    }
}
