//! Arrow schemas and builders for every output table. Each schema is written here once; the Python
//! side checks its frames against DESIGN.md's contract.

use std::sync::Arc;

use arrow_array::builder::{
    StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use arrow_array::builder::BooleanBuilder;

use crate::anomaly::Anomalies;
use crate::app::{MappingRow, RpcCallRow};
use crate::decode::CaptureInfo;
use crate::flow::Flow;
use crate::packet::IPPROTO_TCP;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

pub fn flows_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("flow_id", UInt64, false),
        f("capture", Utf8, false),
        f("transport", Utf8, false),
        f("client_ip", Utf8, false),
        f("client_port", UInt16, false),
        f("server_ip", Utf8, false),
        f("server_port", UInt16, false),
        f("orientation", Utf8, false),
        f("first_ts", ts(), false),
        f("last_ts", ts(), false),
        f("packets_c2s", UInt64, false),
        f("packets_s2c", UInt64, false),
        f("bytes_c2s", UInt64, false),
        f("bytes_s2c", UInt64, false),
        f("payload_c2s", UInt64, false),
        f("payload_s2c", UInt64, false),
        f("vlan", UInt16, true),
        f("outcome", Utf8, true),
        f("app", Utf8, true),
        f("rpc_program", UInt32, true),
        f("rpc_version", UInt32, true),
        f("dcerpc_interface", Utf8, true),
        f("tls_version", Utf8, true),
        f("tls_sni", Utf8, true),
    ]))
}

pub fn anomalies_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("capture", Utf8, false),
        f("record_index", UInt64, false),
        f("byte_offset", UInt64, false),
        f("layer", Utf8, false),
        f("kind", Utf8, false),
        f("detail", Utf8, false),
    ]))
}

pub fn captures_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("capture", Utf8, false),
        f("format", Utf8, true),
        f("compression", Utf8, false),
        f("link_types", Utf8, false),
        f("packets", UInt64, false),
        f("bytes", UInt64, false),
        f("first_ts", ts(), true),
        f("last_ts", ts(), true),
        f("error", Utf8, true),
    ]))
}

fn name(captures: &[CaptureInfo], i: u32) -> &str {
    captures.get(i as usize).map_or("", |c| c.path.as_str())
}

pub fn flows_batch(flows: &[Flow], captures: &[CaptureInfo]) -> Result<RecordBatch, ArrowError> {
    let n = flows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut cap = StringBuilder::with_capacity(n, n * 16);
    let mut transport = StringBuilder::with_capacity(n, n * 3);
    let mut cip = StringBuilder::with_capacity(n, n * 15);
    let mut cport = UInt16Builder::with_capacity(n);
    let mut sip = StringBuilder::with_capacity(n, n * 15);
    let mut sport = UInt16Builder::with_capacity(n);
    let mut orient = StringBuilder::with_capacity(n, n * 8);
    let mut first = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut counters: [UInt64Builder; 6] = std::array::from_fn(|_| UInt64Builder::with_capacity(n));
    let mut vlan = UInt16Builder::with_capacity(n);
    let mut outcome = StringBuilder::with_capacity(n, n * 9);
    let mut nulls_str: [StringBuilder; 4] =
        std::array::from_fn(|_| StringBuilder::with_capacity(n, 0));
    let mut rpc_prog = UInt32Builder::with_capacity(n);
    let mut rpc_vers = UInt32Builder::with_capacity(n);
    let mut ipbuf = String::with_capacity(48);
    for fl in flows {
        use std::fmt::Write;
        id.append_value(fl.id);
        cap.append_value(name(captures, fl.capture));
        transport.append_value(if fl.proto == IPPROTO_TCP {
            "tcp"
        } else {
            "udp"
        });
        ipbuf.clear();
        let _ = write!(ipbuf, "{}", fl.client);
        cip.append_value(&ipbuf);
        cport.append_value(fl.client_port);
        ipbuf.clear();
        let _ = write!(ipbuf, "{}", fl.server);
        sip.append_value(&ipbuf);
        sport.append_value(fl.server_port);
        orient.append_value(fl.orientation.name());
        first.append_value(fl.first_ts);
        last.append_value(fl.last_ts);
        let values = [
            fl.packets[0],
            fl.packets[1],
            fl.bytes[0],
            fl.bytes[1],
            fl.payload[0],
            fl.payload[1],
        ];
        for (b, v) in counters.iter_mut().zip(values) {
            b.append_value(v);
        }
        vlan.append_option(fl.vlan);
        outcome.append_value(fl.outcome().name());
        let [app, _iface, _tlsv, _sni] = &mut nulls_str;
        app.append_option(fl.app.map(|a| a.name()));
        for b in nulls_str.iter_mut().skip(1) {
            b.append_null();
        }
        rpc_prog.append_option(fl.rpc_program);
        rpc_vers.append_option(fl.rpc_version);
    }
    let [pc, ps, bc, bs, lc, ls] = counters.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [app, iface, tlsv, sni] = nulls_str.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(cap.finish()),
        Arc::new(transport.finish()),
        Arc::new(cip.finish()),
        Arc::new(cport.finish()),
        Arc::new(sip.finish()),
        Arc::new(sport.finish()),
        Arc::new(orient.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        pc,
        ps,
        bc,
        bs,
        lc,
        ls,
        Arc::new(vlan.finish()),
        Arc::new(outcome.finish()),
        app,
        Arc::new(rpc_prog.finish()),
        Arc::new(rpc_vers.finish()),
        iface,
        tlsv,
        sni,
    ];
    RecordBatch::try_new(flows_schema(), cols)
}

