//! The pcapng reader on blocks written here byte by byte.

use super::*;
use crate::capture::CaptureReader;

struct W {
    be: bool,
    v: Vec<u8>,
}
impl W {
    fn u32(&mut self, x: u32) {
        self.v.extend(if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
    }
    fn u16(&mut self, x: u16) {
        self.v.extend(if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
    }
    fn block(&mut self, t: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        self.u32(t);
        self.u32(len as u32);
        self.v.extend_from_slice(body);
        self.v.resize(self.v.len() + (len - 12 - body.len()), 0);
        self.u32(len as u32);
    }
}

fn shb(w: &mut W) {
    let mut body = W {
        be: w.be,
        v: vec![],
    };
    body.u32(BOM);
    body.u16(1);
    body.u16(0);
    body.v.extend([0xff; 8]); // section length unknown
    w.block(SHB, &body.v);
}

fn idb(w: &mut W, link: u16, tsresol: Option<u8>) {
    let mut b = W {
        be: w.be,
        v: vec![],
    };
    b.u16(link);
    b.u16(0);
    b.u32(0);
    if let Some(r) = tsresol {
        b.u16(9);
        b.u16(1);
        b.v.extend([r, 0, 0, 0]);
        b.u16(0);
        b.u16(0);
    }
    w.block(IDB, &b.v);
}

fn epb(w: &mut W, iface: u32, ticks: u64, data: &[u8]) {
    let mut b = W {
        be: w.be,
        v: vec![],
    };
    b.u32(iface);
    b.u32((ticks >> 32) as u32);
    b.u32(ticks as u32);
    b.u32(data.len() as u32);
    b.u32(data.len() as u32 + 4);
    b.v.extend_from_slice(data);
    w.block(EPB, &b.v);
}

fn read_all(bytes: Vec<u8>) -> (Vec<(i64, u32, usize)>, Anomalies) {
    let mut src = Source::from_bytes(bytes);
    let mut an = Anomalies::default();
    let mut r = CaptureReader::open(&mut src).expect("pcapng");
    let mut out = Vec::new();
    while let Some(rec) = r.next(&mut src, &mut an, 0) {
        out.push((rec.ts_ns, rec.link, rec.data.len()));
    }
    (out, an)
}

#[test]
fn two_sections_two_byte_orders_and_resolutions() {
    let mut w = W {
        be: false,
        v: vec![],
    };
    shb(&mut w);
    idb(&mut w, 1, None);
    epb(&mut w, 0, 1_500_000, &[1; 42]); // 1.5 s in microseconds
    w.block(NRB, &[0; 8]);
    w.block(CUSTOM, &[7; 13]);
    w.be = true;
    shb(&mut w);
    idb(&mut w, 101, Some(0x89)); // 2^-9 s
    idb(&mut w, 113, Some(9)); // ns
    epb(&mut w, 0, 512 * 3 + 256, &[2; 20]);
    epb(&mut w, 1, 7, &[3; 30]);
    let (recs, an) = read_all(w.v);
    assert_eq!(an.total(), 0, "{:?}", an.rows);
    assert_eq!(
        recs,
        [
            (1_500_000_000, 1, 42),
            (3_500_000_000, 101, 20),
            (7, 113, 30)
        ]
    );
}

#[test]
fn mismatched_trailer_and_trailing_garbage() {
    let mut w = W {
        be: false,
        v: vec![],
    };
    shb(&mut w);
    idb(&mut w, 1, None);
    epb(&mut w, 0, 1, &[1; 40]);
    let n = w.v.len();
    w.v[n - 4] ^= 0x10;
    epb(&mut w, 0, 2, &[1; 40]);
    w.v.extend([0xee; 37]);
    let (recs, an) = read_all(w.v);
    assert_eq!(recs.len(), 2);
    let kinds: Vec<_> = an.rows.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["block_length_mismatch", "trailing_garbage"]);
}

#[test]
fn tsresol_conversions() {
    assert_eq!(TsResol::Pow10(6).to_ns(1), 1_000);
    assert_eq!(TsResol::Pow10(12).to_ns(5_000), 5);
    assert_eq!(TsResol::Pow2(10).to_ns(1024), 1_000_000_000);
    assert_eq!(TsResol::Pow10(127).to_ns(u64::MAX), 0);
    assert_eq!(TsResol::Pow2(127).to_ns(u64::MAX), 0);
}
