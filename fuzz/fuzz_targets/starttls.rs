//! TLS after a plaintext preamble: one TCP connection (SYN, SYN-ACK, then the input's segments)
//! written as a capture and decoded whole, so that the switch to TLS (`app::starttls`), the TLS
//! decoder it starts mid-flow and the tables built from them all see hostile segments: preambles
//! of any length, ClientHello records cut anywhere, retransmissions and holes around the switch.
//!
//! Input: framed segments (`common::frames`); flags bit 0: sent by the server; bit 1: sent again
//! at the previous segment's sequence number (a retransmission or overlap); bit 2: 100 bytes
//! lost before it (a hole); bit 3: no handshake (the connection joined mid-stream).

#![no_main]

mod common;

use std::io::Cursor;

use _core::capture::Source;
use _core::decode::{Decoder, Options};
use _core::packet::emit::{ethernet_frame, EthernetRepr, IpRepr, Ipv4Repr, TcpRepr, L4};
use _core::tables;
use libfuzzer_sys::fuzz_target;

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const PORTS: (u16, u16) = (40000, 25);

fn segment(out: &mut Vec<u8>, n: u32, from_server: bool, seq: u32, flags: u8, payload: &[u8]) {
    let (src, dst, sport, dport) = if from_server {
        (SERVER, CLIENT, PORTS.1, PORTS.0)
    } else {
        (CLIENT, SERVER, PORTS.0, PORTS.1)
    };
    let payload = &payload[..payload.len().min(1400)];
    let ip = IpRepr::V4(Ipv4Repr::new(src, dst, 0, 0));
    let seg = TcpRepr {
        window: 0xffff,
        ..TcpRepr::new(sport, dport, seq, 0, flags)
    };
    let f = ethernet_frame(&EthernetRepr::default(), ip, &L4::Tcp(seg), payload);
    out.extend(n.to_le_bytes()); // seconds
    out.extend(0u32.to_le_bytes());
    out.extend((f.len() as u32).to_le_bytes());
    out.extend((f.len() as u32).to_le_bytes());
    out.extend(f);
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let frames = common::frames(data);
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    pcap.extend(65535u32.to_le_bytes());
    pcap.extend(1u32.to_le_bytes());
    let mut next = [0x1000_0000u32, 0x9000_0000u32];
    let mut last = next;
    let handshake = frames.first().is_none_or(|(f, _)| f & 8 == 0);
    if handshake {
        segment(&mut pcap, 1, false, next[0].wrapping_sub(1), 0x02, &[]);
        segment(&mut pcap, 1, true, next[1].wrapping_sub(1), 0x12, &[]);
    }
    for (i, (flags, payload)) in frames.iter().enumerate() {
        let d = usize::from(flags & 1);
        if flags & 4 != 0 {
            next[d] = next[d].wrapping_add(100);
        }
        let seq = if flags & 2 != 0 { last[d] } else { next[d] };
        segment(&mut pcap, 2 + i as u32, d == 1, seq, 0x18, payload);
        last[d] = seq;
        next[d] = seq.wrapping_add(payload.len().min(1400) as u32);
    }
    let mut dec = Decoder::new(Options::default());
    let raw = Box::new(Cursor::new(pcap));
    if let Ok(mut src) = Source::from_reader_detect(raw, "fuzz.pcap") {
        let _ = dec.decode_source(&mut src, "fuzz.pcap");
    }
    let out = dec.finish();
    let flows = tables::flows_batch(&out.flows, &tables::capture_names(&out.captures));
    let tls = tables::tls_batch(&out.apps.tls.rows);
    if let Err(e) = flows.and(tls) {
        panic!("a table failed to build: {e}");
    }
});
