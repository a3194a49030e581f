//! The first half of the pass: capture files into records (framing, resynchronisation,
//! timestamps, per-file facts). Nothing here depends on what the packets say, so this half can run
//! on its own thread ahead of the rest (`pipeline`), handing each record's bytes on uncopied.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::boundary::WHERE;
use super::options::Options;
use super::output::CaptureInfo;
use crate::anomaly::{Anomalies, Position};
use crate::capture::{CaptureReader, Record, Source};
use crate::error::{Error, Result};

#[cfg(test)]
use super::boundary::PANIC_AT_RECORD;
#[cfg(test)]
use std::cell::Cell;

/// Where records go: the decoder directly, or a queue to the thread that runs it.
pub trait RecordSink {
    /// One record, at `at`.
    fn record(&mut self, at: Position, rec: &Record<'_>);
    /// The other side stopped (it failed): reading on is pointless.
    fn stopped(&self) -> bool {
        false
    }
}

/// Reads capture files into records; owns the per-file facts and the anomalies of the containers.
pub struct RecordReader {
    progress: Option<Arc<AtomicU64>>,
    /// The decode's threads: a compressed input is decompressed on threads of its own past one.
    threads: usize,
    pub anomalies: Anomalies,
    pub captures: Vec<CaptureInfo>,
    /// The record being read (after the end: the last one).
    pub pos: Position,
}

impl RecordReader {
    pub fn new(opts: &Options) -> Self {
        RecordReader {
            progress: opts.progress.clone(),
            threads: super::threads_for(opts),
            anomalies: Anomalies::default(),
            captures: Vec::new(),
            pos: Position::default(),
        }
    }

    /// Decodes one file or `-`. Unreadable files are errors; a file that is no capture is recorded
    /// (anomaly + capture row with its error) and returned as `Error::Format`.
    pub fn decode_path<S: RecordSink>(&mut self, path: &Path, sink: &mut S) -> Result<()> {
        let mut src = Source::open_threaded(path, self.progress.clone(), self.threads)?;
        self.decode_source(&mut src, &path.to_string_lossy(), sink)
            .map_err(|detail| Error::Format {
                path: path.to_path_buf(),
                detail,
            })
    }

    pub fn decode_source<S: RecordSink>(
        &mut self,
        src: &mut Source,
        name: &str,
        sink: &mut S,
    ) -> std::result::Result<(), String> {
        let capture = self.captures.len() as u32;
        let mut info = CaptureInfo {
            path: name.to_string(),
            compression: src.compression.name(),
            ..Default::default()
        };
        self.pos = Position {
            capture,
            record_index: 0,
            byte_offset: 0,
        };
        let mut reader = match CaptureReader::open(src) {
            Ok(r) => r,
            Err(detail) => {
                self.anomalies
                    .push(self.pos, "capture", "bad_magic", detail.clone());
                info.error = Some(detail.clone());
                self.captures.push(info);
                return Err(detail);
            }
        };
        info.format = reader.format_name();
        self.read(&mut reader, src, &mut info, sink);
        self.captures.push(info);
        Ok(())
    }

    /// The records of one file from where `src` stands to its end, into `info` (the file's
    /// facts so far) and `sink`; `info.bytes` is where the file ended.
    pub fn read<S: RecordSink>(
        &mut self,
        reader: &mut CaptureReader,
        src: &mut Source,
        info: &mut CaptureInfo,
        sink: &mut S,
    ) {
        let capture = self.pos.capture;
        while let Some(rec) = reader.next(src, &mut self.anomalies, capture) {
            if sink.stopped() {
                break;
            }
            self.pos = Position {
                capture,
                record_index: rec.index,
                byte_offset: rec.offset,
            };
            WHERE.with(|w| w.set((w.get().0, rec.index, rec.offset)));
            #[cfg(test)]
            if PANIC_AT_RECORD.with(Cell::get) == Some(rec.index) {
                panic!("injected at record {}", rec.index);
            }
            info.packets += 1;
            info.first_ts = Some(info.first_ts.map_or(rec.ts_ns, |t| t.min(rec.ts_ns)));
            info.last_ts = Some(info.last_ts.map_or(rec.ts_ns, |t| t.max(rec.ts_ns)));
            if !info.link_types.contains(&rec.link) {
                info.link_types.insert(rec.link);
            }
            sink.record(self.pos, &rec);
        }
        info.bytes = src.offset();
    }

    /// The latest capture time of any file, when the last streams are closed.
    pub fn last_ts(&self) -> i64 {
        self.captures
            .iter()
            .filter_map(|c| c.last_ts)
            .max()
            .unwrap_or(0)
    }
}

/// The time of a capture's first record; None when it has none or is no capture. A scheduler
/// learns from it, without decoding, that two files cannot be decoded apart (the later one starts
/// within a timeout of the earlier one's start, so within it of its end).
pub fn first_timestamp(path: &Path) -> Result<Option<i64>> {
    struct First(Option<i64>);
    impl RecordSink for First {
        fn record(&mut self, _: Position, rec: &Record<'_>) {
            self.0.get_or_insert(rec.ts_ns);
        }
        fn stopped(&self) -> bool {
            self.0.is_some()
        }
    }
    let mut records = RecordReader::new(&Options::default());
    let mut first = First(None);
    match records.decode_path(path, &mut first) {
        Ok(()) | Err(Error::Format { .. }) => Ok(first.0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_timestamp_reads_one_record() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let ts = first_timestamp(&dir.join("tcp_basic.pcap")).ok().flatten();
        assert!(ts.is_some_and(|t| t > 1_000_000_000 * 1_000_000_000));
        let broken = dir.join("broken").join("zeros.pcap");
        assert_eq!(first_timestamp(&broken).ok(), Some(None));
        assert!(first_timestamp(&dir.join("no such file")).is_err());
    }
}
