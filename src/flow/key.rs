//! The bidirectional 5-tuple (+ VLAN): both directions of a conversation hash to one key.

use crate::packet::Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: Addr,
    pub hi: Addr,
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub vlan: Option<u16>,
}

impl FlowKey {
    #[inline]
    pub fn new(src: Addr, sport: u16, dst: Addr, dport: u16, proto: u8, vlan: Option<u16>) -> Self {
        if (src, sport) <= (dst, dport) {
            FlowKey {
                lo: src,
                hi: dst,
                lo_port: sport,
                hi_port: dport,
                proto,
                vlan,
            }
        } else {
            FlowKey {
                lo: dst,
                hi: src,
                lo_port: dport,
                hi_port: sport,
                proto,
                vlan,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_one_key() {
        let a = Addr::v4([10, 0, 0, 1]);
        let b = Addr::v4([10, 0, 0, 2]);
        assert_eq!(
            FlowKey::new(a, 40000, b, 111, 6, None),
            FlowKey::new(b, 111, a, 40000, 6, None)
        );
        assert_ne!(
            FlowKey::new(a, 40000, b, 111, 6, None),
            FlowKey::new(a, 40000, b, 111, 17, None)
        );
        assert_ne!(
            FlowKey::new(a, 40000, b, 111, 6, None),
            FlowKey::new(a, 40000, b, 111, 6, Some(1))
        );
    }
}
