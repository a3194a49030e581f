//! pcapng: sections in either byte order, interfaces with their own link type, snaplen and
//! timestamp resolution; enhanced, simple and obsolete packet blocks; every other block skipped by
//! its length.

pub mod framing;

use super::{
    begin_record, note_stream_end, u16_at, u32_at, Record, Source, MAX_RECORD, MAX_RESYNC_SCAN,
};
use crate::anomaly::{Anomalies, Position};

pub const SHB: u32 = 0x0A0D_0D0A;
pub const IDB: u32 = 1;
pub const OPB: u32 = 2;
pub const SPB: u32 = 3;
const NRB: u32 = 4;
const ISB: u32 = 5;
pub const EPB: u32 = 6;
const DSB: u32 = 0x0000_000A;
const CUSTOM: u32 = 0x0000_0BAD;
const CUSTOM_NOCOPY: u32 = 0x4000_0BAD;
const BOM: u32 = 0x1A2B_3C4D;
/// Interfaces one section may declare before we stop believing it.
const MAX_INTERFACES: usize = 65_536;
const SCAN_WINDOW: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResol {
    Pow10(u8),
    Pow2(u8),
}

impl TsResol {
    pub fn from_option(v: u8) -> Self {
        if v & 0x80 == 0 {
            TsResol::Pow10(v)
        } else {
            TsResol::Pow2(v & 0x7f)
        }
    }

    /// Ticks to nanoseconds, saturating instead of overflowing on absurd resolutions.
    pub fn to_ns(self, ticks: u64) -> i64 {
        let ns: u128 = match self {
            TsResol::Pow10(n) if n <= 9 => u128::from(ticks) * 10u128.pow(u32::from(9 - n)),
            TsResol::Pow10(n) => match 10u128.checked_pow(u32::from(n - 9)) {
                Some(d) => u128::from(ticks) / d,
                None => 0,
            },
            TsResol::Pow2(n) => (u128::from(ticks) * 1_000_000_000) >> n.min(127),
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone)]
struct Interface {
    link: u32,
    snaplen: u32,
    resol: TsResol,
    offset_s: i64,
}

impl Interface {
    /// A packet's time, in nanoseconds, from its timestamp in the interface's ticks.
    #[inline]
    fn ts_ns(&self, ticks: u64) -> i64 {
        self.resol
            .to_ns(ticks)
            .saturating_add(self.offset_s.saturating_mul(1_000_000_000))
    }
}

enum Step {
    Skip,
    Packet {
        start: usize,
        caplen: usize,
        orig: u32,
        ts_ns: i64,
        link: u32,
    },
}

#[derive(Debug, Default)]
pub struct PcapngReader {
    be: bool,
    ifaces: Vec<Interface>,
    index: u64,
    pending: usize,
    last_ts: i64,
    seen_shb: bool,
}

impl PcapngReader {
    pub fn recognises(head: &[u8]) -> bool {
        u32_at(head, 0, false) == Some(SHB)
            && matches!(u32_at(head, 8, false), Some(BOM | 0x4D3C_2B1A))
    }

    pub fn new() -> Self {
        Self::default()
    }

