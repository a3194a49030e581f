//! Arrow schemas and builders for every output table. Each schema is written here once; the Python
//! side checks its frames against DESIGN.md's contract.

use std::sync::Arc;

use arrow_array::builder::{
    StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use arrow_array::{
    BooleanArray, StringArray, TimestampNanosecondArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};

use crate::anomaly::Anomalies;
use crate::app::{DceCallRow, NameRow, RpcCallRow, TlsRow};
use crate::decode::CaptureInfo;
use crate::flow::Flow;
use crate::learn::MappingRow;
use crate::packet::{Addr, IPPROTO_TCP};
use crate::proto::ndr::SyntaxId;
use crate::proto::tls::{version_name, ClientHello, ServerHello};

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

/// Every table of a decode's output as text, with its counters: two decodes are the same when
/// these are (tests and the differential fuzz target compare ways of decoding with it).
pub fn fingerprint(out: &crate::decode::Output) -> String {
    let names = capture_names(&out.captures);
    let flows = flows_batch(&out.flows, &names);
    let mut text = format!("{:?}\n{:?}\n{flows:?}\n", out.stats, out.anomalies.counts);
    let others = others_where(&|_| true, |name| other_table(out, name));
    for t in others.into_iter().flat_map(|(_, t)| t) {
        text += &format!("{t:?}\n");
    }
    text
}

/// The tables of a decode, in the order `Tables` holds them.
pub const TABLE_NAMES: [&str; 8] = [
    "flows",
    "anomalies",
    "captures",
    "rpc_calls",
    "mappings",
    "dcerpc_calls",
    "tls",
    "names",
];

/// The tables of a decode's output asked for, as Arrow (None: not asked for, not built).
pub struct Tables {
    pub flows: Option<Result<Vec<RecordBatch>, ArrowError>>,
    /// The other tables, named, in the order of `TABLE_NAMES`.
    pub others: Others,
}

type Others = [(&'static str, Option<Result<RecordBatch, ArrowError>>); 7];

/// The table other than flows named `name`.
fn other_table(out: &crate::decode::Output, name: &str) -> Result<RecordBatch, ArrowError> {
    match name {
        "anomalies" => anomalies_batch(&out.anomalies, &out.captures),
        "captures" => captures_batch(&out.captures),
        "rpc_calls" => rpc_calls_batch(out.apps.decoded().rpc_calls),
        "mappings" => mappings_batch(out.apps.decoded().mappings),
        "dcerpc_calls" => dcerpc_calls_batch(out.apps.decoded().dcerpc_calls),
        "tls" => tls_batch(out.apps.decoded().tls),
        "names" => names_batch(out.apps.decoded().names),
        _ => Err(ArrowError::InvalidArgumentError(format!(
            "no table named {name}"
        ))),
    }
}

/// The tables other than flows, each built when `want` names it (`made`: how).
fn others_where(
    want: &dyn Fn(&str) -> bool,
    made: impl Fn(&str) -> Result<RecordBatch, ArrowError>,
) -> Others {
    let [_, others @ ..] = TABLE_NAMES;
    others.map(|name| (name, want(name).then(|| made(name))))
}

/// The tables of `out` that `want` names: the flows table on this thread (and more, when it is
/// large), the others meanwhile on one of their own (on the benchmark capture they take as long
/// as the flows table: 28 k TLS rows). A command that writes only the flows table asks for it
/// alone, and the machine's cores share it instead.
pub fn output_tables(out: &crate::decode::Output, want: &(dyn Fn(&str) -> bool + Sync)) -> Tables {
    let names = capture_names(&out.captures);
    let any_other = TABLE_NAMES.iter().skip(1).any(|n| want(n));
    let build_others = || others_where(want, |name| other_table(out, name));
    let (flows, others) = std::thread::scope(|s| {
        let aside = any_other.then(|| std::thread::Builder::new().spawn_scoped(s, build_others));
        let flows = want("flows").then(|| flows_batches(&out.flows, &names));
        let others = match aside {
            Some(Ok(handle)) => handle.join().unwrap_or_else(|_| {
                others_where(want, |_| {
                    Err(ArrowError::ComputeError(
                        "panic while building the tables".into(),
                    ))
                })
            }),
            // None asked for (nothing is built), or no thread to be had: build them here.
            None | Some(Err(_)) => build_others(),
        };
        (flows, others)
    });
    Tables { flows, others }
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

fn flows_batches_in(
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

fn transport_name(proto: u8) -> &'static str {
    if proto == IPPROTO_TCP {
        "tcp"
    } else {
        "udp"
    }
}

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

/// A table defined once by its columns: (name, nullable, values); the schema follows from them.
fn table(cols: Vec<(&str, bool, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, nullable, a)| Field::new(*n, a.data_type().clone(), *nullable))
        .collect();
    let arrays = cols.into_iter().map(|(_, _, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn tss<R>(rows: &[R], f: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(f)
            .collect::<TimestampNanosecondArray>()
            .with_timezone("UTC"),
    )
}

/// Addresses as text, written digit by digit into one buffer (`Addr::push_to`), not through `fmt`.
fn addrs<R>(rows: &[R], f: impl Fn(&R) -> Addr) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 15);
    let mut buf = String::with_capacity(40);
    for r in rows {
        buf.clear();
        f(r).push_to(&mut buf);
        b.append_value(&buf);
    }
    Arc::new(b.finish())
}

fn strs<'a, R, S: AsRef<str>>(rows: &'a [R], f: impl Fn(&'a R) -> Option<S>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn u8s<R>(rows: &[R], f: impl Fn(&R) -> Option<u8>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt8Array>())
}

fn u16s<R>(rows: &[R], f: impl Fn(&R) -> Option<u16>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt16Array>())
}

fn u32s<R>(rows: &[R], f: impl Fn(&R) -> Option<u32>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt32Array>())
}

fn u64s<R>(rows: &[R], f: impl Fn(&R) -> Option<u64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt64Array>())
}

