//! The flows, anomalies and captures tables: schemas written out column by column, and their
//! builders (the flows table built on several threads when it is large).

use std::sync::Arc;

use arrow_array::builder::{
    StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};

use super::columns::{f, ts};
use crate::anomaly::Anomalies;
use crate::decode::CaptureInfo;
use crate::flow::Flow;
use crate::packet::IPPROTO_TCP;
use crate::proto::tls::version_name;

pub fn flows_schema() -> SchemaRef {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("flow_id", UInt64, false),
        f("capture", Utf8, false),
        f("first_record", UInt64, false),
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
        f("encap", Utf8, true),
        f("tunnel_id", UInt32, true),
        f("outcome", Utf8, true),
        f("app", Utf8, true),
        f("rpc_program", UInt32, true),
        f("rpc_version", UInt32, true),
        f("dcerpc_interface", Utf8, true),
        f("tls_version", Utf8, true),
        f("tls_sni", Utf8, true),
        f("security", Utf8, true),
        f("community_id", Utf8, true),
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

/// The capture names of `flows_batch`, by capture index.
pub fn capture_names(captures: &[CaptureInfo]) -> Vec<String> {
    captures.iter().map(|c| c.path.clone()).collect()
}

/// Rows below which the flows table is built on one thread.
const PARALLEL_ROWS: usize = 16_384;

/// The flows table as batches built side by side on the machine's cores (each a run of rows, in
/// order): at the end of a decode the other cores are idle, and building the table is most of
/// what is left.
pub fn flows_batches(flows: &[Flow], names: &[String]) -> Result<Vec<RecordBatch>, ArrowError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    flows_batches_in(flows, names, PARALLEL_ROWS, threads)
}

pub(super) fn flows_batches_in(
    flows: &[Flow],
    names: &[String],
    least: usize,
    threads: usize,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let parts = (flows.len() / least.max(1)).clamp(1, threads.max(1));
    if parts == 1 {
        return flows_batch(flows, names).map(|b| vec![b]);
    }
    let rows = flows.len().div_ceil(parts);
    std::thread::scope(|s| {
        let mut runs = flows.chunks(rows);
        let first = runs.next().unwrap_or_default();
        let rest: Vec<_> = runs
            .map(|run| s.spawn(move || flows_batch(run, names)))
            .collect();
        let mut out = vec![flows_batch(first, names)?];
        for handle in rest {
            let batch = handle.join().map_err(|_| {
                ArrowError::ComputeError("panic while building the flows table".into())
            })?;
            out.push(batch?);
        }
        Ok(out)
    })
}

pub fn flows_batch(flows: &[Flow], names: &[String]) -> Result<RecordBatch, ArrowError> {
    let n = flows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut cap = StringBuilder::with_capacity(n, n * 16);
    let mut first_record = UInt64Builder::with_capacity(n);
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
    let mut encap = StringBuilder::with_capacity(n, 0);
    let mut tunnel_id = UInt32Builder::with_capacity(n);
    let mut outcome = StringBuilder::with_capacity(n, n * 9);
    let mut nulls_str: [StringBuilder; 5] =
        std::array::from_fn(|_| StringBuilder::with_capacity(n, 0));
    let mut rpc_prog = UInt32Builder::with_capacity(n);
    let mut rpc_vers = UInt32Builder::with_capacity(n);
    let mut community = StringBuilder::with_capacity(n, n * 30);
    let mut ipbuf = String::with_capacity(48);
    for fl in flows {
        id.append_value(fl.id);
        cap.append_value(names.get(fl.capture as usize).map_or("", String::as_str));
        first_record.append_value(fl.first_record);
        transport.append_value(if fl.proto == IPPROTO_TCP {
            "tcp"
        } else {
            "udp"
        });
        ipbuf.clear();
        fl.client.push_to(&mut ipbuf);
        cip.append_value(&ipbuf);
        cport.append_value(fl.client_port);
        ipbuf.clear();
        fl.server.push_to(&mut ipbuf);
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
        encap.append_option(fl.encap.name());
        tunnel_id.append_option(fl.tunnel_id);
        outcome.append_value(fl.outcome().name());
        let [app, iface, tlsv, sni, security] = &mut nulls_str;
        app.append_option(fl.app.map(|a| a.name()));
        let info = fl.info.as_deref();
        iface.append_option(info.and_then(|i| i.interface).map(|i| i.uuid.to_string()));
        tlsv.append_option(info.and_then(|i| i.tls_version).map(version_name));
        sni.append_option(info.and_then(|i| i.tls_sni.as_deref()));
        security.append_option(match (fl.proto, fl.first_tls[0]) {
            (IPPROTO_TCP, _) if info.is_some_and(|i| i.tls_offset.is_some()) => Some("starttls"),
            (IPPROTO_TCP, Some(true)) => Some("tls"),
            (IPPROTO_TCP, Some(false)) => Some("plaintext"),
            _ => None,
        });
        rpc_prog.append_option(fl.rpc_program);
        rpc_vers.append_option(fl.rpc_version);
        // Of the conversation inside any tunnel, VLAN or not: as every other tool hashes it.
        let id = crate::community_id::v1(
            0,
            fl.proto,
            &fl.client,
            &fl.server,
            Some((fl.client_port, fl.server_port)),
        );
        community.append_option(id.as_ref().map(|c| c.as_str()));
    }
    let [pc, ps, bc, bs, lc, ls] = counters.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [app, iface, tlsv, sni, security] = nulls_str.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(cap.finish()),
        Arc::new(first_record.finish()),
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
        Arc::new(encap.finish()),
        Arc::new(tunnel_id.finish()),
        Arc::new(outcome.finish()),
        app,
        Arc::new(rpc_prog.finish()),
        Arc::new(rpc_vers.finish()),
        iface,
        tlsv,
        sni,
        security,
        Arc::new(community.finish()),
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
