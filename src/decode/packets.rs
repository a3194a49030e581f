//! Records through link, network and transport headers and IP fragment reassembly into transport
//! packets for the flow table and application decoders (`FlowStage`).

use std::collections::BTreeSet;

use std::sync::Arc;

use super::frame::Frame;
use super::options::{Options, SWEEP_NS};
use super::output::{HeadersEnd, Stats};
use super::records::RecordSink;
use crate::anomaly::{Anomalies, Position};
use crate::capture::linktype::{self, Link};
use crate::capture::Record;
use crate::flow::PacketMeta;
use crate::packet::frag::{FragKey, Outcome as FragOutcome, Reassembler};
use crate::packet::{
    erspan, ethernet, geneve, gre, ipv4, ipv6, mpls, ppp, tcp, teredo, udp, vxlan, Encap, Inner,
    IpPacket, Malformed, Tunnel, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS,
    ETHERTYPE_MPLS_MULTICAST, ETHERTYPE_PPPOE_SESSION, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, L3, UDP_PORT_GENEVE, UDP_PORT_TEREDO,
    UDP_PORT_VXLAN,
};

/// Where transport packets go: the flow table (`FlowStage`) directly, or a queue to the thread that
/// holds it.
pub trait PacketSink {
    /// One TCP or UDP packet (or reassembled datagram) of the record at `at`; `block` is the read
    /// buffer its payload lies in (none when reassembled); anomalies go to `an`.
    fn packet(
        &mut self,
        at: Position,
        p: &PacketMeta,
        seq: u32,
        payload: &[u8],
        block: Option<&Arc<Vec<u8>>>,
        an: &mut Anomalies,
    );
    /// Time to sweep idle flows out, at capture time `now`.
    fn sweep(&mut self, now: i64);
    /// The other side stopped (it failed): reading on is pointless.
    fn stopped(&self) -> bool {
        false
    }
    /// True when the sink takes an IP fragment's record whole, to be decoded later in order:
    /// a thread decoding one chunk of a file cannot reassemble datagrams whose fragments may lie
    /// in other chunks.
    fn defer_fragment(&mut self) -> bool {
        false
    }
}

/// Decodes records into transport packets for a `PacketSink`; owns the fragment reassembler, the
/// counters and the anomalies of everything between the capture container and the flow table.
pub struct HeaderDecoder<S> {
    frags: Reassembler,
    pub sink: S,
    pub anomalies: Anomalies,
    pub stats: Stats,
    pos: Position,
    next_sweep: i64,
    /// Link types already reported as not decoded, per capture.
    unknown_links: BTreeSet<(u32, u32)>,
}

impl<S: PacketSink> RecordSink for HeaderDecoder<S> {
    #[inline]
    fn record(&mut self, at: Position, rec: &Record<'_>) {
        self.pos.set(at);
        if !self.record(
            rec.ts_ns,
            rec.link,
            rec.orig_len,
            rec.data,
            rec.block,
            at.capture,
        ) && self.unknown_links.insert((at.capture, rec.link))
        {
            self.anomalies.push(
                at,
                "link",
                "unknown_link_type",
                format!(
                    "link type {} is not decoded; its packets are counted only",
                    rec.link
                ),
            );
        }
    }

    #[inline]
    fn stopped(&self) -> bool {
        self.sink.stopped()
    }
}

/// Encapsulations nested deeper than this are refused (each one is a header to walk).
pub const MAX_ENCAP_DEPTH: u8 = 8;

impl<S: PacketSink> HeaderDecoder<S> {
    pub fn new(opts: &Options, sink: S) -> Self {
        HeaderDecoder {
            frags: Reassembler::new(opts.frags),
            sink,
            anomalies: Anomalies::default(),
            stats: Stats::default(),
            pos: Position::default(),
            next_sweep: i64::MIN,
            unknown_links: BTreeSet::new(),
        }
    }

    /// For a thread that decodes chunks of a file: no sweeps (the records before the chunk
    /// decide when they fall; the thread that applies the chunks in order sweeps, `tick`).
    pub fn for_chunks(opts: &Options, sink: S) -> Self {
        HeaderDecoder {
            next_sweep: i64::MAX,
            ..HeaderDecoder::new(opts, sink)
        }
    }

    /// A record at capture time `ts` went by: sweeps when it is time to.
    #[inline]
    pub fn tick(&mut self, ts: i64) {
        if ts >= self.next_sweep {
            self.sweep(ts);
        }
    }

