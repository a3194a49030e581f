//! Link-layer types (LINKTYPE_* values of pcap and pcapng) and how to reach the network layer.

use crate::packet::{
    ethernet, ieee80211, nflog, ppp, radiotap, sll, Encap, Inner, Malformed, ETHERTYPE_IPV4,
    ETHERTYPE_IPV6, L3,
};

pub const ETHERNET: u32 = 1;
pub const NULL: u32 = 0;
pub const RAW: u32 = 101;
pub const RAW_12: u32 = 12;
pub const RAW_14: u32 = 14;
pub const LINUX_SLL: u32 = 113;
pub const LOOP: u32 = 108;
pub const IPV4: u32 = 228;
pub const IPV6: u32 = 229;
pub const LINUX_SLL2: u32 = 276;
pub const PPP: u32 = 9;
pub const PPP_HDLC: u32 = 50;
pub const PPP_ETHER: u32 = 51;
pub const IEEE802_11: u32 = 105;
pub const IEEE802_11_RADIOTAP: u32 = 127;
pub const NFLOG: u32 = 239;

pub enum Link<'a> {
    L3(L3<'a>),
    /// A link layer decoded by the encapsulation path (`decode::packets`): what follows it, and
    /// the encapsulation to name (PPPoE) if any.
    Inner(Inner<'a>, Encap),
    Unknown,
}

fn raw(data: &[u8]) -> L3<'_> {
    let ethertype = match data.first().map(|b| b >> 4) {
        Some(4) => ETHERTYPE_IPV4,
        Some(6) => ETHERTYPE_IPV6,
        _ => 0,
    };
    L3 {
        vlan: None,
        ethertype,
        data,
    }
}

/// BSD loopback: a 4-byte address family, in the writer's byte order (NULL) or network order (LOOP).
fn loopback(data: &[u8], network_order: bool) -> Result<L3<'_>, Malformed> {
    let Some(af) = data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return Err(Malformed::new(
            "loopback",
            "truncated_header",
            "needs a 4-byte address family",
        ));
    };
    let mut family = if network_order {
        u32::from_be_bytes(af)
    } else {
        u32::from_le_bytes(af)
    };
    if !network_order && family > 0xffff {
        family = family.swap_bytes(); // written on a big-endian host
    }
    let ethertype = match family {
        2 => ETHERTYPE_IPV4,
        10 | 24 | 28 | 30 => ETHERTYPE_IPV6, // Linux, NetBSD/OpenBSD, FreeBSD, Darwin
        _ => 0,
    };
    Ok(L3 {
        vlan: None,
        ethertype,
        data: data.get(4..).unwrap_or(&[]),
    })
}

#[inline]
pub fn network_layer(link: u32, data: &[u8]) -> Result<Link<'_>, Malformed> {
    Ok(Link::L3(match link {
        ETHERNET => ethernet::parse(data)?,
        LINUX_SLL => sll::parse_v1(data)?,
        LINUX_SLL2 => sll::parse_v2(data)?,
        RAW | RAW_12 | RAW_14 | IPV4 | IPV6 => raw(data),
        NULL => loopback(data, false)?,
        LOOP => loopback(data, true)?,
        _ => return other(link, data),
    }))
}

/// The link types seen on wireless, dial-up and firewall-log captures: rarer than the ones
/// above, so out of their way.
#[cold]
#[inline(never)]
fn other(link: u32, data: &[u8]) -> Result<Link<'_>, Malformed> {
    Ok(match link {
        PPP | PPP_HDLC => Link::Inner(ppp::parse(data)?, Encap::None),
        PPP_ETHER => Link::Inner(ppp::parse_pppoe(data)?.inner, Encap::Pppoe),
        IEEE802_11 => Link::Inner(ieee80211::parse(data)?, Encap::None),
        IEEE802_11_RADIOTAP => {
            Link::Inner(ieee80211::parse(radiotap::parse(data)?.frame)?, Encap::None)
        }
        NFLOG => Link::Inner(nflog::parse(data)?, Encap::None),
        _ => Link::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l3(link: u32, d: &[u8]) -> L3<'_> {
        match network_layer(link, d).unwrap() {
            Link::L3(l) => l,
            Link::Inner(..) | Link::Unknown => panic!("not L3"),
        }
    }

    #[test]
    fn loopback_orders() {
        assert_eq!(l3(NULL, &[2, 0, 0, 0, 0x45]).ethertype, ETHERTYPE_IPV4);
        assert_eq!(l3(NULL, &[0, 0, 0, 30, 0x60]).ethertype, ETHERTYPE_IPV6);
        assert_eq!(l3(LOOP, &[0, 0, 0, 2, 0x45]).ethertype, ETHERTYPE_IPV4);
        assert_eq!(l3(RAW, &[0x60]).ethertype, ETHERTYPE_IPV6);
        assert!(matches!(network_layer(147, &[1]), Ok(Link::Unknown)));
    }
}
