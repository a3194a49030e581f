//! The Community ID v1 flow hash (corelight/community-id-spec): the string Zeek, Suricata, Elastic
//! and Security Onion give a conversation, so a flow found in one is found in the others.
//!
//! ```text
//! "1:" + base64(SHA1(seed | lower address | higher address | protocol | 0 | their ports))
//! ```
//!
//! The endpoints are put in order (the smaller address first, in network byte order; on equal
//! addresses the smaller port), so both directions of a conversation hash the same. ICMP and
//! ICMPv6 take the message type and code as ports, a request paired with its reply (Zeek's
//! mapping, which the spec adopts); what has no reply is one-way and keeps its order.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::packet::Addr;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

/// "1:" and 28 characters of base64 (20 bytes of SHA-1).
const LEN: usize = 30;

/// One Community ID, held inline: a flows table makes one per row without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; LEN]);

impl CommunityId {
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message type an ICMP (or ICMPv6) message of type `t` is answered by, when it is one of
/// a request and reply pair.
fn icmp_counterpart(proto: u8, t: u16) -> Option<u16> {
    let pairs: &[(u16, u16)] = if proto == ICMP {
        // echo, router solicitation/advertisement, timestamp, information, address mask
        &[(8, 0), (10, 9), (13, 14), (15, 16), (17, 18)]
    } else {
        // echo, MLD query/report, router and neighbour discovery, who-are-you, home agent
        // address discovery
        &[
            (128, 129),
            (130, 131),
            (133, 134),
            (135, 136),
            (139, 140),
            (144, 145),
        ]
    };
    pairs.iter().find_map(|&(a, b)| match t {
        _ if t == a => Some(b),
        _ if t == b => Some(a),
        _ => None,
    })
}

/// The Community ID v1 of the conversation from `src` to `dst` over IP protocol `proto` with
/// `seed`. `ports`: the source and destination ports (TCP, UDP, SCTP), or the message type and
/// code (ICMP, ICMPv6); None for a protocol without ports, for which they are ignored. None when
/// the addresses are not of one family, or a protocol that has ports is given none (the spec
/// computes no ID for such a tuple).
pub fn v1(
    seed: u16,
    proto: u8,
    src: &Addr,
    dst: &Addr,
    ports: Option<(u16, u16)>,
) -> Option<CommunityId> {
    if src.v6 != dst.v6 {
        return None;
    }
    let has_ports = matches!(proto, ICMP | TCP | UDP | ICMPV6 | SCTP);
    let (mut sport, mut dport) = match (has_ports, ports) {
        (true, Some(p)) => p,
        (true, None) => return None,
        (false, _) => (0, 0),
    };
    let mut one_way = false;
    if proto == ICMP || proto == ICMPV6 {
        match icmp_counterpart(proto, sport) {
            Some(reply) => dport = reply,
            None => one_way = true,
        }
    }
    let width = if src.v6 { 16 } else { 4 };
    let (a, b) = (
        src.bytes.get(..width).unwrap_or_default(),
        dst.bytes.get(..width).unwrap_or_default(),
    );
    let (a, b) = if one_way || a < b || (a == b && sport < dport) {
        (a, b)
    } else {
        std::mem::swap(&mut sport, &mut dport);
        (b, a)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if has_ports {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let digest = h.finalize();
    let mut out = [0; LEN];
    let (head, tail) = out.split_at_mut(2);
    head.copy_from_slice(b"1:");
    // 20 bytes always encode to 28: the slice is exactly large enough.
    STANDARD.encode_slice(digest, tail).ok()?;
    Some(CommunityId(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Addr {
        match s.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(a) => Addr::v4(a.octets()),
            std::net::IpAddr::V6(a) => Addr::v6(a.octets()),
        }
    }

    fn id(seed: u16, proto: u8, s: &str, d: &str, ports: Option<(u16, u16)>) -> String {
        v1(seed, proto, &v4(s), &v4(d), ports)
            .unwrap()
            .as_str()
            .to_owned()
    }

    /// The spec's published examples (its README and Zeek's test of `community_id_v1`), each in
    /// both directions of the conversation.
    #[test]
    fn the_spec_examples() {
        // (seed, protocol, source, destination, ports or ICMP type and code, ID)
        type Case = (
            u16,
            u8,
            &'static str,
            &'static str,
            (u16, u16),
            &'static str,
        );
        let cases: &[Case] = &[
            (
                0,
                TCP,
                "128.232.110.120",
                "66.35.250.204",
                (34855, 80),
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                0,
                TCP,
                "1.2.3.4",
                "5.6.7.8",
                (1122, 3344),
                "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            ),
            (
                0,
                UDP,
                "1.2.3.4",
                "5.6.7.8",
                (1122, 3344),
                "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            ),
            (
                0,
                ICMP,
                "1.2.3.4",
                "5.6.7.8",
                (8, 0),
                "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
            ),
            (
                0,
                ICMPV6,
                "fe80:1:203:405:607:809:a0b:c0d",
                "fe80:1011:1213:1415:1617:1819:1a1b:1c1d",
                (128, 0),
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                1,
                TCP,
                "1.2.3.4",
                "5.6.7.8",
                (1122, 3344),
                "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
            ),
            (
                1,
                UDP,
                "1.2.3.4",
                "5.6.7.8",
                (1122, 3344),
                "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
            ),
            (
                1,
                ICMP,
                "1.2.3.4",
                "5.6.7.8",
                (8, 0),
                "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
            ),
            (
                1,
                ICMPV6,
                "fe80:1:203:405:607:809:a0b:c0d",
                "fe80:1011:1213:1415:1617:1819:1a1b:1c1d",
                (128, 0),
                "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
            ),
        ];
        for &(seed, proto, s, d, (sp, dp), want) in cases {
            assert_eq!(id(seed, proto, s, d, Some((sp, dp))), want, "{s} -> {d}");
            // The other direction: for ICMP, the reply (whose type is the request's counterpart).
            let back = match proto {
                ICMP | ICMPV6 => (icmp_counterpart(proto, sp).unwrap(), 0),
                _ => (dp, sp),
            };
            assert_eq!(id(seed, proto, d, s, Some(back)), want, "{d} -> {s}");
        }
    }

    /// Values of the `communityid` reference package (1.5).
    const REF_V6_TCP: &str = "1:RYG3Msb11GthNt1OYXJouPzmrvA=";
    const REF_ICMP_UNREACHABLE: &str = "1:8LPUHMfboj3XbJKoR1RD6x9ML9Y=";

    #[test]
    fn ipv6_tcp_and_protocols_without_ports() {
        assert_eq!(
            id(0, TCP, "2001:db8::1", "2001:db8::2", Some((40000, 443))),
            id(0, TCP, "2001:db8::2", "2001:db8::1", Some((443, 40000)))
        );
        assert_eq!(
            id(0, TCP, "2001:db8::1", "2001:db8::2", Some((40000, 443))),
            REF_V6_TCP
        );
        // RSVP has no ports: the tuple hashes without them, whatever is given.
        assert_eq!(
            id(0, 46, "1.2.3.4", "5.6.7.8", None),
            "1:ikv3kmf89luf73WPz1jOs49S768="
        );
        assert_eq!(
            id(0, 46, "5.6.7.8", "1.2.3.4", Some((1, 2))),
            "1:ikv3kmf89luf73WPz1jOs49S768="
        );
    }

    #[test]
    fn one_way_icmp_keeps_its_order_and_no_tuple_no_id() {
        // Destination unreachable (type 3, code 1) has no reply: one-way, not reordered.
        let there = id(0, ICMP, "5.6.7.8", "1.2.3.4", Some((3, 1)));
        assert_eq!(there, REF_ICMP_UNREACHABLE);
        assert_ne!(there, id(0, ICMP, "1.2.3.4", "5.6.7.8", Some((3, 1))));
        // Endpoints of two families, or a protocol with ports given none: no ID.
        assert!(v1(0, TCP, &v4("10.0.0.1"), &v4("2001:db8::1"), Some((1, 2))).is_none());
        assert!(v1(0, UDP, &v4("10.0.0.1"), &v4("10.0.0.2"), None).is_none());
    }
}
