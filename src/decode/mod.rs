//! The one pass over the captures: `records` (capture files into records), `packets` (records
//! through the headers into transport packets), `state` (the flow table and application
//! decoders). `driver` runs the pass on a schedule: all on one thread, `chunks` (pcap and pcapng
//! files split so every thread reads and decodes headers while the calling thread applies the
//! packets in order) or `pipeline` (the halves on two threads joined by a queue, for what cannot
//! be split); `queue` is what crosses between threads. Every way, the packets reach the flow
//! table in order, so the result is the same, row for row.

mod boundary;
mod chunks;
mod driver;
mod frame;
mod options;
mod output;
mod packets;
mod pipeline;
mod queue;
mod records;
mod state;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::capture::Source;
use crate::error::Result;
use boundary::{internal, panic_message, WHERE};

pub use options::{threads_for, FlowSink, FlowSpill, Options, SWEEP_NS};
pub use output::{Border, CaptureInfo, HeadersEnd, Output, Stats};
pub use packets::{HeaderDecoder, PacketSink};
pub use records::{first_timestamp, RecordReader, RecordSink};
pub use state::FlowStage;

/// Everything on the calling thread, input by input.
pub struct Decoder {
    records: RecordReader,
    one: driver::OneThread,
}

impl Decoder {
    pub fn new(opts: Options) -> Self {
        Decoder {
            records: RecordReader::new(&opts),
            one: driver::OneThread::new(&opts),
        }
    }

    /// Decodes one file or `-`. Unreadable files are errors; a file that is no capture is recorded
    /// (anomaly + capture row with its error) and returned as `Error::Format`.
    pub fn decode_path(&mut self, path: &Path) -> Result<()> {
        self.records.decode_path(path, &mut self.one.packets)
    }

    pub fn decode_source(
        &mut self,
        src: &mut Source,
        name: &str,
    ) -> std::result::Result<(), String> {
        self.records.decode_source(src, name, &mut self.one.packets)
    }

    pub fn finish(self) -> Output {
        driver::conclude(self.records, driver::ended(self.one.packets))
    }
}

/// Decodes several inputs in the order given, as one pass with one flow table (a conversation
/// that spans rotated files stays one flow). A file that is no capture is skipped with an anomaly;
/// if no input at all could be read, that is the error.
pub fn decode_paths(paths: &[PathBuf], opts: Options) -> Result<Output> {
    if threads_for(&opts) <= 1 {
        return driver::drive(paths, &opts, driver::OneThread::new(&opts));
    }
    if chunks::suits(paths, &opts) {
        return driver::drive(paths, &opts, chunks::Chunks::new(&opts));
    }
    let pipeline = pipeline::Pipeline::new(&opts, paths);
    driver::drive(paths, &opts, pipeline)
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
    use super::boundary::PANIC_AT_RECORD;
    use crate::error::Error;
    use crate::flow::{Flow, FlowLimits};
    use std::sync::Arc;

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
