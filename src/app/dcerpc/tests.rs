use super::co::Framer;
use super::rows::row;
use super::*;
use crate::app::{OrientedFlow, Sink};
use crate::flow::table::Orientation;
use crate::packet::Addr;
use crate::proto::dcerpc as wire;

#[test]
fn calls_never_answered_leave_in_one_order_whatever_the_map_holds() {
    // Fuzzing found rows of equal time and call number leaving in the hash map's order,
    // which differs from run to run (fuzz/regressions/chunks/dcerpc-cl-tie).
    let e = OrientedFlow {
        flow_id: 1,
        client: Addr::default(),
        client_port: 1,
        server: Addr::default(),
        server_port: 135,
        proto: 17,
    };
    let mut d = DceRpc::default();
    for a in (0..32u8).rev() {
        let mut r = row(&e, true, 7, wire::REQUEST, true);
        r.ts = Some(5);
        r.object = Some(Uuid([a; 16]));
        d.cl_pending.insert((Uuid([a; 16]), 7), PendingCall::new(r));
    }
    d.finish();
    let order: Vec<u8> = d
        .calls
        .iter()
        .filter_map(|c| c.object)
        .map(|u| u.0[0])
        .collect();
    assert_eq!(order, (0..32).collect::<Vec<u8>>());
}

fn pdu(call_id: u8, len: u8) -> Vec<u8> {
    let mut p = vec![
        5,
        0,
        wire::REQUEST,
        3,
        0x10,
        0,
        0,
        0,
        len,
        0,
        0,
        0,
        call_id,
        0,
        0,
        0,
    ];
    p.resize(usize::from(len), 0xab);
    p
}

fn frame(f: &mut Framer, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut ids = Vec::new();
    let mut failed = false;
    for c in chunks {
        failed |= f
            .feed(c, &mut |p| ids.push(p.get(12).copied().unwrap_or(0)))
            .is_err();
    }
    (ids, failed)
}

#[test]
fn frames_by_frag_length_across_and_within_segments() {
    let (a, b, c) = (pdu(1, 40), pdu(2, 24), pdu(3, 100));
    let mut joined = a.clone();
    joined.extend(&b);
    joined.extend(&c[..10]);
    let mut f = Framer::default();
    assert_eq!(
        frame(&mut f, &[&joined, &c[10..50], &c[50..]]),
        (vec![1, 2, 3], false)
    );
    assert!(f.buf.is_empty());
}

use crate::anomaly::{Anomalies, Position};
use crate::proto::epm::tests::hex;

fn tcp_ends() -> OrientedFlow {
    OrientedFlow {
        flow_id: 1,
        client: Addr::v4([172, 16, 66, 1]),
        client_port: 50058,
        server: Addr::v4([172, 16, 66, 36]),
        server_port: 135,
        proto: 6,
    }
}

/// attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng, frames 1-4: the bind offering EPM with
/// NDR, NDR64 and bind-time features, its bind_ack, and an ept_map request and response on
/// the NDR64 context. Read as NDR the answer names no port.
#[test]
fn an_ndr64_context_decodes_the_endpoint_mappers_answer() {
    let bind = hex(
        "05 00 0b 03 10 00 00 00 a0 00 00 00 02 00 00 00 // bind, LE, frag_len 160, call 2
         d0 16 d0 16 00 00 00 00 03 00 00 00            // 3 context items
         00 00 01 00 08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa 03 00 00 00
         04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 00 00 // ctx 0: EPM, NDR
         01 00 01 00 08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa 03 00 00 00
         33 05 71 71 ba be 37 49 83 19 b5 db ef 9c cc 36 01 00 00 00 // ctx 1: EPM, NDR64
         02 00 01 00 08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa 03 00 00 00
         2c 1c b7 6c 12 98 40 45 03 00 00 00 00 00 00 00 01 00 00 00 // ctx 2: features",
    );
    let ack = hex(&format!(
        "05 00 0c 03 10 00 00 00 6c 00 00 00 02 00 00 00 // bind_ack, frag_len 108, call 2
         d0 16 d0 16 9f 48 00 00 04 00 31 33 35 00      // assoc group; sec_addr \"135\"
         00 00 03 00 00 00                              // pad to 4; 3 results
         02 00 02 00 {z}                                // provider rejection (NDR)
         00 00 00 00 33 05 71 71 ba be 37 49 83 19 b5 db ef 9c cc 36 01 00 00 00
                                                        // acceptance: NDR64 v1
         03 00 03 00 {z}                                // negotiate_ack (features)",
        z = "00 ".repeat(20)
    ));
    let mut request = hex(
        "05 00 00 03 10 00 00 00 a8 00 00 00 02 00 00 00 // request, frag_len 168
         90 00 00 00 01 00 03 00                        // alloc_hint, ctx 1, opnum 3 (ept_map)",
    );
    request.extend(crate::proto::epm::tests::ndr64_map_request_stub());
    let mut response = hex(
        "05 00 02 03 10 00 00 00 ac 00 00 00 02 00 00 00 // response, frag_len 172
         94 00 00 00 01 00 00 00                        // alloc_hint, ctx 1",
    );
    response.extend(crate::proto::epm::tests::ndr64_map_response_stub());
    let e = tcp_ends();
    let (mut d, mut learned_ports, mut an) = (
        DceRpc::default(),
        LearnedPorts::default(),
        Anomalies::default(),
    );
    let mut sink = Sink {
        an: &mut an,
        at: Position::default(),
    };
    let mut st = DceStream::new(true);
    for (dir, pdu) in [(0, &bind), (1, &ack), (0, &request), (1, &response)] {
        d.data(&mut learned_ports, &mut st, &e, dir, pdu, 1, &mut sink)
            .unwrap();
    }
    let learned = learned_ports
        .learn
        .get(Addr::v4([172, 16, 66, 36]), 6, 49683)
        .unwrap();
    assert!(matches!(learned.service, crate::learn::Service::DceRpc(i)
        if i.uuid.to_string() == "367abb81-9844-35f1-ad32-98f038001003"));
    d.close(st, &e);
    let call = d.calls.iter().find(|c| c.opnum == Some(3)).unwrap();
    assert_eq!(call.negotiated.map(|t| t.uuid), Some(NDR64));
    assert!(an.rows.is_empty(), "{:?}", an.rows);
}

