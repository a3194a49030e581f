//! Linux NFLOG (link type 239): a 4-byte header (address family, version, group) then TLVs whose
//! length and type are in the capturing host's byte order; the packet is the payload TLV (9).

use super::{Inner, Malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const NFULA_PAYLOAD: u16 = 9;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// TLVs walked at most: the kernel writes about a dozen.
const MAX_TLVS: usize = 64;

pub fn parse(d: &[u8]) -> Result<Inner<'_>, Malformed> {
    let Some(&family) = d.first() else {
        return Err(Malformed::new("nflog", "truncated_header", "empty record"));
    };
    let tlvs = d.get(4..).ok_or_else(|| {
        Malformed::new(
            "nflog",
            "truncated_header",
            format!("{} bytes, header needs 4", d.len()),
        )
    })?;
    let little = host_order_is_little(tlvs);
    let word = |off: usize| -> Option<u16> {
        let b: [u8; 2] = tlvs.get(off..off + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let mut off = 0;
    for _ in 0..MAX_TLVS {
        let (Some(len), Some(typ)) = (word(off), word(off + 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(Malformed::new(
                "nflog",
                "bad_tlv",
                format!("TLV of length {len}"),
            ));
        }
        let Some(value) = tlvs.get(off + 4..off + len) else {
            return Err(Malformed::new(
                "nflog",
                "bad_tlv",
                format!("TLV type {typ} of length {len} overruns the record"),
            ));
        };
        if typ == NFULA_PAYLOAD {
            let ethertype = match family {
                AF_INET => ETHERTYPE_IPV4,
                AF_INET6 => ETHERTYPE_IPV6,
                _ => match value.first().map(|b| b >> 4) {
                    Some(4) => ETHERTYPE_IPV4,
                    Some(6) => ETHERTYPE_IPV6,
                    _ => 0,
                },
            };
            return Ok(Inner::Network {
                ethertype,
                data: value,
            });
        }
        off += len.next_multiple_of(4);
    }
    // Logged without its packet (a rule with a zero copy range).
    Ok(Inner::Network {
        ethertype: 0,
        data: &[],
    })
}

/// The first TLV's length reads sensibly (4 or more, within the record) in one order only,
/// unless both agree; little-endian hosts are the common case.
fn host_order_is_little(tlvs: &[u8]) -> bool {
    let (Some(&a), Some(&b)) = (tlvs.first(), tlvs.get(1)) else {
        return true;
    };
    let sane = |n: u16| (4..=tlvs.len()).contains(&usize::from(n));
    sane(u16::from_le_bytes([a, b])) || !sane(u16::from_be_bytes([a, b]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_tlv_little_endian() {
        // zeek-nflog-http.pcap record 1: AF_INET, version 0, group 42; hardware protocol TLV,
        // prefix TLV, then the payload (type 9).
        let d = [
            0x02, 0x00, 0x00, 0x2a, // family AF_INET, version 0, resource id 42
            0x08, 0x00, 0x01, 0x00, // TLV length 8, type 1 (packet header)
            0x08, 0x00, 0x03, 0x00, //   hw protocol 0x0800, hook 3, pad
            0x05, 0x00, 0x0a, 0x00, // TLV length 5, type 10 (prefix)
            0x00, 0x00, 0x00, 0x00, //   "" and padding to 4
            0x06, 0x00, 0x09, 0x00, // TLV length 6, type 9 (payload)
            0x45, 0x00, 0x00, 0x00, //   two bytes of packet, padding
        ];
        assert_eq!(
            parse(&d).unwrap(),
            Inner::Network {
                ethertype: ETHERTYPE_IPV4,
                data: &[0x45, 0x00]
            }
        );
    }

    #[test]
    fn big_endian_host_and_no_payload() {
        let d = [10, 0, 0, 1, 0x00, 0x05, 0x00, 0x09, 0x60, 0, 0, 0];
        assert_eq!(
            parse(&d).unwrap(),
            Inner::Network {
                ethertype: ETHERTYPE_IPV6,
                data: &[0x60]
            }
        );
        assert_eq!(
            parse(&[2, 0, 0, 1, 8, 0, 1, 0, 0, 0, 0, 0]).unwrap(),
            Inner::Network {
                ethertype: 0,
                data: &[]
            }
        );
    }

    #[test]
    fn refused() {
        assert_eq!(parse(&[2, 0]).unwrap_err().kind, "truncated_header");
        assert_eq!(
            parse(&[2, 0, 0, 1, 2, 0, 9, 0]).unwrap_err().kind,
            "bad_tlv"
        );
        assert_eq!(
            parse(&[2, 0, 0, 1, 64, 0, 9, 0, 0]).unwrap_err().kind,
            "bad_tlv"
        );
    }
}
