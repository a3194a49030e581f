//! The flow table: one entry per live conversation, bounded in size, evicting the least recently
//! active flows in batches when full. Evicted and finished flows are emitted, never lost.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::key::FlowKey;
use crate::packet::tcp::{ACK, FIN, RST, SYN};
use crate::packet::{Addr, Encap, Tunnel, IPPROTO_TCP};

mod record;
#[cfg(test)]
mod tests;

pub use record::{Flow, FlowInfo, Meta, Orientation, Outcome};

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

/// The per-flow state of the layer above (a reassembled stream and its decoder), which the
/// table carries for it without knowing what it is.
pub trait Session {
    /// The flow was turned around: its two sides trade places.
    fn swap(&mut self);
}

/// Hot flags (`Hot::state`).
const LIVE: u8 = 1;
/// The key's `lo` end is the client.
const LO_CLIENT: u8 = 2;
/// The layer above said it needs nothing more of this flow's packets except, per direction,
/// until the first payload is seen (`SEEN_C`, `SEEN_S`); see `Hit::quiet`.
const QUIET: u8 = 4;
const SEEN_C: u8 = 8;
const SEEN_S: u8 = 16;

/// What every packet touches: the key it is found by and the fields it updates, in one
/// 128-byte aligned pair of cache lines (the key, last_ts and the TCP state in the first).
#[repr(C, align(128))]
#[derive(Debug, Clone, Copy)]
struct Hot {
    key: FlowKey,
    last_ts: i64,
    tcp: u8,
    state: u8,
    first_ts: i64,
    packets: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
}

const _: () = assert!(std::mem::size_of::<Hot>() == 128);

impl Hot {
    #[inline]
    fn live(&self) -> bool {
        self.state & LIVE != 0
    }

    fn closed(&self) -> bool {
        self.tcp & (RST_C | RST_S) != 0 || self.tcp & (FIN_C | FIN_S) == (FIN_C | FIN_S)
    }
}

/// A live flow, borrowed from the table: its cold part (`Deref`), its session, and the few
/// operations that also change its hot part.
pub struct FlowMut<'a, S> {
    hot: &'a mut Hot,
    pub meta: &'a mut Meta,
    pub session: &'a mut Option<Box<S>>,
}

impl<S: Session> FlowMut<'_, S> {
    /// Packets seen so far, both directions.
    pub fn packets(&self) -> u64 {
        self.hot.packets[0] + self.hot.packets[1]
    }

    /// Turns the flow around when the payload proves the guess of orientation wrong.
    pub fn swap(&mut self, orientation: Orientation) {
        let m = &mut *self.meta;
        std::mem::swap(&mut m.client, &mut m.server);
        std::mem::swap(&mut m.client_port, &mut m.server_port);
        m.first_tls.swap(0, 1);
        m.stream_base.swap(0, 1);
        m.orientation = orientation;
        let h = &mut *self.hot;
        h.packets.swap(0, 1);
        h.bytes.swap(0, 1);
        h.payload.swap(0, 1);
        let t = h.tcp;
        let mut n = t & (SYN_C | SYNACK_S | RST_FIRST | ANSWERED_ELSEWHERE);
        for (a, b) in [(FIN_C, FIN_S), (RST_C, RST_S)] {
            if t & a != 0 {
                n |= b;
            }
            if t & b != 0 {
                n |= a;
            }
        }
        h.tcp = n;
        // From the addresses, not by flipping: a flow between one endpoint and itself stays
        // client to server both ways.
        let lo_client = m.client == h.key.lo && m.client_port == h.key.lo_port;
        h.state = (h.state & !LO_CLIENT) | if lo_client { LO_CLIENT } else { 0 };
        if let Some(st) = self.session.as_mut() {
            st.swap();
        }
    }

    /// UDP only: a reply to this flow's call came on another flow (rpcbind answers CALLIT from
    /// its forwarding socket), or this flow carries replies to calls seen on another.
    pub fn answered_elsewhere(&mut self) {
        if self.meta.proto != IPPROTO_TCP {
            self.hot.tcp |= ANSWERED_ELSEWHERE;
        }
    }

    /// Records whether the layer above needs this flow's later packets: `quiet` when it needs
    /// none but each direction's first payload (which `Meta::first_tls` tells were seen).
    pub fn set_quiet(&mut self, quiet: bool) {
        let m = &*self.meta;
        let mut s = self.hot.state & (LIVE | LO_CLIENT);
        if quiet {
            s |= QUIET;
            let tcp = m.proto == IPPROTO_TCP;
            if !tcp || m.first_tls[0].is_some() {
                s |= SEEN_C;
            }
            if !tcp || m.first_tls[1].is_some() {
                s |= SEEN_S;
            }
        }
        self.hot.state = s;
    }
}

impl<S> std::ops::Deref for FlowMut<'_, S> {
    type Target = Meta;
    fn deref(&self) -> &Meta {
        self.meta
    }
}

