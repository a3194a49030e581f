//! TCP headers: ports, sequence numbers, flags; options skipped by the data offset.

use super::{be16, be32, Malformed};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Payload bytes on the wire (from the IP length).
    pub payload_len: u32,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// The snaplen cut the header: ports are known, the rest may not be.
    pub truncated: bool,
}

/// `d` is the captured segment, `wire_len` its length according to the IP header.
// Always: a result returned through memory is read back wider than it was written, which stalls.
#[inline(always)]
pub fn parse(d: &[u8], wire_len: u32) -> Result<Tcp<'_>, Malformed> {
    let (Some(sport), Some(dport)) = (be16(d, 0), be16(d, 2)) else {
        return Err(Malformed::new(
            "tcp",
            "truncated_header",
            format!("{} bytes, not even the ports", d.len()),
        ));
    };
    let (Some(seq), Some(ack), Some(&off), Some(&flags)) =
        (be32(d, 4), be32(d, 8), d.get(12), d.get(13))
    else {
        let payload_len = wire_len.saturating_sub(20);
        return Ok(Tcp {
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: 0,
            payload_len,
            payload: &[],
            truncated: true,
        });
    };
    let hlen = usize::from(off >> 4) * 4;
    if hlen < 20 {
        return Err(Malformed::new(
            "tcp",
            "bad_header_length",
            format!("data offset {hlen} bytes"),
        ));
    }
    if (wire_len as usize) < hlen {
        return Err(Malformed::new(
            "tcp",
            "bad_header_length",
            format!("data offset {hlen} exceeds the segment ({wire_len} bytes)"),
        ));
    }
    Ok(Tcp {
        sport,
        dport,
        seq,
        ack,
        flags,
        payload_len: wire_len - hlen as u32,
        payload: d.get(hlen..).unwrap_or(&[]),
        truncated: d.len() < hlen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_with_options_and_payload() {
        use crate::packet::emit::{IpRepr, Ipv4Repr, TcpRepr};
        let syn = TcpRepr {
            options: &[2, 4, 5, 0xb4], // MSS 1460
            ..TcpRepr::new(40000, 111, 1, 0, SYN)
        };
        let ip = IpRepr::V4(Ipv4Repr::new([10, 0, 0, 1], [10, 0, 0, 2], 6, 26));
        let mut s = Vec::new();
        syn.emit(&mut s, &ip, b"hi");
        assert_eq!(s[12], 0x60, "data offset 6 words");
        let t = parse(&s, 26).unwrap();
        assert_eq!(
            (t.sport, t.dport, t.seq, t.flags, t.payload_len, t.payload),
            (40000, 111, 1, SYN, 2, &b"hi"[..])
        );
        assert!(!t.truncated);
    }

    #[test]
    fn cut_header_keeps_ports() {
        let t = parse(&[0, 80, 0x1f, 0x90, 0, 0], 40).unwrap();
        assert!(t.truncated);
        assert_eq!((t.sport, t.dport, t.payload_len), (80, 8080, 20));
        assert!(parse(&[0, 80], 40).is_err());
    }
}
