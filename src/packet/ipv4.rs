//! IPv4 headers, options skipped by IHL, fragment fields exposed for reassembly.

use super::{be16, Addr, FragInfo, IpPacket, Malformed};

// Always: a result returned through memory is read back wider than it was written, which stalls.
#[inline(always)]
pub fn parse(d: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let (Some(&vihl), Some(total)) = (d.first(), be16(d, 2)) else {
        return Err(Malformed::new(
            "ipv4",
            "truncated_header",
            format!("{} bytes, header needs 20", d.len()),
        ));
    };
    if vihl >> 4 != 4 {
        return Err(Malformed::new(
            "ipv4",
            "bad_version",
            format!("version {}", vihl >> 4),
        ));
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(Malformed::new(
            "ipv4",
            "bad_header_length",
            format!("IHL {ihl} bytes"),
        ));
    }
    let (Some(src), Some(dst)) = (d.get(12..16), d.get(16..20)) else {
        return Err(Malformed::new(
            "ipv4",
            "truncated_header",
            format!("{} bytes, header needs 20", d.len()),
        ));
    };
    let total = usize::from(total);
    // Total length 0 is what segmentation offload leaves in captures: trust the captured bytes.
    let total = if total == 0 { d.len() } else { total };
    if total < ihl {
        return Err(Malformed::new(
            "ipv4",
            "bad_total_length",
            format!("total length {total} below header length {ihl}"),
        ));
    }
    let payload = d.get(ihl..total.min(d.len())).unwrap_or(&[]);
    let (Some(id), Some(flags_off), Some(&proto)) = (be16(d, 4), be16(d, 6), d.get(9)) else {
        return Err(Malformed::new(
            "ipv4",
            "truncated_header",
            "header cut short",
        ));
    };
    let offset = u32::from(flags_off & 0x1fff) * 8;
    let more = flags_off & 0x2000 != 0;
    let frag = (more || offset != 0).then_some(FragInfo {
        offset,
        more,
        id: u32::from(id),
    });
    Ok(IpPacket {
        src: Addr::v4(src.try_into().unwrap_or_default()),
        dst: Addr::v4(dst.try_into().unwrap_or_default()),
        proto,
        payload,
        payload_len: (total - ihl) as u32,
        frag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_fragment_fields() {
        // IHL 6: one option, record route (truncated, but skipped by IHL); MF, offset 185*8.
        let repr = crate::packet::emit::Ipv4Repr {
            id: 0x1234,
            dont_frag: false,
            more_frags: true,
            frag_offset: 1480,
            options: &[7, 4, 0, 0],
            ..crate::packet::emit::Ipv4Repr::new([10, 0, 0, 1], [10, 0, 0, 2], 17, 4)
        };
        let mut p = Vec::new();
        repr.emit(&mut p);
        assert_eq!(&p[..8], &[0x46, 0, 0, 28, 0x12, 0x34, 0x20, 185]);
        p.extend([1, 2, 3, 4]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.src.to_string(), "10.0.0.1");
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
        assert_eq!(ip.payload_len, 4);
        assert_eq!(
            ip.frag,
            Some(FragInfo {
                offset: 1480,
                more: true,
                id: 0x1234
            })
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(&[0x45]).unwrap_err().kind, "truncated_header");
        assert_eq!(parse(&[0x65, 0, 0, 20]).unwrap_err().kind, "bad_version");
        let mut p = vec![0x45, 0, 0, 10];
        p.resize(20, 0);
        assert_eq!(parse(&p).unwrap_err().kind, "bad_total_length");
    }
}
