//! IPv6 with its extension-header chain (hop-by-hop, routing, destination options, fragment, AH).

use super::{be16, be32, Addr, FragInfo, IpPacket, Malformed};

/// Extension headers walked at most; a longer chain is an attack.
pub const MAX_EXT_HEADERS: usize = 16;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;
const MOBILITY: u8 = 135;

/// Walks extension headers from `next` over `d`; returns the upper protocol, its offset in `d`, and
/// the fragment header if one was met (the walk stops there: what follows is fragment data).
pub fn walk(mut next: u8, d: &[u8]) -> Result<(u8, usize, Option<FragInfo>), Malformed> {
    let mut off = 0usize;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | AUTH => {
                let (Some(&nh), Some(&len)) = (d.get(off), d.get(off + 1)) else {
                    return Err(Malformed::new(
                        "ipv6",
                        "truncated_header",
                        format!("extension header {next} cut short"),
                    ));
                };
                let size = if next == AUTH {
                    (usize::from(len) + 2) * 4
                } else {
                    (usize::from(len) + 1) * 8
                };
                next = nh;
                off += size;
            }
            FRAGMENT => {
                let (Some(&nh), Some(offmf), Some(id)) =
                    (d.get(off), be16(d, off + 2), be32(d, off + 4))
                else {
                    return Err(Malformed::new(
                        "ipv6",
                        "truncated_header",
                        "fragment header cut short",
                    ));
                };
                let frag = FragInfo {
                    offset: u32::from(offmf >> 3) * 8,
                    more: offmf & 1 != 0,
                    id,
                };
                // An atomic fragment (offset 0, no more) is a whole datagram.
                let frag = (frag.offset != 0 || frag.more).then_some(frag);
                return Ok((nh, off + 8, frag));
            }
            _ => return Ok((next, off, None)),
        }
    }
    Err(Malformed::new(
        "ipv6",
        "too_many_extension_headers",
        format!("more than {MAX_EXT_HEADERS} extension headers"),
    ))
}

#[inline]
pub fn parse(d: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let (Some(&v), Some(plen), Some(&nh), Some(src), Some(dst)) =
        (d.first(), be16(d, 4), d.get(6), d.get(8..24), d.get(24..40))
    else {
        return Err(Malformed::new(
            "ipv6",
            "truncated_header",
            format!("{} bytes, header needs 40", d.len()),
        ));
    };
    if v >> 4 != 6 {
        return Err(Malformed::new(
            "ipv6",
            "bad_version",
            format!("version {}", v >> 4),
        ));
    }
    let body = d.get(40..).unwrap_or(&[]);
    // Payload length 0 means a jumbogram or offload: trust the captured bytes.
    let wire = if plen == 0 {
        body.len()
    } else {
        usize::from(plen)
    };
    let body = body.get(..wire.min(body.len())).unwrap_or(&[]);
    let (proto, off, frag) = walk(nh, body)?;
    if off > wire {
        return Err(Malformed::new(
            "ipv6",
            "bad_payload_length",
            format!("extension headers ({off} bytes) exceed the payload length {wire}"),
        ));
    }
    Ok(IpPacket {
        src: Addr::v6(src.try_into().unwrap_or_default()),
        dst: Addr::v6(dst.try_into().unwrap_or_default()),
        proto,
        payload: body.get(off..).unwrap_or(&[]),
        payload_len: (wire - off) as u32,
        frag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(nh: u8, plen: u16) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend(plen.to_be_bytes());
        h.extend([nh, 64]);
        h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h
    }

    #[test]
    fn hop_by_hop_dest_opts_then_tcp() {
        let mut p = header(0, 8 + 8 + 4);
        p.extend([60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> dest opts, PadN
        p.extend([6, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> TCP
        p.extend([9, 9, 9, 9]);
        let ip = parse(&p).unwrap();
        assert_eq!(
            (ip.proto, ip.payload, ip.payload_len),
            (6, &[9, 9, 9, 9][..], 4)
        );
        assert_eq!(ip.src.to_string(), "2001:db8::1");
    }

    #[test]
    fn fragment_header() {
        let mut p = header(44, 8 + 4);
        p.extend([17, 0, 0x05, 0x01, 0xde, 0xad, 0xbe, 0xef]); // offset 160*8, M=1
        p.extend([1, 2, 3, 4]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.proto, 17);
        assert_eq!(
            ip.frag,
            Some(FragInfo {
                offset: 1280,
                more: true,
                id: 0xdeadbeef
            })
        );
    }

    #[test]
    fn endless_chain_bounded() {
        let mut p = header(60, 8 * 20);
        for _ in 0..20 {
            p.extend([60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(parse(&p).unwrap_err().kind, "too_many_extension_headers");
    }
}
