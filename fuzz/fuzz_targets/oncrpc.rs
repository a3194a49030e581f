//! ONC RPC: the strict message parser and the call heuristics, TCP record marking (fresh and
//! resynchronising), and the application decoder over a sequence of messages (calls matched to
//! replies across TCP and UDP, portmap/rpcbind facts into the learned-port table).
//!
//! Input: framed messages (see `common::frames`). Flags: bit 0 sent by the server, bit 1 a chunk
//! of the TCP stream (record-marked) rather than a UDP datagram, bit 2 bytes were lost before this
//! chunk (a stream gap), bits 3-7 advance the clock.

#![no_main]

mod common;

use _core::anomaly::{Anomalies, Position};
use _core::app::oncrpc::{OncStream, Rpc};
use _core::app::{SessionDecoders, Sink};
use _core::packet::{IPPROTO_TCP, IPPROTO_UDP};
use _core::proto::oncrpc::{self, Message, RecordEvent, RecordMarking};
use _core::proto::portmap;
use libfuzzer_sys::fuzz_target;

fn stateless(msg: &[u8]) {
    std::hint::black_box((
        oncrpc::looks_like_call(msg),
        oncrpc::looks_like_tcp_call(msg),
    ));
    if let Some(Message::Call(c)) = oncrpc::parse(msg) {
        let q = portmap::parse_call(c.header.version, c.header.procedure, c.args);
        std::hint::black_box((
            q,
            portmap::procedure_name(c.header.version, c.header.procedure),
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let tcp = common::ends(IPPROTO_TCP, 800, 111);
    let udp = common::ends(IPPROTO_UDP, 800, 111);
    let mut apps = SessionDecoders::default();
    let mut an = Anomalies::default();
    let at = Position::default();
    let mut stream = OncStream::new(false);
    let mut marks = [RecordMarking::default(), RecordMarking::midstream()];
    let mut ts = 0i64;
    for (flags, msg) in common::frames(data) {
        let d = usize::from(flags & 1);
        ts += i64::from(flags >> 3) * 1_000_000;
        stateless(msg);
        if flags & 2 != 0 {
            if flags & 4 != 0 {
                Rpc::gap(&mut stream, d);
                marks[d].gap();
            }
            // The record marking alone, each record through the parser.
            marks[d].feed(msg, &mut |ev| {
                if let RecordEvent::Record(r, _) = ev {
                    stateless(r);
                }
            });
            let mut sink = Sink { an: &mut an, at };
            let r = apps.rpc.data(
                &mut apps.learned_ports,
                &mut stream,
                &tcp,
                d,
                msg,
                ts,
                &mut sink,
            );
            if r.is_err() {
                // Not ONC RPC: the decoder stops decoding the flow; start a fresh one midstream.
                apps.rpc
                    .close(std::mem::replace(&mut stream, OncStream::new(true)));
            }
        } else {
            let (dst, dport) = if d == 0 {
                (udp.server, udp.server_port)
            } else {
                (udp.client, udp.client_port)
            };
            std::hint::black_box(apps.rpc.answers_pending_udp(dst, dport, msg));
            let said =
                apps.rpc
                    .udp_datagram(&mut apps.learned_ports, &udp, d == 0, msg, ts, &mut an, at);
            std::hint::black_box(said);
        }
    }
    apps.rpc.close(stream);
    apps.finish();
    std::hint::black_box((apps.rpc.calls.len(), apps.learned_ports.mappings.len()));
});