impl<S> std::ops::DerefMut for FlowMut<'_, S> {
    fn deref_mut(&mut self) -> &mut Meta {
        self.meta
    }
}

/// Where a packet went: its flow's slot, its direction, and whether the layer above may skip it.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub slot: u32,
    pub c2s: bool,
    /// The layer above said it needs none of the flow's packets but each direction's first
    /// payload, and `seen`: this direction's first payload went by.
    pub quiet: bool,
    pub seen: bool,
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

pub struct FlowTable<S> {
    /// The live flows' slots, found by their key's hash; the keys are in `hot`. Four bytes a
    /// flow keep the index small: a packet then misses the cache on its flow's hot record, which
    /// it must update anyway.
    map: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Per slot: what every packet touches; what only the application layer's packets touch;
    /// the layer above's session, for the few flows that have one.
    hot: Vec<Hot>,
    meta: Vec<Option<Meta>>,
    sessions: Vec<Option<Box<S>>>,
    free: Vec<u32>,
    next_id: u64,
    pub limits: FlowLimits,
    pub finished: Vec<Flow>,
    pub evicted: u64,
    pub split_idle: u64,
    pub split_reuse: u64,
    pub expired: u64,
    /// Sessions of flows that just ended, for the layer above to close.
    pub closed_sessions: Vec<(u64, Box<S>)>,
}