pub fn anomalies_batch(
    an: &Anomalies,
    captures: &[CaptureInfo],
) -> Result<RecordBatch, ArrowError> {
    let n = an.rows.len();
    let mut cap = StringBuilder::with_capacity(n, n * 16);
    let mut idx = UInt64Builder::with_capacity(n);
    let mut off = UInt64Builder::with_capacity(n);
    let mut layer = StringBuilder::with_capacity(n, n * 8);
    let mut kind = StringBuilder::with_capacity(n, n * 16);
    let mut detail = StringBuilder::with_capacity(n, n * 48);
    for a in &an.rows {
        cap.append_value(name(captures, a.capture));
        idx.append_value(a.record_index);
        off.append_value(a.byte_offset);
        layer.append_value(a.layer);
        kind.append_value(a.kind);
        detail.append_value(&a.detail);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cap.finish()),
        Arc::new(idx.finish()),
        Arc::new(off.finish()),
        Arc::new(layer.finish()),
        Arc::new(kind.finish()),
        Arc::new(detail.finish()),
    ];
    RecordBatch::try_new(anomalies_schema(), cols)
}

pub fn captures_batch(captures: &[CaptureInfo]) -> Result<RecordBatch, ArrowError> {
    let n = captures.len();
    let mut cap = StringBuilder::new();
    let mut format = StringBuilder::new();
    let mut comp = StringBuilder::new();
    let mut links = StringBuilder::new();
    let mut packets = UInt64Builder::with_capacity(n);
    let mut bytes = UInt64Builder::with_capacity(n);
    let mut first = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut error = StringBuilder::new();
    for c in captures {
        cap.append_value(&c.path);
        format.append_option((!c.format.is_empty()).then_some(c.format));
        comp.append_value(c.compression);
        let l: Vec<String> = c.link_types.iter().map(ToString::to_string).collect();
        links.append_value(l.join(","));
        packets.append_value(c.packets);
        bytes.append_value(c.bytes);
        first.append_option(c.first_ts);
        last.append_option(c.last_ts);
        error.append_option(c.error.as_deref());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cap.finish()),
        Arc::new(format.finish()),
        Arc::new(comp.finish()),
        Arc::new(links.finish()),
        Arc::new(packets.finish()),
        Arc::new(bytes.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(error.finish()),
    ];
    RecordBatch::try_new(captures_schema(), cols)
}

fn transport_name(proto: u8) -> &'static str {
    if proto == IPPROTO_TCP {
        "tcp"
    } else {
        "udp"
    }
}

pub fn rpc_calls_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("flow_id", UInt64, false),
        f("call_ts", ts(), true),
        f("reply_ts", ts(), true),
        f("client_ip", Utf8, false),
        f("server_ip", Utf8, false),
        f("server_port", UInt16, false),
        f("transport", Utf8, false),
        f("xid", UInt32, false),
        f("program", UInt32, true),
        f("version", UInt32, true),
        f("procedure", UInt32, true),
        f("auth_flavor", UInt32, true),
        f("auth_machine", Utf8, true),
        f("auth_uid", UInt32, true),
        f("auth_gid", UInt32, true),
        f("reply", Utf8, false),
        f("accept_stat", UInt32, true),
        f("reject_stat", UInt32, true),
    ]))
}

