//! Connection-oriented DCE/RPC: PDUs framed out of a TCP flow's reassembled streams, binds
//! resolving presentation contexts, calls matched to their responses and faults by call_id.

use std::collections::HashMap;

use super::rows::row;
use super::{append, DceCallRow, DceRpc, PendingCall, MAX_CONTEXTS, MAX_PDU, MAX_PENDING};
use crate::app::{FlowFacts, OrientedFlow, Sink};
use crate::application::App;
use crate::flow::table::Orientation;
use crate::learn::{LearnedPorts, MappingRow};
use crate::pending::PendingCalls;
use crate::proto::dcerpc::{self as wire, Auth, CoHeader, Context, Pdu};
use crate::proto::ndr::SyntaxId;

/// Frames PDUs out of one direction's byte stream by frag_length.
#[derive(Debug, Default)]
pub(super) struct Framer {
    pub(super) buf: Vec<u8>,
    /// After a hole (or when the flow was joined mid-stream): look for the next header.
    pub(super) resync: bool,
}

impl Framer {
    pub(super) fn feed(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0usize;
        let mut result = Ok(());
        while let Some(rest) = self.buf.get(start..) {
            if rest.len() < wire::CO_HEADER {
                break;
            }
            match wire::co_header(rest) {
                Some(h) => {
                    let n = usize::from(h.frag_len);
                    let Some(pdu) = rest.get(..n) else { break };
                    out(pdu);
                    start += n;
                    self.resync = false;
                }
                None if self.resync => start += 1,
                None => {
                    let head: Vec<String> =
                        rest.iter().take(4).map(|b| format!("{b:02x}")).collect();
                    result = Err(format!("bytes {} are no PDU header", head.join(" ")));
                    start = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..start.min(self.buf.len()));
        if self.buf.len() > MAX_PDU {
            self.buf.clear();
            self.resync = true;
        }
        result
    }
}

#[derive(Debug)]
struct PendingBind {
    ts: i64,
    /// The bind came in the flow's client-to-server direction.
    c2s: bool,
    ptype: u8,
    contexts: Vec<Context>,
    auth: Option<Auth>,
    le: bool,
}

#[derive(Debug)]
pub struct DceStream {
    framers: [Framer; 2],
    /// Accepted presentation contexts: the interface and the transfer syntax negotiated for it.
    contexts: HashMap<u16, (SyntaxId, SyntaxId)>,
    binds: PendingCalls<u32, PendingBind, MAX_PENDING>,
    calls: PendingCalls<u32, PendingCall, MAX_PENDING>,
}

impl DceStream {
    pub fn new(midstream: bool) -> Self {
        let f = || Framer {
            buf: Vec::new(),
            resync: midstream,
        };
        DceStream {
            framers: [f(), f()],
            contexts: HashMap::new(),
            binds: PendingCalls::new(),
            calls: PendingCalls::new(),
        }
    }

    pub fn swap(&mut self) {
        self.framers.swap(0, 1);
    }

    pub fn gap(&mut self, d: usize) {
        if let Some(f) = self.framers.get_mut(d) {
            f.buf.clear();
            f.resync = true;
        }
    }
}

impl DceRpc {
    /// Reassembled bytes of one direction of a TCP flow. An error means it is not DCE/RPC.
    #[allow(clippy::too_many_arguments)]
    pub fn data(
        &mut self,
        learned_ports: &mut LearnedPorts,
        st: &mut DceStream,
        e: &OrientedFlow,
        d: usize,
        bytes: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> Result<FlowFacts, String> {
        let mut pdus: Vec<Vec<u8>> = Vec::new();
        let Some(framer) = st.framers.get_mut(d) else {
            return Ok(FlowFacts::default());
        };
        framer.feed(bytes, &mut |p| pdus.push(p.to_vec()))?;
        let mut said = FlowFacts::default();
        for p in pdus {
            let (h, auth, pdu, _) = match wire::parse_co(&p) {
                Ok(x) => x,
                Err(why) => {
                    sink.push(
                        "dcerpc",
                        "malformed_pdu",
                        format!("flow {} call {}: {why}", e.flow_id, call_id_of(&p)),
                    );
                    continue;
                }
            };
            self.pdus += 1;
            said = said.or(self.pdu(learned_ports, st, e, d == 0, h, auth, pdu, ts, sink));
        }
        Ok(said)
    }

    #[allow(clippy::too_many_arguments)]
    fn pdu(
        &mut self,
        learned_ports: &mut LearnedPorts,
        st: &mut DceStream,
        e: &OrientedFlow,
        c2s: bool,
        h: CoHeader,
        auth: Option<Auth>,
        pdu: Pdu<'_>,
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> FlowFacts {
        let mut said = FlowFacts {
            app: Some(App::DceRpc),
            ..FlowFacts::default()
        };
        let is_call = matches!(pdu, Pdu::Bind { .. } | Pdu::Request { .. });
        if is_call && !c2s {
            said.turn = Some(Orientation::DceRpc);
        }
        let first = h.flags & wire::PFC_FIRST_FRAG != 0;
        let last = h.flags & wire::PFC_LAST_FRAG != 0;
        match pdu {
            Pdu::Bind { contexts } => {
                let bind = PendingBind {
                    ts,
                    c2s,
                    ptype: h.ptype,
                    contexts,
                    auth,
                    le: h.le,
                };
                if let Some(old) = st.binds.insert(h.call_id, bind) {
                    self.unanswered_bind(e, h.call_id, &old);
                }
            }
            Pdu::BindAck { sec_addr, results } => {
                let Some(b) = st.binds.remove(&h.call_id) else {
                    return said;
                };
                let port: Option<u16> = sec_addr.as_deref().and_then(|s| s.parse().ok());
                for (i, c) in b.contexts.iter().enumerate() {
                    let res = results.get(i);
                    let accepted = res.is_some_and(|r| r.result == 0);
                    if accepted {
                        let transfer = res.map_or_else(SyntaxId::default, |r| r.transfer);
                        if st.contexts.len() < MAX_CONTEXTS || st.contexts.contains_key(&c.id) {
                            st.contexts.insert(c.id, (c.abstract_syntax, transfer));
                        }
                        said.interface = said.interface.or(Some(c.abstract_syntax));
                        if let (Some(port), wire::BIND_ACK) = (port, h.ptype) {
                            let (_, server, _) = e.roles(!c2s);
                            learned_ports.fact(MappingRow {
                                ts,
                                source: "dcerpc.bind_ack",
                                server: server.to_ip(),
                                transport: Some("tcp"),
                                port: Some(port),
                                program: None,
                                version: None,
                                interface: Some(c.abstract_syntax),
                                protocol: Some("ncacn_ip_tcp"),
                                annotation: None,
                                registered: true,
                                flow_id: e.flow_id,
                            });
                        }
                    }
                    let mut r = bind_row(e, h.call_id, &b, c);
                    r.reply_ts = Some(ts);
                    r.reply = Some(wire::ptype_name(h.ptype));
                    r.bind_result = res.map(|r| r.result);
                    r.negotiated = res.filter(|r| r.result == 0).map(|r| r.transfer);
                    r.sec_addr = sec_addr.clone();
                    self.push(r);
                }
            }
            Pdu::BindNak { reason } => {
                if let Some(b) = st.binds.remove(&h.call_id) {
                    for c in &b.contexts {
                        let mut r = bind_row(e, h.call_id, &b, c);
                        r.reply_ts = Some(ts);
                        r.reply = Some("bind_nak");
                        r.reject_reason = Some(reason);
                        self.push(r);
                    }
                }
            }
            Pdu::Request {
                context_id,
                opnum,
                object,
                stub,
            } => {
                let existing = st.calls.contains_key(&h.call_id);
                if first || !existing {
                    let mut r = row(e, c2s, h.call_id, wire::REQUEST, h.le);
                    r.ts = Some(ts);
                    r.context_id = Some(context_id);
                    let bound = st.contexts.get(&context_id).copied();
                    r.interface = bound.map(|(i, _)| i);
                    r.negotiated = bound.map(|(_, t)| t);
                    r.opnum = Some(opnum);
                    r.object = object;
                    r.auth = auth;
                    if let Some(old) = st.calls.insert(h.call_id, PendingCall::new(r)) {
                        self.push(old.row);
                    }
                }
                if let Some(c) = st.calls.get_mut(&h.call_id) {
                    c.row.fragments += 1;
                    c.row.stub_bytes += stub.len() as u64;
                    if c.epm_op.is_some() {
                        append(&mut c.req_stub, stub);
                    }
                }
            }
            Pdu::Response { context_id, stub } => {
                let c = self.call_for(st, e, c2s, &h, context_id, ts);
                if c.row.reply_ts.is_none() {
                    c.row.reply_ts = Some(ts);
                    c.resp_le = h.le;
                }
                if c.epm_op.is_some() {
                    append(&mut c.resp_stub, stub);
                }
                if last {
                    if let Some(mut c) = st.calls.remove(&h.call_id) {
                        c.row.reply = Some("response");
                        self.finish_call(learned_ports, c, e, c2s, ts, sink);
                    }
                }
            }
            Pdu::Fault { context_id, status } => {
                let c = self.call_for(st, e, c2s, &h, context_id, ts);
                c.row.reply_ts = c.row.reply_ts.or(Some(ts));
                c.row.reply = Some("fault");
                c.row.fault_status = Some(status);
                if let Some(c) = st.calls.remove(&h.call_id) {
                    self.finish_call(learned_ports, c, e, c2s, ts, sink);
                }
            }
            Pdu::Other => {}
        }
        said
    }

    /// The pending call a response or fault answers; one made up from the response alone when
    /// its request was not seen.
    fn call_for<'s>(
        &mut self,
        st: &'s mut DceStream,
        e: &OrientedFlow,
        c2s: bool,
        h: &CoHeader,
        context_id: u16,
        _ts: i64,
    ) -> &'s mut PendingCall {
        let bound = st.contexts.get(&context_id).copied();
        let (c, pushed_out) = st.calls.get_or_insert_with(h.call_id, || {
            let mut r = row(e, !c2s, h.call_id, wire::REQUEST, h.le);
            r.context_id = Some(context_id);
            r.interface = bound.map(|(i, _)| i);
            r.negotiated = bound.map(|(_, t)| t);
            PendingCall::new(r)
        });
        if let Some(old) = pushed_out {
            self.push(old.row);
        }
        c
    }

    /// Binds never answered become rows without a reply.
    fn drain_binds(&mut self, st: &mut DceStream, e: &OrientedFlow) {
        let mut left = st.binds.drain();
        left.sort_by_key(|(id, b)| (b.ts, *id));
        for (id, b) in left {
            self.unanswered_bind(e, id, &b);
        }
    }

    fn unanswered_bind(&mut self, e: &OrientedFlow, id: u32, b: &PendingBind) {
        for c in &b.contexts {
            self.push(bind_row(e, id, b, c));
        }
    }

    fn drain_calls(&mut self, st: &mut DceStream) {
        let mut left: Vec<PendingCall> = st.calls.drain().into_iter().map(|(_, c)| c).collect();
        left.sort_by_key(|c| (c.row.ts, c.row.call_id));
        for c in left {
            self.push(c.row);
        }
    }

    /// A TCP flow ended: binds and calls never answered become rows.
    pub fn close(&mut self, mut st: DceStream, e: &OrientedFlow) {
        self.drain_binds(&mut st, e);
        self.drain_calls(&mut st);
    }
}

fn call_id_of(p: &[u8]) -> u32 {
    wire::co_header(p).map_or(0, |h| h.call_id)
}

fn bind_row(e: &OrientedFlow, call_id: u32, b: &PendingBind, c: &Context) -> DceCallRow {
    let mut r = row(e, b.c2s, call_id, b.ptype, b.le);
    r.ts = Some(b.ts);
    r.context_id = Some(c.id);
    r.interface = Some(c.abstract_syntax);
    r.transfer = c.transfer.clone();
    r.fragments = 1;
    r.auth = b.auth;
    r
}
