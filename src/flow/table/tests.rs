use super::*;

/// A table whose flows carry no session.
#[derive(Debug)]
pub struct NoSession;

impl Session for NoSession {
    fn swap(&mut self) {}
}

type Table = FlowTable<NoSession>;

fn pkt(ts: i64, src: u8, sport: u16, dst: u8, dport: u16, flags: u8) -> PacketMeta {
    PacketMeta {
        ts,
        first_ts: ts,
        frames: 1,
        frame_bytes: 60,
        src: Addr::v4([10, 0, 0, src]),
        dst: Addr::v4([10, 0, 0, dst]),
        sport,
        dport,
        proto: IPPROTO_TCP,
        vlan: None,
        tunnel: Tunnel::NONE,
        tcp_flags: flags,
        payload_len: 0,
        capture: 0,
    }
}

#[test]
fn handshake_and_outcomes() {
    let mut t = Table::new(FlowLimits::default());
    t.update(&pkt(1, 1, 40000, 2, 111, SYN));
    t.update(&pkt(2, 2, 111, 1, 40000, SYN | ACK));
    t.update(&pkt(3, 1, 40000, 2, 111, FIN | ACK));
    t.update(&pkt(4, 1, 40001, 2, 6502, SYN));
    t.update(&pkt(5, 2, 6502, 1, 40001, RST | ACK));
    t.update(&pkt(6, 1, 40002, 2, 7099, SYN));
    t.update(&pkt(7, 2, 2099, 3, 50000, ACK)); // mid-stream, server side speaks first
    let flows = t.into_flows();
    let o: Vec<_> = flows
        .iter()
        .map(|f| (f.outcome().name(), f.orientation.name(), f.server_port))
        .collect();
    assert_eq!(
        o,
        [
            ("completed", "syn", 111),
            ("refused", "syn", 6502),
            ("unanswered", "syn", 7099),
            ("midstream", "well_known", 2099)
        ]
    );
    assert_eq!(flows[0].packets, [2, 1]);
}

#[test]
fn a_full_table_emits_about_an_eighth_at_a_time() {
    // Large enough that slots are reused in an order unlike their age (freed slots are
    // refilled by the newest flows): each batch must still be the oldest eighth.
    let max = 300_000;
    let mut t = Table::new(FlowLimits {
        max_flows: max,
        ..FlowLimits::default()
    });
    let mut largest = 0;
    for i in 0..2_000_000u32 {
        let [_, a, b, c] = i.to_be_bytes();
        let mut p = pkt(i64::from(i), 1, u16::from_be_bytes([b, c]), 2, 135, SYN);
        p.src = Addr::v4([10, a, 0, 1]);
        t.update(&p);
        largest = largest.max(t.take_finished().len());
    }
    assert!(t.evicted > 1_600_000, "{}", t.evicted);
    assert!(
        largest <= max / 6,
        "one batch emitted {largest} of {max} flows"
    );
}

#[test]
fn port_reuse_after_close_splits() {
    let mut t = Table::new(FlowLimits::default());
    t.update(&pkt(1, 1, 40000, 2, 6502, SYN));
    t.update(&pkt(2, 2, 6502, 1, 40000, RST | ACK));
    t.update(&pkt(3, 1, 40000, 2, 6502, SYN));
    t.update(&pkt(4, 1, 40000, 2, 6502, SYN)); // a retransmission stays in the same flow
    let flows = t.into_flows();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[1].packets, [2, 0]);
}

#[test]
fn a_swap_turns_counters_flags_and_direction_around() {
    let mut t = Table::new(FlowLimits::default());
    // Mid-stream: the first packet's sender is taken for the client.
    let mut p = pkt(1, 1, 40000, 2, 50000, ACK);
    p.payload_len = 10;
    t.update(&p);
    let back = pkt(2, 2, 50000, 1, 40000, FIN | ACK);
    let (slot, c2s) = t.update(&back);
    assert!(!c2s);
    let mut f = t.get_mut(slot).unwrap();
    f.swap(Orientation::Rpc);
    assert_eq!(f.client_port, 50000);
    // After the swap the same packets go the other way.
    assert!(t.update(&back).1);
    assert!(!t.update(&p).1);
    let flows = t.into_flows();
    assert_eq!(flows[0].packets, [2, 2]);
    assert_eq!(flows[0].payload, [0, 20]);
    assert_eq!(flows[0].client_port, 50000);
    assert_eq!(flows[0].orientation, Orientation::Rpc);
    // The FIN came from the side that is now the client.
    assert_eq!(flows[0].tcp & FIN_C, FIN_C);
}

#[test]
fn a_flow_between_one_endpoint_and_itself_is_client_to_server_both_ways() {
    let mut t = Table::new(FlowLimits::default());
    let p = pkt(1, 1, 7000, 1, 7000, ACK);
    let (slot, c2s) = t.update(&p);
    assert!(c2s);
    t.get_mut(slot).unwrap().swap(Orientation::Rpc);
    assert!(t.update(&p).1);
    // The swap moved the first packet to the other side's count; the second is c2s again.
    assert_eq!(t.into_flows()[0].packets, [1, 1]);
}

#[test]
fn quiet_flows_say_so_until_a_first_payload_is_due() {
    let mut t = Table::new(FlowLimits::default());
    let c = pkt(1, 1, 40000, 2, 443, SYN);
    let h = t.update_at(&c, 0);
    assert!(!h.quiet);
    let mut f = t.get_mut(h.slot).unwrap();
    f.first_tls[0] = Some(true);
    f.set_quiet(true);
    let h = t.update_at(&c, 1);
    assert!(h.quiet && h.seen);
    // The server's first payload is still to be looked at.
    let s = t.update_at(&pkt(2, 2, 443, 1, 40000, SYN | ACK), 2);
    assert!(s.quiet && !s.seen);
    t.get_mut(h.slot).unwrap().set_quiet(false);
    assert!(!t.update_at(&c, 3).quiet);
    // A flow made anew in a reused slot starts loud.
    t.get_mut(h.slot).unwrap().set_quiet(true);
    t.update_at(&pkt(3, 2, 443, 1, 40000, RST | ACK), 4);
    let again = t.update_at(&pkt(4, 1, 40000, 2, 443, SYN), 5);
    assert_eq!(t.split_reuse, 1);
    assert!(!again.quiet);
}

#[test]
fn bounded_with_eviction() {
    let mut t = Table::new(FlowLimits {
        max_flows: 100,
        idle_timeout_ns: i64::MAX,
    });
    for i in 0..1000u16 {
        t.update(&pkt(i64::from(i), 1, 1024 + i, 2, 80, SYN));
        assert!(t.live() <= 100);
    }
    assert!(t.evicted >= 900);
    assert_eq!(t.into_flows().len(), 1000);
}