pub fn rpc_calls_batch(rows: &[RpcCallRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut flow = UInt64Builder::with_capacity(n);
    let mut call_ts = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut reply_ts = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut cip = StringBuilder::new();
    let mut sip = StringBuilder::new();
    let mut sport = UInt16Builder::with_capacity(n);
    let mut transport = StringBuilder::new();
    let mut xid = UInt32Builder::with_capacity(n);
    let mut u32s: [UInt32Builder; 6] = std::array::from_fn(|_| UInt32Builder::with_capacity(n));
    let mut machine = StringBuilder::new();
    let mut reply = StringBuilder::new();
    let mut stats: [UInt32Builder; 2] = std::array::from_fn(|_| UInt32Builder::with_capacity(n));
    for r in rows {
        flow.append_value(r.flow_id);
        call_ts.append_option(r.call_ts);
        reply_ts.append_option(r.reply_ts);
        cip.append_value(r.client.to_string());
        sip.append_value(r.server.to_string());
        sport.append_value(r.server_port);
        transport.append_value(transport_name(r.proto));
        xid.append_value(r.xid);
        let c = r.call.as_ref();
        let values = [
            c.map(|c| c.program),
            c.map(|c| c.version),
            c.map(|c| c.procedure),
            c.map(|c| c.auth_flavor),
            c.and_then(|c| c.uid),
            c.and_then(|c| c.gid),
        ];
        for (b, v) in u32s.iter_mut().zip(values) {
            b.append_option(v);
        }
        machine.append_option(c.and_then(|c| c.machine.as_deref()));
        reply.append_value(r.reply);
        for (b, v) in stats.iter_mut().zip([r.accept_stat, r.reject_stat]) {
            b.append_option(v);
        }
    }
    let [prog, vers, proc_, flavor, uid, gid] = u32s.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [acc, rej] = stats.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(flow.finish()),
        Arc::new(call_ts.finish()),
        Arc::new(reply_ts.finish()),
        Arc::new(cip.finish()),
        Arc::new(sip.finish()),
        Arc::new(sport.finish()),
        Arc::new(transport.finish()),
        Arc::new(xid.finish()),
        prog,
        vers,
        proc_,
        flavor,
        Arc::new(machine.finish()),
        uid,
        gid,
        Arc::new(reply.finish()),
        acc,
        rej,
    ];
    RecordBatch::try_new(rpc_calls_schema(), cols)
}

pub fn mappings_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("ts", ts(), false),
        f("source", Utf8, false),
        f("server_ip", Utf8, false),
        f("transport", Utf8, true),
        f("port", UInt16, true),
        f("rpc_program", UInt32, true),
        f("rpc_version", UInt32, true),
        f("interface_uuid", Utf8, true),
        f("interface_version", Utf8, true),
        f("registered", Boolean, false),
        f("flow_id", UInt64, false),
    ]))
}

pub fn mappings_batch(rows: &[MappingRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut ts_b = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut source = StringBuilder::new();
    let mut server = StringBuilder::new();
    let mut transport = StringBuilder::new();
    let mut port = UInt16Builder::with_capacity(n);
    let mut prog = UInt32Builder::with_capacity(n);
    let mut vers = UInt32Builder::with_capacity(n);
    let mut uuid = StringBuilder::new();
    let mut uver = StringBuilder::new();
    let mut registered = BooleanBuilder::with_capacity(n);
    let mut flow = UInt64Builder::with_capacity(n);
    for r in rows {
        ts_b.append_value(r.ts);
        source.append_value(r.source);
        server.append_value(r.server.to_string());
        transport.append_option(r.transport);
        port.append_option(r.port);
        prog.append_value(r.program);
        vers.append_value(r.version);
        uuid.append_null();
        uver.append_null();
        registered.append_value(r.registered);
        flow.append_value(r.flow_id);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(ts_b.finish()),
        Arc::new(source.finish()),
        Arc::new(server.finish()),
        Arc::new(transport.finish()),
        Arc::new(port.finish()),
        Arc::new(prog.finish()),
        Arc::new(vers.finish()),
        Arc::new(uuid.finish()),
        Arc::new(uver.finish()),
        Arc::new(registered.finish()),
        Arc::new(flow.finish()),
    ];
    RecordBatch::try_new(mappings_schema(), cols)
}