/// A connectionless header (C706 12.5.1), little-endian: Messenger, activity 1c3256dc-...
fn cl_pdu(ptype: u8, seq: u8, fragnum: u8, body: &[u8]) -> Vec<u8> {
    let mut p = hex(&format!(
        "04 {ptype:02x} 00 00 10 00 00 00             // v4, ptype, flags, drep LE, serial
         {zero16}                                     // object: nil
         f8 91 7b 5a 00 ff d0 11 a9 b2 00 c0 4f b6 e6 fc // interface: Messenger
         dc 56 32 1c 21 10 ca b4 a3 7f a8 cd d6 29 34 e3 // activity
         00 00 00 00 01 00 00 00 {seq:02x} 00 00 00    // boot, if_vers 1, seqnum
         00 00 ff ff ff ff {len:02x} 00 {fragnum:02x} 00 00 00 // opnum 0, hints, len, frag, auth 0",
        zero16 = "00 ".repeat(16),
        len = body.len(),
    ));
    p.extend(body);
    p
}

fn udp_ends(flow_id: u64, server_port: u16) -> OrientedFlow {
    OrientedFlow {
        flow_id,
        client: Addr::v4([202, 97, 238, 204]),
        client_port: 59310,
        server: Addr::v4([192, 168, 1, 2]),
        server_port,
        proto: 17,
    }
}

#[test]
fn a_connectionless_call_seen_twice_answered_from_another_port() {
    let (mut d, mut learned_ports, mut an) = (
        DceRpc::default(),
        LearnedPorts::default(),
        Anomalies::default(),
    );
    let mut sink = Sink {
        an: &mut an,
        at: Position::default(),
    };
    let call = udp_ends(1, 1026);
    let request = cl_pdu(0, 7, 0, b"hi");
    for _ in 0..2 {
        d.udp_datagram(&mut learned_ports, &call, true, &request, 1, &mut sink)
            .unwrap();
    }
    // The answer comes from 1028 to the caller: a flow the table took from its first
    // packet, the server's side as its client.
    let reply_flow = OrientedFlow {
        flow_id: 2,
        client: call.server,
        client_port: 1028,
        server: call.client,
        server_port: call.client_port,
        proto: 17,
    };
    let response = cl_pdu(2, 7, 0, &[0; 4]);
    let said = d
        .udp_datagram(
            &mut learned_ports,
            &reply_flow,
            true,
            &response,
            2,
            &mut sink,
        )
        .unwrap();
    assert_eq!(said.turn, Some(Orientation::DceRpc));
    assert_eq!(
        said.answered_elsewhere,
        Some((call.client, 59310, call.server, 1026))
    );
    // Its copy changes nothing.
    d.udp_datagram(
        &mut learned_ports,
        &reply_flow,
        true,
        &response,
        3,
        &mut sink,
    )
    .unwrap();
    d.udp_datagram(&mut learned_ports, &call, true, &request, 3, &mut sink)
        .unwrap();
    d.finish();
    assert_eq!(d.calls.len(), 1);
    let row = &d.calls[0];
    assert_eq!(
        (row.flow_id, row.fragments, row.reply, row.server_port),
        (1, 1, Some("response"), 1026)
    );
}

#[test]
fn the_same_activity_sent_to_another_port_is_another_call() {
    // mercury-dns_packet.capture2.pcap frames 1653 and 1655: one activity and sequence
    // number to 1026 and to 1027, neither answered.
    let (mut d, mut learned_ports, mut an) = (
        DceRpc::default(),
        LearnedPorts::default(),
        Anomalies::default(),
    );
    let mut sink = Sink {
        an: &mut an,
        at: Position::default(),
    };
    let request = cl_pdu(0, 0, 0, b"message");
    d.udp_datagram(
        &mut learned_ports,
        &udp_ends(1, 1026),
        true,
        &request,
        1,
        &mut sink,
    );
    d.udp_datagram(
        &mut learned_ports,
        &udp_ends(2, 1027),
        true,
        &request,
        2,
        &mut sink,
    );
    d.finish();
    let rows: Vec<(u64, u16, u32, Option<&str>)> = d
        .calls
        .iter()
        .map(|c| (c.flow_id, c.server_port, c.fragments, c.reply))
        .collect();
    assert_eq!(rows, [(1, 1026, 1, None), (2, 1027, 1, None)]);
}

#[test]
fn garbage_is_an_error_unless_resynchronising() {
    let mut f = Framer::default();
    assert!(frame(&mut f, &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]).1);
    let mut f = Framer {
        buf: Vec::new(),
        resync: true,
    };
    let mut data = b"tail of a lost PDU".to_vec();
    data.extend(pdu(9, 32));
    assert_eq!(frame(&mut f, &[&data]), (vec![9], false));
}
