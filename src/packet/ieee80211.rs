//! IEEE 802.11 data frames (link type 105, and 127 under radiotap): the MAC header with its
//! fourth address, QoS Control and HT Control (+HTC) fields as the frame control says, then the
//! LLC/SNAP header that names the ethertype.

use super::{be16, Inner, Malformed};

const TYPE_DATA: u8 = 2;
const FLAG_TO_DS: u8 = 0x01;
const FLAG_FROM_DS: u8 = 0x02;
const FLAG_PROTECTED: u8 = 0x40;
/// In a QoS data frame, the "Order" bit announces the 4-byte HT Control field (+HTC).
const FLAG_ORDER: u8 = 0x80;
/// QoS Control bit 7: the body is an aggregate of MSDUs, not one LLC frame.
const QOS_AMSDU: u8 = 0x80;

/// What a frame other than a data frame with a body is: the link's own traffic.
const LINK_OWN: Inner<'static> = Inner::Network {
    ethertype: 0,
    data: &[],
};

pub fn parse(d: &[u8]) -> Result<Inner<'_>, Malformed> {
    let (Some(&fc0), Some(&flags)) = (d.first(), d.get(1)) else {
        return Err(Malformed::new(
            "802.11",
            "truncated_header",
            "no frame control",
        ));
    };
    let ftype = (fc0 >> 2) & 3;
    let subtype = fc0 >> 4;
    // Management and control frames, and data subtypes without a body (Null, QoS Null, CF-*).
    if ftype != TYPE_DATA || subtype & 0b0100 != 0 {
        return Ok(LINK_OWN);
    }
    let qos = subtype & 0b1000 != 0;
    // frame control(2) duration(2) addr1-3(18) sequence(2) [addr4(6)] [QoS(2)] [HT control(4)]
    let mut off = 24;
    if flags & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_TO_DS | FLAG_FROM_DS {
        off += 6;
    }
    let mut amsdu = false;
    if qos {
        amsdu = d.get(off).is_some_and(|q| q & QOS_AMSDU != 0);
        off += 2;
        if flags & FLAG_ORDER != 0 {
            off += 4;
        }
    }
    let Some(body) = d.get(off..) else {
        return Err(Malformed::new(
            "802.11",
            "truncated_header",
            format!("{} bytes, data header needs {off}", d.len()),
        ));
    };
    if flags & FLAG_PROTECTED != 0 {
        return Ok(Inner::NotDecoded {
            layer: "802.11",
            kind: "80211_protected_not_decoded",
            what: u32::from(fc0),
        });
    }
    if amsdu {
        return Ok(Inner::NotDecoded {
            layer: "802.11",
            kind: "80211_amsdu_not_decoded",
            what: u32::from(fc0),
        });
    }
    llc(body)
}

/// LLC/SNAP (AA AA 03, OUI 00-00-00 or 00-00-F8) then an ethertype; other LLC frames (STP, CDP,
/// ...) are the link's own traffic.
pub fn llc(body: &[u8]) -> Result<Inner<'_>, Malformed> {
    match body {
        [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00 | 0xf8, ..] => {
            let ethertype = be16(body, 6).ok_or_else(|| {
                Malformed::new("llc", "truncated_header", "SNAP header cut short")
            })?;
            Ok(Inner::Network {
                ethertype,
                data: body.get(8..).unwrap_or(&[]),
            })
        }
        _ => Ok(LINK_OWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAP_IPV4: [u8; 8] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

    fn header(fc: [u8; 2], extra: &[u8]) -> Vec<u8> {
        let mut d = fc.to_vec();
        d.extend([0, 0]); // duration
        d.extend([0x11; 18]); // three addresses
        d.extend([0x10, 0x00]); // sequence control
        d.extend(extra);
        d
    }

    #[test]
    fn qos_data_to_ds() {
        // zeek-radiotap.pcap frame 1: QoS Data (0x88), To-DS (0x01), LLC/SNAP IPv4.
        let mut d = header([0x88, 0x01], &[0x00, 0x00]); // QoS control: TID 0
        d.extend(SNAP_IPV4);
        d.push(0x45);
        assert_eq!(
            parse(&d).unwrap(),
            Inner::Network {
                ethertype: 0x0800,
                data: &[0x45]
            }
        );
    }

    #[test]
    fn qos_data_with_htc() {
        // tcpdump-ieee802.11_htc.pcap: QoS Data, To-DS, Order (+HTC): HT Control 0xffffffff.
        let mut d = header([0x88, 0x81], &[0x00, 0x00, 0xff, 0xff, 0xff, 0xff]);
        d.extend(SNAP_IPV4);
        d.push(0x45);
        assert!(
            matches!(parse(&d).unwrap(), Inner::Network { ethertype: 0x0800, data } if data == [0x45])
        );
    }

    #[test]
    fn plain_data_wds_and_ipv6() {
        // Data (0x08) To-DS and From-DS: a fourth address, no QoS.
        let mut d = header([0x08, 0x03], &[0x22; 6]);
        d.extend([0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd, 0x60]);
        assert!(matches!(
            parse(&d).unwrap(),
            Inner::Network {
                ethertype: 0x86dd,
                ..
            }
        ));
    }

    #[test]
    fn what_is_not_opened() {
        // A beacon (management), a QoS Null, a protected data frame, an A-MSDU.
        assert_eq!(parse(&header([0x80, 0x00], &[])).unwrap(), LINK_OWN);
        assert_eq!(parse(&header([0xc8, 0x01], &[0, 0])).unwrap(), LINK_OWN);
        let mut p = header([0x08, 0x41], &[]);
        p.extend([1, 2, 3, 4]);
        assert!(matches!(
            parse(&p).unwrap(),
            Inner::NotDecoded {
                kind: "80211_protected_not_decoded",
                ..
            }
        ));
        let a = header([0x88, 0x01], &[0x80, 0x00]);
        assert!(matches!(
            parse(&a).unwrap(),
            Inner::NotDecoded {
                kind: "80211_amsdu_not_decoded",
                ..
            }
        ));
        assert_eq!(
            parse(&[0x88, 0x01, 0, 0]).unwrap_err().kind,
            "truncated_header"
        );
    }
}
