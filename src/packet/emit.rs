//! The other direction of the wire layer: header reprs that append the bytes the parsers in this
//! module read back, checksums included, so tests, benches and fuzz seeds build packets from
//! named fields instead of hand-written byte arrays (smoltcp's `Repr::emit`).
//!
//! Always compiled, not behind a feature: it is small, has no dependencies, and the benches and
//! the fuzz crate link the library without `cfg(test)`. Writing appends to a `Vec`, so no length
//! can be wrong and nothing here can panic.

use super::{Addr, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP};

const ETHERNET_HEADER: usize = 14;
const VLAN_TAG: usize = 4;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
/// Outer tags of a stack are 802.1ad service tags, the innermost an 802.1Q customer tag.
const TPID_8021AD: u16 = 0x88a8;
const TPID_8021Q: u16 = 0x8100;

/// Ethernet II with zero or more VLAN tags (each a whole TCI: PCP, DEI and VLAN id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr<'a> {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// Outermost first.
    pub vlans: &'a [u16],
    pub ethertype: u16,
}

impl Default for EthernetRepr<'_> {
    /// Two locally administered addresses, no tag, IPv4.
    fn default() -> Self {
        EthernetRepr {
            dst: [0x02, 0, 0, 0, 0, 2],
            src: [0x02, 0, 0, 0, 0, 1],
            vlans: &[],
            ethertype: ETHERTYPE_IPV4,
        }
    }
}

impl EthernetRepr<'_> {
    pub fn buffer_len(&self) -> usize {
        ETHERNET_HEADER + VLAN_TAG * self.vlans.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dst);
        out.extend_from_slice(&self.src);
        let last = self.vlans.len().saturating_sub(1);
        for (i, tci) in self.vlans.iter().enumerate() {
            let tpid = if i == last { TPID_8021Q } else { TPID_8021AD };
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
        }
        out.extend_from_slice(&self.ethertype.to_be_bytes());
    }
}

/// An IPv4 header (RFC 791); `options` are padded with end-of-list bytes to a multiple of four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr<'a> {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub proto: u8,
    /// Bytes after the header, options excluded.
    pub payload_len: usize,
    pub id: u16,
    pub ttl: u8,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes; a multiple of 8.
    pub frag_offset: u16,
    pub options: &'a [u8],
}

