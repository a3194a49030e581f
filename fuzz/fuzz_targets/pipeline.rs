//! Raw bytes through everything, as if they were a capture file: source (gzip/zstd), capture
//! format, link to transport layers, fragments, the flow table, TCP reassembly, the application
//! decoders, `finish`; then every Arrow table of `tables.rs` is built from the output. Finished
//! flows are spilled two at a time while decoding, and each spilled batch is built too.
//!
//! A table that fails to build is a crash here: the Python binding would turn it into an
//! exception and the whole decode would be lost for one hostile packet.

#![no_main]

mod common;

use std::io::Cursor;
use std::sync::Arc;

use _core::capture::Source;
use _core::decode::{Decoder, FlowSpill, Options};
use _core::tables;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    if common::expands_past(data, common::MAX_EXPANDED) {
        return;
    }
    let names = vec!["fuzz.pcap".to_string()];
    let spill = FlowSpill {
        rows: 2,
        sink: Arc::new(move |flows| {
            assert!(
                flows.windows(2).all(|w| w[0].id < w[1].id),
                "spilled out of order"
            );
            tables::flows_batch(&flows, &names)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    };
    let mut dec = Decoder::new(Options {
        spill: Some(spill),
        ..Options::default()
    });
    let raw = Box::new(Cursor::new(data.to_vec()));
    if let Ok(mut src) = Source::from_reader_detect(raw, "fuzz.pcap") {
        let _ = dec.decode_source(&mut src, "fuzz.pcap");
    }
    let out = dec.finish();
    if let Some(e) = &out.spill_error {
        panic!("a spilled batch failed to build: {e}");
    }
    let decoded = out.apps.decoded();
    let built = [
        tables::flows_batch(&out.flows, &tables::capture_names(&out.captures)),
        tables::anomalies_batch(&out.anomalies, &out.captures),
        tables::captures_batch(&out.captures),
        tables::rpc_calls_batch(decoded.rpc_calls),
        tables::mappings_batch(decoded.mappings),
        tables::dcerpc_calls_batch(decoded.dcerpc_calls),
        tables::tls_batch(decoded.tls),
    ];
    for (i, b) in built.into_iter().enumerate() {
        if let Err(e) = b {
            panic!("table {i} failed to build: {e}");
        }
    }
    std::hint::black_box(out.stats.pairs());
});
