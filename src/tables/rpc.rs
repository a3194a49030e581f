//! The RPC tables: ONC RPC calls, the port mappings learned, DCE/RPC calls.

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use super::columns::*;
use crate::app::{DceCallRow, RpcCallRow};
use crate::learn::MappingRow;

pub fn rpc_calls_batch(rows: &[RpcCallRow]) -> Result<RecordBatch, ArrowError> {
    fn call(r: &RpcCallRow) -> Option<&crate::proto::oncrpc::CallHeader> {
        r.call.as_ref()
    }
    table(vec![
        ("flow_id", false, u64s(rows, |r| Some(r.flow_id))),
        ("call_ts", true, tss(rows, |r| r.call_ts)),
        ("reply_ts", true, tss(rows, |r| r.reply_ts)),
        ("client_ip", false, addrs(rows, |r| r.client)),
        ("server_ip", false, addrs(rows, |r| r.server)),
        ("server_port", false, u16s(rows, |r| Some(r.server_port))),
        (
            "transport",
            false,
            strs(rows, |r| Some(transport_name(r.proto))),
        ),
        ("xid", false, u32s(rows, |r| Some(r.xid))),
        ("program", true, u32s(rows, |r| call(r).map(|c| c.program))),
        ("version", true, u32s(rows, |r| call(r).map(|c| c.version))),
        (
            "procedure",
            true,
            u32s(rows, |r| call(r).map(|c| c.procedure)),
        ),
        (
            "auth_flavor",
            true,
            u32s(rows, |r| call(r).map(|c| c.auth_flavor)),
        ),
        (
            "auth_machine",
            true,
            strs(rows, |r| call(r).and_then(|c| c.machine.as_deref())),
        ),
        (
            "auth_uid",
            true,
            u32s(rows, |r| call(r).and_then(|c| c.uid)),
        ),
        (
            "auth_gid",
            true,
            u32s(rows, |r| call(r).and_then(|c| c.gid)),
        ),
        ("reply", false, strs(rows, |r| Some(r.reply))),
        ("accept_stat", true, u32s(rows, |r| r.accept_stat)),
        ("reject_stat", true, u32s(rows, |r| r.reject_stat)),
    ])
}

pub fn mappings_batch(rows: &[MappingRow]) -> Result<RecordBatch, ArrowError> {
    table(vec![
        ("ts", false, tss(rows, |r| Some(r.ts))),
        ("source", false, strs(rows, |r| Some(r.source))),
        (
            "server_ip",
            false,
            strs(rows, |r| Some(r.server.to_string())),
        ),
        ("transport", true, strs(rows, |r| r.transport)),
        ("port", true, u16s(rows, |r| r.port)),
        ("rpc_program", true, u32s(rows, |r| r.program)),
        ("rpc_version", true, u32s(rows, |r| r.version)),
        ("interface_uuid", true, strs(rows, |r| uuid_of(r.interface))),
        (
            "interface_version",
            true,
            strs(rows, |r| version_of(r.interface)),
        ),
        ("protocol", true, strs(rows, |r| r.protocol)),
        ("annotation", true, strs(rows, |r| r.annotation.as_deref())),
        ("registered", false, bools(rows, |r| Some(r.registered))),
        ("flow_id", false, u64s(rows, |r| Some(r.flow_id))),
    ])
}

pub fn dcerpc_calls_batch(rows: &[DceCallRow]) -> Result<RecordBatch, ArrowError> {
    table(vec![
        ("flow_id", false, u64s(rows, |r| Some(r.flow_id))),
        ("ts", true, tss(rows, |r| r.ts)),
        ("reply_ts", true, tss(rows, |r| r.reply_ts)),
        (
            "transport",
            false,
            strs(rows, |r| Some(transport_name(r.proto))),
        ),
        ("client_ip", false, addrs(rows, |r| r.client)),
        ("server_ip", false, addrs(rows, |r| r.server)),
        ("server_port", false, u16s(rows, |r| Some(r.server_port))),
        ("call_id", false, u32s(rows, |r| Some(r.call_id))),
        ("ptype", false, strs(rows, |r| Some(r.ptype))),
        ("reply", true, strs(rows, |r| r.reply)),
        ("context_id", true, u16s(rows, |r| r.context_id)),
        ("interface_uuid", true, strs(rows, |r| uuid_of(r.interface))),
        (
            "interface_version",
            true,
            strs(rows, |r| version_of(r.interface)),
        ),
        (
            "transfer_syntaxes",
            true,
            strs(rows, |r| {
                let t: Vec<String> = r.transfer.iter().map(|t| t.uuid.to_string()).collect();
                (!t.is_empty()).then(|| t.join(","))
            }),
        ),
        (
            "transfer_syntax",
            true,
            strs(rows, |r| uuid_of(r.negotiated)),
        ),
        (
            "bind_result",
            true,
            strs(rows, |r| {
                r.bind_result.map(crate::proto::dcerpc::result_name)
            }),
        ),
        ("sec_addr", true, strs(rows, |r| r.sec_addr.as_deref())),
        ("opnum", true, u16s(rows, |r| r.opnum)),
        (
            "object_uuid",
            true,
            strs(rows, |r| r.object.map(|o| o.to_string())),
        ),
        ("fragments", false, u32s(rows, |r| Some(r.fragments))),
        ("stub_bytes", false, u64s(rows, |r| Some(r.stub_bytes))),
        ("fault_status", true, u32s(rows, |r| r.fault_status)),
        ("reject_reason", true, u16s(rows, |r| r.reject_reason)),
        (
            "auth_type",
            true,
            u8s(rows, |r| r.auth.map(|a| a.auth_type)),
        ),
        (
            "auth_level",
            true,
            u8s(rows, |r| r.auth.map(|a| a.auth_level)),
        ),
        (
            "byte_order",
            false,
            strs(rows, |r| Some(if r.le { "little" } else { "big" })),
        ),
        ("pipe", true, strs(rows, |r| r.pipe.as_deref())),
    ])
}
