//! TCP stream reassembly (`flow::tcp_stream::HalfStream`: in-order delivery, retransmissions,
//! overlaps, out-of-order holding, overflow gaps, sequence wrap-around, `flush`) driven by a
//! sequence of segments; the same segments also drive a whole application stream
//! (`app::StreamState` through `SessionDecoders::tcp_segment` and `SessionDecoders::close`), so reassembled bytes reach
//! the ONC RPC record marking, the DCE/RPC framer and the TLS hello buffering.
//!
//! Input: a kind byte (bits 0-1: ONC RPC, DCE/RPC or TLS; bit 2: stream picked up midstream;
//! bits 3-5: the server port), the initial sequence number of each direction (u32 BE each), then
//! segments: a flags byte (bit 0 SYN, bit 1 server to client, bit 2 absolute sequence number
//! follows as u32, else an i16 offset from that direction's next expected byte; bit 3 a large
//! payload: u16 length, that many zeros (at most `MAX_BIG_TOTAL` in all), else a u8 length and the bytes themselves;
//! bit 4 swap the stream's orientation first; bits 5-7 advance the clock), then its fields.

#![no_main]

mod common;

use _core::anomaly::{Anomalies, Position};
use _core::app::{DecoderKind, SessionDecoders, Sink, StreamState};
use _core::flow::tcp_stream::{HalfStream, StreamPiece};
use _core::flow::Session;
use _core::packet::IPPROTO_TCP;
use common::Bytes;
use libfuzzer_sys::fuzz_target;

const PORTS: [u16; 8] = [111, 135, 443, 2049, 49664, 6502, 7099, 0];
/// Large payloads: zeros, which every application decoder rejects at once (their content comes
/// from the small segments), so they exercise the reassembly bounds without making each run slow.
static BIG: [u8; 65_535] = [0; 65_535];
/// Large-payload bytes one input may ask for: enough to overflow the out-of-order buffer. Past
/// it, large payloads are empty (a few bytes of input must not make a run hundreds of times
/// slower).
const MAX_BIG_TOTAL: usize = _core::flow::tcp_stream::MAX_OOO_BYTES + (128 << 10);

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let mut c = Bytes::new(data);
    let Some(k) = c.u8() else { return };
    let kind = [
        DecoderKind::OncRpc,
        DecoderKind::DceRpc,
        DecoderKind::Tls,
        DecoderKind::Tls,
    ][usize::from(k & 3)];
    let midstream = k & 4 != 0;
    let port = PORTS[usize::from(k >> 3) & 7];
    let mut next = [c.u32().unwrap_or(0), c.u32().unwrap_or(0)];

    let mut bare: [HalfStream; 2] = Default::default();
    let mut delivered = 0usize;
    let mut apps = SessionDecoders::default();
    let mut an = Anomalies::default();
    let mut st = Some(StreamState::new(
        common::ends(IPPROTO_TCP, 40_000, port),
        kind,
        midstream,
    ));
    let mut ts = 0i64;
    let mut big_total = 0usize;

    while let Some(h) = c.u8() {
        let syn = h & 1 != 0;
        let d = usize::from(h >> 1 & 1);
        let seq = if h & 4 != 0 {
            c.u32().unwrap_or(0)
        } else {
            let delta = c.u16().unwrap_or(0) as i16;
            next[d].wrapping_add(delta as i32 as u32)
        };
        let payload = if h & 8 != 0 {
            let n = usize::from(c.u16().unwrap_or(0)).min(MAX_BIG_TOTAL - big_total);
            big_total += n;
            &BIG[..n]
        } else {
            let n = usize::from(c.u8().unwrap_or(0));
            c.take(n)
        };
        ts += i64::from(h >> 5) * 1_000_000;
        let start = if syn { seq.wrapping_add(1) } else { seq };
        next[d] = start.wrapping_add(payload.len() as u32);

        bare[d].segment(seq, syn, payload, &mut |ch| match ch {
            StreamPiece::Data(b) => delivered = delivered.wrapping_add(b.len()),
            StreamPiece::Gap(n) => delivered = delivered.wrapping_add(n as usize),
        });

        // As the decoder does: a stream that is done is closed, one that failed is dropped.
        if let Some(mut s) = st.take() {
            if h & 0x10 != 0 {
                s.swap();
            }
            let mut sink = Sink {
                an: &mut an,
                at: Position::default(),
            };
            let said = apps.tcp_segment(&mut s, d == 0, seq, syn, payload, ts, &mut sink);
            std::hint::black_box(said);
            if s.done {
                apps.close(Box::new(s), ts, &mut sink);
            } else if !s.failed {
                st = Some(s);
            }
        }
    }
    for dir in &mut bare {
        dir.flush(&mut |ch| {
            if let StreamPiece::Data(b) = ch {
                delivered = delivered.wrapping_add(b.len());
            }
        });
    }
    let mut sink = Sink {
        an: &mut an,
        at: Position::default(),
    };
    if let Some(s) = st {
        apps.close(Box::new(s), ts, &mut sink);
    }
    apps.finish();
    std::hint::black_box((delivered, bare[0].held_bytes(), bare[1].held_bytes()));
});
