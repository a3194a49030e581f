//! Column builders shared by the tables: each makes one Arrow array from a field of the rows.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};

use crate::packet::{Addr, IPPROTO_TCP};
use crate::proto::ndr::SyntaxId;
use crate::proto::tls::version_name;

pub(super) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub(super) fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

pub(super) fn transport_name(proto: u8) -> &'static str {
    if proto == IPPROTO_TCP {
        "tcp"
    } else {
        "udp"
    }
}

/// A table defined once by its columns: (name, nullable, values); the schema follows from them.
pub(super) fn table(cols: Vec<(&str, bool, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, nullable, a)| Field::new(*n, a.data_type().clone(), *nullable))
        .collect();
    let arrays = cols.into_iter().map(|(_, _, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

pub(super) fn tss<R>(rows: &[R], f: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(f)
            .collect::<TimestampNanosecondArray>()
            .with_timezone("UTC"),
    )
}

/// Addresses as text, written digit by digit into one buffer (`Addr::push_to`), not through `fmt`.
pub(super) fn addrs<R>(rows: &[R], f: impl Fn(&R) -> Addr) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 15);
    let mut buf = String::with_capacity(40);
    for r in rows {
        buf.clear();
        f(r).push_to(&mut buf);
        b.append_value(&buf);
    }
    Arc::new(b.finish())
}

pub(super) fn strs<'a, R, S: AsRef<str>>(
    rows: &'a [R],
    f: impl Fn(&'a R) -> Option<S>,
) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

pub(super) fn u8s<R>(rows: &[R], f: impl Fn(&R) -> Option<u8>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt8Array>())
}

pub(super) fn u16s<R>(rows: &[R], f: impl Fn(&R) -> Option<u16>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt16Array>())
}

pub(super) fn u32s<R>(rows: &[R], f: impl Fn(&R) -> Option<u32>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt32Array>())
}

pub(super) fn u64s<R>(rows: &[R], f: impl Fn(&R) -> Option<u64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<UInt64Array>())
}

pub(super) fn bools<R>(rows: &[R], f: impl Fn(&R) -> Option<bool>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<BooleanArray>())
}

pub(super) fn uuid_of(s: Option<SyntaxId>) -> Option<String> {
    s.map(|s| s.uuid.to_string())
}

pub(super) fn version_of(s: Option<SyntaxId>) -> Option<String> {
    s.map(|s| s.version())
}

pub(super) fn versions(v: &[u16]) -> Option<String> {
    let mut names = String::new();
    for (i, &v) in v.iter().enumerate() {
        if i > 0 {
            names.push(',');
        }
        names.push_str(&version_name(v));
    }
    (!names.is_empty()).then_some(names)
}
