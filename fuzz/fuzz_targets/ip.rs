//! IPv4 and IPv6 (options, extension-header chains), the link layers above them, TCP and UDP
//! headers, and the fragment `Reassembler` fed a sequence of fragments: fragments of the input's
//! IP packets, and synthetic ones with any offset, length and id.
//!
//! Input: framed packets (see `common::frames`). The frame's flags: bits 0-3 advance the capture
//! clock by that many microseconds, bit 4 sweeps stale datagrams (`expire`), bits 5-6 say what
//! the bytes are: 0 an IP packet (version by its first nibble), 1 a link-layer frame (its first
//! byte picks the link type), 2 a synthetic fragment (id u8, offset u16, wire length u16, more u8,
//! then its captured bytes), 3 a new clock value (i64). Bit 7: IPv6 keys for synthetic fragments.

#![no_main]

mod common;

use _core::capture::linktype::{self, Link};
use _core::packet::frag::{FragKey, FragLimits, Outcome, Reassembler};
use _core::packet::{
    ipv4, ipv6, tcp, udp, Addr, FragInfo, Inner, IpPacket, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    IPPROTO_TCP, IPPROTO_UDP, L3,
};
use common::Bytes;
use libfuzzer_sys::fuzz_target;

// The new link types last: seed.py's indices for the first ten stay valid.
const LINKS: [u32; 16] = [
    0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9, 50, 51, 105, 127, 239,
];

fn transport(proto: u8, seg: &[u8], wire: u32) {
    match proto {
        IPPROTO_TCP => {
            let _ = tcp::parse(seg, wire);
        }
        IPPROTO_UDP => {
            let _ = udp::parse(seg, wire);
        }
        _ => {}
    }
}

fn ip(d: &[u8]) -> Option<IpPacket<'_>> {
    match d.first()? >> 4 {
        6 => ipv6::parse(d).ok(),
        _ => ipv4::parse(d).ok(),
    }
}

/// What the decoder does with one IP packet: its transport header, or its fragment.
fn packet(r: &mut Reassembler, p: &IpPacket<'_>, vlan: Option<u16>, ts: i64, frame_len: u32) {
    match p.frag {
        None => transport(p.proto, p.payload, p.payload_len),
        Some(f) => {
            let key = FragKey {
                src: p.src,
                dst: p.dst,
                id: f.id,
                proto: p.proto,
                vlan,
            };
            let out = r.add(key, f, p.payload, p.payload_len, ts, frame_len);
            complete(out, p.proto, p.src.v6);
        }
    }
}

fn complete(out: Outcome, proto: u8, v6: bool) {
    let Outcome::Complete(d) = out else {
        return;
    };
    let mut data: &[u8] = &d.data;
    let mut proto = proto;
    if v6 {
        let Ok((p, off, _)) = ipv6::walk(proto, data) else {
            return;
        };
        proto = p;
        data = data.get(off..).unwrap_or_default();
    }
    transport(proto, data, data.len() as u32);
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let mut r = Reassembler::new(FragLimits {
        max_datagrams: 8,
        max_bytes: 128 << 10,
        timeout_ns: 50_000,
    });
    let mut ts: i64 = 0;
    for (flags, bytes) in common::frames(data) {
        ts = ts.saturating_add(i64::from(flags & 0x0f) * 1_000);
        if flags & 0x10 != 0 {
            r.expire(ts);
        }
        let frame_len = bytes.len() as u32;
        match (flags >> 5) & 3 {
            0 => {
                if let Some(p) = ip(bytes) {
                    packet(&mut r, &p, None, ts, frame_len);
                }
            }
            1 => {
                let Some((&l, frame)) = bytes.split_first() else {
                    continue;
                };
                let link = LINKS[usize::from(l) % LINKS.len()];
                let l3 = match linktype::network_layer(link, frame) {
                    Ok(Link::L3(l3)) => l3,
                    Ok(Link::Inner(Inner::Network { ethertype, data }, _)) => L3 {
                        vlan: None,
                        ethertype,
                        data,
                    },
                    _ => continue,
                };
                let p = match l3.ethertype {
                    ETHERTYPE_IPV4 => ipv4::parse(l3.data).ok(),
                    ETHERTYPE_IPV6 => ipv6::parse(l3.data).ok(),
                    _ => None,
                };
                if let Some(p) = p {
                    packet(&mut r, &p, l3.vlan, ts, frame_len);
                }
            }
            2 => {
                let mut c = Bytes::new(bytes);
                let id = c.u8().unwrap_or(0);
                let offset = u32::from(c.u16().unwrap_or(0));
                let wire = u32::from(c.u16().unwrap_or(0));
                let more = c.u8().unwrap_or(0);
                let v6 = flags & 0x80 != 0;
                let (src, dst) = if v6 {
                    (Addr::v6([0xfe; 16]), Addr::v6([0xfd; 16]))
                } else {
                    (Addr::v4([10, 0, 0, 1]), Addr::v4([10, 0, 0, 2]))
                };
                let proto = [IPPROTO_TCP, IPPROTO_UDP, 0, 60][usize::from(more >> 6)];
                let key = FragKey {
                    src,
                    dst,
                    id: u32::from(id & 3),
                    proto,
                    vlan: (more & 0x20 != 0).then_some(7),
                };
                let f = FragInfo {
                    offset,
                    more: more & 1 != 0,
                    id: key.id,
                };
                let out = r.add(key, f, c.rest(), wire, ts, frame_len);
                complete(out, proto, v6);
            }
            _ => {
                let mut c = Bytes::new(bytes);
                ts = c.u64().unwrap_or(0) as i64;
            }
        }
    }
    std::hint::black_box((r.pending(), r.evicted, r.expired));
});
