//! VXLAN (RFC 7348, UDP port 4789): an 8-byte header whose I flag says the VNI is valid, then the
//! tenant's Ethernet frame.

use super::{be32, Inner};

const FLAG_VNI: u8 = 0x08;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan<'a> {
    pub vni: u32,
    pub inner: Inner<'a>,
}

/// None when the bytes are not a VXLAN header (the datagram stays an ordinary UDP one).
pub fn parse(d: &[u8]) -> Option<Vxlan<'_>> {
    // flags(1) reserved(3) VNI(3) reserved(1)
    let flags = *d.first()?;
    let vni = be32(d, 4)? >> 8;
    // Only the I flag is defined; the group-policy extension sets G (0x80) as well.
    if flags & FLAG_VNI == 0 || flags & 0x77 != 0 {
        return None;
    }
    Some(Vxlan {
        vni,
        inner: Inner::Ethernet {
            frame: d.get(8..).unwrap_or(&[]),
            vlan: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_and_frame() {
        // ndpi-vxlan.pcap: flags 0x08, VNI 1111 (0x000457).
        let d = [
            0x08, 0x00, 0x00, 0x00, // flags: I; reserved
            0x00, 0x04, 0x57, 0x00, // VNI 1111, reserved
            0xaa, // inner Ethernet begins
        ];
        let v = parse(&d).unwrap();
        assert_eq!(v.vni, 1111);
        assert_eq!(
            v.inner,
            Inner::Ethernet {
                frame: &[0xaa],
                vlan: None
            }
        );
    }

    #[test]
    fn not_vxlan() {
        assert!(parse(&[0x08, 0, 0, 0, 0, 0, 1]).is_none());
        assert!(parse(&[0x00, 0, 0, 0, 0, 0, 1, 0]).is_none());
        assert!(parse(&[0x0c, 0, 0, 0, 0, 0, 1, 0]).is_none());
    }
}
