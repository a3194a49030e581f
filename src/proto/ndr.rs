//! A bounds-checked reader of both transfer syntaxes, NDR 1.0 (C706 ch. 14) and NDR64
//! (MS-RPCE 2.2.5), in either integer byte order, and the DCE UUID and syntax identifier types
//! shared by the DCE/RPC and endpoint-mapper decoders.

use std::fmt;

/// A UUID in its canonical (printed) byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// From the NDR ("mixed-endian") wire form: Data1 u32, Data2 u16, Data3 u16 in the given
    /// byte order, then Data4[8] as is.
    pub fn from_ndr(b: &[u8; 16], le: bool) -> Uuid {
        let mut u = *b;
        if le {
            u[..4].reverse();
            u[4..6].reverse();
            u[6..8].reverse();
        }
        Uuid(u)
    }

    /// Builds a UUID from its printed form at compile time (for the well-known interfaces); the
    /// indices stay below the lengths checked by the loop condition.
    #[allow(clippy::indexing_slicing)]
    pub const fn parse(s: &str) -> Uuid {
        let b = s.as_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < b.len() && n < 32 {
            let c = b[i];
            let v = match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            if let Some(v) = v {
                out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
                n += 1;
            }
            i += 1;
        }
        Uuid(out)
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An interface or transfer syntax: UUID and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SyntaxId {
    pub uuid: Uuid,
    pub major: u16,
    pub minor: u16,
}

impl SyntaxId {
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// The NDR transfer syntax, 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.
pub const NDR: Uuid = Uuid::parse("8a885d04-1ceb-11c9-9fe8-08002b104860");
/// The NDR64 transfer syntax, 71710533-beba-4937-8319-b5dbef9ccc36 v1 (MS-RPCE 2.2.5).
pub const NDR64: Uuid = Uuid::parse("71710533-beba-4937-8319-b5dbef9ccc36");

/// How a stub is encoded: the integer byte order of the PDU's data representation, and whether
/// the presentation context negotiated NDR64 (8-byte pointers, conformance and variance counts,
/// each aligned to 8) rather than NDR (4-byte ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    pub le: bool,
    pub ndr64: bool,
}

impl Encoding {
    pub const fn ndr(le: bool) -> Self {
        Encoding { le, ndr64: false }
    }

    /// Bytes of a referent id or of an array's size on the wire.
    pub const fn word(self) -> usize {
        if self.ndr64 {
            8
        } else {
            4
        }
    }
}

/// Reads NDR primitives with natural alignment relative to the start of the buffer (the stub).
pub struct Ndr<'a> {
    b: &'a [u8],
    pub pos: usize,
    pub le: bool,
    pub ndr64: bool,
}

impl<'a> Ndr<'a> {
    pub fn new(b: &'a [u8], le: bool) -> Self {
        Ndr {
            b,
            pos: 0,
            le,
            ndr64: false,
        }
    }

    pub fn with(b: &'a [u8], enc: Encoding) -> Self {
        Ndr {
            b,
            pos: 0,
            le: enc.le,
            ndr64: enc.ndr64,
        }
    }

    /// A pointer's referent id (0 is null): 4 bytes in NDR, 8 aligned to 8 in NDR64.
    pub fn pointer(&mut self) -> Option<u64> {
        self.word()
    }

    /// An array's conformance (max count), offset or actual count: sized as a pointer.
    pub fn size(&mut self) -> Option<u64> {
        self.word()
    }

    fn word(&mut self) -> Option<u64> {
        if self.ndr64 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// Aligns to a structure that holds pointers or sizes: 8 in NDR64, 4 in NDR.
    pub fn align_word(&mut self) -> Option<()> {
        self.align(if self.ndr64 { 8 } else { 4 })
    }

    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    pub fn align(&mut self, n: usize) -> Option<()> {
        let r = self.pos % n;
        if r != 0 {
            self.skip(n - r)?;
        }
        Some(())
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.align(2)?;
        let a = self.array::<2>()?;
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.align(4)?;
        let a = self.array::<4>()?;
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.align(8)?;
        let a = self.array::<8>()?;
        Some(if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }

    /// A UUID (aligned as its leading u32).
    pub fn uuid(&mut self) -> Option<Uuid> {
        self.align(4)?;
        let a = self.array::<16>()?;
        Some(Uuid::from_ndr(&a, self.le))
    }

    /// p_syntax_id_t: UUID and a u32 version whose low half is the major version.
    pub fn syntax(&mut self) -> Option<SyntaxId> {
        let uuid = self.uuid()?;
        let v = self.u32()?;
        Some(SyntaxId {
            uuid,
            major: (v & 0xffff) as u16,
            minor: (v >> 16) as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_from_wire_and_text() {
        let wire = [
            0x08, 0x83, 0xaf, 0xe1, 0x1f, 0x5d, 0xc9, 0x11, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14,
            0xa0, 0xfa,
        ];
        let u = Uuid::from_ndr(&wire, true);
        assert_eq!(u.to_string(), "e1af8308-5d1f-11c9-91a4-08002b14a0fa");
        assert_eq!(u, Uuid::parse("e1af8308-5d1f-11c9-91a4-08002b14a0fa"));
        let be = [
            0xe1, 0xaf, 0x83, 0x08, 0x5d, 0x1f, 0x11, 0xc9, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14,
            0xa0, 0xfa,
        ];
        assert_eq!(Uuid::from_ndr(&be, false), u);
    }

    #[test]
    fn aligned_reads_stay_in_bounds() {
        let b = [1u8, 0, 0, 0, 2, 0, 0, 0, 3];
        let mut r = Ndr::new(&b, true);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u32(), Some(2));
        assert_eq!(r.u32(), None);
        let mut r = Ndr::new(&b, false);
        assert_eq!(r.u32(), Some(0x0100_0000));
        assert_eq!(r.take(usize::MAX), None);
    }

    #[test]
    fn ndr64_pointers_and_sizes_are_eight_bytes_aligned_to_eight() {
        let b = [
            0x01, 0, 0, 0, // u32 1
            0xee, 0xee, 0xee, 0xee, // padding to 8
            0x02, 0, 0, 0, 0, 0, 0, 0, // referent id 2
            0x4b, 0, 0, 0, 0, 0, 0, 0, // conformance 75
        ];
        let mut r = Ndr::with(
            &b,
            Encoding {
                le: true,
                ndr64: true,
            },
        );
        assert_eq!(r.u32(), Some(1));
        assert_eq!(r.pointer(), Some(2));
        assert_eq!(r.size(), Some(75));
        assert_eq!(r.pointer(), None);
        // The same bytes as NDR: 4-byte words, no padding.
        let mut r = Ndr::with(&b, Encoding::ndr(true));
        assert_eq!(r.u32(), Some(1));
        assert_eq!(r.pointer(), Some(0xeeee_eeee));
        assert_eq!(r.size(), Some(2));
        assert_eq!(
            Encoding {
                le: false,
                ndr64: true
            }
            .word(),
            8
        );
        assert_eq!(NDR64.to_string(), "71710533-beba-4937-8319-b5dbef9ccc36");
    }
}
