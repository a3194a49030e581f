//! Capture containers: classic pcap and pcapng, detected by their magic, read record by record.

pub mod decompress;
pub mod linktype;
pub mod pcap;
pub mod pcapng;
pub mod source;

use crate::anomaly::{Anomalies, Position};
pub use source::{Compression, Source};

/// The most bytes one record may carry; a header claiming more is corrupt.
pub const MAX_RECORD: u32 = 16 << 20;
/// How far past a corrupt header we look for the next plausible one.
pub const MAX_RESYNC_SCAN: u64 = 64 << 20;

/// One captured packet, borrowed from the source's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub ts_ns: i64,
    pub link: u32,
    pub data: &'a [u8],
    /// The shared buffer `data` lies in, for a parallel decode to pass the bytes on uncopied.
    pub block: &'a std::sync::Arc<Vec<u8>>,
    /// Length on the wire (pcap orig_len); never smaller than `data.len()`.
    pub orig_len: u32,
    /// 0-based packet number in the file (tshark's frame number minus one).
    pub index: u64,
    /// Byte offset of the record's header in the (decompressed) file.
    pub offset: u64,
}

pub enum CaptureReader {
    Pcap(pcap::PcapReader),
    Pcapng(pcapng::PcapngReader),
}

impl CaptureReader {
    /// Reads the file header; `Err` carries a one-line reason when the bytes are no capture.
    pub fn open(src: &mut Source) -> Result<Self, String> {
        let head = src.peek(24);
        if head.is_empty() {
            return Err(match &src.error {
                Some(e) => e.clone(),
                None => "empty file, not a capture".into(),
            });
        }
        if let Some(r) = pcap::PcapReader::from_header(head) {
            src.consume(24);
            return Ok(CaptureReader::Pcap(r));
        }
        if pcapng::PcapngReader::recognises(head) {
            return Ok(CaptureReader::Pcapng(pcapng::PcapngReader::new()));
        }
        if head.len() < 24 && pcap::PcapReader::magic_only(head) {
            return Err(format!(
                "truncated inside the pcap file header ({} of 24 bytes)",
                head.len()
            ));
        }
        let magic: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Err(format!(
            "not a pcap or pcapng capture (bad magic {})",
            magic.join(" ")
        ))
    }

    pub fn format_name(&self) -> &'static str {
        match self {
            CaptureReader::Pcap(_) => "pcap",
            CaptureReader::Pcapng(_) => "pcapng",
        }
    }

    #[inline]
    pub fn next<'s>(
        &mut self,
        src: &'s mut Source,
        an: &mut Anomalies,
        capture: u32,
    ) -> Option<Record<'s>> {
        match self {
            CaptureReader::Pcap(r) => r.next(src, an, capture),
            CaptureReader::Pcapng(r) => r.next(src, an, capture),
        }
    }
}

/// Starts the next record or block: moves past the previous one, and returns where the new one
/// starts and its first `n` header bytes; `None` at the end of the input, after recording a short
/// tail or the stream error that ended it.
pub(crate) fn begin_record<'a>(
    src: &'a mut Source,
    pending: &mut usize,
    an: &mut Anomalies,
    capture: u32,
    record_index: u64,
    n: usize,
) -> Option<(Position, &'a [u8])> {
    src.consume(std::mem::take(pending));
    let at = Position {
        capture,
        record_index,
        byte_offset: src.offset(),
    };
    let got = src.peek(n).len();
    if got < n {
        note_stream_end(src, an, at);
        if got > 0 {
            an.push(
                at,
                "capture",
                "truncated_record_header",
                format!("{got} of {n} header bytes before the end"),
            );
            src.consume(got);
        }
        return None;
    }
    Some((at, src.peek(n)))
}

/// Records the stream error (if any) that ended the file.
pub(crate) fn note_stream_end(src: &mut Source, an: &mut Anomalies, at: Position) {
    if let Some(e) = src.error.take() {
        an.push(at, "capture", "read_error", e);
    }
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize, be: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize, be: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(s)
    } else {
        u16::from_le_bytes(s)
    })
}
