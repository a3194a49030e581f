//! TCP stream reassembly for the flows that matter: in-order delivery per direction,
//! retransmissions and overlaps dropped, out-of-order segments held in a bounded buffer, gaps
//! skipped (and reported) when the buffer overflows or the stream ends.

use std::collections::BTreeMap;

/// Out-of-order bytes held per direction before a gap is declared.
pub const MAX_OOO_BYTES: usize = 256 << 10;
/// Out-of-order segments held per direction.
pub const MAX_OOO_SEGMENTS: usize = 256;

/// What reassembly hands to the consumer, in stream order.
pub enum StreamPiece<'a> {
    Data(&'a [u8]),
    /// Bytes were lost: the consumer must resynchronise.
    Gap(u32),
}

#[derive(Debug, Default)]
pub struct HalfStream {
    next: Option<u32>,
    ooo: BTreeMap<u32, Vec<u8>>,
    ooo_bytes: usize,
    pub gaps: u64,
    pub overflows: u64,
}

#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// How far `s` lies after `next` in sequence space (negative: before it).
#[inline]
fn distance(next: u32, s: u32) -> i32 {
    s.wrapping_sub(next) as i32
}

impl HalfStream {
    /// Feeds one segment; `syn` marks the sequence number the data starts after.
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        out: &mut dyn FnMut(StreamPiece<'_>),
    ) {
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(seq);
        if payload.is_empty() {
            return;
        }
        let len = payload.len() as u32;
        let end = seq.wrapping_add(len);
        if !before(next, end) {
            return; // wholly retransmitted
        }
        if before(next, seq) {
            // Out of order: hold it, or give up on the hole when the buffer is full.
            if self.ooo_bytes + payload.len() <= MAX_OOO_BYTES && self.ooo.len() < MAX_OOO_SEGMENTS
            {
                if !self.ooo.contains_key(&seq) {
                    self.ooo_bytes += payload.len();
                    self.ooo.insert(seq, payload.to_vec());
                }
                return;
            }
            self.overflows += 1;
            let target = self
                .ooo
                .keys()
                .copied()
                .filter(|&s| before(s, seq))
                .min_by_key(|&s| distance(next, s))
                .unwrap_or(seq);
            self.gaps += 1;
            out(StreamPiece::Gap(target.wrapping_sub(next)));
            self.next = Some(target);
            self.drain(out);
            return self.segment(seq, false, payload, out);
        }
        let skip = next.wrapping_sub(seq) as usize;
        if let Some(fresh) = payload.get(skip..) {
            out(StreamPiece::Data(fresh));
        }
        self.next = Some(end);
        self.drain(out);
    }

    /// The held segment that comes first in the stream from `next`. Not the map's first key: the
    /// keys are sequence numbers, which wrap around zero.
    fn first_held(&self, next: u32) -> Option<u32> {
        self.ooo.keys().copied().min_by_key(|&s| distance(next, s))
    }

    fn drain(&mut self, out: &mut dyn FnMut(StreamPiece<'_>)) {
        while let Some(next) = self.next {
            let Some(s) = self.first_held(next) else {
                break;
            };
            if before(next, s) {
                // The first held segment starts after a hole: keep waiting.
                break;
            }
            let Some(data) = self.ooo.remove(&s) else {
                break;
            };
            self.ooo_bytes -= data.len();
            let end = s.wrapping_add(data.len() as u32);
            if before(next, end) {
                let skip = next.wrapping_sub(s) as usize;
                if let Some(fresh) = data.get(skip..) {
                    out(StreamPiece::Data(fresh));
                }
                self.next = Some(end);
            }
        }
    }

    /// The stream ended (or the flow is finished) with segments still waiting behind a hole:
    /// deliver them after a gap.
    pub fn flush(&mut self, out: &mut dyn FnMut(StreamPiece<'_>)) {
        while let Some(next) = self.next {
            let Some(s) = self.first_held(next) else {
                break;
            };
            self.gaps += 1;
            out(StreamPiece::Gap(s.wrapping_sub(next)));
            self.next = Some(s);
            self.drain(out);
        }
    }

    pub fn held_bytes(&self) -> usize {
        self.ooo_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(d: &mut HalfStream, segs: &[(u32, bool, &[u8])]) -> (Vec<u8>, u32) {
        let mut data = Vec::new();
        let mut gaps = 0;
        for &(seq, syn, p) in segs {
            d.segment(seq, syn, p, &mut |c| match c {
                StreamPiece::Data(b) => data.extend_from_slice(b),
                StreamPiece::Gap(_) => gaps += 1,
            });
        }
        (data, gaps)
    }

    #[test]
    fn in_order_out_of_order_retransmit_overlap() {
        let mut d = HalfStream::default();
        let (data, gaps) = collect(
            &mut d,
            &[
                (99, true, b""),
                (100, false, b"abc"),
                (106, false, b"ghi"),
                (103, false, b"def"),
                (100, false, b"abc"),
                (104, false, b"efgh"),
                (109, false, b"jk"),
            ],
        );
        assert_eq!((data.as_slice(), gaps), (&b"abcdefghijk"[..], 0));
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn wraps_around_sequence_space() {
        let mut d = HalfStream::default();
        let (data, _) = collect(
            &mut d,
            &[
                (u32::MAX - 1, false, b"ab"),
                (1, false, b"de"),
                (0, false, b"c"),
            ],
        );
        assert_eq!(data, b"abcde");
    }

    /// fuzz/regressions/tcp_stream/ooo_overflow_across_seq_wrap.bin: segments held on both
    /// sides of the sequence wrap, then an overflow. The gap went to the segment held before the
    /// wrap, but `drain` looked only at the map's first key (one held after the wrap), so the
    /// target was never drained and `segment` recursed until the stack overflowed.
    #[test]
    fn overflow_across_the_sequence_wrap_terminates() {
        let big = vec![7u8; 0xffff];
        let mut d = HalfStream::default();
        let mut segs: Vec<(u32, bool, &[u8])> =
            vec![(0xfffe_ffff, true, b""), (0xffff_1000, false, &big)];
        for s in [0x0000_1000, 0x0001_1000, 0x0002_1000] {
            segs.push((s, false, &big));
        }
        segs.push((0xffff_8000, false, &big));
        let (data, gaps) = collect(&mut d, &segs);
        // A gap to 0xffff1000; that segment; the overflowing one from where it ends; the one held
        // at 0x1000 from where that ends. The two held at 0x11000 and 0x21000 wait behind holes.
        assert_eq!((gaps, d.gaps), (1, 1));
        assert_eq!(data.len(), 0xffff + 0x7000 + 0x9000);
        let mut rest = 0;
        d.flush(&mut |c| {
            if let StreamPiece::Data(b) = c {
                rest += b.len();
            }
        });
        assert_eq!((rest, d.gaps, d.held_bytes()), (2 * 0xffff, 3, 0));
    }

    #[test]
    fn overflow_declares_a_gap_and_goes_on() {
        let mut d = HalfStream::default();
        let big = vec![7u8; 1000];
        let mut segs: Vec<(u32, bool, &[u8])> = vec![(0, false, b"x")];
        // a hole at 1..1000, then more out-of-order data than the buffer holds
        for i in 0..300u32 {
            segs.push((1000 + i * 1000, false, &big));
        }
        let (data, gaps) = collect(&mut d, &segs);
        assert!(gaps >= 1);
        assert!(d.held_bytes() <= MAX_OOO_BYTES);
        assert!(data.len() > 250_000);
    }
}
