//! The flow table: one entry per live conversation, bounded in size, evicting the least recently
//! active flows in batches when full. Evicted and finished flows are emitted, never lost.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::key::FlowKey;
use crate::packet::tcp::{ACK, FIN, RST, SYN};
use crate::packet::{Addr, Encap, Tunnel, IPPROTO_TCP};

/// Ports that identify the server side of a conversation whose handshake was not seen, beyond the
/// privileged range: Arcserve's and the RPC stacks' well-known service ports.
pub const SERVICE_PORTS: &[u16] = &[
    1433, 2049, 2099, 3260, 3389, 6050, 6051, 6070, 6502, 6503, 6504, 7099, 7199, 8080, 8443,
    10000, 41523, 41524,
];

#[inline]
pub fn is_service_port(p: u16) -> bool {
    p < 1024 || SERVICE_PORTS.contains(&p)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Syn,
    /// The side that sent an RPC call (or holds a port a portmapper handed out) is the server's peer.
    Rpc,
    /// The side that sent a DCE/RPC bind or request is the client.
    DceRpc,
    /// The side that sent a TLS ClientHello is the client.
    Tls,
    WellKnown,
    FirstPacket,
}

impl Orientation {
    pub fn name(self) -> &'static str {
        match self {
            Orientation::Syn => "syn",
            Orientation::Rpc => "rpc",
            Orientation::DceRpc => "dcerpc",
            Orientation::Tls => "tls",
            Orientation::WellKnown => "well_known",
            Orientation::FirstPacket => "first_packet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Refused,
    Unanswered,
    Reset,
    Midstream,
    Open,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Refused => "refused",
            Outcome::Unanswered => "unanswered",
            Outcome::Reset => "reset",
            Outcome::Midstream => "midstream",
            Outcome::Open => "open",
        }
    }
}

const SYN_C: u8 = 1;
const SYNACK_S: u8 = 2;
const FIN_C: u8 = 4;
const FIN_S: u8 = 8;
const RST_C: u8 = 16;
const RST_S: u8 = 32;
/// A reset came before any FIN: the connection was torn down abnormally.
const RST_FIRST: u8 = 64;
/// UDP only: a reply to this flow's call came on another flow (rpcbind answers CALLIT from its
/// forwarding socket), or this flow carries replies to calls seen on another.
const ANSWERED_ELSEWHERE: u8 = 128;

#[derive(Debug)]
pub struct Flow {
    pub id: u64,
    pub capture: u32,
    pub proto: u8,
    pub vlan: Option<u16>,
    /// The encapsulation that carried the flow's packets (the first one seen when its two
    /// directions travel differently) and the tenant id of the tunnel.
    pub encap: Encap,
    pub tunnel_id: Option<u32>,
    pub client: Addr,
    pub client_port: u16,
    pub server: Addr,
    pub server_port: u16,
    pub orientation: Orientation,
    pub first_ts: i64,
    pub last_ts: i64,
    /// Index of the record that opened the flow in its capture file (Wireshark's frame number
    /// less one), so a finding can point at the packet.
    pub first_record: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub payload: [u64; 2],
    tcp: u8,
    /// What the flow's payload (or a learned mapping) says it carries.
    pub app: Option<App>,
    pub rpc_program: Option<u32>,
    pub rpc_version: Option<u32>,
    /// Whether each direction's first payload was a TLS record (client first).
    pub first_tls: [Option<bool>; 2],
    /// The sequence number of each direction's first payload byte seen: where the offsets of a
    /// TLS upgrade count from.
    pub stream_base: [u32; 2],
    /// What the DCE/RPC and TLS decoders said, for the few flows that carry them.
    pub info: Option<Box<FlowInfo>>,
    /// Whether the flow was already considered for application decoding.
    pub app_checked: bool,
    /// Reassembly and parser state, only for the flows that matter.
    pub stream: Option<Box<crate::app::StreamState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    OncRpc,
    DceRpc,
    Tls,
}

