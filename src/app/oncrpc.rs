//! ONC RPC over flows: record marking on reassembled TCP streams, calls matched to replies, and
//! the portmapper / rpcbind facts that fill `rpc_calls`, `mappings` and the learned-port table.

use super::{CallFlow, FlowFacts, OrientedFlow, Sink};
use crate::anomaly::{Anomalies, Position};
use crate::bounded::BoundedRows;
use crate::flow::table::Orientation;
use crate::learn::{LearnedPorts, MappingRow};
use crate::packet::{Addr, IPPROTO_TCP, IPPROTO_UDP};
use crate::pending::PendingCalls;
use crate::proto::oncrpc::{self, CallHeader, Message, RecordEvent, RecordMarking, ReplyStatus};
use crate::proto::portmap::{self, Query};

/// Calls awaiting their reply, per TCP flow and across all UDP flows.
pub const MAX_PENDING_CALLS: usize = 4096;
pub const MAX_PENDING_UDP: usize = 65_536;
type TcpPending = PendingCalls<u32, PendingCall, MAX_PENDING_CALLS>;
type UdpPending = PendingCalls<(Addr, u16, u32), PendingCall, MAX_PENDING_UDP>;
/// Well-known ports of the portmapper / rpcbind.
pub const PORTMAP_PORT: u16 = 111;

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

/// Per-direction record marking and the calls awaiting replies of one TCP flow.
#[derive(Debug)]
pub struct OncStream {
    records: [RecordMarking; 2],
    pending: TcpPending,
    /// A message was decoded: from then on a bad record mark is damage, not proof of another protocol.
    established: bool,
}

impl OncStream {
    pub fn new(midstream: bool) -> Self {
        let rm = || {
            if midstream {
                RecordMarking::midstream()
            } else {
                RecordMarking::default()
            }
        };
        OncStream {
            records: [rm(), rm()],
            pending: TcpPending::new(),
            established: false,
        }
    }