impl<'a> Ipv4Repr<'a> {
    /// What Linux sends: DF set, TTL 64, id 0, no options.
    pub fn new(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> Self {
        Ipv4Repr {
            src,
            dst,
            proto,
            payload_len,
            id: 0,
            ttl: 64,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: &[],
        }
    }

    fn header_len(&self) -> usize {
        IPV4_HEADER + self.options.len().div_ceil(4) * 4
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let hlen = self.header_len();
        out.push(0x40 | (hlen / 4) as u8);
        out.push(0); // DSCP, ECN
        out.extend_from_slice(&((hlen + self.payload_len) as u16).to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        let flags = u16::from(self.dont_frag) << 14 | u16::from(self.more_frags) << 13;
        out.extend_from_slice(&(flags | ((self.frag_offset / 8) & 0x1fff)).to_be_bytes());
        out.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        out.extend_from_slice(&self.src);
        out.extend_from_slice(&self.dst);
        out.extend_from_slice(self.options);
        out.resize(start + hlen, 0);
        let sum = checksum(0, out.get(start..).unwrap_or_default());
        put_checksum(out, start + 10, sum);
    }
}

/// An IPv6 header (RFC 8200) without extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

impl Ipv6Repr {
    pub fn new(src: [u8; 16], dst: [u8; 16], next_header: u8, payload_len: usize) -> Self {
        Ipv6Repr {
            src,
            dst,
            next_header,
            payload_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    pub fn buffer_len(&self) -> usize {
        IPV6_HEADER
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let word = 6 << 28 | u32::from(self.traffic_class) << 20 | self.flow_label & 0xf_ffff;
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&(self.payload_len as u16).to_be_bytes());
        out.extend_from_slice(&[self.next_header, self.hop_limit]);
        out.extend_from_slice(&self.src);
        out.extend_from_slice(&self.dst);
    }
}

/// Either IP header: what TCP and UDP checksums cover besides themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr<'a> {
    V4(Ipv4Repr<'a>),
    V6(Ipv6Repr),
}

impl IpRepr<'_> {
    pub fn src(&self) -> Addr {
        match self {
            IpRepr::V4(ip) => Addr::v4(ip.src),
            IpRepr::V6(ip) => Addr::v6(ip.src),
        }
    }

    pub fn dst(&self) -> Addr {
        match self {
            IpRepr::V4(ip) => Addr::v4(ip.dst),
            IpRepr::V6(ip) => Addr::v6(ip.dst),
        }
    }

    pub fn ethertype(&self) -> u16 {
        match self {
            IpRepr::V4(_) => ETHERTYPE_IPV4,
            IpRepr::V6(_) => ETHERTYPE_IPV6,
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            IpRepr::V4(ip) => ip.buffer_len(),
            IpRepr::V6(ip) => ip.buffer_len(),
        }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            IpRepr::V4(ip) => ip.emit(out),
            IpRepr::V6(ip) => ip.emit(out),
        }
    }

    /// The same header announcing `proto` and `payload_len` bytes after it.
    pub fn carrying(mut self, proto: u8, payload_len: usize) -> Self {
        match &mut self {
            IpRepr::V4(ip) => (ip.proto, ip.payload_len) = (proto, payload_len),
            IpRepr::V6(ip) => (ip.next_header, ip.payload_len) = (proto, payload_len),
        }
        self
    }

    /// The sum of the pseudo-header (RFC 9293 3.1, RFC 8200 8.1) of an upper-layer packet.
    fn pseudo_sum(&self, proto: u8, len: usize) -> u32 {
        let (src, dst) = (self.src(), self.dst());
        let n = if src.v6 { 16 } else { 4 };
        let addrs = checksum_add(
            checksum_add(0, src.bytes.get(..n).unwrap_or_default()),
            dst.bytes.get(..n).unwrap_or_default(),
        );
        let len = len as u32;
        addrs + u32::from(proto) + (len >> 16) + (len & 0xffff)
    }
}

/// A TCP header (RFC 9293); `options` are padded with end-of-list bytes to a multiple of four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub options: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Window 64240 (Linux's first), no options.
    pub fn new(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Self {
        TcpRepr {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 64240,
            urgent: 0,
            options: &[],
        }
    }

    pub fn buffer_len(&self) -> usize {
        TCP_HEADER + self.options.len().div_ceil(4) * 4
    }

    /// Appends the header and `payload`, checksummed under `ip`'s addresses.
    pub fn emit(&self, out: &mut Vec<u8>, ip: &IpRepr<'_>, payload: &[u8]) {
        let start = out.len();
        let hlen = self.buffer_len();
        out.extend_from_slice(&self.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ack.to_be_bytes());
        out.extend_from_slice(&[((hlen / 4) as u8) << 4, self.flags]);
        out.extend_from_slice(&self.window.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.urgent.to_be_bytes());
        out.extend_from_slice(self.options);
        out.resize(start + hlen, 0);
        out.extend_from_slice(payload);
        let seg = out.get(start..).unwrap_or_default();
        let sum = checksum(ip.pseudo_sum(IPPROTO_TCP, seg.len()), seg);
        put_checksum(out, start + 16, sum);
    }
}

/// A UDP header (RFC 768), always checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub sport: u16,
    pub dport: u16,
}

impl UdpRepr {
    pub fn buffer_len(&self) -> usize {
        UDP_HEADER
    }

    /// Appends the header and `payload`, checksummed under `ip`'s addresses.
    pub fn emit(&self, out: &mut Vec<u8>, ip: &IpRepr<'_>, payload: &[u8]) {
        let start = out.len();
        let len = UDP_HEADER + payload.len();
        out.extend_from_slice(&self.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(payload);
        let seg = out.get(start..).unwrap_or_default();
        // A computed zero is sent as all ones: zero means "no checksum".
        let sum = match checksum(ip.pseudo_sum(IPPROTO_UDP, seg.len()), seg) {
            0 => 0xffff,
            s => s,
        };
        put_checksum(out, start + 6, sum);
    }
}

/// What an IP packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(TcpRepr<'a>),
    Udp(UdpRepr),
    /// Bytes of this protocol as given (a fragment's piece, an unparsed protocol).
    Raw(u8),
}

impl L4<'_> {
    fn proto(&self) -> u8 {
        match self {
            L4::Tcp(_) => IPPROTO_TCP,
            L4::Udp(_) => IPPROTO_UDP,
            L4::Raw(p) => *p,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            L4::Tcp(t) => t.buffer_len(),
            L4::Udp(u) => u.buffer_len(),
            L4::Raw(_) => 0,
        }
    }
}

