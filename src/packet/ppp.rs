//! PPP (RFC 1661) as link types 9 (PPP), 50 (PPP in HDLC-like framing, RFC 1662) and 51 (PPPoE
//! without its Ethernet header), and PPPoE session frames (RFC 2516, ethertype 0x8864).

use super::{be16, Inner, Malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS};

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pppoe<'a> {
    pub session: u16,
    pub inner: Inner<'a>,
}

/// A PPP frame at its protocol field, or at the HDLC address and control bytes (0xff 0x03) that
/// may precede it; the protocol field may be compressed to one byte (an odd first byte).
pub fn parse(d: &[u8]) -> Result<Inner<'_>, Malformed> {
    // Cisco HDLC (what link type 50 also carries): address 0x0f or 0x8f, control 0, ethertype.
    if let [0x0f | 0x8f, 0x00, rest @ ..] = d {
        let ethertype = be16(rest, 0)
            .ok_or_else(|| Malformed::new("chdlc", "truncated_header", "no protocol field"))?;
        return Ok(Inner::Network {
            ethertype,
            data: rest.get(2..).unwrap_or(&[]),
        });
    }
    let d = match d {
        [0xff, 0x03, rest @ ..] => rest,
        _ => d,
    };
    let (protocol, off) = match d.first() {
        Some(&b) if b & 1 == 1 => (u16::from(b), 1),
        _ => match be16(d, 0) {
            Some(p) => (p, 2),
            None => {
                return Err(Malformed::new(
                    "ppp",
                    "truncated_header",
                    "no protocol field",
                ))
            }
        },
    };
    let data = d.get(off..).unwrap_or(&[]);
    let ethertype = match protocol {
        PPP_IPV4 => ETHERTYPE_IPV4,
        PPP_IPV6 => ETHERTYPE_IPV6,
        PPP_MPLS => ETHERTYPE_MPLS,
        // Link and network control (LCP, IPCP, authentication): the link's own traffic.
        _ => 0,
    };
    Ok(Inner::Network { ethertype, data })
}

/// A PPPoE session frame (`d` starts at the version/type byte).
pub fn parse_pppoe(d: &[u8]) -> Result<Pppoe<'_>, Malformed> {
    // ver/type(1) = 0x11, code(1) = 0 for session data, session id(2), length(2), PPP frame.
    let (Some(&vt), Some(&code), Some(session), Some(len)) =
        (d.first(), d.get(1), be16(d, 2), be16(d, 4))
    else {
        return Err(Malformed::new(
            "pppoe",
            "truncated_header",
            format!("{} bytes, header needs 6", d.len()),
        ));
    };
    if vt != 0x11 || code != 0 {
        return Err(Malformed::new(
            "pppoe",
            "bad_header",
            format!("version/type 0x{vt:02x}, code 0x{code:02x} in a session frame"),
        ));
    }
    // The length bounds the PPP frame: Ethernet padding follows short ones.
    let end = 6usize.saturating_add(usize::from(len)).min(d.len());
    let ppp = d.get(6..end).unwrap_or(&[]);
    Ok(Pppoe {
        session,
        inner: parse(ppp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pppoe_session_ipv4() {
        // sv-pppoe-session-http.pcap: session 0x002d, PPP protocol 0x0021.
        let d = [
            0x11, 0x00, // version 1, type 1, code 0 (session data)
            0x00, 0x2d, // session id
            0x00, 0x03, // length: protocol(2) + 1 byte
            0x00, 0x21, // PPP: IPv4
            0x45, // IPv4 header begins
            0x00, 0x00, // Ethernet padding, outside the length
        ];
        let p = parse_pppoe(&d).unwrap();
        assert_eq!(p.session, 0x2d);
        assert_eq!(
            p.inner,
            Inner::Network {
                ethertype: ETHERTYPE_IPV4,
                data: &[0x45]
            }
        );
    }

    #[test]
    fn hdlc_framing_and_compressed_protocol() {
        // Link type 50: address 0xff, control 0x03, protocol 0x0057 (IPv6).
        assert_eq!(
            parse(&[0xff, 0x03, 0x00, 0x57, 0x60]).unwrap(),
            Inner::Network {
                ethertype: ETHERTYPE_IPV6,
                data: &[0x60]
            }
        );
        // Protocol-field compression: 0x21 alone is IPv4.
        assert_eq!(
            parse(&[0x21, 0x45]).unwrap(),
            Inner::Network {
                ethertype: ETHERTYPE_IPV4,
                data: &[0x45]
            }
        );
        // LCP (0xc021) is the link's own traffic.
        assert!(matches!(
            parse(&[0xc0, 0x21, 1]).unwrap(),
            Inner::Network { ethertype: 0, .. }
        ));
    }

    #[test]
    fn refused() {
        assert_eq!(
            parse_pppoe(&[0x11, 0, 0]).unwrap_err().kind,
            "truncated_header"
        );
        assert_eq!(
            parse_pppoe(&[0x11, 0x09, 0, 0, 0, 0]).unwrap_err().kind,
            "bad_header"
        );
        assert_eq!(parse(&[0xff, 0x03]).unwrap_err().kind, "truncated_header");
        assert_eq!(
            parse(&[0x0f, 0x00, 8]).unwrap_err().kind,
            "truncated_header"
        );
    }

    #[test]
    fn cisco_hdlc() {
        assert_eq!(
            parse(&[0x0f, 0x00, 0x08, 0x00, 0x45]).unwrap(),
            Inner::Network {
                ethertype: ETHERTYPE_IPV4,
                data: &[0x45]
            }
        );
    }
}