    pub fn next<'s>(
        &mut self,
        src: &'s mut Source,
        an: &mut Anomalies,
        capture: u32,
    ) -> Option<Record<'s>> {
        loop {
            let (at, h) = begin_record(src, &mut self.pending, an, capture, self.index, 12)?;
            let offset = at.byte_offset;
            let mut btype = u32_at(h, 0, self.be).unwrap_or(0);
            if btype == SHB {
                match u32_at(h, 8, false) {
                    Some(BOM) => self.be = false,
                    Some(0x4D3C_2B1A) => self.be = true,
                    _ => btype = u32::MAX, // not a section header after all
                }
            }
            let blen = u32_at(h, 4, self.be).unwrap_or(0);
            let sane = btype != u32::MAX && blen >= 12 && blen % 4 == 0 && blen <= MAX_RECORD;
            if !sane {
                let what = if blen >= 12 && blen % 4 != 0 {
                    (
                        "block_length_not_aligned",
                        format!("block type 0x{btype:08x} length {blen} is not a multiple of 4"),
                    )
                } else {
                    (
                        "implausible_record_length",
                        format!("block type 0x{btype:08x} with length {blen} (0x{blen:x})"),
                    )
                };
                match self.resync(src) {
                    Some(skipped) => {
                        an.push(
                            at,
                            "capture",
                            what.0,
                            format!("{}; skipped {skipped} bytes to the next block", what.1),
                        );
                        continue;
                    }
                    None => {
                        let rest = src.offset() - offset;
                        let kind = if self.seen_shb {
                            "trailing_garbage"
                        } else {
                            what.0
                        };
                        an.push(
                            at,
                            "capture",
                            kind,
                            format!("{}; the last {rest} bytes hold no further block", what.1),
                        );
                        note_stream_end(src, an, at);
                        return None;
                    }
                }
            }
            let blen = blen as usize;
            let got = src.peek(blen).len();
            if got < blen {
                // Either the last block, cut short, or a length read wrongly (a block written in
                // the other byte order): a plausible block further on says which.
                if let Some(skipped) = self.resync(src) {
                    an.push(
                        at,
                        "capture",
                        "implausible_record_length",
                        format!(
                            "block type 0x{btype:08x} length {blen} runs past the end of the input; skipped {skipped} bytes to the next block"
                        ),
                    );
                    continue;
                }
                note_stream_end(src, an, at);
                an.push(
                    at,
                    "capture",
                    "truncated_record",
                    format!("block type 0x{btype:08x} needs {blen} bytes, only {got} remain"),
                );
                src.consume(got);
                return None;
            }
            let b = src.peek(blen);
            let trailing = u32_at(b, blen - 4, self.be).unwrap_or(0);
            if trailing as usize != blen {
                an.push(
                    at,
                    "capture",
                    "block_length_mismatch",
                    format!("block type 0x{btype:08x}: leading length {blen}, trailing {trailing}"),
                );
            }
            self.pending = blen;
            let step = self.block(btype, b, at, an);
            if let Step::Packet {
                start,
                caplen,
                orig,
                ts_ns,
                link,
            } = step
            {
                let index = self.index;
                self.index += 1;
                self.last_ts = ts_ns;
                let (bytes, block) = src.peek_shared(blen);
                let data = bytes.get(start..start + caplen).unwrap_or(&[]);
                return Some(Record {
                    ts_ns,
                    link,
                    data,
                    block,
                    orig_len: orig.max(caplen as u32),
                    index,
                    offset,
                });
            }
        }
    }

    fn block(&mut self, btype: u32, b: &[u8], at: Position, an: &mut Anomalies) -> Step {
        let be = self.be;
        let body_end = b.len() - 4;
        match btype {
            SHB => {
                self.seen_shb = true;
                self.ifaces.clear();
                Step::Skip
            }
            IDB => {
                let (Some(link), Some(snaplen)) = (u16_at(b, 8, be), u32_at(b, 12, be)) else {
                    an.push(
                        at,
                        "capture",
                        "malformed_block",
                        "interface description block too short",
                    );
                    return Step::Skip;
                };
                let mut iface = Interface {
                    link: u32::from(link),
                    snaplen,
                    resol: TsResol::Pow10(6),
                    offset_s: 0,
                };
                let mut o = 16;
                while o + 4 <= body_end {
                    let (Some(code), Some(len)) = (u16_at(b, o, be), u16_at(b, o + 2, be)) else {
                        break;
                    };
                    let len = len as usize;
                    let Some(val) = b
                        .get(o + 4..o + 4 + len)
                        .filter(|_| o + 4 + len <= body_end)
                    else {
                        an.push(
                            at,
                            "capture",
                            "malformed_block",
                            format!("option {code} runs past its block"),
                        );
                        break;
                    };
                    match (code, val) {
                        (0, _) => break,
                        (9, [v, ..]) => iface.resol = TsResol::from_option(*v),
                        (14, v) if v.len() == 8 => {
                            let a: [u8; 8] = v.try_into().unwrap_or([0; 8]);
                            iface.offset_s = if be {
                                i64::from_be_bytes(a)
                            } else {
                                i64::from_le_bytes(a)
                            };
                        }
                        _ => {}
                    }
                    o += 4 + len.div_ceil(4) * 4;
                }
                if self.ifaces.len() >= MAX_INTERFACES {
                    an.push(
                        at,
                        "capture",
                        "too_many_interfaces",
                        format!("more than {MAX_INTERFACES} interfaces in one section"),
                    );
                } else {
                    self.ifaces.push(iface);
                }
                Step::Skip
            }
            EPB | OPB => {
                let (iface_id, ts_hi, ts_lo, caplen, orig) = if btype == EPB {
                    (
                        u32_at(b, 8, be),
                        u32_at(b, 12, be),
                        u32_at(b, 16, be),
                        u32_at(b, 20, be),
                        u32_at(b, 24, be),
                    )
                } else {
                    (
                        u16_at(b, 8, be).map(u32::from),
                        u32_at(b, 12, be),
                        u32_at(b, 16, be),
                        u32_at(b, 20, be),
                        u32_at(b, 24, be),
                    )
                };
                let (Some(iface_id), Some(ts_hi), Some(ts_lo), Some(caplen), Some(orig)) =
                    (iface_id, ts_hi, ts_lo, caplen, orig)
                else {
                    an.push(
                        at,
                        "capture",
                        "malformed_block",
                        "packet block too short for its header",
                    );
                    return Step::Skip;
                };
                let start = 28usize;
                if start + caplen as usize > body_end {
                    an.push(
                        at,
                        "capture",
                        "caplen_exceeds_block",
                        format!("captured length {caplen} runs past the block"),
                    );
                    return Step::Skip;
                }
                let Some(iface) = self.ifaces.get(iface_id as usize) else {
                    an.push(
                        at,
                        "capture",
                        "unknown_interface",
                        format!(
                            "packet on interface {iface_id}, {} declared",
                            self.ifaces.len()
                        ),
                    );
                    return Step::Skip;
                };
                if iface.snaplen != 0 && caplen > iface.snaplen {
                    an.push(
                        at,
                        "capture",
                        "caplen_exceeds_snaplen",
                        format!(
                            "captured length {caplen} exceeds the snaplen {}",
                            iface.snaplen
                        ),
                    );
                }
                let ticks = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                let ts_ns = iface.ts_ns(ticks);
                if caplen == 0 {
                    an.push(
                        at,
                        "capture",
                        "zero_length_record",
                        "packet block with captured length 0 skipped",
                    );
                    return Step::Skip;
                }
                Step::Packet {
                    start,
                    caplen: caplen as usize,
                    orig,
                    ts_ns,
                    link: iface.link,
                }
            }
            SPB => {
                let Some(orig) = u32_at(b, 8, be) else {
                    return Step::Skip;
                };
                let Some(iface) = self.ifaces.first() else {
                    an.push(
                        at,
                        "capture",
                        "unknown_interface",
                        "simple packet block before any interface",
                    );
                    return Step::Skip;
                };
                let mut caplen = (orig as usize).min(body_end.saturating_sub(12));
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                if caplen == 0 {
                    an.push(
                        at,
                        "capture",
                        "zero_length_record",
                        "simple packet block with no data skipped",
                    );
                    return Step::Skip;
                }
                // A simple packet block has no timestamp: it inherits the previous packet's.
                Step::Packet {
                    start: 12,
                    caplen,
                    orig,
                    ts_ns: self.last_ts,
                    link: iface.link,
                }
            }
            _ => Step::Skip,
        }
    }

    fn plausible(&self, w: &[u8], i: usize) -> bool {
        for be in [self.be, !self.be] {
            let (Some(t), Some(len)) = (u32_at(w, i, be), u32_at(w, i + 4, be)) else {
                return false;
            };
            let known = matches!(
                t,
                SHB | IDB | OPB | SPB | NRB | ISB | EPB | DSB | CUSTOM | CUSTOM_NOCOPY
            );
            if !known || len < 12 || len % 4 != 0 || len > MAX_RECORD {
                continue;
            }
            if t == SHB && !matches!(u32_at(w, i + 8, false), Some(BOM | 0x4D3C_2B1A)) {
                continue;
            }
            if u32_at(w, i + len as usize - 4, be) == Some(len) {
                // A block in the other byte order only counts if it is a new section.
                return be == self.be || t == SHB;
            }
        }
        false
    }

    fn resync(&mut self, src: &mut Source) -> Option<u64> {
        let start = src.offset();
        src.consume(4);
        loop {
            let want = SCAN_WINDOW + (256 << 10);
            let w = src.peek(want);
            if w.len() < 12 {
                let n = w.len();
                src.consume(n);
                return None;
            }
            let last_window = w.len() < want;
            let scan = if last_window { w.len() } else { SCAN_WINDOW };
            // Blocks should be 4-byte aligned, but a writer that leaves out the padding shifts
            // every later block: look at every offset.
            if let Some(i) = (0..scan).find(|&i| self.plausible(w, i)) {
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
mod tests;
