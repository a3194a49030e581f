//! Connectionless DCE/RPC over UDP: calls keyed by activity and sequence number, fragments
//! counted once however many copies of them a capture holds.

use super::rows::row;
use super::{append, DceCallRow, DceRpc, PendingCall, MAX_CL_FRAGMENTS};
use crate::app::{FlowFacts, OrientedFlow, Sink};
use crate::application::App;
use crate::flow::table::Orientation;
use crate::learn::LearnedPorts;
use crate::proto::dcerpc::{self as wire, Auth, ClHeader};

/// Whether fragment `n` is new to `seen` (and remembers it while there is room).
fn first_copy(seen: &mut Vec<u16>, n: u16) -> bool {
    if seen.contains(&n) {
        return false;
    }
    if seen.len() < MAX_CL_FRAGMENTS {
        seen.push(n);
    }
    true
}

impl DceRpc {
    /// One UDP datagram of a connectionless DCE/RPC flow.
    #[allow(clippy::too_many_arguments)]
    pub fn udp_datagram(
        &mut self,
        learned_ports: &mut LearnedPorts,
        e: &OrientedFlow,
        c2s: bool,
        payload: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> Option<FlowFacts> {
        let Some((h, body)) = wire::parse_cl(payload) else {
            sink.push(
                "dcerpc",
                "not_dcerpc",
                format!(
                    "UDP datagram of flow {} on port {}: no connectionless DCE/RPC PDU",
                    e.flow_id, e.server_port
                ),
            );
            return None;
        };
        self.pdus += 1;
        let mut said = FlowFacts {
            app: Some(App::DceRpc),
            interface: Some(h.interface),
            ..FlowFacts::default()
        };
        let key = (h.activity, h.seqnum);
        let more = h.flags1 & wire::CL_FRAG != 0 && h.flags1 & wire::CL_LAST_FRAG == 0;
        match h.ptype {
            wire::REQUEST => {
                if !c2s {
                    said.turn = Some(Orientation::DceRpc);
                }
                if self.cl_answered.get(&key) == Some(&e.flow_id) {
                    // A copy of a request already answered.
                    return Some(said);
                }
                if self
                    .cl_pending
                    .get(&key)
                    .is_some_and(|c| c.row.flow_id != e.flow_id)
                {
                    // The same activity and sequence number sent to another endpoint: another
                    // call (the first one went unanswered there).
                    if let Some(old) = self.cl_pending.remove(&key) {
                        self.push(old.row);
                    }
                }
                let (c, pushed_out) = self.cl_pending.get_or_insert_with(key, || {
                    let mut r = cl_row(e, c2s, &h);
                    r.ts = Some(ts);
                    let mut c = PendingCall::new(r);
                    c.client_port = if c2s { e.client_port } else { e.server_port };
                    c
                });
                if let Some(old) = pushed_out {
                    self.calls.push(old.row);
                }
                if c.row.reply.is_none() && first_copy(&mut c.fragnums[0], h.fragnum) {
                    c.row.fragments += 1;
                    c.row.stub_bytes += body.len() as u64;
                    if c.epm_op.is_some() {
                        append(&mut c.req_stub, body);
                    }
                }
            }
            wire::RESPONSE | wire::FAULT | wire::CL_REJECT => {
                if c2s {
                    // The side taken for the client answered: it is the server.
                    said.turn = Some(Orientation::DceRpc);
                }
                if !self.cl_pending.contains_key(&key) && self.cl_answered.contains_key(&key) {
                    // A copy of an answer already matched to its call.
                    return Some(said);
                }
                let (c, pushed_out) = self.cl_pending.get_or_insert_with(key, || {
                    let mut c = PendingCall::new(cl_row(e, !c2s, &h));
                    c.client_port = if c2s { e.server_port } else { e.client_port };
                    c
                });
                if let Some(old) = pushed_out {
                    self.calls.push(old.row);
                }
                c.row.reply_ts = c.row.reply_ts.or(Some(ts));
                c.resp_le = h.le;
                if c.row.flow_id != e.flow_id {
                    // Answered from another port (or address) than the one called: the call's
                    // flow and this one are both answered.
                    said.answered_elsewhere =
                        Some((c.row.client, c.client_port, c.row.server, c.row.server_port));
                }
                if h.ptype == wire::RESPONSE {
                    if !first_copy(&mut c.fragnums[1], h.fragnum) {
                        return Some(said);
                    }
                    if c.epm_op.is_some() {
                        append(&mut c.resp_stub, body);
                    }
                    if more {
                        return Some(said);
                    }
                    c.row.reply = Some("response");
                } else {
                    c.row.reply = Some(wire::ptype_name(h.ptype));
                    c.row.fault_status = wire::cl_status(&h, body);
                }
                if let Some(c) = self.cl_pending.remove(&key) {
                    // Bounded: the oldest copies are the least likely to come again.
                    self.cl_answered.insert(key, c.row.flow_id);
                    self.finish_call(learned_ports, c, e, c2s, ts, sink);
                }
            }
            _ => {}
        }
        Some(said)
    }

    pub(super) fn drain_cl(&mut self) {
        let mut left = self.cl_pending.drain();
        // The key breaks ties: two activities may share a call's time and number, and the map's
        // order differs from run to run.
        left.sort_by_key(|(key, c)| (c.row.ts, c.row.call_id, *key));
        for (_, c) in left {
            self.push(c.row);
        }
    }
}

fn cl_row(e: &OrientedFlow, sender_is_c2s: bool, h: &ClHeader) -> DceCallRow {
    let mut r = row(e, sender_is_c2s, h.seqnum, wire::REQUEST, h.le);
    r.interface = Some(h.interface);
    r.opnum = Some(h.opnum);
    r.object = (!h.object.is_nil()).then_some(h.object);
    r.auth = (h.auth_proto != 0).then_some(Auth {
        auth_type: h.auth_proto,
        auth_level: 0,
    });
    r
}
