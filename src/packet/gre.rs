//! GRE (RFC 2784 with the key and sequence number fields of RFC 2890): IPv4, IPv6, MPLS and
//! transparent Ethernet bridging (0x6558) inside; ERSPAN (types II and III) is handed on by its
//! protocol type, type I (0x88be without a sequence number) carries the mirrored frame bare.

use super::{be16, be32, ppp, Inner, Malformed, ETHERTYPE_TEB};

pub const PROTO_ERSPAN_II: u16 = 0x88be;
pub const PROTO_ERSPAN_III: u16 = 0x22eb;
/// PPP, as PPTP's enhanced GRE (version 1, RFC 2637) carries it.
pub const PROTO_PPP: u16 = 0x880b;

const FLAG_CHECKSUM: u16 = 0x8000;
const FLAG_ROUTING: u16 = 0x4000;
const FLAG_KEY: u16 = 0x2000;
const FLAG_SEQ: u16 = 0x1000;
/// Version 1 only: an acknowledgment number follows the sequence number.
const FLAG_ACK: u16 = 0x0080;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gre<'a> {
    pub protocol: u16,
    pub key: Option<u32>,
    pub seq: Option<u32>,
    /// The flags and version word, when it names a GRE this decoder does not open.
    pub unsupported: Option<u16>,
    /// Everything after the GRE header.
    pub payload: &'a [u8],
}

impl<'a> Gre<'a> {
    /// What the payload is, for the protocols that are not ERSPAN II/III (those have their own
    /// header, `erspan::parse`).
    pub fn inner(&self) -> Inner<'a> {
        if let Some(flags) = self.unsupported {
            return Inner::NotDecoded {
                layer: "gre",
                kind: "gre_not_decoded",
                what: u32::from(flags),
            };
        }
        match self.protocol {
            // An acknowledgment alone carries no PPP frame.
            PROTO_PPP if self.payload.is_empty() => Inner::Network {
                ethertype: 0,
                data: &[],
            },
            PROTO_PPP => ppp::parse(self.payload).unwrap_or(Inner::NotDecoded {
                layer: "gre",
                kind: "gre_not_decoded",
                what: u32::from(PROTO_PPP),
            }),
            ETHERTYPE_TEB => Inner::Ethernet {
                frame: self.payload,
                vlan: None,
            },
            // ERSPAN type I: no sequence number, no ERSPAN header.
            PROTO_ERSPAN_II if self.seq.is_none() => Inner::Ethernet {
                frame: self.payload,
                vlan: None,
            },
            ethertype => Inner::Network {
                ethertype,
                data: self.payload,
            },
        }
    }
}