impl App {
    pub fn name(self) -> &'static str {
        match self {
            App::OncRpc => "oncrpc",
            App::DceRpc => "dcerpc",
            App::Tls => "tls",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct FlowInfo {
    pub interface: Option<crate::proto::ndr::SyntaxId>,
    /// The interface came from the flow's own bind, not from a learned mapping.
    pub interface_bound: bool,
    pub tls_version: Option<u16>,
    pub tls_sni: Option<String>,
    /// TLS began after this many bytes of the client's plaintext (STARTTLS and its kin).
    pub tls_offset: Option<u64>,
}

impl Flow {
    pub fn outcome(&self) -> Outcome {
        let t = self.tcp;
        if self.proto != IPPROTO_TCP {
            return if self.packets[0] > 0 && self.packets[1] > 0 || t & ANSWERED_ELSEWHERE != 0 {
                Outcome::Completed
            } else {
                Outcome::Unanswered
            };
        }
        if t & (SYN_C | SYNACK_S) == 0 {
            return Outcome::Midstream;
        }
        if t & SYNACK_S == 0 {
            return if t & RST_S != 0 {
                Outcome::Refused
            } else {
                Outcome::Unanswered
            };
        }
        if t & RST_FIRST != 0 {
            Outcome::Reset
        } else if t & (FIN_C | FIN_S) != 0 {
            Outcome::Completed
        } else {
            Outcome::Open
        }
    }

    /// Turns the flow around when the payload proves the guess of orientation wrong.
    pub fn swap(&mut self, orientation: Orientation) {
        std::mem::swap(&mut self.client, &mut self.server);
        std::mem::swap(&mut self.client_port, &mut self.server_port);
        self.packets.swap(0, 1);
        self.bytes.swap(0, 1);
        self.payload.swap(0, 1);
        self.first_tls.swap(0, 1);
        self.stream_base.swap(0, 1);
        let t = self.tcp;
        let mut n = t & (SYN_C | SYNACK_S | RST_FIRST | ANSWERED_ELSEWHERE);
        for (a, b) in [(FIN_C, FIN_S), (RST_C, RST_S)] {
            if t & a != 0 {
                n |= b;
            }
            if t & b != 0 {
                n |= a;
            }
        }
        self.tcp = n;
        self.orientation = orientation;
        if let Some(st) = self.stream.as_mut() {
            st.swap();
        }
    }

    pub fn answered_elsewhere(&mut self) {
        if self.proto != IPPROTO_TCP {
            self.tcp |= ANSWERED_ELSEWHERE;
        }
    }

    fn closed(&self) -> bool {
        self.tcp & (RST_C | RST_S) != 0 || self.tcp & (FIN_C | FIN_S) == (FIN_C | FIN_S)
    }
}

/// What the table needs to know of one transport packet (or one reassembled datagram).
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta {
    pub ts: i64,
    pub first_ts: i64,
    pub frames: u32,
    pub frame_bytes: u64,
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub vlan: Option<u16>,
    /// The encapsulation that carried the packet, and its tenant id.
    pub tunnel: Tunnel,
    pub tcp_flags: u8,
    pub payload_len: u32,
    pub capture: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct FlowLimits {
    pub max_flows: usize,
    pub idle_timeout_ns: i64,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 1_000_000,
            idle_timeout_ns: 600_000_000_000,
        }
    }
}

pub struct FlowTable {
    /// The live flows' slots, found by their key's hash; the keys stay in `slots`. Four bytes a
    /// flow keep the index in the core's cache (with the keys beside it, 50 k flows took ~3 MB):
    /// a packet then misses the cache once, on its flow's slot, which it must update anyway.
    map: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Option<(FlowKey, Flow)>>,
    free: Vec<u32>,
    next_id: u64,
    pub limits: FlowLimits,
    pub finished: Vec<Flow>,
    pub evicted: u64,
    pub split_idle: u64,
    pub split_reuse: u64,
    pub expired: u64,
    /// Streams of flows that just ended, for the application layer to close.
    pub closed_streams: Vec<(u64, Box<crate::app::StreamState>)>,
}

impl FlowTable {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            // foldhash's RandomState seeds per run: flow keys come from an attacker's packets.
            map: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            free: Vec::new(),
            next_id: 0,
            limits,
            finished: Vec::new(),
            evicted: 0,
            split_idle: 0,
            split_reuse: 0,
            expired: 0,
            closed_streams: Vec::new(),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Flow> {
        self.slots
            .get_mut(slot as usize)
            .and_then(|s| s.as_mut())
            .map(|(_, f)| f)
    }

