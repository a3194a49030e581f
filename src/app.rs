//! The application layer over flows: which flows matter, their reassembled streams, and the ONC
//! RPC / portmapper decoding that fills `rpc_calls`, `mappings` and the learned-port table.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::anomaly::{Anomalies, Position};
use crate::flow::tcp_stream::{Chunk, Direction};
use crate::learn::{LearnTable, Learned};
use crate::packet::{Addr, IPPROTO_TCP, IPPROTO_UDP};
use crate::proto::oncrpc::{self, CallHeader, Message, RecordEvent, RecordMarking, ReplyStatus};
use crate::proto::portmap::{self, Query};

/// Calls awaiting their reply, per TCP flow and across all UDP flows.
pub const MAX_PENDING_CALLS: usize = 4096;
pub const MAX_PENDING_UDP: usize = 65_536;
/// Rows kept in `rpc_calls` and `mappings`; past it only counted.
pub const MAX_ROWS: usize = 10_000_000;
/// Well-known ports of the portmapper / rpcbind.
pub const PORTMAP_PORT: u16 = 111;

/// The two ends of a flow, as oriented by the flow table.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    pub flow_id: u64,
    pub client: Addr,
    pub client_port: u16,
    pub server: Addr,
    pub server_port: u16,
    pub proto: u8,
}

#[derive(Debug, Clone)]
pub struct PendingCall {
    pub ts: i64,
    pub flow_id: u64,
    pub client: Addr,
    pub server: Addr,
    pub server_port: u16,
    pub proto: u8,
    pub xid: u32,
    pub header: CallHeader,
    pub query: Query,
}

/// Per-flow reassembly and parsing state of a TCP flow that matters.
#[derive(Debug)]
pub struct StreamState {
    pub ends: Ends,
    dirs: [Direction; 2],
    records: [RecordMarking; 2],
    pending: HashMap<u32, PendingCall>,
    /// The stream turned out not to be ONC RPC: stop decoding it.
    pub failed: bool,
}

impl StreamState {
    pub fn swap(&mut self) {
        let e = &mut self.ends;
        std::mem::swap(&mut e.client, &mut e.server);
        std::mem::swap(&mut e.client_port, &mut e.server_port);
        self.dirs.swap(0, 1);
        self.records.swap(0, 1);
    }

