//! MPLS label stacks (RFC 3032; ethertypes 0x8847 unicast and 0x8848 multicast) and what the
//! bottom of the stack carries: IPv4, IPv6, or an Ethernet pseudowire (RFC 4448), with or without
//! its control word.

use super::{be32, Inner, Malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Labels beyond this are an attack or a broken writer: real stacks hold a handful.
pub const MAX_LABELS: usize = 16;

const LABEL_IPV4_EXPLICIT_NULL: u32 = 0;
const LABEL_IPV6_EXPLICIT_NULL: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mpls<'a> {
    pub labels: usize,
    /// The bottom-of-stack label.
    pub bottom: u32,
    pub inner: Inner<'a>,
}

/// Walks the label stack of `d` (which starts at the first label entry).
pub fn parse(d: &[u8]) -> Result<Mpls<'_>, Malformed> {
    let mut off = 0;
    let mut labels = 0;
    let bottom = loop {
        let Some(entry) = be32(d, off) else {
            return Err(Malformed::new(
                "mpls",
                "truncated_header",
                format!("label stack cut after {labels} labels"),
            ));
        };
        labels += 1;
        off += 4;
        if entry & 0x100 != 0 {
            break entry >> 12;
        }
        if labels >= MAX_LABELS {
            return Err(Malformed::new(
                "mpls",
                "too_many_labels",
                format!("no bottom of stack within {MAX_LABELS} labels"),
            ));
        }
    };
    let data = d.get(off..).unwrap_or(&[]);
    let inner = payload(bottom, data);
    Ok(Mpls {
        labels,
        bottom,
        inner,
    })
}

/// What follows the stack: the reserved null labels say it outright; otherwise the first nibble
/// tells IP (4, 6) from a pseudowire control word (0) as routers' and tshark's heuristics do.
fn payload(bottom: u32, data: &[u8]) -> Inner<'_> {
    let ip = |ethertype| Inner::Network { ethertype, data };
    match bottom {
        LABEL_IPV4_EXPLICIT_NULL => return ip(ETHERTYPE_IPV4),
        LABEL_IPV6_EXPLICIT_NULL => return ip(ETHERTYPE_IPV6),
        _ => {}
    }
    match data.first().map(|b| b >> 4) {
        Some(4) => ip(ETHERTYPE_IPV4),
        Some(6) => ip(ETHERTYPE_IPV6),
        // The control word (RFC 4385: first nibble 0, then flags, length, sequence) of an
        // Ethernet pseudowire: the customer's frame follows it.
        Some(0) if data.len() >= 4 + 14 => Inner::Ethernet {
            frame: data.get(4..).unwrap_or(&[]),
            vlan: None,
        },
        first => Inner::NotDecoded {
            layer: "mpls",
            kind: "mpls_payload_not_decoded",
            what: u32::from(first.unwrap_or(0)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_labels_then_ipv4() {
        // tcpreplay-test.pcap frame 11: label 18 (S=0), label 16 (S=1), then IPv4.
        let d = [
            0x00, 0x01, 0x20, 0xfe, // label 18, TC 0, S 0, TTL 254
            0x00, 0x01, 0x01, 0xfe, // label 16, TC 0, S 1, TTL 254
            0x45, 0x00, // IPv4 header begins
        ];
        let m = parse(&d).unwrap();
        assert_eq!((m.labels, m.bottom), (2, 16));
        assert_eq!(
            m.inner,
            Inner::Network {
                ethertype: ETHERTYPE_IPV4,
                data: &[0x45, 0x00]
            }
        );
    }

    #[test]
    fn pseudowire_with_control_word() {
        let mut d = vec![
            0x00, 0x01, 0x30, 0xff, // label 19, S 0
            0x00, 0x01, 0x01, 0xff, // label 16, S 1
            0x00, 0x00, 0x00, 0x00, // control word: flags 0, length 0, sequence 0
        ];
        let eth = [
            0, 0x0c, 0x29, 1, 2, 3, 0, 0x0c, 0x29, 4, 5, 6, 0x81, 0x00, 0, 1, 0x08, 0x00,
        ];
        d.extend(eth);
        let m = parse(&d).unwrap();
        assert_eq!(m.bottom, 16);
        assert_eq!(
            m.inner,
            Inner::Ethernet {
                frame: &eth,
                vlan: None
            }
        );
    }

    #[test]
    fn explicit_null_names_the_family() {
        // Label 2 (IPv6 explicit null), S 1: IPv6 whatever the first nibble.
        let d = [0x00, 0x00, 0x21, 0x40, 0xff];
        assert!(matches!(
            parse(&d).unwrap().inner,
            Inner::Network {
                ethertype: ETHERTYPE_IPV6,
                ..
            }
        ));
    }

    #[test]
    fn bounds() {
        assert_eq!(parse(&[0, 0, 0]).unwrap_err().kind, "truncated_header");
        let deep: Vec<u8> = [0u8, 0x01, 0x20, 0xfe].repeat(40);
        assert_eq!(parse(&deep).unwrap_err().kind, "too_many_labels");
        // An associated channel (first nibble 1) is not a payload we open.
        let ach = [0x00, 0x01, 0x01, 0xff, 0x10, 0, 0, 0];
        assert!(matches!(
            parse(&ach).unwrap().inner,
            Inner::NotDecoded { what: 1, .. }
        ));
    }
}