impl<S: Session> FlowTable<S> {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            // foldhash's RandomState seeds per run: flow keys come from an attacker's packets.
            map: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            hot: Vec::new(),
            meta: Vec::new(),
            sessions: Vec::new(),
            free: Vec::new(),
            next_id: 0,
            limits,
            finished: Vec::new(),
            evicted: 0,
            split_idle: 0,
            split_reuse: 0,
            expired: 0,
            closed_sessions: Vec::new(),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<FlowMut<'_, S>> {
        let i = slot as usize;
        let hot = self.hot.get_mut(i).filter(|h| h.live())?;
        let meta = self.meta.get_mut(i)?.as_mut()?;
        let session = self.sessions.get_mut(i)?;
        Some(FlowMut { hot, meta, session })
    }

    /// The slot of the live flow with this key.
    pub fn slot_of(&self, key: &FlowKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.map
            .find(hash, |&s| key_at(&self.hot, s) == Some(key))
            .copied()
    }

    pub fn live(&self) -> usize {
        self.map.len()
    }

    /// `update_at` for a packet whose record index does not matter (tests).
    #[cfg(test)]
    pub fn update(&mut self, p: &PacketMeta) -> (u32, bool) {
        let h = self.update_at(p, 0);
        (h.slot, h.c2s)
    }

    /// The flow of packet `p` (found or created), whether `p` goes client to server, and whether
    /// the layer above may skip it. `record`: the index of `p`'s record in its capture file.
    #[inline]
    pub fn update_at(&mut self, p: &PacketMeta, record: u64) -> Hit {
        let key =
            FlowKey::new(p.src, p.sport, p.dst, p.dport, p.proto, p.vlan).within(p.tunnel.key());
        let hash = self.hasher.hash_one(key);
        let found = self.map.find(hash, |&s| key_at(&self.hot, s) == Some(&key));
        let slot = match found.copied() {
            Some(slot) => {
                let split = match self.hot.get(slot as usize) {
                    Some(h) => {
                        if p.ts.saturating_sub(h.last_ts) > self.limits.idle_timeout_ns {
                            self.split_idle += 1;
                            true
                        } else if p.proto == IPPROTO_TCP
                            && p.tcp_flags & (SYN | ACK) == SYN
                            && h.closed()
                        {
                            self.split_reuse += 1;
                            true
                        } else {
                            false
                        }
                    }
                    None => false,
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
        let Some(h) = self.hot.get_mut(slot as usize) else {
            return Hit {
                slot,
                c2s: true,
                quiet: false,
                seen: false,
            };
        };
        let src_lo = p.src == h.key.lo && p.sport == h.key.lo_port;
        let c2s = src_lo == (h.state & LO_CLIENT != 0);
        let d = usize::from(!c2s);
        if let (Some(pk), Some(b), Some(pl)) = (
            h.packets.get_mut(d),
            h.bytes.get_mut(d),
            h.payload.get_mut(d),
        ) {
            *pk += u64::from(p.frames);
            *b += p.frame_bytes;
            *pl += u64::from(p.payload_len);
        }
        h.first_ts = h.first_ts.min(p.first_ts);
        h.last_ts = h.last_ts.max(p.ts);
        if p.proto == IPPROTO_TCP {
            let fl = p.tcp_flags;
            if fl & SYN != 0 {
                if fl & ACK == 0 && c2s {
                    h.tcp |= SYN_C;
                } else if fl & ACK != 0 && !c2s {
                    h.tcp |= SYNACK_S;
                }
            }
            if fl & FIN != 0 {
                h.tcp |= if c2s { FIN_C } else { FIN_S };
            }
            if fl & RST != 0 {
                if h.tcp & (FIN_C | FIN_S) == 0 {
                    h.tcp |= RST_FIRST;
                }
                h.tcp |= if c2s { RST_C } else { RST_S };
            }
        }
        let quiet = h.state & QUIET != 0;
        let seen = h.state & if c2s { SEEN_C } else { SEEN_S } != 0;
        // Rare: only tunnelled packets look at the cold part here.
        if p.tunnel.encap != Encap::None {
            if let Some(Some(m)) = self.meta.get_mut(slot as usize) {
                if m.encap == Encap::None {
                    m.encap = p.tunnel.encap;
                    m.tunnel_id = p.tunnel.id();
                }
            }
        }
        Hit {
            slot,
            c2s,
            quiet,
            seen,
        }
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
        let meta = Meta {
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
            first_record: record,
            app: None,
            first_tls: [None, None],
            stream_base: [0, 0],
            info: None,
            rpc_program: None,
            rpc_version: None,
            app_checked: false,
        };
        let lo_client = client == key.lo && client_port == key.lo_port;
        let hot = Hot {
            key,
            last_ts: p.ts,
            tcp: 0,
            state: LIVE | if lo_client { LO_CLIENT } else { 0 },
            first_ts: p.first_ts,
            packets: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
        };
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                let i = s as usize;
                if let (Some(h), Some(m), Some(st)) = (
                    self.hot.get_mut(i),
                    self.meta.get_mut(i),
                    self.sessions.get_mut(i),
                ) {
                    *h = hot;
                    *m = Some(meta);
                    *st = None;
                }
                s
            }
            None => {
                self.hot.push(hot);
                self.meta.push(Some(meta));
                self.sessions.push(None);
                (self.hot.len() - 1) as u32
            }
        };
        let (hots, hasher) = (&self.hot, &self.hasher);
        self.map.insert_unique(hash, slot, |&s| {
            key_at(hots, s).map_or(0, |k| hasher.hash_one(k))
        });
        slot
    }

    fn finish(&mut self, slot: u32) {
        let i = slot as usize;
        let Some(h) = self.hot.get_mut(i).filter(|h| h.live()) else {
            return;
        };
        h.state = 0;
        let h = *h;
        let Some(meta) = self.meta.get_mut(i).and_then(Option::take) else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(i).and_then(Option::take) {
            self.closed_sessions.push((meta.id, session));
        }
        let hash = self.hasher.hash_one(h.key);
        if let Ok(entry) = self.map.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.finished.push(Flow::assemble(&h, meta));
    }

    /// Full table: emits the least recently active eighth of the flows in one pass, so the cost
    /// per new flow stays constant under a flood of new keys.
    #[cold]
    fn evict_batch(&mut self) {
        // The sample spans the whole table: slots are reused, so any one region of it may hold
        // only the newest flows, and a cut taken there would empty most of the table at once.
        let step = (self.hot.len() / 4096).max(1);
        let mut seen: Vec<i64> = self
            .hot
            .iter()
            .step_by(step)
            .filter(|h| h.live())
            .map(|h| h.last_ts)
            .collect();
        if seen.is_empty() {
            return;
        }
        seen.sort_unstable();
        let cut = seen.get(seen.len() / 8).copied().unwrap_or(i64::MIN);
        let victims: Vec<u32> = self
            .hot
            .iter()
            .enumerate()
            .filter(|(_, h)| h.live() && h.last_ts <= cut)
            .map(|(i, _)| i as u32)
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
            .hot
            .iter()
            .enumerate()
            .filter(|(_, h)| h.live() && now.saturating_sub(h.last_ts) > timeout)
            .map(|(i, _)| i as u32)
            .collect();
        self.expired += idle.len() as u64;
        for slot in idle {
            self.finish(slot);
        }
    }

    /// Moves the sessions of all live flows to `closed_sessions`, for a last flush at the end.
    pub fn close_all(&mut self) {
        for (st, m) in self.sessions.iter_mut().zip(&self.meta) {
            if let (Some(m), Some(st)) = (m, st.take()) {
                self.closed_sessions.push((m.id, st));
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
        all.extend(
            self.hot
                .iter()
                .zip(self.meta)
                .filter(|(h, _)| h.live())
                .filter_map(|(h, m)| m.map(|m| Flow::assemble(h, m))),
        );
        // Each ~160-byte flow moved once (none when they are in order already, as when no slot
        // was reused and no flow ended early), not a dozen times by a sort of the flows.
        crate::order::sort_rows_by_key(&mut all, |f| f.id);
        all
    }
}

/// The key of the flow in `slot`, if one is there.
#[inline]
fn key_at(hot: &[Hot], slot: u32) -> Option<&FlowKey> {
    hot.get(slot as usize).filter(|h| h.live()).map(|h| &h.key)
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
