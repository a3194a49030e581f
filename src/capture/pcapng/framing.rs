//! pcapng blocks framed by a reader that starts inside a file (a thread decoding one chunk of it):
//! it knows the byte order and interfaces its first section declared before its first other
//! block (`Preamble`), and frames exactly the blocks `PcapngReader::next` reads without a word:
//! packet blocks on a known interface and blocks skipped silently. Any other block (a new section
//! or interface, a simple packet block that takes the previous packet's time, a block the careful
//! reader reports) is left to the careful reader, resumed with the state it would have had there.

use super::{Interface, PcapngReader, BOM, CUSTOM, CUSTOM_NOCOPY, DSB, EPB, ISB, NRB};
use super::{IDB, OPB, SHB, SPB};
use crate::anomaly::{Anomalies, Position};
use crate::capture::pcap::Chain;
use crate::capture::{u32_at, MAX_RECORD};

/// Blocks in a row that make an offset a block boundary (`Preamble::chain`).
const CHAIN: usize = 4;

/// What a file's first section declares before its first other block: all a reader starting
/// at a later block of that section needs.
#[derive(Debug, Clone)]
pub struct Preamble {
    be: bool,
    ifaces: Vec<Interface>,
    /// Where the first other block starts.
    pub len: u64,
}

/// A packet block framed: its record's facts, its data as a range of the block.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    pub ts_ns: i64,
    pub link: u32,
    pub orig_len: u32,
    pub start: usize,
    pub caplen: usize,
}

/// A block's type and length, when the careful reader would take its header without a word.
#[inline]
fn sane(btype: u32, blen: u32) -> bool {
    btype != u32::MAX && blen >= 12 && blen % 4 == 0 && blen <= MAX_RECORD
}

impl Preamble {
    /// The preamble at the start of `head` (a file's first bytes): a section header and the
    /// interfaces it declares, every block of it whole in `head` and nothing in it to report.
    /// None leaves the file to the careful reader.
    pub fn read(head: &[u8]) -> Option<Preamble> {
        if !PcapngReader::recognises(head) {
            return None;
        }
        let be = u32_at(head, 8, false)? != BOM;
        let mut reader = PcapngReader {
            be,
            ..PcapngReader::default()
        };
        let mut an = Anomalies::default();
        let mut at = 0usize;
        loop {
            let btype = u32_at(head, at, be)?;
            let blen = u32_at(head, at + 4, be)?;
            if (btype != SHB || at > 0) && btype != IDB {
                break;
            }
            let b = head.get(at..at.checked_add(blen as usize)?)?;
            if !sane(btype, blen) || u32_at(b, b.len() - 4, be) != Some(blen) {
                return None;
            }
            reader.block(btype, b, Position::default(), &mut an);
            if an.total() > 0 {
                return None;
            }
            at += blen as usize;
        }
        Some(Preamble {
            be,
            ifaces: reader.ifaces,
            len: at as u64,
        })
    }

    /// The careful reader of this file, resumed at a block boundary after `index` packets, the
    /// last of them at time `last_ts`.
    pub fn resume(&self, index: u64, last_ts: Option<i64>) -> PcapngReader {
        PcapngReader {
            be: self.be,
            ifaces: self.ifaces.clone(),
            index,
            pending: 0,
            last_ts: last_ts.unwrap_or(0),
            seen_shb: true,
        }
    }

    /// The length of the block whose header starts `b`, when the careful reader would take the
    /// header without a word and the block changes nothing it knows.
    #[inline]
    pub fn head(&self, b: &[u8]) -> Option<(u32, usize)> {
        let btype = u32_at(b, 0, self.be)?;
        let blen = u32_at(b, 4, self.be)?;
        let stateful = matches!(btype, SHB | IDB | OPB | SPB);
        (!stateful && sane(btype, blen)).then_some((btype, blen as usize))
    }

    /// The block `b` (all of it, its header taken by `head`): Some(Some) a packet, Some(None) a
    /// block skipped silently, None one the careful reader must read.
    #[inline]
    pub fn frame(&self, btype: u32, b: &[u8]) -> Option<Option<Framed>> {
        let be = self.be;
        if u32_at(b, b.len().checked_sub(4)?, be)? as usize != b.len() {
            return None;
        }
        if btype != EPB {
            return Some(None);
        }
        let iface = self.ifaces.get(u32_at(b, 8, be)? as usize)?;
        let ticks = (u64::from(u32_at(b, 12, be)?) << 32) | u64::from(u32_at(b, 16, be)?);
        let caplen = u32_at(b, 20, be)?;
        let orig = u32_at(b, 24, be)?;
        let start = 28usize;
        if caplen == 0
            || start + caplen as usize > b.len() - 4
            || (iface.snaplen != 0 && caplen > iface.snaplen)
        {
            return None;
        }
        Some(Some(Framed {
            ts_ns: iface.ts_ns(ticks),
            link: iface.link,
            orig_len: orig.max(caplen),
            start,
            caplen: caplen as usize,
        }))
    }

    /// Whether a block starts at the beginning of `b`, judged by `CHAIN` blocks in a row of a
    /// known type whose lengths agree at both ends (or fewer that end the file exactly: `eof`
    /// says `b` does). A guess, checked against where the block before it really ended.
    pub fn chain(&self, b: &[u8], eof: bool) -> Chain {
        let mut at = 0usize;
        for n in 0..CHAIN {
            let rest = b.get(at..).unwrap_or(&[]);
            if rest.is_empty() && eof {
                return if n > 0 { Chain::Yes } else { Chain::No };
            }
            let (Some(btype), Some(blen)) = (u32_at(rest, 0, self.be), u32_at(rest, 4, self.be))
            else {
                return if eof { Chain::No } else { Chain::More };
            };
            let known = matches!(
                btype,
                SHB | IDB | OPB | SPB | NRB | ISB | EPB | DSB | CUSTOM | CUSTOM_NOCOPY
            );
            if !known || !sane(btype, blen) {
                return Chain::No;
            }
            let blen = blen as usize;
            let Some(block) = rest.get(..blen) else {
                return if eof { Chain::No } else { Chain::More };
            };
            if u32_at(block, blen - 4, self.be) != Some(blen as u32) {
                return Chain::No;
            }
            if btype == EPB
                && u32_at(block, 8, self.be).is_none_or(|i| i as usize >= self.ifaces.len())
            {
                return Chain::No;
            }
            at += blen;
        }
        Chain::Yes
    }

    /// The link types of its interfaces.
    pub fn links(&self) -> impl Iterator<Item = u32> + '_ {
        self.ifaces.iter().map(|i| i.link)
    }

    /// The time resolutions of its interfaces (tests).
    #[cfg(test)]
    pub fn resolutions(&self) -> Vec<super::TsResol> {
        self.ifaces.iter().map(|i| i.resol).collect()
    }
}