    /// The slot of the live flow with this key.
    pub fn slot_of(&self, key: &FlowKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.map
            .find(hash, |&s| key_at(&self.slots, s) == Some(key))
            .copied()
    }

    pub fn live(&self) -> usize {
        self.map.len()
    }

    /// Accounts one packet to its flow, creating or splitting flows as needed; returns the flow's
    /// slot and whether the packet went client to server.
    #[inline]
    /// `update_at` for a packet whose record index does not matter (tests).
    #[cfg(test)]
    pub fn update(&mut self, p: &PacketMeta) -> (u32, bool) {
        self.update_at(p, 0)
    }

    /// The flow of packet `p` (found or created), and whether `p` goes client to server.
    /// `record`: the index of `p`'s record in its capture file.
    pub fn update_at(&mut self, p: &PacketMeta, record: u64) -> (u32, bool) {
        let key =
            FlowKey::new(p.src, p.sport, p.dst, p.dport, p.proto, p.vlan).within(p.tunnel.key());
        let hash = self.hasher.hash_one(key);
        let found = self
            .map
            .find(hash, |&s| key_at(&self.slots, s) == Some(&key));
        let slot = match found.copied() {
            Some(slot) => {
                let split = match self.slots.get(slot as usize) {
                    Some(Some((_, f))) => {
                        if p.ts.saturating_sub(f.last_ts) > self.limits.idle_timeout_ns {
                            self.split_idle += 1;
                            true
                        } else if p.proto == IPPROTO_TCP
                            && p.tcp_flags & (SYN | ACK) == SYN
                            && f.closed()
                        {
                            self.split_reuse += 1;
                            true
                        } else {
                            false
                        }
                    }
                    _ => false,
                };
                if split {
                    self.finish(slot);
                    self.create(key, hash, p, record)
                } else {
                    slot
                }
            }
            None => self.create(key, hash, p, record),
        };
        let Some(Some((_, f))) = self.slots.get_mut(slot as usize) else {
            return (slot, true);
        };
        let c2s = p.src == f.client && p.sport == f.client_port;
        let d = usize::from(!c2s);
        if let (Some(pk), Some(b), Some(pl)) = (
            f.packets.get_mut(d),
            f.bytes.get_mut(d),
            f.payload.get_mut(d),
        ) {
            *pk += u64::from(p.frames);
            *b += p.frame_bytes;
            *pl += u64::from(p.payload_len);
        }
        f.first_ts = f.first_ts.min(p.first_ts);
        f.last_ts = f.last_ts.max(p.ts);
        if f.encap == Encap::None && p.tunnel.encap != Encap::None {
            f.encap = p.tunnel.encap;
            f.tunnel_id = p.tunnel.id();
        }
        if p.proto == IPPROTO_TCP {
            let fl = p.tcp_flags;
            if fl & SYN != 0 {
                if fl & ACK == 0 && c2s {
                    f.tcp |= SYN_C;
                } else if fl & ACK != 0 && !c2s {
                    f.tcp |= SYNACK_S;
                }
            }
            if fl & FIN != 0 {
                f.tcp |= if c2s { FIN_C } else { FIN_S };
            }
            if fl & RST != 0 {
                if f.tcp & (FIN_C | FIN_S) == 0 {
                    f.tcp |= RST_FIRST;
                }
                f.tcp |= if c2s { RST_C } else { RST_S };
            }
        }
        (slot, c2s)
    }