/// Appends an IP packet: `ip` announcing `l4`'s protocol and length, then `l4` and `payload`.
pub fn emit_ip(out: &mut Vec<u8>, ip: IpRepr<'_>, l4: &L4<'_>, payload: &[u8]) {
    let ip = ip.carrying(l4.proto(), l4.buffer_len() + payload.len());
    ip.emit(out);
    match l4 {
        L4::Tcp(t) => t.emit(out, &ip, payload),
        L4::Udp(u) => u.emit(out, &ip, payload),
        L4::Raw(_) => out.extend_from_slice(payload),
    }
}

/// A whole Ethernet frame; the ethertype is `ip`'s.
pub fn ethernet_frame(
    eth: &EthernetRepr<'_>,
    ip: IpRepr<'_>,
    l4: &L4<'_>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(eth.buffer_len() + ip.buffer_len() + l4.buffer_len() + payload.len());
    EthernetRepr {
        ethertype: ip.ethertype(),
        ..*eth
    }
    .emit(&mut out);
    emit_ip(&mut out, ip, l4, payload);
    out
}

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `sum`.
fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        if let [hi, lo] = *w {
            sum += u32::from(u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = *words.remainder() {
        sum += u32::from(last) << 8;
    }
    sum
}

/// The Internet checksum (RFC 1071) of `data`, `sum` already added in: the one's complement of
/// the folded one's-complement sum. Folding `sum` first keeps the additions within 32 bits for any
/// packet up to 64 KiB.
fn checksum(sum: u32, data: &[u8]) -> u16 {
    let mut s = checksum_add(fold(sum), data);
    s = fold(s);
    !(s as u16)
}

fn fold(mut s: u32) -> u32 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s
}

