//! The split policy: which files are decoded in chunks, where the chunks begin, how large they
//! are and how many may be in flight.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::reads::read_at;
use crate::capture::linktype::{self, Link};
use crate::capture::pcap::PcapReader;
use crate::capture::pcapng::framing::Preamble;
use crate::decode::options::Options;

/// Bytes per chunk: large enough that claiming, checking and handing over cost nothing per
/// packet, small enough that both threads start at once and the chunks in flight stay few (and
/// in cache: on the 2 GB benchmark capture 4 MiB chunks decode 2-3 % faster than 8 MiB, with
/// ~20 MiB less resident).
pub const CHUNK: u64 = 4 << 20;
/// Bounds on `Options::chunk_bytes` (tests split small captures into chunks of a few records).
const MIN_CHUNK: u64 = 64;
const MAX_CHUNK: u64 = 256 << 20;
/// Chunks claimed at most ahead of the one being applied: bounds the memory held
/// (`WINDOW` × (`CHUNK` + its packets)).
pub const WINDOW: u64 = 6;
/// Bytes of a file's start read to find a pcapng preamble (the section header and interfaces
/// declared before the first packet); a longer one leaves the file to the careful reader.
const PREAMBLE: usize = 64 << 10;
const PCAP_HEADER: u64 = 24;

/// A file to decode in chunks.
#[derive(Debug, Clone)]
pub struct Plan<C> {
    pub path: PathBuf,
    pub len: u64,
    pub container: C,
    pub capture: u32,
    pub chunk: u64,
    /// Where the first record starts (after the file header or the pcapng preamble).
    pub data_start: u64,
}

/// A file's plan, by container.
pub enum Planned {
    Pcap(Plan<PcapReader>),
    Pcapng(Plan<Preamble>),
}

impl Plan<()> {
    /// The plan for records framed by `container`.
    fn with<C>(self, container: C) -> Plan<C> {
        Plan {
            path: self.path,
            len: self.len,
            container,
            capture: self.capture,
            chunk: self.chunk,
            data_start: self.data_start,
        }
    }
}

impl<C> Plan<C> {
    pub fn chunks(&self) -> u64 {
        (self.len - self.data_start).div_ceil(self.chunk)
    }

    /// Where chunk `k` begins: the records whose header starts in `start(k)..start(k + 1)` are its.
    pub fn start(&self, k: u64) -> u64 {
        self.data_start.saturating_add(k.saturating_mul(self.chunk))
    }
}

/// A plan when `path` is an uncompressed classic pcap or pcapng file of at least two chunks
/// whose link types are decoded; None sends it to the one-record-at-a-time reader.
pub fn probe(path: &Path, chunk: u64, capture: u32) -> Option<Planned> {
    // Told by its name before it is opened: opening a FIFO or a device consumes it (a writer that
    // finished before the stream's real reader opens it would leave that reader waiting for
    // ever), so only a regular file is opened here.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let f = File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() < PCAP_HEADER + 2 * chunk {
        return None;
    }
    let mut head = vec![0u8; PREAMBLE.min(meta.len() as usize)];
    let got = read_at(&f, &mut head, 0).ok()?;
    head.truncate(got);
    let decoded = |link: u32| !matches!(linktype::network_layer(link, &[]), Ok(Link::Unknown));
    let plan = |data_start| Plan {
        path: path.to_path_buf(),
        len: meta.len(),
        container: (),
        capture,
        chunk,
        data_start,
    };
    if let Some(reader) = head
        .get(..PCAP_HEADER as usize)
        .and_then(PcapReader::from_header)
    {
        return decoded(reader.link).then(|| Planned::Pcap(plan(PCAP_HEADER).with(reader)));
    }
    let pre = Preamble::read(&head)?;
    if !pre.links().all(decoded) || meta.len() < pre.len + 2 * chunk {
        return None;
    }
    Some(Planned::Pcapng(plan(pre.len).with(pre)))
}

/// Whether chunks suit `paths`: at least one pcap or pcapng file large enough to split, and no
/// other large input (a large compressed file decodes faster in the pipeline; small ones are
/// read on the calling thread). Standard input cannot be split.
pub fn suits(paths: &[PathBuf], opts: &Options) -> bool {
    let chunk = chunk_bytes(opts);
    let mut any = false;
    for p in paths {
        if p.as_os_str() == "-" {
            return false;
        }
        if probe(p, chunk, 0).is_some() {
            any = true;
        } else if std::fs::metadata(p).is_ok_and(|m| m.len() >= 4 * chunk) {
            return false;
        }
    }
    any
}

/// The chunk size asked for, within bounds: every chunk in flight holds a buffer of its size, and
/// below a few records per chunk the claiming costs more than the framing.
pub fn chunk_bytes(opts: &Options) -> u64 {
    match opts.chunk_bytes {
        0 => CHUNK,
        n => n.clamp(MIN_CHUNK, MAX_CHUNK),
    }
}
