//! The `dcerpc` table's row, and a row made up for a call seen on a flow.

use super::super::OrientedFlow;
use crate::packet::Addr;
use crate::proto::dcerpc::{self as wire, Auth};
use crate::proto::ndr::{SyntaxId, Uuid};

#[derive(Debug, Clone)]
pub struct DceCallRow {
    pub flow_id: u64,
    pub ts: Option<i64>,
    pub reply_ts: Option<i64>,
    pub proto: u8,
    pub client: Addr,
    pub server: Addr,
    pub server_port: u16,
    pub call_id: u32,
    pub ptype: &'static str,
    pub reply: Option<&'static str>,
    pub context_id: Option<u16>,
    pub interface: Option<SyntaxId>,
    pub transfer: Vec<SyntaxId>,
    /// The transfer syntax the server accepted for the row's presentation context.
    pub negotiated: Option<SyntaxId>,
    pub bind_result: Option<u16>,
    pub sec_addr: Option<String>,
    pub opnum: Option<u16>,
    pub object: Option<Uuid>,
    pub fragments: u32,
    pub stub_bytes: u64,
    pub fault_status: Option<u32>,
    pub reject_reason: Option<u16>,
    pub auth: Option<Auth>,
    pub le: bool,
    /// The SMB named pipe that carried the call (ncacn_np), set by `app::smb`.
    pub pipe: Option<std::sync::Arc<str>>,
}

pub(super) fn row(
    e: &OrientedFlow,
    sender_is_c2s: bool,
    call_id: u32,
    ptype: u8,
    le: bool,
) -> DceCallRow {
    let (client, server, server_port) = e.roles(sender_is_c2s);
    DceCallRow {
        flow_id: e.flow_id,
        ts: None,
        reply_ts: None,
        proto: e.proto,
        client,
        server,
        server_port,
        call_id,
        ptype: wire::ptype_name(ptype),
        reply: None,
        context_id: None,
        interface: None,
        transfer: Vec::new(),
        negotiated: None,
        bind_result: None,
        sec_addr: None,
        opnum: None,
        object: None,
        fragments: 0,
        stub_bytes: 0,
        fault_status: None,
        reject_reason: None,
        auth: None,
        le,
        pipe: None,
    }
}
