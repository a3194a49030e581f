//! Records through link, network and transport headers and IP fragment reassembly into transport
//! packets for the flow table and application decoders (`State`).

use std::collections::BTreeSet;

use std::sync::Arc;

use super::records::RecordSink;
use super::{Options, Stats, SWEEP_NS};
use crate::anomaly::{Anomalies, Position};
use crate::capture::linktype::{self, Link};
use crate::capture::Record;
use crate::flow::PacketMeta;
use crate::packet::frag::{FragKey, Outcome as FragOutcome, Reassembler};
use crate::packet::{
    ipv4, ipv6, tcp, udp, IpPacket, Malformed, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
};

/// Where transport packets go: the flow table (`State`) directly, or a queue to the thread that
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
pub struct Packets<S> {
    frags: Reassembler,
    pub sink: S,
    pub anomalies: Anomalies,
    pub stats: Stats,
    pos: Position,
    next_sweep: i64,
    /// Link types already reported as not decoded, per capture.
    unknown_links: BTreeSet<(u32, u32)>,
}

impl<S: PacketSink> RecordSink for Packets<S> {
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

#[derive(Debug, Clone, Copy)]
struct Frame {
    ts: i64,
    vlan: Option<u16>,
    capture: u32,
}

impl<S: PacketSink> Packets<S> {
    pub fn new(opts: &Options, sink: S) -> Self {
        Packets {
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
        Packets {
            next_sweep: i64::MAX,
            ..Packets::new(opts, sink)
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
        let l3 = match linktype::network_layer(link, data) {
            Ok(Link::L3(l3)) => l3,
            Ok(Link::Unknown) => {
                self.stats.unknown_link += 1;
                return false;
            }
            Err(m) => {
                self.malformed(m);
                return true;
            }
        };
        let ip = match l3.ethertype {
            ETHERTYPE_IPV4 => {
                self.stats.ipv4 += 1;
                ipv4::parse(l3.data)
            }
            ETHERTYPE_IPV6 => {
                self.stats.ipv6 += 1;
                ipv6::parse(l3.data)
            }
            _ => {
                self.stats.non_ip += 1;
                return true;
            }
        };
        let ip = match ip {
            Ok(ip) => ip,
            Err(m) => {
                self.malformed(m);
                return true;
            }
        };
        let fr = Frame {
            ts,
            vlan: l3.vlan,
            capture,
        };
        match ip.frag {
            None => self.transport(
                &ip,
                ip.payload,
                Some(block),
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
            }
            Some(f) => {
                self.stats.fragments += 1;
                let key = FragKey {
                    src: ip.src,
                    dst: ip.dst,
                    id: f.id,
                    proto: ip.proto,
                    vlan: l3.vlan,
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
                                Err(m) => {
                                    self.malformed(m);
                                    return true;
                                }
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

    /// The end of the input: datagrams never completed are reported (charged to `at`, the last
    /// record, in `an`: the anomalies of the whole pass, merged in record order).
    pub fn finish(mut self, an: &mut Anomalies, at: Position) -> (Stats, S) {
        let pending = self.frags.pending() as u64;
        if pending > 0 {
            an.push(
                at,
                "ip",
                "incomplete_fragments",
                format!("{pending} datagrams never completed"),
            );
        }
        self.stats.fragments_evicted = self.frags.evicted;
        self.stats.fragments_expired = self.frags.expired + pending;
        (self.stats, self.sink)
    }
}
