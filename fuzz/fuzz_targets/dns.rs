//! DNS: messages with compressed names (pointer loops, overlong names, record budgets), CNAME
//! targets, addresses, and the names decoder over UDP datagrams (DNS and mDNS) and over a TCP
//! stream of length-prefixed messages.
//!
//! Input: framed chunks (see `common::frames`). Flags: bit 0 sent by the server, bit 1 the chunk
//! is bytes of the TCP stream (else one UDP datagram), bit 2 bytes were lost before this chunk
//! (TCP), bit 3 a datagram comes from the mDNS port, bits 4-7 advance the clock.

#![no_main]

mod common;

use _core::app::names::{DnsStream, Names, Source};
use _core::packet::{IPPROTO_TCP, IPPROTO_UDP};
use _core::proto::dns::{self, Message};
use libfuzzer_sys::fuzz_target;

fn stateless(b: &[u8]) {
    if let Some(m) = Message::parse(b) {
        for q in &m.questions {
            std::hint::black_box((m.text(q.name_at), m.name(q.name_at)));
        }
        for r in &m.records {
            std::hint::black_box((m.text(r.name_at), r.address(), dns::type_name(r.rtype)));
            if let Some(t) = m.cname_target(r) {
                std::hint::black_box(t.text());
            }
        }
    }
    // A name at every offset of a short message, as a pointer may lead anywhere.
    for at in 0..b.len().min(64) {
        std::hint::black_box(dns::read_name(b, at).map(|(n, end)| (n.text(), end)));
        std::hint::black_box(dns::name_text(b, at));
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let udp = common::ends(IPPROTO_UDP, 50_000, 53);
    let tcp = common::ends(IPPROTO_TCP, 50_001, 53);
    let mut names = Names::default();
    let mut stream = DnsStream::default();
    let mut ts = 0i64;
    for (flags, chunk) in common::frames(data) {
        let d = usize::from(flags & 1);
        ts += i64::from(flags >> 4) * 1_000_000;
        stateless(chunk);
        if flags & 2 != 0 {
            if flags & 4 != 0 {
                stream.gap(d);
            }
            names.stream_data(&mut stream, &tcp, d, chunk, ts);
        } else {
            let source = if flags & 8 != 0 {
                Source::Mdns
            } else {
                Source::Dns
            };
            names.udp_datagram(&udp, d == 0, chunk, ts, source);
        }
    }
    names.finish();
    std::hint::black_box(names.rows.len());
});
