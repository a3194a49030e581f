//! Classic libpcap files: both byte orders, microsecond and nanosecond magic.
//!
//! Hand-written rather than pcap-parser: the walk is twenty lines, we need the exact byte offset and
//! record index of every defect, and resynchronisation after a corrupt header, on one buffered
//! reader shared with compressed input.

use super::{begin_record, note_stream_end, u32_at, Record, Source, MAX_RECORD, MAX_RESYNC_SCAN};
use crate::anomaly::Anomalies;

pub const HEADER: usize = 16;
/// libpcap's own upper bound for a snapshot length; records above it are suspect during resync.
const MAXIMUM_SNAPLEN: u32 = 262_144;
const SCAN_WINDOW: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct PcapReader {
    pub be: bool,
    pub nanos: bool,
    pub snaplen: u32,
    pub link: u32,
    index: u64,
    pending: usize,
    last_sec: Option<u32>,
}

/// An ordinary record at the start of a buffer (`plain_at`).
#[derive(Debug, Clone, Copy)]
pub struct Plain {
    pub sec: u32,
    pub frac: u32,
    pub orig_len: u32,
    /// Its bytes with the header.
    pub need: usize,
}

/// Ordinary records in a row that make an offset a record boundary (`chain`).
const CHAIN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Yes,
    No,
    /// `b` ends before the question is settled.
    More,
}

/// A record found, before its bytes are borrowed from the source.
struct Found {
    ts_ns: i64,
    orig_len: u32,
    index: u64,
    offset: u64,
    /// Its bytes with the header.
    need: usize,
}

impl PcapReader {
    pub fn magic_only(head: &[u8]) -> bool {
        matches!(
            head.get(..4),
            Some(
                [0xd4, 0xc3, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0xc3, 0xd4]
                    | [0x4d, 0x3c, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0x3c, 0x4d]
            )
        )
    }

    pub fn from_header(h: &[u8]) -> Option<Self> {
        let (be, nanos) = match h.get(..4)? {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return None,
        };
        let snaplen = u32_at(h, 16, be)?;
        // The upper bits of the link-type field carry FCS information, not the link type.
        let link = u32_at(h, 20, be)? & 0x03ff_ffff;
        Some(PcapReader {
            be,
            nanos,
            snaplen,
            link,
            index: 0,
            pending: 0,
            last_sec: None,
        })
    }

    fn unit(&self) -> u32 {
        if self.nanos {
            1_000_000_000
        } else {
            1_000_000
        }
    }

    fn limit(&self) -> u32 {
        self.snaplen.clamp(MAXIMUM_SNAPLEN, MAX_RECORD)
    }