    /// One record; returns false when its link type is unknown.
    #[inline]
    fn record(
        &mut self,
        ts: i64,
        link: u32,
        orig_len: u32,
        data: &[u8],
        block: &Arc<Vec<u8>>,
        capture: u32,
    ) -> bool {
        self.stats.records += 1;
        self.stats.frame_bytes += u64::from(orig_len);
        if ts >= self.next_sweep {
            self.sweep(ts);
        }
        let fr = Frame {
            ts,
            vlan: None,
            capture,
            orig_len,
            tunnel: Tunnel::NONE,
            depth: 0,
            outer: [0; 4],
        };
        let l3 = match linktype::network_layer(link, data) {
            Ok(Link::L3(l3)) => l3,
            Ok(Link::Inner(inner, encap)) => {
                let fr = Frame {
                    tunnel: Tunnel::new(encap, None),
                    ..fr
                };
                self.inner(inner, fr, Some(block));
                return true;
            }
            Ok(Link::Unknown) => {
                self.stats.unknown_link += 1;
                return false;
            }
            Err(m) => {
                self.malformed(m);
                return true;
            }
        };
        self.network(l3, fr, Some(block));
        true
    }

    /// The network layer under a link layer or an encapsulation; `fr.vlan` is replaced by the
    /// layer's own tag when it has one.
    #[inline(always)]
    fn network(&mut self, l3: L3<'_>, fr: Frame, block: Option<&Arc<Vec<u8>>>) {
        let ip = match l3.ethertype {
            ETHERTYPE_IPV4 => {
                self.stats.ipv4 += 1;
                ipv4::parse(l3.data)
            }
            ETHERTYPE_IPV6 => {
                self.stats.ipv6 += 1;
                ipv6::parse(l3.data)
            }
            _ => return self.shim(l3, fr, block),
        };
        let ip = match ip {
            Ok(ip) => ip,
            Err(m) => return self.malformed(m),
        };
        let fr = Frame {
            vlan: l3.vlan.or(fr.vlan),
            ..fr
        };
        let orig_len = fr.orig_len;
        let ts = fr.ts;
        match ip.frag {
            None => self.transport(
                &ip,
                ip.payload,
                block,
                ip.payload_len,
                fr,
                (1, u64::from(orig_len), ts),
            ),
            Some(_) if self.sink.defer_fragment() => {
                // Decoded again, whole, by whoever takes it: counted there.
                self.stats.records -= 1;
                self.stats.frame_bytes -= u64::from(orig_len);
                if ip.src.v6 {
                    self.stats.ipv6 -= 1;
                } else {
                    self.stats.ipv4 -= 1;
                }
                let [v4, v6, udp, tunnels] = fr.outer.map(u64::from);
                self.stats.ipv4 -= v4;
                self.stats.ipv6 -= v6;
                self.stats.udp -= udp;
                self.stats.tunnelled -= tunnels;
            }
            Some(f) => {
                self.stats.fragments += 1;
                let key = FragKey {
                    src: ip.src,
                    dst: ip.dst,
                    id: f.id,
                    proto: ip.proto,
                    vlan: fr.vlan,
                };
                match self
                    .frags
                    .add(key, f, ip.payload, ip.payload_len, ts, orig_len)
                {
                    FragOutcome::Held => {}
                    FragOutcome::Rejected(kind) => self.malformed(Malformed::new(
                        "ip",
                        kind,
                        format!(
                            "fragment at offset {} of datagram {} refused",
                            f.offset, f.id
                        ),
                    )),
                    FragOutcome::Complete(d) => {
                        self.stats.reassembled += 1;
                        let mut data: &[u8] = &d.data;
                        let mut proto = ip.proto;
                        if ip.src.v6 {
                            // Extension headers may follow the fragment header inside the datagram.
                            match ipv6::walk(ip.proto, data) {
                                Ok((p, off, _)) => {
                                    proto = p;
                                    data = data.get(off..).unwrap_or(&[]);
                                }
                                Err(m) => return self.malformed(m),
                            }
                        }
                        let whole = IpPacket {
                            proto,
                            payload: data,
                            payload_len: data.len() as u32,
                            frag: None,
                            ..ip
                        };
                        self.transport(
                            &whole,
                            data,
                            None,
                            data.len() as u32,
                            fr,
                            (d.frames, d.frame_bytes, d.first_ts),
                        );
                    }
                }
            }
        }
    }

    /// `network` out of line, for the packets an encapsulation carried.
    #[inline(never)]
    fn network_nested(&mut self, l3: L3<'_>, fr: Frame, block: Option<&Arc<Vec<u8>>>) {
        self.network(l3, fr, block);
    }