fn bools<R>(rows: &[R], f: impl Fn(&R) -> Option<bool>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<BooleanArray>())
}

fn uuid_of(s: Option<SyntaxId>) -> Option<String> {
    s.map(|s| s.uuid.to_string())
}

fn version_of(s: Option<SyntaxId>) -> Option<String> {
    s.map(|s| s.version())
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

fn versions(v: &[u16]) -> Option<String> {
    let mut names = String::new();
    for (i, &v) in v.iter().enumerate() {
        if i > 0 {
            names.push(',');
        }
        names.push_str(&version_name(v));
    }
    (!names.is_empty()).then_some(names)
}

pub fn tls_batch(rows: &[TlsRow]) -> Result<RecordBatch, ArrowError> {
    fn ch(r: &TlsRow) -> Option<&ClientHello> {
        r.client_hello.as_ref()
    }
    fn sh(r: &TlsRow) -> Option<&ServerHello> {
        r.server_hello.as_ref()
    }
    table(vec![
        ("flow_id", false, u64s(rows, |r| Some(r.flow_id))),
        ("ts", true, tss(rows, |r| r.ts)),
        ("server_ts", true, tss(rows, |r| r.server_ts)),
        ("client_ip", false, addrs(rows, |r| r.client)),
        ("server_ip", false, addrs(rows, |r| r.server)),
        ("server_port", false, u16s(rows, |r| Some(r.server_port))),
        ("sslv2", false, bools(rows, |r| Some(r.sslv2))),
        (
            "client_offset",
            false,
            u64s(rows, |r| Some(r.client_offset)),
        ),
        (
            "record_version",
            true,
            strs(rows, |r| ch(r).map(|c| version_name(c.record_version))),
        ),
        (
            "client_version",
            true,
            strs(rows, |r| ch(r).map(|c| version_name(c.legacy_version))),
        ),
        (
            "supported_versions",
            true,
            strs(rows, |r| {
                ch(r).and_then(|c| versions(&c.supported_versions))
            }),
        ),
        (
            "sni",
            true,
            strs(rows, |r| ch(r).and_then(|c| c.sni.as_deref())),
        ),
        (
            "alpn",
            true,
            strs(rows, |r| {
                ch(r)
                    .filter(|c| !c.alpn.is_empty())
                    .map(|c| c.alpn.join(","))
            }),
        ),
        (
            "version",
            true,
            strs(rows, |r| sh(r).map(|s| version_name(s.version))),
        ),
        ("cipher", true, u16s(rows, |r| sh(r).map(|s| s.cipher))),
        (
            "server_alpn",
            true,
            strs(rows, |r| sh(r).and_then(|s| s.alpn.as_deref())),
        ),
        (
            "hello_retry",
            false,
            bools(rows, |r| Some(sh(r).is_some_and(|s| s.hello_retry))),
        ),
    ])
}

pub fn names_batch(rows: &[NameRow]) -> Result<RecordBatch, ArrowError> {
    table(vec![
        ("ts", false, tss(rows, |r| Some(r.ts))),
        ("flow_id", false, u64s(rows, |r| Some(r.flow_id))),
        ("name", false, strs(rows, |r| Some(r.name.as_str()))),
        ("ip", false, addrs(rows, |r| r.addr)),
        ("source", false, strs(rows, |r| Some(r.source.name()))),
        ("record", false, strs(rows, |r| Some(r.record))),
        ("ttl", false, u32s(rows, |r| Some(r.ttl))),
        ("canonical", true, strs(rows, |r| r.canonical.as_deref())),
        ("sender_ip", false, addrs(rows, |r| r.sender)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_paths, Options};

    #[test]
    fn versions_are_named_in_order_unknown_ones_in_hex() {
        assert_eq!(
            versions(&[0x0304, 0x0a0a, 0x0303]).as_deref(),
            Some("TLSv1.3,0x0a0a,TLSv1.2")
        );
        assert_eq!(versions(&[]), None);
        assert_eq!(version_name(0x0200), "SSLv2");
    }

    #[test]
    fn the_tables_built_side_by_side_are_the_tables_built_one_by_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
        let t = output_tables(&out, &|_| true);
        let names = capture_names(&out.captures);
        assert_eq!(
            t.flows.unwrap().unwrap(),
            vec![flows_batch(&out.flows, &names).unwrap()]
        );
        let here = [
            anomalies_batch(&out.anomalies, &out.captures),
            captures_batch(&out.captures),
            rpc_calls_batch(out.apps.decoded().rpc_calls),
            mappings_batch(out.apps.decoded().mappings),
            dcerpc_calls_batch(out.apps.decoded().dcerpc_calls),
            tls_batch(out.apps.decoded().tls),
            names_batch(out.apps.decoded().names),
        ];
        for ((name, aside), here) in t.others.into_iter().zip(here) {
            assert_eq!(aside.unwrap().unwrap(), here.unwrap(), "{name}");
        }
        let names = t_names(&output_tables(&out, &|_| true));
        assert_eq!(names, TABLE_NAMES[1..]);
        assert!(tls_batch(out.apps.decoded().tls).unwrap().num_rows() >= 1);
    }

    #[test]
    fn only_the_tables_asked_for_are_built() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
        let t = output_tables(&out, &|n| n == "flows");
        assert!(t.flows.is_some());
        assert!(t.others.iter().all(|(_, t)| t.is_none()));
        let t = output_tables(&out, &|n| n == "tls" || n == "anomalies");
        let [(_, anomalies), (_, captures), (_, rpc_calls), _, _, (_, tls), (_, names)] = t.others;
        assert!(t.flows.is_none() && captures.is_none() && rpc_calls.is_none() && names.is_none());
        assert_eq!(
            tls.unwrap().unwrap(),
            tls_batch(out.apps.decoded().tls).unwrap()
        );
        assert!(anomalies.unwrap().is_ok());
    }

    fn t_names(t: &Tables) -> Vec<&'static str> {
        t.others.iter().map(|(name, _)| *name).collect()
    }

    #[test]
    fn the_flows_table_built_in_parts_is_the_table_built_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
        let names = capture_names(&out.captures);
        let whole = flows_batch(&out.flows, &names).unwrap();
        assert!(whole.num_rows() >= 12, "{}", whole.num_rows());
        for (least, threads, parts) in [
            (4, 3, 3),
            (4, 1, 1),
            (5, 64, whole.num_rows() / 5),
            (1 << 20, 8, 1),
        ] {
            let batches = flows_batches_in(&out.flows, &names, least, threads).unwrap();
            assert_eq!(batches.len(), parts, "{least} {threads}");
            let joined = arrow_select::concat::concat_batches(&flows_schema(), &batches).unwrap();
            assert_eq!(joined, whole);
        }
    }
}