    pub fn swap(&mut self) {
        self.records.swap(0, 1);
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

#[derive(Debug, Default)]
pub struct Rpc {
    pub calls: BoundedRows<RpcCallRow>,
    udp_pending: UdpPending,
    pub messages: u64,
}

/// What a message says of the flow that carried it: the program and version, and whether it
/// came from the wrong side (a call from the side the flow table took for the server, or a reply
/// from the side it took for the client).
pub type Program = Option<(u32, u32, bool)>;

fn said(p: Program) -> FlowFacts {
    match p {
        Some((prog, vers, wrong_side)) => FlowFacts {
            app: Some(crate::application::App::OncRpc),
            rpc: Some((prog, vers)),
            turn: wrong_side.then_some(Orientation::Rpc),
            ..FlowFacts::default()
        },
        None => FlowFacts::default(),
    }
}

impl Rpc {
    /// Does a flow's first payload open like a call (a TCP call with its record mark from the
    /// client, or a UDP call either way)?
    pub fn looks_like_call(e: &OrientedFlow, p: &[u8], c2s: bool) -> bool {
        match e.proto {
            IPPROTO_TCP => c2s && oncrpc::looks_like_tcp_call(p),
            IPPROTO_UDP => oncrpc::looks_like_call(p),
            _ => false,
        }
    }

    /// Reassembled bytes of one direction of a TCP flow: records, then messages. An error means
    /// the stream is not ONC RPC; damage after the first message is an anomaly and the stream
    /// resynchronises.
    #[allow(clippy::too_many_arguments)]
    pub fn data(
        &mut self,
        learned_ports: &mut LearnedPorts,
        st: &mut OncStream,
        e: &OrientedFlow,
        d: usize,
        bytes: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> Result<FlowFacts, String> {
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut bad: Vec<(&'static str, String)> = Vec::new();
        let Some(rm) = st.records.get_mut(d) else {
            return Ok(FlowFacts::default());
        };
        rm.feed(bytes, &mut |ev| match ev {
            RecordEvent::Record(r, _) => records.push(r.to_vec()),
            RecordEvent::Anomaly(kind, detail) => bad.push((kind, detail)),
        });
        if !st.established {
            if let Some((_, detail)) = bad.into_iter().next() {
                return Err(detail);
            }
        } else {
            for (kind, detail) in bad {
                sink.push(
                    "oncrpc",
                    kind,
                    format!("flow {}: {detail}; resynchronised", e.flow_id),
                );
            }
        }
        let mut program = None;
        for r in records {
            // Over TCP a reply never answers another flow's call.
            let mut elsewhere = None;
            program = program.or(self.message(
                learned_ports,
                e,
                &mut st.pending,
                d == 0,
                &r,
                ts,
                &mut elsewhere,
            )?);
            st.established = true;
        }
        Ok(said(program))
    }

    /// Bytes were lost in direction `d`: look for the next record mark.
    pub fn gap(st: &mut OncStream, d: usize) {
        if let Some(rm) = st.records.get_mut(d) {
            rm.gap();
        }
    }

    /// One UDP datagram: a whole call or reply.
    #[allow(clippy::too_many_arguments)]
    pub fn udp_datagram(
        &mut self,
        learned_ports: &mut LearnedPorts,
        e: &OrientedFlow,
        c2s: bool,
        payload: &[u8],
        ts: i64,
        an: &mut Anomalies,
        at: Position,
    ) -> Option<FlowFacts> {
        let mut unused = TcpPending::new();
        let mut elsewhere = None;
        self.message(
            learned_ports,
            e,
            &mut unused,
            c2s,
            payload,
            ts,
            &mut elsewhere,
        )
        .map(|p| FlowFacts {
            answered_elsewhere: elsewhere,
            ..said(p)
        })
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
        learned_ports: &mut LearnedPorts,
        e: &OrientedFlow,
        pending: &mut TcpPending,
        c2s: bool,
        b: &[u8],
        ts: i64,
        // Set when this UDP reply answers a call made to another endpoint: the call's flow.
        elsewhere: &mut Option<CallFlow>,
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
                // A call pushed out (its XID reused, or the oldest of a full table) went
                // unanswered.
                let pushed_out = if udp {
                    self.udp_pending.insert((client, client_port, c.xid), call)
                } else {
                    pending.insert(c.xid, call)
                };
                if let Some(old) = pushed_out {
                    self.unanswered(old);
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
                if accept_stat == Some(oncrpc::PROG_MISMATCH) {
                    let mut x = crate::proto::xdr::Xdr::new(r.results);
                    if let (Some(low), Some(high)) = (x.u32(), x.u32()) {
                        learned_ports.prog_mismatch(
                            server,
                            e.proto,
                            server_port,
                            h.program,
                            low,
                            high,
                        );
                    }
                }
                if h.program == portmap::PROGRAM && accept_stat == Some(0) {
                    let carrier = if udp { "udp" } else { "tcp" };
                    for f in portmap::parse_reply(
                        h.version,
                        h.procedure,
                        &call.query,
                        r.results,
                        carrier,
                    ) {
                        fact(learned_ports, &call, &f, ts, e.flow_id);
                    }
                }
                if udp && (call.server != server || call.server_port != server_port) {
                    *elsewhere = Some((client, client_port, call.server, call.server_port));
                }
                let program = Some((call.header.program, call.header.version, c2s));
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

    fn push_call(&mut self, row: RpcCallRow) {
        self.calls.push(row);
    }

    fn unanswered(&mut self, c: PendingCall) {
        self.push_call(RpcCallRow::of_call(c, None, "none", None, None));
    }

    /// A TCP flow ended: calls never answered become rows with reply "none".
    pub fn close(&mut self, mut st: OncStream) {
        let mut left: Vec<PendingCall> = st.pending.drain().into_iter().map(|(_, c)| c).collect();
        left.sort_by_key(|c| (c.ts, c.xid));
        for c in left {
            self.unanswered(c);
        }
    }

    /// The end of the decode: UDP calls never answered.
    pub fn finish(&mut self) {
        let mut left = self.udp_pending.drain();
        // The client breaks ties: two clients may use one XID at one time.
        left.sort_by_key(|(key, c)| (c.ts, c.xid, *key));
        for (_, c) in left {
            self.unanswered(c);
        }
        crate::order::sort_rows_by_key(&mut self.calls, |c| {
            (c.call_ts.or(c.reply_ts), c.flow_id, c.xid)
        });
    }
}

fn fact(
    learned_ports: &mut LearnedPorts,
    call: &PendingCall,
    f: &portmap::Fact,
    ts: i64,
    flow_id: u64,
) {
    let answering = call.server.to_ip();
    let server = match f.addr {
        None => answering,
        // A wildcard bind is on the answering server, but only in its own address family:
        // rpcbind lists tcp6/udp6 entries (`::.p1.p2`) in a DUMP over IPv4, and their
        // IPV6_V6ONLY sockets cannot be reached on the IPv4 address.
        Some(ip) if ip.is_unspecified() => {
            if ip.is_ipv4() != answering.is_ipv4() {
                return;
            }
            answering
        }
        Some(ip) => ip,
    };
    learned_ports.fact(MappingRow {
        ts,
        source: f.source,
        server,
        transport: f.transport,
        port: f.port,
        program: Some(f.prog),
        version: Some(f.vers),
        interface: None,
        protocol: None,
        annotation: None,
        registered: f.registered,
        flow_id,
    });
}
