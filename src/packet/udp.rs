//! UDP headers.

use super::{be16, Malformed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub payload_len: u32,
    pub payload: &'a [u8],
    pub truncated: bool,
}

// Always: a result returned through memory is read back wider than it was written, which stalls.
#[inline(always)]
pub fn parse(d: &[u8], wire_len: u32) -> Result<Udp<'_>, Malformed> {
    let (Some(sport), Some(dport)) = (be16(d, 0), be16(d, 2)) else {
        return Err(Malformed::new(
            "udp",
            "truncated_header",
            format!("{} bytes, not even the ports", d.len()),
        ));
    };
    let Some(len) = be16(d, 4) else {
        return Ok(Udp {
            sport,
            dport,
            payload_len: wire_len.saturating_sub(8),
            payload: &[],
            truncated: true,
        });
    };
    let len = u32::from(len);
    if len != 0 && len < 8 {
        return Err(Malformed::new(
            "udp",
            "bad_length",
            format!("UDP length {len}"),
        ));
    }
    // Length 0 appears with jumbograms and offload; otherwise the smaller of UDP and IP lengths wins.
    let payload_len = if len == 0 {
        wire_len.saturating_sub(8)
    } else {
        len.min(wire_len).saturating_sub(8)
    };
    let end = (8 + payload_len as usize).min(d.len());
    Ok(Udp {
        sport,
        dport,
        payload_len,
        payload: d.get(8..end).unwrap_or(&[]),
        truncated: d.len() < 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        use crate::packet::emit::{IpRepr, Ipv4Repr, UdpRepr};
        let ip = IpRepr::V4(Ipv4Repr::new([10, 0, 0, 1], [10, 0, 0, 2], 17, 12));
        let mut d = Vec::new();
        UdpRepr {
            sport: 700,
            dport: 111,
        }
        .emit(&mut d, &ip, &[1, 2, 3, 4]);
        assert_eq!(&d[4..6], &[0, 12], "UDP length");
        // Two bytes past the datagram (Ethernet padding) are not payload.
        d.extend([0, 0]);
        let u = parse(&d, 14).unwrap();
        assert_eq!(
            (u.sport, u.dport, u.payload_len, u.payload),
            (700, 111, 4, &[1, 2, 3, 4][..])
        );
        assert_eq!(
            parse(&[0, 1, 0, 2, 0, 3, 0, 0], 8).unwrap_err().kind,
            "bad_length"
        );
    }
}
