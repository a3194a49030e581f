//! TLS: record and hello heuristics, handshake bytes joined across records, ClientHello and
//! ServerHello (extensions, SNI, ALPN, supported versions, key shares), and the application
//! decoder gathering hellos across records and segments of both directions.
//!
//! Input: framed chunks of a TCP stream (see `common::frames`). Flags: bit 0 sent by the server,
//! bit 1 bytes were lost before this chunk (a stream gap), bits 2-7 advance the clock.

#![no_main]

mod common;

use _core::anomaly::{Anomalies, Position};
use _core::app::tls::TlsStream;
use _core::app::{SessionDecoders, Sink};
use _core::packet::IPPROTO_TCP;
use _core::proto::tls;
use libfuzzer_sys::fuzz_target;

fn hello(record_version: u16, t: u8, body: &[u8]) {
    match t {
        tls::CLIENT_HELLO => {
            if let Some(ch) = tls::parse_client_hello(record_version, body) {
                std::hint::black_box(tls::version_name(ch.max_version()));
            }
        }
        tls::SERVER_HELLO => {
            if let Some(sh) = tls::parse_server_hello(body) {
                std::hint::black_box(tls::version_name(sh.version));
            }
        }
        _ => {}
    }
}

fn stateless(b: &[u8]) {
    std::hint::black_box((
        tls::looks_like_tls(b, tls::CLIENT_HELLO),
        tls::looks_like_tls(b, tls::SERVER_HELLO),
        tls::looks_like_record(b),
        tls::looks_like_sslv2_hello(b),
    ));
    if let Some((rv, t, body)) = tls::first_message(b) {
        hello(rv, t, body);
    }
    if let Some((rv, hs)) = tls::handshake_bytes(b) {
        if let Some((t, body)) = tls::handshake_message(&hs) {
            hello(rv, t, body);
        }
    }
    // The bytes as a bare handshake message too (what follows the record header).
    if let Some((t, body)) = tls::handshake_message(b) {
        hello(0x0303, t, body);
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let e = common::ends(IPPROTO_TCP, 50_000, 443);
    let mut apps = SessionDecoders::default();
    let mut stream = TlsStream::default();
    let mut an = Anomalies::default();
    let mut ts = 0i64;
    for (flags, chunk) in common::frames(data) {
        let d = usize::from(flags & 1);
        ts += i64::from(flags >> 2) * 1_000_000;
        stateless(chunk);
        if flags & 2 != 0 {
            stream.gap(d);
        }
        let mut sink = Sink {
            an: &mut an,
            at: Position::default(),
        };
        std::hint::black_box(apps.tls.data(&mut stream, &e, d, chunk, ts, &mut sink));
        if stream.finished() {
            apps.tls.close(std::mem::take(&mut stream), &e);
        }
    }
    apps.tls.close(stream, &e);
    apps.finish();
    std::hint::black_box((apps.tls.rows.len(), an.total()));
});