pub fn parse(d: &[u8]) -> Result<Gre<'_>, Malformed> {
    let (Some(flags), Some(protocol)) = (be16(d, 0), be16(d, 2)) else {
        return Err(Malformed::new(
            "gre",
            "truncated_header",
            format!("{} bytes, header needs 4", d.len()),
        ));
    };
    // Version 1 is PPTP's enhanced GRE: a key (payload length, call id), then the optional
    // sequence and acknowledgment numbers.
    if flags & 7 == 1 && protocol == PROTO_PPP && flags & FLAG_KEY != 0 {
        let off = 8
            + if flags & FLAG_SEQ != 0 { 4 } else { 0 }
            + if flags & FLAG_ACK != 0 { 4 } else { 0 };
        let payload = d.get(off..).ok_or_else(|| {
            Malformed::new(
                "gre",
                "truncated_header",
                format!("{} bytes, enhanced GRE header needs {off}", d.len()),
            )
        })?;
        return Ok(Gre {
            protocol,
            key: None,
            seq: if flags & FLAG_SEQ != 0 {
                be32(d, 8)
            } else {
                None
            },
            unsupported: None,
            payload,
        });
    }
    // Source routing (RFC 1701) is long obsolete; other versions are not defined.
    if flags & 7 != 0 || flags & FLAG_ROUTING != 0 {
        return Ok(Gre {
            protocol,
            key: None,
            seq: None,
            unsupported: Some(flags),
            payload: &[],
        });
    }
    let mut off = 4;
    if flags & FLAG_CHECKSUM != 0 {
        off += 4;
    }
    let mut field = |present: bool| -> Result<Option<u32>, Malformed> {
        if !present {
            return Ok(None);
        }
        let v = be32(d, off).ok_or_else(|| {
            Malformed::new(
                "gre",
                "truncated_header",
                format!("{} bytes, optional fields cut short", d.len()),
            )
        })?;
        off += 4;
        Ok(Some(v))
    };
    let key = field(flags & FLAG_KEY != 0)?;
    let seq = field(flags & FLAG_SEQ != 0)?;
    let payload = d.get(off..).ok_or_else(|| {
        Malformed::new(
            "gre",
            "truncated_header",
            format!("{} bytes, checksum field cut short", d.len()),
        )
    })?;
    Ok(Gre {
        protocol,
        key,
        seq,
        unsupported: None,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ipv4() {
        // zeek-gre-sample.pcap: no flags, protocol 0x0800.
        let g = parse(&[0x00, 0x00, 0x08, 0x00, 0x45]).unwrap();
        assert_eq!((g.protocol, g.key, g.seq), (0x0800, None, None));
        assert_eq!(
            g.inner(),
            Inner::Network {
                ethertype: 0x0800,
                data: &[0x45]
            }
        );
    }

    #[test]
    fn checksum_key_sequence() {
        let d = [
            0xb0, 0x00, // C, K, S set, version 0
            0x65, 0x58, // transparent Ethernet bridging
            0x12, 0x34, 0x00, 0x00, // checksum, reserved
            0x00, 0x00, 0x03, 0xe9, // key 1001
            0x00, 0x00, 0x07, 0x02, // sequence 1794
            0xaa, // Ethernet frame begins
        ];
        let g = parse(&d).unwrap();
        assert_eq!((g.key, g.seq), (Some(1001), Some(1794)));
        assert_eq!(
            g.inner(),
            Inner::Ethernet {
                frame: &[0xaa],
                vlan: None
            }
        );
    }

    #[test]
    fn erspan_type_one_is_bare_ethernet() {
        let g = parse(&[0x00, 0x00, 0x88, 0xbe, 0xaa]).unwrap();
        assert!(matches!(g.inner(), Inner::Ethernet { .. }));
        let g = parse(&[0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0xaa]).unwrap();
        assert_eq!((g.protocol, g.seq), (PROTO_ERSPAN_II, Some(1)));
    }

    #[test]
    fn refused() {
        assert_eq!(parse(&[0, 0, 8]).unwrap_err().kind, "truncated_header");
        assert_eq!(
            parse(&[0x20, 0, 8, 0, 0, 0]).unwrap_err().kind,
            "truncated_header"
        );
        // Version 2 is not defined; routing is obsolete.
        assert!(matches!(
            parse(&[0x30, 0x82, 0x88, 0x0b, 0, 0, 0, 0])
                .unwrap()
                .inner(),
            Inner::NotDecoded {
                kind: "gre_not_decoded",
                what: 0x3082,
                ..
            }
        ));
        assert!(parse(&[0x40, 0, 8, 0]).unwrap().unsupported.is_some());
    }

    #[test]
    fn pptp_enhanced_gre() {
        let d = [
            0x30, 0x81, // K, S, version 1 (A: 0x80 set)
            0x88, 0x0b, // PPP
            0x00, 0x06, 0x40, 0x00, // payload length 6, call id 0x4000
            0x00, 0x00, 0x00, 0x05, // sequence 5
            0x00, 0x00, 0x00, 0x04, // acknowledgment 4
            0xff, 0x03, 0x00, 0x21, 0x45, 0x00, // PPP: IPv4
        ];
        let g = parse(&d).unwrap();
        assert_eq!((g.seq, g.key), (Some(5), None));
        assert_eq!(
            g.inner(),
            Inner::Network {
                ethertype: 0x0800,
                data: &[0x45, 0x00]
            }
        );
        // An acknowledgment alone: no PPP frame, nothing to count as undecoded.
        let ack = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0x40, 0, 0, 0, 0, 4];
        assert_eq!(
            parse(&ack).unwrap().inner(),
            Inner::Network {
                ethertype: 0,
                data: &[]
            }
        );
    }
}
