//! Differential: raw bytes written as a capture file (classic pcap or pcapng, told by its magic),
//! decoded on one thread and split into chunks of 64 and 200 bytes on two and three threads (each
//! thread guessing where its chunk's first record or block starts; corrupt records, new pcapng
//! sections and interfaces handed to the careful reader). Every table, counter and anomaly must be
//! the same: a difference is a crash here.

#![no_main]

mod common;

use std::io::Write;
use std::path::PathBuf;

use _core::decode::{decode_paths, Options};
use _core::tables;
use libfuzzer_sys::fuzz_target;

fn decoded(paths: &[PathBuf], threads: usize, chunk_bytes: u64) -> String {
    let opts = Options {
        threads,
        chunk_bytes,
        ..Options::default()
    };
    match decode_paths(paths, opts) {
        Ok(out) => tables::fingerprint(&out),
        Err(e) => format!("error: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let path = std::env::temp_dir().join(format!("pw-fuzz-chunks-{}.cap", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    let paths = vec![path];
    let one = decoded(&paths, 1, 0);
    for (threads, chunk) in [(2, 64), (3, 200)] {
        let many = decoded(&paths, threads, chunk);
        assert!(
            one == many,
            "{threads} threads, {chunk}-byte chunks differ:\n{one}\n---\n{many}"
        );
    }
});
