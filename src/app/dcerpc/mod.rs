//! DCE/RPC over flows: connection-oriented PDUs framed out of reassembled TCP streams, binds
//! resolving presentation contexts to interfaces, calls matched to responses and faults by
//! call_id, connectionless PDUs over UDP, and the endpoint mapper's answers (and bind_ack
//! secondary addresses) turned into `mappings` rows and learned ports.

mod cl;
mod co;
mod mapper;
mod rows;
#[cfg(test)]
mod tests;

pub use co::DceStream;
pub use rows::DceCallRow;

use mapper::epm_facts;

use super::{OrientedFlow, Sink};
use crate::bounded::BoundedRows;
use crate::learn::LearnedPorts;
use crate::pending::PendingCalls;
use crate::proto::epm;
use crate::proto::ndr::{Encoding, Uuid, NDR64};

pub const EPM_PORT: u16 = 135;
/// Binds and calls awaiting their answer, per TCP flow; presentation contexts per association.
pub const MAX_PENDING: usize = 1024;
pub const MAX_CONTEXTS: usize = 256;
/// Connectionless calls awaiting their answer, over all UDP flows; and answered ones
/// remembered so that a second copy of their datagrams is known for one.
pub const MAX_PENDING_CL: usize = 65_536;
/// Fragment numbers remembered per connectionless call and direction (a copy of a fragment
/// already seen is not counted again).
pub const MAX_CL_FRAGMENTS: usize = 4096;
/// Stub bytes reassembled per endpoint-mapper call (other interfaces' stubs are only counted).
/// Stub bytes kept per call and direction: room for an endpoint-mapper answer of `epm::MAX_TOWERS`
/// towers (about 90 bytes each).
pub const MAX_STUB: usize = 8 << 20;
/// A whole PDU: frag_length is 16 bits.
const MAX_PDU: usize = 1 << 16;

#[derive(Debug)]
struct PendingCall {
    row: DceCallRow,
    /// The endpoint-mapper operation, when the call is one whose stubs are decoded.
    epm_op: Option<u16>,
    req_stub: Vec<u8>,
    req_le: bool,
    resp_stub: Vec<u8>,
    resp_le: bool,
    /// Connectionless only: the fragment numbers seen of the request and of the response.
    fragnums: [Vec<u16>; 2],
    /// Connectionless only: the caller's port (the row has its address).
    client_port: u16,
}

impl PendingCall {
    /// The stubs' encoding: NDR64 when the call's context negotiated it.
    fn encoding(&self, le: bool) -> Encoding {
        Encoding {
            le,
            ndr64: self.row.negotiated.is_some_and(|t| t.uuid == NDR64),
        }
    }

    fn new(row: DceCallRow) -> Self {
        let epm_op = match (row.interface, row.opnum) {
            (Some(i), Some(op @ (epm::OP_LOOKUP | epm::OP_MAP))) if i.uuid == epm::INTERFACE => {
                Some(op)
            }
            _ => None,
        };
        let le = row.le;
        PendingCall {
            row,
            epm_op,
            req_stub: Vec::new(),
            req_le: le,
            resp_stub: Vec::new(),
            resp_le: le,
            fragnums: [Vec::new(), Vec::new()],
            client_port: 0,
        }
    }
}

fn append(stub: &mut Vec<u8>, b: &[u8]) {
    let room = MAX_STUB.saturating_sub(stub.len());
    stub.extend_from_slice(b.get(..b.len().min(room)).unwrap_or(&[]));
}

/// Connectionless calls are keyed by activity and sequence number.
type ClKey = (Uuid, u32);

#[derive(Debug, Default)]
pub struct DceRpc {
    pub calls: BoundedRows<DceCallRow>,
    cl_pending: PendingCalls<ClKey, PendingCall, MAX_PENDING_CL>,
    /// Connectionless calls answered, with the flow that carried the call: a copy of their
    /// datagrams (two taps, a SPAN of both directions) is not a new call.
    cl_answered: PendingCalls<ClKey, u64, MAX_PENDING_CL>,
    pub pdus: u64,
}

impl DceRpc {
    fn push(&mut self, r: DceCallRow) {
        self.calls.push(r);
    }

    /// A call answered: the row, and for the endpoint mapper the facts its answer holds.
    fn finish_call(
        &mut self,
        learned_ports: &mut LearnedPorts,
        c: PendingCall,
        e: &OrientedFlow,
        reply_c2s: bool,
        ts: i64,
        sink: &mut Sink<'_>,
    ) {
        if let Some(op) = c.epm_op {
            // The responder sent the reply: the client when it came client-to-server.
            let responder = if reply_c2s { e.client } else { e.server };
            if c.row.reply == Some("response") {
                let ok = epm_facts(learned_ports, &c, op, responder.to_ip(), e.flow_id, ts);
                if !ok {
                    let detail = if c.resp_stub.len() >= MAX_STUB {
                        format!(
                            "flow {} call {}: endpoint-mapper response longer than the {} bytes kept of it",
                            e.flow_id, c.row.call_id, MAX_STUB
                        )
                    } else {
                        format!(
                            "flow {} call {}: endpoint-mapper response of {} bytes not decodable",
                            e.flow_id,
                            c.row.call_id,
                            c.resp_stub.len()
                        )
                    };
                    sink.push("epm", "undecodable_epm", detail);
                }
            }
        }
        self.push(c.row);
    }

    pub fn finish(&mut self) {
        self.drain_cl();
        crate::order::sort_rows_by_key(&mut self.calls, |c| {
            (c.ts.or(c.reply_ts), c.flow_id, c.call_id, c.context_id)
        });
    }
}
