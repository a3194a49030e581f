//! Linux cooked captures: SLL (link type 113, 16-byte header) and SLL2 (276, 20 bytes).

use super::{ethernet, Malformed, L3};

pub fn parse_v1(frame: &[u8]) -> Result<L3<'_>, Malformed> {
    // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
    let rest = frame
        .get(14..)
        .ok_or_else(|| Malformed::new("sll", "truncated_header", "SLL header needs 16 bytes"))?;
    ethernet::after_ethertype(rest)
}

pub fn parse_v2(frame: &[u8]) -> Result<L3<'_>, Malformed> {
    // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
    if frame.len() < 20 {
        return Err(Malformed::new(
            "sll2",
            "truncated_header",
            "SLL2 header needs 20 bytes",
        ));
    }
    let l3 = ethernet::after_ethertype(frame)?;
    // The protocol field comes first, the rest of the header follows it.
    Ok(L3 {
        data: frame.get(20..).unwrap_or(&[]),
        ..l3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions() {
        let mut v1 = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        v1.push(0x60);
        assert_eq!(
            parse_v1(&v1).unwrap(),
            L3 {
                vlan: None,
                ethertype: 0x86dd,
                data: &[0x60]
            }
        );
        let mut v2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        v2.push(0x45);
        assert_eq!(
            parse_v2(&v2).unwrap(),
            L3 {
                vlan: None,
                ethertype: 0x0800,
                data: &[0x45]
            }
        );
        assert!(parse_v2(&v2[..19]).is_err());
    }
}
