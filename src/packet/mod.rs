//! Link, network and transport headers: checked views over borrowed bytes, one file per protocol.

pub mod emit;
pub mod erspan;
pub mod ethernet;
pub mod frag;
pub mod geneve;
pub mod gre;
pub mod ieee80211;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod nflog;
pub mod ppp;
pub mod radiotap;
pub mod sll;
pub mod tcp;
pub mod teredo;
pub mod udp;
pub mod vxlan;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_GRE: u8 = 47;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// Transparent Ethernet bridging: an Ethernet frame follows (GRE, Geneve).
pub const ETHERTYPE_TEB: u16 = 0x6558;
pub const UDP_PORT_VXLAN: u16 = 4789;
pub const UDP_PORT_GENEVE: u16 = 6081;
pub const UDP_PORT_TEREDO: u16 = 3544;

/// The encapsulation that carried a packet to the capture point, innermost one when nested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum Encap {
    #[default]
    None = 0,
    Mpls,
    Pppoe,
    Gre,
    Erspan2,
    Erspan3,
    Vxlan,
    Geneve,
    IpInIp,
    Teredo,
}

impl Encap {
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Encap::None => return None,
            Encap::Mpls => "mpls",
            Encap::Pppoe => "pppoe",
            Encap::Gre => "gre",
            Encap::Erspan2 => "erspan2",
            Encap::Erspan3 => "erspan3",
            Encap::Vxlan => "vxlan",
            Encap::Geneve => "geneve",
            Encap::IpInIp => "ipip",
            Encap::Teredo => "teredo",
        })
    }
}

/// Which encapsulation carried a packet and the tenant it names (VXLAN or Geneve VNI, GRE key).
/// Eight bytes: it travels in every packet's metadata between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tunnel {
    pub encap: Encap,
    has_id: bool,
    raw_id: u32,
}

impl Tunnel {
    pub const NONE: Tunnel = Tunnel {
        encap: Encap::None,
        has_id: false,
        raw_id: 0,
    };

    #[inline]
    pub fn new(encap: Encap, id: Option<u32>) -> Tunnel {
        Tunnel {
            encap,
            has_id: id.is_some(),
            raw_id: id.unwrap_or(0),
        }
    }

    #[inline]
    pub fn id(self) -> Option<u32> {
        self.has_id.then_some(self.raw_id)
    }

    /// What the flow key holds: the tenant, so that two tenants' flows never merge. Id 0 (VNI 0,
    /// GRE key 0) is the default segment and joins traffic seen without a tunnel: a load
    /// balancer that tunnels one direction only (AWS GWLB, VNI 0) leaves one conversation.
    #[inline]
    pub fn key(self) -> (u8, u32) {
        match self.id() {
            Some(id) if id != 0 => (self.encap as u8, id),
            _ => (0, 0),
        }
    }
}

/// What an encapsulation header says follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An Ethernet frame; `vlan` is the VLAN the tunnel header names for it, used when the frame
    /// carries no tag of its own (ERSPAN).
    Ethernet { frame: &'a [u8], vlan: Option<u16> },
    /// A network-layer packet of this ethertype (IPv4, IPv6, MPLS, ...).
    Network { ethertype: u16, data: &'a [u8] },
    /// A payload this decoder does not open, named for the anomaly that counts it.
    NotDecoded {
        layer: &'static str,
        kind: &'static str,
        what: u32,
    },
}

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
    /// Appends the address as `Display` writes it, digit by digit: through the formatting
    /// machinery two addresses per flow were half the time of building the flows table (IPv4),
    /// and an IPv6 address cost ten times an IPv4 one.
    pub fn push_to(&self, out: &mut String) {
        if self.v6 {
            push_v6(&self.bytes, out);
            return;
        }
        push_v4(&self.bytes, out);
    }
}

fn push_v4(bytes: &[u8], out: &mut String) {
    for (i, &b) in bytes.iter().take(4).enumerate() {
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

/// RFC 5952, as std's `Display` for `Ipv6Addr` writes it: lowercase hex groups without leading
/// zeros, the longest run of two or more zero groups (the first of equal runs) as `::`, and an
/// IPv4-mapped address as `::ffff:` and its dotted quad.
fn push_v6(bytes: &[u8; 16], out: &mut String) {
    let mut groups = [0u16; 8];
    for (g, pair) in groups.iter_mut().zip(bytes.chunks_exact(2)) {
        if let [hi, lo] = *pair {
            *g = u16::from_be_bytes([hi, lo]);
        }
    }
    if groups[..5] == [0; 5] && groups[5] == 0xffff {
        out.push_str("::ffff:");
        push_v4(bytes.get(12..).unwrap_or_default(), out);
        return;
    }
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let push_groups = |gs: &[u16], out: &mut String| {
        for (i, &g) in gs.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            push_hex(g, out);
        }
    };
    if best_len > 1 {
        push_groups(groups.get(..best).unwrap_or_default(), out);
        out.push_str("::");
        push_groups(groups.get(best + best_len..).unwrap_or_default(), out);
    } else {
        push_groups(&groups, out);
    }
}

fn push_hex(g: u16, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
    for k in (0..digits).rev() {
        let d = usize::from((g >> (4 * k)) & 0xf);
        out.push(char::from(HEX.get(d).copied().unwrap_or(b'0')));
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
        // Every pattern of zero and non-zero groups (runs, ties, ends), with groups of one to
        // four hex digits, and the IPv4-mapped and -compatible forms.
        for mask in 0..=255u32 {
            for (k, value) in [1u16, 0xf, 0x10, 0xabc, 0x1000, 0xffff]
                .into_iter()
                .enumerate()
            {
                let mut b = [0u8; 16];
                for g in 0..8 {
                    if mask & (1 << g) != 0 {
                        let v = value.rotate_left((g * 4 + k) as u32 % 16).max(1);
                        b[g * 2..g * 2 + 2].copy_from_slice(&v.to_be_bytes());
                    }
                }
                let a = Addr::v6(b);
                out.clear();
                a.push_to(&mut out);
                assert_eq!(out, a.to_string(), "{b:?}");
            }
        }
        for tail in [
            [0, 0, 0, 0],
            [0, 0, 0, 1],
            [10, 1, 2, 3],
            [255, 255, 255, 255],
        ] {
            for head in [[0u8; 12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]] {
                let mut b = [0u8; 16];
                b[..12].copy_from_slice(&head);
                b[12..].copy_from_slice(&tail);
                let a = Addr::v6(b);
                out.clear();
                a.push_to(&mut out);
                assert_eq!(out, a.to_string(), "{b:?}");
            }
        }
        out.clear();
        Addr::v4([10, 0, 0, 1]).push_to(&mut out);
        Addr::v4([172, 16, 254, 3]).push_to(&mut out);
        assert_eq!(out, "10.0.0.1172.16.254.3");
    }
}
