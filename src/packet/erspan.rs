//! ERSPAN headers inside GRE: type II (protocol 0x88be, 8 bytes) and type III (0x22eb, 12 bytes
//! and an optional 8-byte platform sub-header). The mirrored frame follows; the header's VLAN is
//! the one the frame was mirrored from, which counts when the frame carries no tag itself.

use super::{be16, be32, Inner, Malformed};

/// Frame type "Ethernet" in a type III header (the other defined value, 2, is a bare IP packet).
const FT_ETHERNET: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erspan<'a> {
    pub version: u8,
    pub session: u16,
    pub vlan: u16,
    pub inner: Inner<'a>,
}

/// `d` starts at the ERSPAN header; `version` is what the GRE protocol type announced (2 for
/// type II, 3 for type III).
pub fn parse(d: &[u8], announced: u8) -> Result<Erspan<'_>, Malformed> {
    let (Some(w0), Some(w1)) = (be16(d, 0), be16(d, 2)) else {
        return Err(Malformed::new(
            "erspan",
            "truncated_header",
            format!("{} bytes, header needs 8", d.len()),
        ));
    };
    // The header's version field counts from 1 (1: type II, 2: type III).
    let version = (w0 >> 12) as u8 + 1;
    if version != announced {
        return Err(Malformed::new(
            "erspan",
            "bad_version",
            format!(
                "version field {} under an ERSPAN type {announced} protocol",
                version - 1
            ),
        ));
    }
    let vlan = w0 & 0x0fff;
    let session = w1 & 0x03ff;
    let (off, ethernet) = if version == 2 {
        (8, true)
    } else {
        let Some(w) = be32(d, 8) else {
            return Err(Malformed::new(
                "erspan",
                "truncated_header",
                format!("{} bytes, type III header needs 12", d.len()),
            ));
        };
        let frame_type = ((w >> 10) & 0x1f) as u8;
        let sub_header = w & 1 != 0;
        (if sub_header { 20 } else { 12 }, frame_type == FT_ETHERNET)
    };
    let frame = d.get(off..).ok_or_else(|| {
        Malformed::new(
            "erspan",
            "truncated_header",
            format!("{} bytes, header needs {off}", d.len()),
        )
    })?;
    let inner = if ethernet {
        Inner::Ethernet {
            frame,
            vlan: (vlan != 0).then_some(vlan),
        }
    } else {
        Inner::NotDecoded {
            layer: "erspan",
            kind: "erspan_frame_type_not_decoded",
            what: be32(d, 8).map_or(0, |w| (w >> 10) & 0x1f),
        }
    };
    Ok(Erspan {
        version,
        session,
        vlan,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_two() {
        // sv-decode-erspan-typeII-01.pcap: version 1, VLAN 23, COS 0, En 1 (ISL), session 100.
        let d = [
            0x10, 0x17, // version 1 (type II), VLAN 23
            0x08, 0x64, // COS 0, En 01, T 0, session 100
            0x00, 0x00, 0x00, 0x00, // reserved, index
            0xaa, // mirrored frame begins
        ];
        let e = parse(&d, 2).unwrap();
        assert_eq!((e.version, e.session, e.vlan), (2, 100, 23));
        assert_eq!(
            e.inner,
            Inner::Ethernet {
                frame: &[0xaa],
                vlan: Some(23)
            }
        );
    }

    #[test]
    fn type_three_with_and_without_sub_header() {
        // tcpdump-erspan-type-iii-ft-0.pcap: version 2, VLAN 20, session 0, FT 0, no sub-header.
        let mut d = vec![
            0x20, 0x14, // version 2 (type III), VLAN 20
            0x00, 0x00, // COS, BSO, T, session 0
            0x12, 0x34, 0x56, 0x78, // timestamp
            0x00, 0x00, // SGT
            0x00, 0x00, // P 0, FT 0, hardware id 0, D, Gra, O 0
        ];
        d.push(0xaa);
        let e = parse(&d, 3).unwrap();
        assert_eq!((e.version, e.vlan), (3, 20));
        assert!(matches!(e.inner, Inner::Ethernet { frame: [0xaa], .. }));
        // O set: an 8-byte platform-specific sub-header precedes the frame.
        d[11] = 0x01;
        d.truncate(12);
        d.extend([0; 8]);
        d.push(0xbb);
        assert!(matches!(
            parse(&d, 3).unwrap().inner,
            Inner::Ethernet { frame: [0xbb], .. }
        ));
        // FT 2 (IP) is not opened.
        d[10] = 0x08;
        assert!(matches!(
            parse(&d, 3).unwrap().inner,
            Inner::NotDecoded { what: 2, .. }
        ));
    }

    #[test]
    fn refused() {
        assert_eq!(parse(&[0x10, 0], 2).unwrap_err().kind, "truncated_header");
        assert_eq!(
            parse(&[0x20, 0, 0, 0, 0, 0, 0, 0], 2).unwrap_err().kind,
            "bad_version"
        );
        assert_eq!(
            parse(&[0x20, 0, 0, 0, 0, 0, 0, 0, 0], 3).unwrap_err().kind,
            "truncated_header"
        );
    }
}
