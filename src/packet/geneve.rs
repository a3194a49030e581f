//! Geneve (RFC 8926, UDP port 6081): a fixed 8-byte header, options (4-byte multiples, each a
//! class, type and length), then IPv4/IPv6 or, with protocol type 0x6558, an Ethernet frame.

use super::{
    be16, be32, Inner, Malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_TEB,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geneve<'a> {
    pub vni: u32,
    pub options: usize,
    pub inner: Inner<'a>,
}

/// None when the bytes are not a Geneve header (a version other than 0, or a protocol type that
/// is none of Ethernet, IPv4, IPv6 and MPLS: an ordinary datagram to the port); an error when
/// they are but the options overrun it.
pub fn parse(d: &[u8]) -> Option<Result<Geneve<'_>, Malformed>> {
    // ver(2) opt len(6) | O C reserved(6) | protocol type(2) | VNI(3) reserved(1) | options
    let b0 = *d.first()?;
    let protocol = be16(d, 2)?;
    let vni = be32(d, 4)? >> 8;
    let known = matches!(
        protocol,
        ETHERTYPE_TEB | ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_MPLS
    );
    if b0 >> 6 != 0 || !known {
        return None;
    }
    let opt_len = usize::from(b0 & 0x3f) * 4;
    let Some(options) = d.get(8..8 + opt_len) else {
        return Some(Err(Malformed::new(
            "geneve",
            "truncated_header",
            format!("{} bytes, options need {opt_len} after the header", d.len()),
        )));
    };
    // Each option: class(2) type(1) reserved(3 bits) length(5 bits, 4-byte words) data.
    let mut off = 0;
    let mut count = 0;
    while off < options.len() {
        let Some(&l) = options.get(off + 3) else {
            return Some(Err(Malformed::new(
                "geneve",
                "bad_option",
                format!("option {count} cut short"),
            )));
        };
        off += 4 + usize::from(l & 0x1f) * 4;
        count += 1;
    }
    if off != options.len() {
        return Some(Err(Malformed::new(
            "geneve",
            "bad_option",
            format!(
                "option {} overruns the {opt_len} bytes of options",
                count - 1
            ),
        )));
    }
    let data = d.get(8 + opt_len..).unwrap_or(&[]);
    let inner = if protocol == ETHERTYPE_TEB {
        Inner::Ethernet {
            frame: data,
            vlan: None,
        }
    } else {
        Inner::Network {
            ethertype: protocol,
            data,
        }
    };
    Some(Ok(Geneve {
        vni,
        options: count,
        inner,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_then_ethernet() {
        let d = [
            0x03, 0x00, // version 0, options 3 words; flags 0
            0x65, 0x58, // protocol: Ethernet
            0x0c, 0x01, 0x2e, 0x00, // VNI 0x0c012e
            0x01, 0x00, 0x01, 0x01, // option class 0x0100, type 1, length 1 word
            0xde, 0xad, 0xbe, 0xef, // its data
            0x01, 0x00, 0x02, 0x00, // option class 0x0100, type 2, no data
            0xaa, // inner Ethernet begins
        ];
        let g = parse(&d).unwrap().unwrap();
        assert_eq!((g.vni, g.options), (0x0c012e, 2));
        assert_eq!(
            g.inner,
            Inner::Ethernet {
                frame: &[0xaa],
                vlan: None
            }
        );
    }

    #[test]
    fn bare_ipv4() {
        // mercury-geneve.pcap (a): protocol 0x0800, VNI 0, no inner Ethernet.
        let d = [0x00, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0x45];
        let g = parse(&d).unwrap().unwrap();
        assert_eq!(
            g.inner,
            Inner::Network {
                ethertype: 0x0800,
                data: &[0x45]
            }
        );
    }

    #[test]
    fn refused() {
        assert!(parse(&[0x40, 0, 0x65, 0x58, 0, 0, 0, 0]).is_none());
        assert!(parse(&[0x00, 0, 0x12, 0x34, 0, 0, 0, 0]).is_none());
        assert!(parse(&[0x00, 0, 0x65]).is_none());
        let short = [0x02, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 0, 1, 0];
        assert_eq!(parse(&short).unwrap().unwrap_err().kind, "truncated_header");
        // One word of options whose option claims two more.
        let over = [0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 0, 1, 2];
        assert_eq!(parse(&over).unwrap().unwrap_err().kind, "bad_option");
    }
}
