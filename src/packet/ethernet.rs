//! Ethernet II with 802.1Q / 802.1ad (stacked) VLAN tags.

use super::{be16, Malformed, L3};

/// Tags beyond this are an attack or a broken writer, not a network.
pub const MAX_VLAN_TAGS: usize = 8;

#[inline]
pub fn is_vlan_tpid(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8 | 0x9100 | 0x9200)
}

/// Peels VLAN tags from `data`, which starts at a 2-byte ethertype field.
#[inline(always)]
pub fn after_ethertype(data: &[u8]) -> Result<L3<'_>, Malformed> {
    let mut ethertype = be16(data, 0)
        .ok_or_else(|| Malformed::new("ethernet", "truncated_header", "no ethertype"))?;
    let mut off = 2;
    let mut vlan = None;
    let mut tags = 0;
    while is_vlan_tpid(ethertype) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(Malformed::new(
                "vlan",
                "too_many_vlan_tags",
                format!("more than {MAX_VLAN_TAGS} stacked VLAN tags"),
            ));
        }
        let (Some(tci), Some(next)) = (be16(data, off), be16(data, off + 2)) else {
            return Err(Malformed::new(
                "vlan",
                "truncated_header",
                "VLAN tag cut short",
            ));
        };
        vlan = Some(tci & 0x0fff);
        ethertype = next;
        off += 4;
    }
    Ok(L3 {
        vlan,
        ethertype,
        data: data.get(off..).unwrap_or(&[]),
    })
}

// Always: a result returned through memory is read back wider than it was written, which stalls.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<L3<'_>, Malformed> {
    let rest = frame.get(12..).ok_or_else(|| {
        Malformed::new(
            "ethernet",
            "truncated_header",
            format!("{} bytes, header needs 14", frame.len()),
        )
    })?;
    let l3 = after_ethertype(rest)?;
    if l3.ethertype < 0x0600 {
        // An 802.3 length field: LLC/SNAP, not IP. Not malformed, simply not ours.
        return Ok(L3 { ethertype: 0, ..l3 });
    }
    Ok(l3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_keeps_inner_vlan() {
        // S-tag 200 (0x88a8), C-tag 300 (0x8100), IPv4.
        let eth = crate::packet::emit::EthernetRepr {
            vlans: &[200, 300],
            ..Default::default()
        };
        let mut f = Vec::new();
        eth.emit(&mut f);
        assert_eq!(
            &f[12..20],
            &[0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x01, 0x2c]
        );
        f.push(0x45);
        let l3 = parse(&f).unwrap();
        assert_eq!(
            (l3.vlan, l3.ethertype, l3.data),
            (Some(300), 0x0800, &[0x45][..])
        );
    }

    #[test]
    fn vlan_depth_bounded() {
        let mut f = vec![0u8; 12];
        for _ in 0..100 {
            f.extend([0x81, 0x00, 0x00, 0x01]);
        }
        f.extend([0x08, 0x00]);
        assert_eq!(parse(&f).unwrap_err().kind, "too_many_vlan_tags");
        assert_eq!(parse(&[0; 10]).unwrap_err().kind, "truncated_header");
    }
}