    /// A network layer that is not IP: MPLS and PPPoE lead to one, anything else is counted.
    #[cold]
    #[inline(never)]
    fn shim(&mut self, l3: L3<'_>, fr: Frame, block: Option<&Arc<Vec<u8>>>) {
        let fr = Frame {
            vlan: l3.vlan.or(fr.vlan),
            ..fr
        };
        let (parsed, encap) = match l3.ethertype {
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
                (mpls::parse(l3.data).map(|m| m.inner), Encap::Mpls)
            }
            ETHERTYPE_PPPOE_SESSION => (ppp::parse_pppoe(l3.data).map(|p| p.inner), Encap::Pppoe),
            _ => {
                self.stats.non_ip += 1;
                return;
            }
        };
        match parsed {
            Ok(inner) => self.inner(inner, fr.within(encap, None), block),
            Err(m) => self.malformed(m),
        }
    }

    /// What an encapsulation (or a link layer decoded by this path) carries.
    #[cold]
    #[inline(never)]
    fn inner(&mut self, inner: Inner<'_>, fr: Frame, block: Option<&Arc<Vec<u8>>>) {
        if fr.depth > MAX_ENCAP_DEPTH {
            return self.malformed(Malformed::new(
                "encap",
                "too_many_encapsulations",
                format!("more than {MAX_ENCAP_DEPTH} encapsulations nested"),
            ));
        }
        let l3 = match inner {
            Inner::Network { ethertype, data } => L3 {
                vlan: None,
                ethertype,
                data,
            },
            // The frame is seen as if captured bare: its own tags, not the carrier's.
            Inner::Ethernet { frame, vlan } => match ethernet::parse(frame) {
                Ok(l3) => L3 {
                    vlan: l3.vlan.or(vlan),
                    ..l3
                },
                Err(m) => return self.malformed(m),
            },
            Inner::NotDecoded { layer, kind, what } => {
                self.stats.encap_undecoded += 1;
                self.anomalies.push(
                    self.pos,
                    layer,
                    kind,
                    format!("{layer} payload 0x{what:x} is not decoded; the frame is counted only"),
                );
                return;
            }
        };
        let fr = match inner {
            Inner::Ethernet { .. } => Frame { vlan: None, ..fr },
            _ => fr,
        };
        self.network_nested(l3, fr, block);
    }

    /// A GRE or IP-in-IP packet: its payload is decoded in its place.
    #[cold]
    #[inline(never)]
    fn ip_tunnel(
        &mut self,
        outer_v6: bool,
        proto: u8,
        seg: &[u8],
        fr: Frame,
        block: Option<&Arc<Vec<u8>>>,
    ) {
        let fr = fr.counted(outer_v6, false);
        let (inner, fr) = match proto {
            IPPROTO_GRE => {
                let g = match gre::parse(seg) {
                    Ok(g) => g,
                    Err(m) => return self.malformed(m),
                };
                match g.protocol {
                    // Type II carries a sequence number; without one, 0x88be is type I (bare).
                    gre::PROTO_ERSPAN_II if g.seq.is_some() => match erspan::parse(g.payload, 2) {
                        Ok(e) => (e.inner, fr.within(Encap::Erspan2, g.key)),
                        Err(m) => return self.malformed(m),
                    },
                    gre::PROTO_ERSPAN_III => match erspan::parse(g.payload, 3) {
                        Ok(e) => (e.inner, fr.within(Encap::Erspan3, g.key)),
                        Err(m) => return self.malformed(m),
                    },
                    _ => (g.inner(), fr.within(Encap::Gre, g.key)),
                }
            }
            _ => {
                let ethertype = if proto == IPPROTO_IPV6 {
                    ETHERTYPE_IPV6
                } else {
                    ETHERTYPE_IPV4
                };
                (
                    Inner::Network {
                        ethertype,
                        data: seg,
                    },
                    fr.within(Encap::IpInIp, None),
                )
            }
        };
        if !matches!(inner, Inner::NotDecoded { .. }) {
            self.stats.tunnelled += 1;
        }
        self.inner(inner, fr, block);
    }

    /// A datagram to the VXLAN or Geneve port: false when it is not one (an ordinary datagram).
    #[cold]
    #[inline(never)]
    fn udp_tunnel(
        &mut self,
        outer_v6: bool,
        dport: u16,
        payload: &[u8],
        fr: Frame,
        block: Option<&Arc<Vec<u8>>>,
    ) -> bool {
        let fr = fr.counted(outer_v6, true);
        let (inner, fr) = if dport == UDP_PORT_VXLAN {
            let Some(v) = vxlan::parse(payload) else {
                return false;
            };
            (v.inner, fr.within(Encap::Vxlan, Some(v.vni)))
        } else if dport != UDP_PORT_GENEVE {
            let Some(inner) = teredo::parse(payload) else {
                return false;
            };
            (inner, fr.within(Encap::Teredo, None))
        } else {
            match geneve::parse(payload) {
                None => return false,
                Some(Err(m)) => {
                    self.malformed(m);
                    return true;
                }
                Some(Ok(g)) => (g.inner, fr.within(Encap::Geneve, Some(g.vni))),
            }
        };
        if !matches!(inner, Inner::NotDecoded { .. }) {
            self.stats.tunnelled += 1;
        }
        self.inner(inner, fr, block);
        true
    }

    /// The transport header of `seg` (`frames`: how many frames, their bytes, the first one's time).
    #[inline]
    fn transport(
        &mut self,
        ip: &IpPacket<'_>,
        seg: &[u8],
        block: Option<&Arc<Vec<u8>>>,
        wire: u32,
        fr: Frame,
        (frames, frame_bytes, first_ts): (u32, u64, i64),
    ) {
        let (sport, dport, flags, payload_len, seq, payload) = match ip.proto {
            IPPROTO_TCP => match tcp::parse(seg, wire) {
                Ok(t) => {
                    self.stats.tcp += 1;
                    if t.truncated {
                        self.anomalies.push(
                            self.pos,
                            "tcp",
                            "truncated_header",
                            "the snaplen cut the TCP header; counted by its ports",
                        );
                    }
                    // A segment whose payload the snaplen cut cannot feed a stream.
                    let whole = if t.payload.len() == t.payload_len as usize {
                        t.payload
                    } else {
                        &[]
                    };
                    (t.sport, t.dport, t.flags, t.payload_len, t.seq, whole)
                }
                Err(m) => return self.malformed(m),
            },
            IPPROTO_UDP => match udp::parse(seg, wire) {
                Ok(u) => {
                    self.stats.udp += 1;
                    let whole = if u.payload.len() == u.payload_len as usize {
                        u.payload
                    } else {
                        &[]
                    };
                    if (u.dport == UDP_PORT_VXLAN
                        || u.dport == UDP_PORT_GENEVE
                        || u.dport == UDP_PORT_TEREDO
                        || u.sport == UDP_PORT_TEREDO)
                        && self.udp_tunnel(ip.src.v6, u.dport, whole, fr, block)
                    {
                        return;
                    }
                    (u.sport, u.dport, 0, u.payload_len, 0, whole)
                }
                Err(m) => return self.malformed(m),
            },
            IPPROTO_ICMP => {
                self.stats.icmp += 1;
                return;
            }
            IPPROTO_ICMPV6 => {
                self.stats.icmpv6 += 1;
                return;
            }
            IPPROTO_GRE | IPPROTO_IPIP | IPPROTO_IPV6 => {
                return self.ip_tunnel(ip.src.v6, ip.proto, seg, fr, block);
            }
            _ => {
                self.stats.other_ip += 1;
                return;
            }
        };
        let p = PacketMeta {
            ts: fr.ts,
            first_ts,
            frames,
            frame_bytes,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
            proto: ip.proto,
            vlan: fr.vlan,
            tunnel: fr.tunnel,
            tcp_flags: flags,
            payload_len,
            capture: fr.capture,
        };
        self.sink
            .packet(self.pos, &p, seq, payload, block, &mut self.anomalies);
    }

    #[cold]
    fn malformed(&mut self, m: Malformed) {
        self.stats.malformed += 1;
        self.anomalies.push(self.pos, m.layer, m.kind, m.detail);
    }

    #[cold]
    fn sweep(&mut self, now: i64) {
        if self.next_sweep != i64::MIN {
            self.sink.sweep(now);
            self.frags.expire(now);
        }
        self.next_sweep = now.saturating_add(SWEEP_NS);
    }

    /// The end of the input, before it is reported: the counters and what the reassembler
    /// still holds, the anomalies so far, and the sink.
    pub fn end(self) -> (HeadersEnd, Anomalies, S) {
        let end = HeadersEnd {
            stats: self.stats,
            pending: self.frags.pending() as u64,
            evicted: self.frags.evicted,
            expired: self.frags.expired,
        };
        (end, self.anomalies, self.sink)
    }
}
