//! A bounds-checked XDR reader (RFC 4506): big-endian 4-byte units, opaque data padded to 4.

/// Opaque and string lengths larger than this are corrupt for anything we decode.
pub const MAX_OPAQUE: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub struct Xdr<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Xdr<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Xdr { buf, pos: 0 }
    }

    #[inline]
    pub fn u32(&mut self) -> Option<u32> {
        let b = self.buf.get(self.pos..self.pos.checked_add(4)?)?;
        self.pos += 4;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// Variable-length opaque data, at most `max` bytes.
    pub fn opaque(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max.min(MAX_OPAQUE) {
            return None;
        }
        let b = self.buf.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos = self.pos.checked_add(len.div_ceil(4) * 4)?;
        if self.pos > self.buf.len() {
            return None;
        }
        Some(b)
    }

    pub fn string(&mut self, max: usize) -> Option<String> {
        self.opaque(max)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        let p = self.pos.checked_add(n)?;
        (p <= self.buf.len()).then(|| self.pos = p)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}
