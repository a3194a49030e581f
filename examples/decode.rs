//! The whole decode without Python, for profilers (perf, callgrind) and quick timing:
//!
//!     cargo build --release --no-default-features --example decode
//!     valgrind --tool=callgrind target/release/examples/decode FILE...
//!
//! `PORTWITNESS_THREADS=N` sets the threads (default: as many as the machine has cores).
//!
//! Prints the counts a run produced, so two builds can be compared on the same input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: decode FILE...");
        return ExitCode::from(2);
    }
    let threads = std::env::var("PORTWITNESS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Chunk size in KiB, for measuring (0: the library's default).
    let chunk_kib: u64 = std::env::var("PORTWITNESS_CHUNK_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let opts = _core::Options {
        threads,
        chunk_bytes: chunk_kib << 10,
        ..Default::default()
    };
    let t = Instant::now();
    match _core::decode_paths_catching(&paths, opts) {
        Ok(out) => {
            let decoded = t.elapsed().as_secs_f64();
            let tables = _core::tables::flows_batch(
                &out.flows,
                &_core::tables::capture_names(&out.captures),
            )
            .map(|b| b.num_rows());
            println!(
                "{:.3} s ({decoded:.3} s decoding, then the flows table): {} records, {} flows ({:?} rows), {} mappings, {} anomalies",
                t.elapsed().as_secs_f64(),
                out.stats.records,
                out.flows.len(),
                tables.ok(),
                out.apps.learned_ports.mappings.len(),
                out.anomalies.rows.len(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("decode: {e}");
            ExitCode::from(1)
        }
    }
}