    fn create(&mut self, key: FlowKey, hash: u64, p: &PacketMeta, record: u64) -> u32 {
        if self.map.len() >= self.limits.max_flows.max(1) {
            self.evict_batch();
        }
        let (client_is_src, orientation) = orient(p);
        let (client, client_port, server, server_port) = if client_is_src {
            (p.src, p.sport, p.dst, p.dport)
        } else {
            (p.dst, p.dport, p.src, p.sport)
        };
        let flow = Flow {
            id: self.next_id,
            capture: p.capture,
            proto: p.proto,
            vlan: p.vlan,
            encap: p.tunnel.encap,
            tunnel_id: p.tunnel.id(),
            client,
            client_port,
            server,
            server_port,
            orientation,
            first_ts: p.first_ts,
            last_ts: p.ts,
            first_record: record,
            packets: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            tcp: 0,
            app: None,
            first_tls: [None, None],
            stream_base: [0, 0],
            info: None,
            rpc_program: None,
            rpc_version: None,
            app_checked: false,
            stream: None,
        };
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(cell) = self.slots.get_mut(s as usize) {
                    *cell = Some((key, flow));
                }
                s
            }
            None => {
                self.slots.push(Some((key, flow)));
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.map.insert_unique(hash, slot, |&s| {
            key_at(slots, s).map_or(0, |k| hasher.hash_one(k))
        });
        slot
    }

    fn finish(&mut self, slot: u32) {
        if let Some((key, mut flow)) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            if let Some(stream) = flow.stream.take() {
                self.closed_streams.push((flow.id, stream));
            }
            let hash = self.hasher.hash_one(key);
            if let Ok(entry) = self.map.find_entry(hash, |&s| s == slot) {
                entry.remove();
            }
            self.free.push(slot);
            self.finished.push(flow);
        }
    }

    /// Full table: emits the least recently active eighth of the flows in one pass, so the cost
    /// per new flow stays constant under a flood of new keys.
    #[cold]
    fn evict_batch(&mut self) {
        // The sample spans the whole table: slots are reused, so any one region of it may hold
        // only the newest flows, and a cut taken there would empty most of the table at once.
        let step = (self.slots.len() / 4096).max(1);
        let mut seen: Vec<i64> = self
            .slots
            .iter()
            .step_by(step)
            .flatten()
            .map(|(_, f)| f.last_ts)
            .collect();
        if seen.is_empty() {
            return;
        }
        seen.sort_unstable();
        let cut = seen.get(seen.len() / 8).copied().unwrap_or(i64::MIN);
        let victims: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|(_, f)| f.last_ts <= cut)
                    .map(|_| i as u32)
            })
            .collect();
        for slot in victims {
            self.finish(slot);
            self.evicted += 1;
        }
    }

    /// Emits every flow idle longer than the timeout at capture time `now`.
    pub fn expire(&mut self, now: i64) {
        let timeout = self.limits.idle_timeout_ns;
        let idle: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|(_, f)| now.saturating_sub(f.last_ts) > timeout)
                    .map(|_| i as u32)
            })
            .collect();
        self.expired += idle.len() as u64;
        for slot in idle {
            self.finish(slot);
        }
    }

    /// Moves the streams of all live flows to `closed_streams`, for a last flush at the end.
    pub fn close_all(&mut self) {
        for (_, f) in self.slots.iter_mut().flatten() {
            if let Some(st) = f.stream.take() {
                self.closed_streams.push((f.id, st));
            }
        }
    }

    /// The flows finished so far, in order of creation; the table keeps none of them.
    pub fn take_finished(&mut self) -> Vec<Flow> {
        let mut out = std::mem::take(&mut self.finished);
        out.sort_unstable_by_key(|f| f.id);
        out
    }

    /// Ends the table: every flow, finished or live, in order of creation.
    pub fn into_flows(mut self) -> Vec<Flow> {
        let mut all = std::mem::take(&mut self.finished);
        all.reserve(self.map.len());
        all.extend(self.slots.into_iter().flatten().map(|(_, mut f)| {
            f.stream = None;
            f
        }));
        // Each ~160-byte flow moved once (none when they are in order already, as when no slot
        // was reused and no flow ended early), not a dozen times by a sort of the flows.
        crate::order::sort_rows_by_key(&mut all, |f| f.id);
        all
    }
}

/// The key of the flow in `slot`, if one is there.
#[inline]
fn key_at(slots: &[Option<(FlowKey, Flow)>], slot: u32) -> Option<&FlowKey> {
    slots.get(slot as usize)?.as_ref().map(|(k, _)| k)
}