fn put_checksum(out: &mut [u8], at: usize, sum: u16) {
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{ethernet, ipv4, ipv6, tcp, udp, FragInfo, IPPROTO_UDP};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames of the fixtures whose checksums tshark reports good (`-o tcp.check_checksum:TRUE`,
    /// `udp.`, `ip.`): the emit side must write them byte for byte, checksums included.
    const NFS_SESSION_1: &str = "02000a00030102000a00030a080045000054100140004011108e0a00030a0a000301\
        b0f4006f004066a8c00000010000000000000002000186a000000002000000030000000000000000000000000000\
        0000000186a3000000030000000600000000";
    const NFS_SESSION_3: &str =
        "02000a00030102000a00030a08004500003410024000400610b80a00030a0a000301\
        0384080110010000000000008002faf03f910000020405b40402010303070000";
    const RPCBIND_GETADDR_18: &str = "02000000000102000000001086dd600000000020064020010db8000200000000\
        00000000001020010db80002000000000000000000019ca5006f0d030000000000008002faf06f970000020405a0\
        0402010303070000";

    const NFS_ETH: EthernetRepr<'static> = EthernetRepr {
        dst: [0x02, 0, 0x0a, 0, 0x03, 0x01],
        src: [0x02, 0, 0x0a, 0, 0x03, 0x0a],
        vlans: &[],
        ethertype: ETHERTYPE_IPV4,
    };

    #[test]
    fn ipv4_header_checksum_of_a_known_header() {
        // RFC 1071's usual worked example: 192.168.0.1 -> 192.168.0.199, UDP, checksum 0xb861.
        let mut out = Vec::new();
        Ipv4Repr::new([192, 168, 0, 1], [192, 168, 0, 199], IPPROTO_UDP, 0x73 - 20).emit(&mut out);
        assert_eq!(out, hex("45000073000040004011b861c0a80001c0a800c7"));
    }

    #[test]
    fn udp_frame_of_a_fixture_byte_for_byte() {
        let want = hex(NFS_SESSION_1);
        let ip = Ipv4Repr {
            id: 0x1001,
            ..Ipv4Repr::new([10, 0, 3, 10], [10, 0, 3, 1], 0, 0)
        };
        let udp = UdpRepr {
            sport: 45300,
            dport: 111,
        };
        let got = ethernet_frame(&NFS_ETH, IpRepr::V4(ip), &L4::Udp(udp), &want[42..]);
        assert_eq!(got, want);
    }

    #[test]
    fn tcp_frames_with_options_byte_for_byte() {
        // SYN, MSS 1460, SACK permitted, NOP, window scale 7, end of list.
        let want = hex(NFS_SESSION_3);
        let ip = Ipv4Repr {
            id: 0x1002,
            ..Ipv4Repr::new([10, 0, 3, 10], [10, 0, 3, 1], 0, 0)
        };
        let syn = TcpRepr {
            options: &[2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7],
            ..TcpRepr::new(900, 2049, 0x1001_0000, 0, tcp::SYN)
        };
        assert_eq!(
            ethernet_frame(&NFS_ETH, IpRepr::V4(ip), &L4::Tcp(syn), &[]),
            want
        );

        let want = hex(RPCBIND_GETADDR_18);
        let addr = |last| {
            let mut a = [0u8; 16];
            a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 2]);
            a[15] = last;
            a
        };
        let eth = EthernetRepr {
            dst: [2, 0, 0, 0, 0, 1],
            src: [2, 0, 0, 0, 0, 0x10],
            ..EthernetRepr::default()
        };
        let ip = Ipv6Repr::new(addr(0x10), addr(1), 0, 0);
        let syn = TcpRepr {
            options: &[2, 4, 0x05, 0xa0, 4, 2, 1, 3, 3, 7],
            ..TcpRepr::new(40101, 111, 0x0d03_0000, 0, tcp::SYN)
        };
        assert_eq!(
            ethernet_frame(&eth, IpRepr::V6(ip), &L4::Tcp(syn), &[]),
            want
        );
    }

    #[test]
    fn parsers_read_back_what_was_emitted() {
        let eth = EthernetRepr {
            vlans: &[200, 300],
            ..EthernetRepr::default()
        };
        let ip = Ipv4Repr {
            id: 0x1234,
            dont_frag: false,
            more_frags: true,
            frag_offset: 1480,
            ttl: 3,
            options: &[7, 3, 4],
            ..Ipv4Repr::new([10, 0, 0, 1], [10, 0, 0, 2], 0, 0)
        };
        let f = ethernet_frame(&eth, IpRepr::V4(ip), &L4::Raw(IPPROTO_UDP), &[1, 2, 3]);
        let l3 = ethernet::parse(&f).unwrap();
        assert_eq!((l3.vlan, l3.ethertype), (Some(300), ETHERTYPE_IPV4));
        let p = ipv4::parse(l3.data).unwrap();
        assert_eq!(
            (p.src, p.dst, p.proto),
            (Addr::v4(ip.src), Addr::v4(ip.dst), IPPROTO_UDP)
        );
        assert_eq!((p.payload, p.payload_len), (&[1, 2, 3][..], 3));
        let frag = FragInfo {
            offset: 1480,
            more: true,
            id: 0x1234,
        };
        assert_eq!(p.frag, Some(frag));
        assert_eq!(checksum(0, &l3.data[..24]), 0, "header checksum");

        for payload in [&b""[..], b"odd", b"even"] {
            let (src, dst) = (
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff; 16],
            );
            let ip6 = IpRepr::V6(Ipv6Repr {
                flow_label: 0xabcde,
                traffic_class: 0x2e,
                ..Ipv6Repr::new(src, dst, 0, 0)
            });
            let seg = TcpRepr {
                options: &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
                ..TcpRepr::new(40000, 111, 7, 9, tcp::SYN | tcp::ACK)
            };
            let f = ethernet_frame(&EthernetRepr::default(), ip6, &L4::Tcp(seg), payload);
            let l3 = ethernet::parse(&f).unwrap();
            assert_eq!(l3.ethertype, ETHERTYPE_IPV6);
            assert_eq!(&l3.data[..4], &[0x62, 0xea, 0xbc, 0xde]);
            let p = ipv6::parse(l3.data).unwrap();
            assert_eq!(
                (p.src, p.dst, p.proto),
                (Addr::v6(src), Addr::v6(dst), IPPROTO_TCP)
            );
            let t = tcp::parse(p.payload, p.payload_len).unwrap();
            assert_eq!(
                (
                    t.sport,
                    t.dport,
                    t.seq,
                    t.ack,
                    t.flags,
                    t.payload,
                    t.truncated
                ),
                (40000, 111, 7, 9, tcp::SYN | tcp::ACK, payload, false)
            );
            // A segment with its checksum in place sums, with the pseudo-header, to zero.
            assert_eq!(
                checksum(ip6.pseudo_sum(IPPROTO_TCP, p.payload.len()), p.payload),
                0
            );

            let ip4 = IpRepr::V4(Ipv4Repr::new([10, 0, 0, 1], [10, 0, 0, 2], 0, 0));
            let dgram = UdpRepr {
                sport: 700,
                dport: 111,
            };
            let f = ethernet_frame(&EthernetRepr::default(), ip4, &L4::Udp(dgram), payload);
            let p = ipv4::parse(ethernet::parse(&f).unwrap().data).unwrap();
            let u = udp::parse(p.payload, p.payload_len).unwrap();
            assert_eq!((u.sport, u.dport, u.payload), (700, 111, payload));
            assert_eq!(
                checksum(ip4.pseudo_sum(IPPROTO_UDP, p.payload.len()), p.payload),
                0
            );
        }
    }
}
