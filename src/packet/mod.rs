//! Link, network and transport headers: checked views over borrowed bytes, one file per protocol.

pub mod ethernet;
pub mod frag;
pub mod ipv4;
pub mod ipv6;
pub mod sll;
pub mod tcp;
pub mod udp;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

/// Something in a packet that is not what its headers promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub layer: &'static str,
    pub kind: &'static str,
    pub detail: String,
}

impl Malformed {
    #[cold]
    pub fn new(layer: &'static str, kind: &'static str, detail: impl Into<String>) -> Self {
        Malformed {
            layer,
            kind,
            detail: detail.into(),
        }
    }
}

/// The network-layer payload found under the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3<'a> {
    /// The innermost VLAN id, if any tag was present.
    pub vlan: Option<u16>,
    pub ethertype: u16,
    pub data: &'a [u8],
}

/// An IP address of either family, as raw bytes (IPv4 in the first four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr {
    pub v6: bool,
    pub bytes: [u8; 16],
}

impl Addr {
    #[inline]
    pub fn v4(b: [u8; 4]) -> Self {
        let mut bytes = [0; 16];
        bytes[..4].copy_from_slice(&b);
        Addr { v6: false, bytes }
    }

    #[inline]
    pub fn v6(bytes: [u8; 16]) -> Self {
        Addr { v6: true, bytes }
    }

    pub fn to_ip(self) -> std::net::IpAddr {
        if self.v6 {
            std::net::IpAddr::V6(self.bytes.into())
        } else {
            let [a, b, c, d, ..] = self.bytes;
            std::net::IpAddr::V4([a, b, c, d].into())
        }
    }
}

impl Addr {
    /// Appends the address as `Display` writes it. IPv4 digits are written directly: through the
    /// formatting machinery two addresses per flow were half the time of building the flows table.
    pub fn push_to(&self, out: &mut String) {
        if self.v6 {
            use std::fmt::Write;
            let _ = write!(out, "{self}");
            return;
        }
        for (i, &b) in self.bytes.iter().take(4).enumerate() {
            if i > 0 {
                out.push('.');
            }
            if b >= 100 {
                out.push(char::from(b'0' + b / 100));
            }
            if b >= 10 {
                out.push(char::from(b'0' + b / 10 % 10));
            }
            out.push(char::from(b'0' + b % 10));
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // std's Display for Ipv6Addr follows RFC 5952.
        self.to_ip().fmt(f)
    }
}

/// Fragmentation fields of an IP packet that is one piece of a larger datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    pub offset: u32,
    pub more: bool,
    pub id: u32,
}

/// An IPv4 or IPv6 packet after its headers (and IPv6 extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: Addr,
    pub dst: Addr,
    /// Transport protocol (for an IPv6 fragment: the fragment header's next header).
    pub proto: u8,
    /// Captured bytes of the payload.
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP header.
    pub payload_len: u32,
    pub frag: Option<FragInfo>,
}

#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_pushed_as_display_writes_them() {
        let mut out = String::new();
        for b in 0..=255u8 {
            for a in [
                Addr::v4([b, 0, 9, 10]),
                Addr::v4([99, b, 100, 255]),
                Addr::v4([1, 2, b, 3]),
                Addr::v4([255, 255, 255, b]),
                Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b, 1]),
                Addr::v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, b]),
            ] {
                out.clear();
                a.push_to(&mut out);
                assert_eq!(out, a.to_string());
            }
        }
        out.clear();
        Addr::v4([10, 0, 0, 1]).push_to(&mut out);
        Addr::v4([172, 16, 254, 3]).push_to(&mut out);
        assert_eq!(out, "10.0.0.1172.16.254.3");
    }
}
