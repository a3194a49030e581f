//! Teredo (RFC 4380, UDP port 3544): IPv6 carried in UDP through NATs, after an optional
//! authentication header and an optional origin indication.

use super::{be16, Inner, ETHERTYPE_IPV6};

/// None when the datagram carries no IPv6 packet (a malformed header, or nothing after it).
pub fn parse(d: &[u8]) -> Option<Inner<'_>> {
    let mut off = 0;
    // Authentication: 0x0001, id length(1), auth length(1), id, auth, nonce(8), confirmation(1).
    if be16(d, off)? == 0x0001 {
        let id_len = usize::from(*d.get(off + 2)?);
        let au_len = usize::from(*d.get(off + 3)?);
        off += 4 + id_len + au_len + 8 + 1;
    }
    // Origin indication: 0x0000, obfuscated port(2), obfuscated address(4).
    if be16(d, off)? == 0x0000 {
        off += 8;
    }
    let data = d.get(off..)?;
    // One IPv6 packet: version 6, and the datagram holds what its payload length says (bubbles
    // seen in the wild carry padding after it).
    let whole = usize::from(be16(data, 4)?) + 40 <= data.len();
    (data.first()? >> 4 == 6 && whole).then_some(Inner::Network {
        ethertype: ETHERTYPE_IPV6,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6() -> Vec<u8> {
        // A bubble: IPv6, payload length 0, no next header.
        let mut v = vec![0x60, 0, 0, 0, 0, 0, 59, 21];
        v.extend([0x20; 32]);
        v
    }

    #[test]
    fn bare_and_with_headers() {
        let p = ipv6();
        assert_eq!(
            parse(&p),
            Some(Inner::Network {
                ethertype: ETHERTYPE_IPV6,
                data: &p[..]
            })
        );
        // Origin indication: 0x0000, port, address.
        let mut o = vec![0x00, 0x00, 0xf1, 0x2f, 0x3f, 0x57, 0xfe, 0xfe];
        o.extend(&p);
        assert!(matches!(parse(&o), Some(Inner::Network { data, .. }) if data == &p[..]));
        // Authentication (no id, no auth value), then origin indication, then IPv6.
        let mut a = vec![0x00, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        a.extend(&o);
        assert!(matches!(parse(&a), Some(Inner::Network { data, .. }) if data == &p[..]));
    }

    #[test]
    fn not_teredo() {
        assert_eq!(parse(&[0x45, 0, 0, 20]), None);
        assert_eq!(parse(&[0x60, 0, 0]), None);
        // A payload length the datagram does not hold.
        let mut long = ipv6();
        long[5] = 1;
        assert_eq!(parse(&long), None);
        assert_eq!(parse(&[0x00, 0x01, 0xff, 0xff]), None);
    }
}