    /// The next record; None at the end of the file.
    #[inline]
    pub fn next<'s>(
        &mut self,
        src: &'s mut Source,
        an: &mut Anomalies,
        capture: u32,
    ) -> Option<Record<'s>> {
        let found = match self.plain(src) {
            Some(found) => found,
            None => self.careful(src, an, capture)?,
        };
        let (bytes, block) = src.peek_shared(found.need);
        Some(Record {
            ts_ns: found.ts_ns,
            link: self.link,
            data: bytes.get(HEADER..).unwrap_or(&[]),
            block,
            orig_len: found.orig_len,
            index: found.index,
            offset: found.offset,
        })
    }

    /// Takes the record whose header was read at `offset`: its number, and the bytes to skip
    /// before the next header.
    #[inline]
    fn accept(&mut self, sec: u32, frac: u32, orig_len: u32, offset: u64, need: usize) -> Found {
        self.last_sec = Some(sec);
        let index = self.index;
        self.index += 1;
        self.pending = need;
        Found {
            ts_ns: self.ts_ns(sec, frac),
            orig_len,
            index,
            offset,
            need,
        }
    }

    /// The common record, on a path the compiler can inline: whole in the buffer, its header
    /// plausible, nothing to report. None leaves everything as it was, for `careful`.
    #[inline]
    fn plain(&mut self, src: &mut Source) -> Option<Found> {
        let pending = self.pending;
        let p = self.plain_at(src.buffered().get(pending..)?)?;
        src.consume(pending);
        Some(self.accept(p.sec, p.frac, p.orig_len, src.offset(), p.need))
    }

    /// The record at the start of `b` when it is whole in `b` and its header has nothing to
    /// report: exactly the records `next` finds without `careful`.
    #[inline]
    pub fn plain_at(&self, b: &[u8]) -> Option<Plain> {
        let (sec, frac, incl, orig) = self.header(b.get(..HEADER)?)?;
        let need = HEADER + incl as usize;
        if !self.ordinary(frac, incl, orig) || b.len() < need {
            return None;
        }
        Some(Plain {
            sec,
            frac,
            orig_len: orig,
            need,
        })
    }

    /// A header `careful` would have nothing to say about.
    #[inline]
    fn ordinary(&self, frac: u32, incl: u32, orig: u32) -> bool {
        incl != 0
            && incl <= self.limit()
            && frac < self.unit()
            && (self.snaplen == 0 || incl <= self.snaplen)
            && orig >= incl
    }

    /// Capture time in nanoseconds.
    #[inline]
    pub fn ts_ns(&self, sec: u32, frac: u32) -> i64 {
        i64::from(sec) * 1_000_000_000 + i64::from(frac) * if self.nanos { 1 } else { 1_000 }
    }

    /// The record whose header starts `b`, when it is ordinary, whether or not its bytes are all
    /// in `b` yet (`need` says how many to read before taking it).
    #[inline]
    pub fn ordinary_at(&self, b: &[u8]) -> Option<Plain> {
        let (sec, frac, incl, orig) = self.header(b.get(..HEADER)?)?;
        self.ordinary(frac, incl, orig).then_some(Plain {
            sec,
            frac,
            orig_len: orig,
            need: HEADER + incl as usize,
        })
    }

    /// Whether a record starts at the beginning of `b`, judged by `CHAIN` ordinary records in a
    /// row within a day of each other (or fewer that end the file exactly: `eof` says `b` does).
    /// A reader that starts inside a file, not knowing where its records start, guesses so; the
    /// guess is checked against where the record before it really ended.
    pub fn chain(&self, b: &[u8], eof: bool) -> Chain {
        let mut at = 0;
        let mut prev: Option<u32> = None;
        for n in 0..CHAIN {
            let rest = b.get(at..).unwrap_or(&[]);
            if rest.is_empty() && eof {
                return if n > 0 { Chain::Yes } else { Chain::No };
            }
            let Some((sec, frac, incl, orig)) = rest.get(..HEADER).and_then(|h| self.header(h))
            else {
                return if eof { Chain::No } else { Chain::More };
            };
            let near = prev
                .is_none_or(|p| sec >= p.saturating_sub(86_400) && sec <= p.saturating_add(86_400));
            if !self.ordinary(frac, incl, orig) || !near {
                return Chain::No;
            }
            let need = HEADER + incl as usize;
            if rest.len() < need {
                return if eof { Chain::No } else { Chain::More };
            }
            prev = Some(sec);
            at += need;
        }
        Chain::Yes
    }

    /// This file's reader continued at a record boundary found by other means: `index` records
    /// read before it, the last of them at second `last_sec`.
    pub fn resume(&self, index: u64, last_sec: Option<u32>) -> Self {
        PcapReader {
            index,
            pending: 0,
            last_sec,
            ..self.clone()
        }
    }

    /// Every other record: reads more, reports what is wrong, resynchronises.
    #[cold]
    #[inline(never)]
    fn careful(&mut self, src: &mut Source, an: &mut Anomalies, capture: u32) -> Option<Found> {
        loop {
            let (at, h) = begin_record(src, &mut self.pending, an, capture, self.index, HEADER)?;
            let offset = at.byte_offset;
            let (sec, frac, incl, orig) = self.header(h)?;
            if incl == 0 {
                an.push(
                    at,
                    "capture",
                    "zero_length_record",
                    "record with captured length 0 skipped",
                );
                self.index += 1;
                self.pending = HEADER;
                continue;
            }
            if incl > self.limit() || frac >= self.unit() {
                let what = if frac >= self.unit() {
                    format!("timestamp fraction {frac} out of range")
                } else {
                    format!("captured length {incl} (0x{incl:x}) is implausible")
                };
                match self.resync(src) {
                    Some(skipped) => {
                        an.push(
                            at,
                            "capture",
                            "implausible_record_length",
                            format!("{what}; skipped {skipped} bytes to the next plausible record"),
                        );
                        continue;
                    }
                    None => {
                        let rest = src.offset() - offset;
                        an.push(
                            at,
                            "capture",
                            "trailing_garbage",
                            format!("{what}; the last {rest} bytes hold no further record"),
                        );
                        note_stream_end(src, an, at);
                        return None;
                    }
                }
            }
            let need = HEADER + incl as usize;
            let avail = src.peek(need).len();
            if avail < need {
                note_stream_end(src, an, at);
                an.push(
                    at,
                    "capture",
                    "truncated_record",
                    format!(
                        "record needs {incl} bytes of data, only {} remain",
                        avail - HEADER
                    ),
                );
                src.consume(avail);
                return None;
            }
            if self.snaplen != 0 && incl > self.snaplen {
                an.push(
                    at,
                    "capture",
                    "caplen_exceeds_snaplen",
                    format!(
                        "captured length {incl} exceeds the snaplen {}",
                        self.snaplen
                    ),
                );
            }
            let orig = if orig < incl {
                an.push(
                    at,
                    "capture",
                    "orig_len_below_caplen",
                    format!("original length {orig} below captured length {incl}"),
                );
                incl
            } else {
                orig
            };
            return Some(self.accept(sec, frac, orig, offset, need));
        }
    }

    #[inline]
    fn header(&self, h: &[u8]) -> Option<(u32, u32, u32, u32)> {
        Some((
            u32_at(h, 0, self.be)?,
            u32_at(h, 4, self.be)?,
            u32_at(h, 8, self.be)?,
            u32_at(h, 12, self.be)?,
        ))
    }

    fn plausible(&self, w: &[u8], i: usize, depth: u8) -> bool {
        let Some((sec, frac, incl, orig)) = w.get(i..).and_then(|h| self.header(h)) else {
            return false;
        };
        if frac >= self.unit()
            || incl == 0
            || incl > self.limit().min(MAXIMUM_SNAPLEN)
            || orig < incl
            || orig > MAX_RECORD
        {
            return false;
        }
        if let Some(last) = self.last_sec {
            if sec < last.saturating_sub(86_400) || sec > last.saturating_add(86_400 * 366) {
                return false;
            }
        }
        let next = i + HEADER + incl as usize;
        if next > w.len() {
            return false;
        }
        // A record that ends exactly at the end of the file, or is followed by another plausible
        // header, is taken as the resynchronisation point.
        next == w.len() || depth > 0 || self.plausible(w, next, 1)
    }

    /// Skips forward to the next offset where two consecutive plausible headers (or one that ends
    /// the file exactly) stand. Returns the number of bytes skipped.
    fn resync(&mut self, src: &mut Source) -> Option<u64> {
        let start = src.offset();
        src.consume(1);
        loop {
            let want = SCAN_WINDOW + 2 * (HEADER + MAXIMUM_SNAPLEN as usize);
            let w = src.peek(want);
            if w.len() < HEADER {
                let n = w.len();
                src.consume(n);
                return None;
            }
            let last_window = w.len() < want;
            let scan = if last_window { w.len() } else { SCAN_WINDOW };
            if let Some(i) = (0..scan).find(|&i| self.plausible(w, i, 0)) {
                src.consume(i);
                return Some(src.offset() - start);
            }
            src.consume(scan);
            if last_window || src.offset() - start > MAX_RESYNC_SCAN {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::Anomaly;
    use crate::capture::source::Compression;
    use crate::capture::CaptureReader;

    fn header(be: bool, nanos: bool, snaplen: u32, link: u32) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut v = Vec::new();
        let w32 =
            |v: &mut Vec<u8>, x: u32| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        w32(&mut v, magic);
        v.extend(if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] }); // version 2.4
        w32(&mut v, 0); // thiszone
        w32(&mut v, 0); // sigfigs
        w32(&mut v, snaplen);
        w32(&mut v, link);
        v
    }

    fn record(be: bool, sec: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [sec, frac, data.len() as u32, orig] {
            v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        }
        v.extend_from_slice(data);
        v
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<(i64, usize, u32, u64)>, Anomalies) {
        let mut src = Source::from_bytes(bytes);
        let mut an = Anomalies::default();
        let mut r = CaptureReader::open(&mut src).expect("pcap");
        let mut out = Vec::new();
        while let Some(rec) = r.next(&mut src, &mut an, 0) {
            out.push((rec.ts_ns, rec.data.len(), rec.orig_len, rec.offset));
        }
        (out, an)
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let mut f = header(be, nanos, 65535, 1);
                f.extend(record(be, 1_700_000_000, 123_456, &[0xaa; 60], 60));
                f.extend(record(be, 1_700_000_001, 5, &[0xbb; 40], 1514));
                let (recs, an) = read_all(f);
                assert_eq!(an.total(), 0);
                let mul = if nanos { 1 } else { 1000 };
                assert_eq!(
                    recs[0],
                    (1_700_000_000_000_000_000 + 123_456 * mul, 60, 60, 24)
                );
                assert_eq!(
                    recs[1],
                    (1_700_000_001_000_000_000 + 5 * mul, 40, 1514, 24 + 16 + 60)
                );
            }
        }
    }

    /// Hands out at most `step` bytes per read: the source then holds little more than each
    /// record needs, so records are mostly found by `careful` instead of `plain`.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    type Seen = (Vec<(i64, Vec<u8>, u32, u64, u64)>, Vec<Anomaly>);

    fn records_of(mut src: Source) -> Seen {
        let mut an = Anomalies::default();
        let mut r = CaptureReader::open(&mut src).expect("pcap");
        let mut out = Vec::new();
        while let Some(rec) = r.next(&mut src, &mut an, 0) {
            out.push((
                rec.ts_ns,
                rec.data.to_vec(),
                rec.orig_len,
                rec.index,
                rec.offset,
            ));
        }
        (out, an.rows)
    }

    #[test]
    fn the_plain_path_finds_what_the_careful_one_does() {
        // Ordinary records among every kind `plain` leaves to `careful` (zero length, over the
        // snaplen, original below captured, a fraction out of range, garbage to resync over), over
        // more than a few read buffers, ending in a record cut short.
        let mut f = header(false, false, 1500, 1);
        for i in 0..6000u32 {
            let len = (i * 37 % 1500) as usize + 1;
            let data: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
            match i % 500 {
                7 => f.extend(record(false, i, 0, &[], 0)),
                11 => f.extend(record(false, i, 0, &[9; 1600], 1600)),
                13 => f.extend(record(false, i, 0, &data, 1)),
                17 => f.extend(record(false, i, 2_000_000, &data, len as u32)),
                19 => f.extend([0xee; 333]),
                _ => f.extend(record(false, 1_700_000_000 + i, i, &data, len as u32 + 4)),
            }
        }
        f.extend(&record(false, 1, 0, &[5; 900], 900)[..400]);
        let whole = records_of(Source::from_bytes(f.clone()));
        for step in [1, 7, 4096] {
            let trickled = records_of(Source::from_reader(
                Box::new(Trickle(std::io::Cursor::new(f.clone()), step)),
                Compression::None,
            ));
            assert_eq!(trickled, whole, "read {step} bytes at a time");
        }
        assert!(whole.0.len() > 5000 && whole.1.len() > 40);
    }

    #[test]
    fn link_type_fcs_bits_masked() {
        let f = header(false, false, 65535, 0x1000_0001);
        let mut src = Source::from_bytes(f);
        match CaptureReader::open(&mut src) {
            Ok(CaptureReader::Pcap(r)) => assert_eq!(r.link, 1),
            _ => panic!("not pcap"),
        }
    }

    #[test]
    fn truncated_last_record_keeps_the_rest() {
        let mut f = header(false, false, 65535, 1);
        f.extend(record(false, 1, 0, &[1; 50], 50));
        let mut last = record(false, 2, 0, &[2; 50], 50);
        last.truncate(16 + 20);
        f.extend(last);
        let (recs, an) = read_all(f);
        assert_eq!(recs.len(), 1);
        assert_eq!(an.rows[0].kind, "truncated_record");
        assert_eq!(an.rows[0].record_index, 1);
        assert_eq!(an.rows[0].byte_offset, 24 + 66);
    }

    #[test]
    fn zero_length_and_over_snaplen() {
        let mut f = header(false, false, 64, 1);
        f.extend(record(false, 1, 0, &[], 0));
        f.extend(record(false, 1, 1, &[3; 100], 100));
        let (recs, an) = read_all(f);
        assert_eq!(recs.len(), 1);
        let kinds: Vec<_> = an.rows.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["zero_length_record", "caplen_exceeds_snaplen"]);
    }

    #[test]
    fn resync_after_huge_caplen() {
        let mut f = header(false, false, 65535, 1);
        f.extend(record(false, 10, 0, &[1; 60], 60));
        let mut bad = record(false, 11, 0, &[9; 30], 30);
        bad[8..12].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        f.extend(bad);
        f.extend(record(false, 12, 0, &[2; 60], 60));
        f.extend(record(false, 13, 0, &[3; 70], 70));
        let (recs, an) = read_all(f);
        assert_eq!(recs.iter().map(|r| r.1).collect::<Vec<_>>(), [60, 60, 70]);
        assert_eq!(an.rows[0].kind, "implausible_record_length");
    }

    #[test]
    fn garbage_at_the_end() {
        let mut f = header(false, false, 65535, 1);
        f.extend(record(false, 10, 0, &[1; 60], 60));
        f.extend([0xee; 37]);
        let (recs, an) = read_all(f);
        assert_eq!(recs.len(), 1);
        assert_eq!(an.rows[0].kind, "trailing_garbage");
    }
}