/// Who is the client: the SYN's sender where the handshake is seen; otherwise the side whose port
/// is not a service port; otherwise the sender of the first packet.
fn orient(p: &PacketMeta) -> (bool, Orientation) {
    if p.proto == IPPROTO_TCP && p.tcp_flags & SYN != 0 {
        return (p.tcp_flags & ACK == 0, Orientation::Syn);
    }
    match (is_service_port(p.sport), is_service_port(p.dport)) {
        (true, false) => (false, Orientation::WellKnown),
        (false, true) => (true, Orientation::WellKnown),
        _ => (true, Orientation::FirstPacket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts: i64, src: u8, sport: u16, dst: u8, dport: u16, flags: u8) -> PacketMeta {
        PacketMeta {
            ts,
            first_ts: ts,
            frames: 1,
            frame_bytes: 60,
            src: Addr::v4([10, 0, 0, src]),
            dst: Addr::v4([10, 0, 0, dst]),
            sport,
            dport,
            proto: IPPROTO_TCP,
            vlan: None,
            tunnel: Tunnel::NONE,
            tcp_flags: flags,
            payload_len: 0,
            capture: 0,
        }
    }

    #[test]
    fn handshake_and_outcomes() {
        let mut t = FlowTable::new(FlowLimits::default());
        t.update(&pkt(1, 1, 40000, 2, 111, SYN));
        t.update(&pkt(2, 2, 111, 1, 40000, SYN | ACK));
        t.update(&pkt(3, 1, 40000, 2, 111, FIN | ACK));
        t.update(&pkt(4, 1, 40001, 2, 6502, SYN));
        t.update(&pkt(5, 2, 6502, 1, 40001, RST | ACK));
        t.update(&pkt(6, 1, 40002, 2, 7099, SYN));
        t.update(&pkt(7, 2, 2099, 3, 50000, ACK)); // mid-stream, server side speaks first
        let flows = t.into_flows();
        let o: Vec<_> = flows
            .iter()
            .map(|f| (f.outcome().name(), f.orientation.name(), f.server_port))
            .collect();
        assert_eq!(
            o,
            [
                ("completed", "syn", 111),
                ("refused", "syn", 6502),
                ("unanswered", "syn", 7099),
                ("midstream", "well_known", 2099)
            ]
        );
        assert_eq!(flows[0].packets, [2, 1]);
    }

    #[test]
    fn a_full_table_emits_about_an_eighth_at_a_time() {
        // Large enough that slots are reused in an order unlike their age (freed slots are
        // refilled by the newest flows): each batch must still be the oldest eighth.
        let max = 300_000;
        let mut t = FlowTable::new(FlowLimits {
            max_flows: max,
            ..FlowLimits::default()
        });
        let mut largest = 0;
        for i in 0..2_000_000u32 {
            let [_, a, b, c] = i.to_be_bytes();
            let mut p = pkt(i64::from(i), 1, u16::from_be_bytes([b, c]), 2, 135, SYN);
            p.src = Addr::v4([10, a, 0, 1]);
            t.update(&p);
            largest = largest.max(t.take_finished().len());
        }
        assert!(t.evicted > 1_600_000, "{}", t.evicted);
        assert!(
            largest <= max / 6,
            "one batch emitted {largest} of {max} flows"
        );
    }

    #[test]
    fn port_reuse_after_close_splits() {
        let mut t = FlowTable::new(FlowLimits::default());
        t.update(&pkt(1, 1, 40000, 2, 6502, SYN));
        t.update(&pkt(2, 2, 6502, 1, 40000, RST | ACK));
        t.update(&pkt(3, 1, 40000, 2, 6502, SYN));
        t.update(&pkt(4, 1, 40000, 2, 6502, SYN)); // a retransmission stays in the same flow
        let flows = t.into_flows();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[1].packets, [2, 0]);
    }

    #[test]
    fn bounded_with_eviction() {
        let mut t = FlowTable::new(FlowLimits {
            max_flows: 100,
            idle_timeout_ns: i64::MAX,
        });
        for i in 0..1000u16 {
            t.update(&pkt(i64::from(i), 1, 1024 + i, 2, 80, SYN));
            assert!(t.live() <= 100);
        }
        assert!(t.evicted >= 900);
        assert_eq!(t.into_flows().len(), 1000);
    }
}
