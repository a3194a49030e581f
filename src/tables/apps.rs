//! The application tables: TLS handshakes and names (DNS, NetBIOS).

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use super::columns::*;
use crate::app::{NameRow, TlsRow};
use crate::proto::tls::{version_name, ClientHello, ServerHello};

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
