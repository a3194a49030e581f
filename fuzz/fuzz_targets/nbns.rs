//! NetBIOS name service: DNS-format messages whose names are NetBIOS-encoded, the bindings of
//! answers and registrations (multi-address records, group names, scopes), and the names decoder
//! over UDP 137 datagrams.
//!
//! Input: framed datagrams (see `common::frames`). Flags: bit 0 sent by the server, bits 1-7
//! advance the clock.

#![no_main]

mod common;

use _core::app::names::{Names, Source};
use _core::packet::IPPROTO_UDP;
use _core::proto::dns::Message;
use _core::proto::nbns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let e = common::ends(IPPROTO_UDP, 137, 137);
    let mut names = Names::default();
    let mut ts = 0i64;
    for (flags, chunk) in common::frames(data) {
        ts += i64::from(flags >> 1) * 1_000_000;
        if let Some(m) = Message::parse(chunk) {
            for r in &m.records {
                std::hint::black_box(m.name(r.name_at).map(|n| nbns::decode_name(&n)));
            }
            for q in &m.questions {
                std::hint::black_box(m.name(q.name_at).map(|n| nbns::decode_name(&n)));
            }
            std::hint::black_box(nbns::bindings(&m).len());
        }
        names.udp_datagram(&e, flags & 1 == 0, chunk, ts, Source::Nbns);
    }
    names.finish();
    std::hint::black_box(names.rows.len());
});
