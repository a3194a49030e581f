//! DCE/RPC: connection-oriented PDUs (header, bind/bind_ack/alter contexts, request, response,
//! fault, auth trailers), connectionless PDUs, and the application decoder over a sequence of them
//! (the TCP framer with fragment joining and resynchronisation, binds matched to acks, calls to
//! responses, the endpoint mapper's towers into the learned-port table, UDP activities).
//!
//! Input: framed PDUs (see `common::frames`). Flags: bit 0 sent by the server, bit 1 a chunk of
//! the TCP stream rather than a UDP datagram, bit 2 bytes were lost before this chunk, bit 3 the
//! flow is the endpoint mapper's (port 135) rather than a dynamic port, bits 4-7 advance the clock.

#![no_main]

mod common;

use _core::anomaly::{Anomalies, Position};
use _core::app::dcerpc::DceStream;
use _core::app::{SessionDecoders, Sink};
use _core::packet::{IPPROTO_TCP, IPPROTO_UDP};
use _core::proto::dcerpc;
use libfuzzer_sys::fuzz_target;

fn stateless(pdu: &[u8]) {
    std::hint::black_box((dcerpc::co_header(pdu), dcerpc::looks_like_bind(pdu)));
    if let Some(&t) = pdu.get(2) {
        std::hint::black_box(dcerpc::ptype_name(t));
    }
    if let Ok((h, auth, p, n)) = dcerpc::parse_co(pdu) {
        std::hint::black_box((h, auth, p, n));
    }
    if let Some((h, body)) = dcerpc::parse_cl(pdu) {
        std::hint::black_box(dcerpc::cl_status(&h, body));
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let mut apps = SessionDecoders::default();
    let mut an = Anomalies::default();
    let mut stream = DceStream::new(false);
    let mut ts = 0i64;
    let mut last_tcp = common::ends(IPPROTO_TCP, 50_000, 135);
    for (flags, pdu) in common::frames(data) {
        let d = usize::from(flags & 1);
        let port = if flags & 8 != 0 { 135 } else { 49_664 };
        ts += i64::from(flags >> 4) * 1_000_000;
        stateless(pdu);
        let mut sink = Sink {
            an: &mut an,
            at: Position::default(),
        };
        if flags & 2 != 0 {
            let e = common::ends(IPPROTO_TCP, 50_000, port);
            last_tcp = e;
            if flags & 4 != 0 {
                stream.gap(d);
            }
            let r = apps.dce.data(
                &mut apps.learned_ports,
                &mut stream,
                &e,
                d,
                pdu,
                ts,
                &mut sink,
            );
            if r.is_err() {
                // Not DCE/RPC: the decoder stops decoding the flow; start a fresh one midstream.
                apps.dce
                    .close(std::mem::replace(&mut stream, DceStream::new(true)), &e);
            }
        } else {
            let e = common::ends(IPPROTO_UDP, 50_000, port);
            let said =
                apps.dce
                    .udp_datagram(&mut apps.learned_ports, &e, d == 0, pdu, ts, &mut sink);
            std::hint::black_box(said);
        }
    }
    apps.dce.close(stream, &last_tcp);
    apps.finish();
    std::hint::black_box((apps.dce.calls.len(), apps.learned_ports.mappings.len()));
});