    pub fn new(ends: Ends, midstream: bool) -> Self {
        let rm = || {
            if midstream {
                RecordMarking::midstream()
            } else {
                RecordMarking::default()
            }
        };
        StreamState {
            ends,
            dirs: Default::default(),
            records: [rm(), rm()],
            pending: HashMap::new(),
            failed: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcCallRow {
    pub flow_id: u64,
    pub call_ts: Option<i64>,
    pub reply_ts: Option<i64>,
    pub client: Addr,
    pub server: Addr,
    pub server_port: u16,
    pub proto: u8,
    pub xid: u32,
    /// None for a reply whose call was not seen.
    pub call: Option<CallHeader>,
    pub reply: &'static str,
    pub accept_stat: Option<u32>,
    pub reject_stat: Option<u32>,
}

impl RpcCallRow {
    fn of_call(
        c: PendingCall,
        reply_ts: Option<i64>,
        reply: &'static str,
        accept_stat: Option<u32>,
        reject_stat: Option<u32>,
    ) -> Self {
        RpcCallRow {
            flow_id: c.flow_id,
            call_ts: Some(c.ts),
            reply_ts,
            client: c.client,
            server: c.server,
            server_port: c.server_port,
            proto: c.proto,
            xid: c.xid,
            call: Some(c.header),
            reply,
            accept_stat,
            reject_stat,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MappingRow {
    pub ts: i64,
    pub source: &'static str,
    pub server: IpAddr,
    pub transport: Option<&'static str>,
    pub port: Option<u16>,
    pub program: u32,
    pub version: u32,
    pub registered: bool,
    pub flow_id: u64,
}

#[derive(Debug, Default)]
pub struct Rpc {
    pub calls: Vec<RpcCallRow>,
    pub mappings: Vec<MappingRow>,
    pub learn: LearnTable,
    udp_pending: HashMap<(Addr, u16, u32), PendingCall>,
    pub rows_dropped: u64,
    pub messages: u64,
    /// Holes skipped in reassembled streams, and times a stream's out-of-order buffer overflowed.
    pub stream_gaps: u64,
    pub stream_overflows: u64,
}

/// What a message says of the flow that carried it: the program and version, and whether the
/// call came from the side the flow table took for the server.
pub type Program = Option<(u32, u32, bool)>;

impl Rpc {
    /// Does a flow deserve decoding? Port 111, a learned port, or a payload that opens like a call.
    pub fn matters(&self, e: &Ends, first_payload: Option<&[u8]>, c2s: bool) -> bool {
        if e.server_port == PORTMAP_PORT || e.client_port == PORTMAP_PORT {
            return true;
        }
        if self.learn.get(e.server, e.proto, e.server_port).is_some() {
            return true;
        }
        match first_payload {
            Some(p) if c2s && e.proto == IPPROTO_TCP => oncrpc::looks_like_tcp_call(p),
            Some(p) if e.proto == IPPROTO_UDP => oncrpc::looks_like_call(p),
            _ => false,
        }
    }

    pub fn learned(&self, e: &Ends) -> Option<&Learned> {
        self.learn.get(e.server, e.proto, e.server_port)
    }

    /// One TCP segment of a flow that matters.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_segment(
        &mut self,
        st: &mut StreamState,
        c2s: bool,
        seq: u32,
        syn: bool,
        payload: &[u8],
        ts: i64,
        an: &mut Anomalies,
        at: Position,
    ) -> Program {
        let d = usize::from(!c2s);
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut notes: Vec<(&'static str, String)> = Vec::new();
        let (Some(dir), Some(rm)) = (st.dirs.get_mut(d), st.records.get_mut(d)) else {
            return None;
        };
        dir.segment(seq, syn, payload, &mut |c| match c {
            Chunk::Data(b) => rm.feed(b, &mut |e| match e {
                RecordEvent::Record(r, _) => records.push(r.to_vec()),
                RecordEvent::Anomaly(k, detail) => notes.push((k, detail)),
            }),
            Chunk::Gap(n) => {
                notes.push(("stream_gap", format!("{n} bytes missing from the stream")));
                rm.gap();
            }
        });
        for (k, detail) in notes {
            if k == "stream_gap" {
                an.push(at, "tcp", k, detail);
            } else {
                return self.give_up(st, an, at, detail);
            }
        }
        let mut program = None;
        for r in records {
            match self.message(&st.ends, &mut st.pending, c2s, &r, ts) {
                Ok(p) => program = program.or(p),
                Err(detail) => return self.give_up(st, an, at, detail),
            }
        }
        program
    }

    /// One anomaly per flow whose payload on an RPC port is not RPC; the flow is left alone after.
    fn give_up(
        &mut self,
        st: &mut StreamState,
        an: &mut Anomalies,
        at: Position,
        detail: String,
    ) -> Program {
        st.failed = true;
        an.push(
            at,
            "oncrpc",
            "not_oncrpc",
            format!(
                "flow {} on port {} does not carry ONC RPC: {detail}",
                st.ends.flow_id, st.ends.server_port
            ),
        );
        None
    }

    /// One UDP datagram: a whole call or reply.
    pub fn udp_datagram(
        &mut self,
        e: &Ends,
        c2s: bool,
        payload: &[u8],
        ts: i64,
        an: &mut Anomalies,
        at: Position,
    ) -> Option<Program> {
        let mut unused = HashMap::new();
        self.message(e, &mut unused, c2s, payload, ts)
            .map_err(|detail| {
                an.push(
                    at,
                    "oncrpc",
                    "not_oncrpc",
                    format!(
                        "UDP datagram of flow {} on port {}: {detail}",
                        e.flow_id, e.server_port
                    ),
                );
            })
            .ok()
    }

    /// A UDP reply that answers a pending call although it came from another port (rpcbind
    /// answers CALLIT from its forwarding socket).
    pub fn answers_pending_udp(&self, dst: Addr, dport: u16, payload: &[u8]) -> bool {
        if self.udp_pending.is_empty() {
            return false;
        }
        let (Some(xid), Some(t)) = (payload.get(..4), payload.get(4..8)) else {
            return false;
        };
        let xid = u32::from_be_bytes(xid.try_into().unwrap_or_default());
        t == [0, 0, 0, 1] && self.udp_pending.contains_key(&(dst, dport, xid))
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        e: &Ends,
        pending: &mut HashMap<u32, PendingCall>,
        c2s: bool,
        b: &[u8],
        ts: i64,
    ) -> Result<Program, String> {
        let Some(msg) = oncrpc::parse(b) else {
            return Err(format!("{} bytes that are no RPC call or reply", b.len()));
        };
        self.messages += 1;
        let udp = e.proto == IPPROTO_UDP;
        // The sender of a call is the client, whatever the flow's orientation said.
        let (client, client_port, server, server_port) = if c2s {
            (e.client, e.client_port, e.server, e.server_port)
        } else {
            (e.server, e.server_port, e.client, e.client_port)
        };
        match msg {
            Message::Call(c) => {
                let h = &c.header;
                let query = if h.program == portmap::PROGRAM {
                    portmap::parse_call(h.version, h.procedure, c.args)
                } else {
                    Query::None
                };
                let program = Some((h.program, h.version, !c2s));
                let call = PendingCall {
                    ts,
                    flow_id: e.flow_id,
                    client,
                    server,
                    server_port,
                    proto: e.proto,
                    xid: c.xid,
                    header: c.header,
                    query,
                };
                if udp {
                    if self.udp_pending.len() >= MAX_PENDING_UDP {
                        self.flush_udp_oldest();
                    }
                    if let Some(old) = self.udp_pending.insert((client, client_port, c.xid), call) {
                        self.unanswered(old);
                    }
                } else {
                    if pending.len() >= MAX_PENDING_CALLS {
                        if let Some(k) = pending.iter().min_by_key(|(_, p)| p.ts).map(|(k, _)| *k) {
                            if let Some(old) = pending.remove(&k) {
                                self.unanswered(old);
                            }
                        }
                    }
                    if let Some(old) = pending.insert(c.xid, call) {
                        self.unanswered(old);
                    }
                }
                Ok(program)
            }
            Message::Reply(r) => {
                // The reply goes to the client: on a reply, the receiver is the client.
                let (client, client_port, server, server_port) =
                    (server, server_port, client, client_port);
                let call = if udp {
                    self.udp_pending.remove(&(client, client_port, r.xid))
                } else {
                    pending.remove(&r.xid)
                };
                let (accept_stat, reject_stat, reply) = match r.status {
                    ReplyStatus::Accepted(s) => (Some(s), None, "accepted"),
                    ReplyStatus::Denied(s) => (None, Some(s), "denied"),
                };
                let Some(call) = call else {
                    self.push_call(RpcCallRow {
                        flow_id: e.flow_id,
                        call_ts: None,
                        reply_ts: Some(ts),
                        client,
                        server,
                        server_port,
                        proto: e.proto,
                        xid: r.xid,
                        call: None,
                        reply,
                        accept_stat,
                        reject_stat,
                    });
                    return Ok(None);
                };
                let h = &call.header;
                if h.program == portmap::PROGRAM && accept_stat == Some(0) {
                    let carrier = if udp { "udp" } else { "tcp" };
                    for f in portmap::parse_reply(
                        h.version,
                        h.procedure,
                        &call.query,
                        r.results,
                        carrier,
                    ) {
                        self.fact(&call, &f, ts, e.flow_id);
                    }
                }
                let program = Some((call.header.program, call.header.version, false));
                self.push_call(RpcCallRow::of_call(
                    call,
                    Some(ts),
                    reply,
                    accept_stat,
                    reject_stat,
                ));
                Ok(program)
            }
        }
    }

    fn fact(&mut self, call: &PendingCall, f: &portmap::Fact, ts: i64, flow_id: u64) {
        let server_ip = f.addr.unwrap_or_else(|| call.server.to_ip());
        let server = match server_ip {
            IpAddr::V4(v4) => Addr::v4(v4.octets()),
            IpAddr::V6(v6) => Addr::v6(v6.octets()),
        };
        if let (Some(t), Some(port)) = (f.transport, f.port) {
            let proto = if t == "tcp" { IPPROTO_TCP } else { IPPROTO_UDP };
            if f.registered {
                self.learn.insert(
                    server,
                    proto,
                    port,
                    Learned {
                        program: f.prog,
                        version: f.vers,
                        ts,
                    },
                );
            } else if f.source.ends_with(".unset") {
                self.learn.remove(server, proto, port);
            }
        }
        if self.mappings.len() >= MAX_ROWS {
            self.rows_dropped += 1;
            return;
        }
        self.mappings.push(MappingRow {
            ts,
            source: f.source,
            server: server_ip,
            transport: f.transport,
            port: f.port,
            program: f.prog,
            version: f.vers,
            registered: f.registered,
            flow_id,
        });
    }

    fn push_call(&mut self, row: RpcCallRow) {
        if self.calls.len() >= MAX_ROWS {
            self.rows_dropped += 1;
        } else {
            self.calls.push(row);
        }
    }

    fn unanswered(&mut self, c: PendingCall) {
        self.push_call(RpcCallRow::of_call(c, None, "none", None, None));
    }

    fn flush_udp_oldest(&mut self) {
        if let Some(k) = self
            .udp_pending
            .iter()
            .min_by_key(|(_, p)| p.ts)
            .map(|(k, _)| *k)
        {
            if let Some(c) = self.udp_pending.remove(&k) {
                self.unanswered(c);
            }
        }
    }

    /// A TCP flow ended: what waited behind a hole is decoded after a gap, and calls never
    /// answered become rows with reply "none".
    pub fn close(&mut self, mut st: Box<StreamState>, ts: i64) {
        self.stream_overflows += st.dirs.iter().map(|d| d.overflows).sum::<u64>();
        self.stream_gaps += st.dirs.iter().map(|d| d.gaps).sum::<u64>();
        for d in 0..2 {
            if st.failed {
                break;
            }
            let mut records: Vec<Vec<u8>> = Vec::new();
            let (Some(dir), Some(rm)) = (st.dirs.get_mut(d), st.records.get_mut(d)) else {
                continue;
            };
            dir.flush(&mut |c| match c {
                Chunk::Data(b) => rm.feed(b, &mut |e| {
                    if let RecordEvent::Record(r, _) = e {
                        records.push(r.to_vec());
                    }
                }),
                Chunk::Gap(_) => rm.gap(),
            });
            let ends = st.ends;
            for r in records {
                if self
                    .message(&ends, &mut st.pending, d == 0, &r, ts)
                    .is_err()
                {
                    st.failed = true;
                    break;
                }
            }
        }
        let mut left: Vec<PendingCall> = st.pending.into_values().collect();
        left.sort_by_key(|c| (c.ts, c.xid));
        for c in left {
            self.unanswered(c);
        }
    }

    /// The end of the decode: UDP calls never answered.
    pub fn finish(&mut self) {
        let mut left: Vec<PendingCall> = self.udp_pending.drain().map(|(_, c)| c).collect();
        left.sort_by_key(|c| (c.ts, c.xid));
        for c in left {
            self.unanswered(c);
        }
        self.calls
            .sort_by_key(|c| (c.call_ts.or(c.reply_ts), c.flow_id, c.xid));
    }
}
