use super::*;

fn nb(m: &[u8]) -> Vec<u8> {
    let n = m.len();
    let mut v = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    v.extend(m);
    v
}

/// An SMB1 message: header (TID 1, UID 2), then blocks of (command, words after the AndX
/// prefix or all of them, bytes), chained; `data_at` puts a block's data offset (from the
/// header) into its words at that index, the data being its bytes after one pad byte.
fn smb1_msg(mid: u16, pid: u16, response: bool, blocks: &[(u8, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut m = b"\xffSMB".to_vec();
    m.push(blocks[0].0);
    m.extend([0; 4]); // status
    m.push(if response { 0x98 } else { 0x18 });
    m.extend(0xc807u16.to_le_bytes());
    m.extend([0; 12]);
    for v in [1u16, pid, 2, mid] {
        m.extend(v.to_le_bytes());
    }
    for (i, (command, words, bytes)) in blocks.iter().enumerate() {
        let next = blocks.get(i + 1).map_or(0xff, |b| b.0);
        let at = m.len();
        let len = 1 + 4 + words.len() + 2 + bytes.len();
        let off = if next == 0xff { 0 } else { (at + len) as u16 };
        assert_ne!(*command, wire::SMB1_CLOSE);
        m.push(((4 + words.len()) / 2) as u8);
        m.extend([next, 0]);
        m.extend(off.to_le_bytes());
        m.extend(words);
        m.extend((bytes.len() as u16).to_le_bytes());
        m.extend(bytes);
    }
    m
}

fn write_andx(fid: u16, at: usize, data: &[u8]) -> (u8, Vec<u8>, Vec<u8>) {
    let off = (at + 1 + 28 + 2 + 1) as u16;
    let mut w = fid.to_le_bytes().to_vec();
    w.extend([0; 8]); // offset, timeout
    w.extend(8u16.to_le_bytes()); // WriteMode: start of a message
    w.extend([0; 4]); // remaining, DataLengthHigh
    w.extend((data.len() as u16).to_le_bytes());
    w.extend(off.to_le_bytes());
    w.extend([0; 4]);
    let mut b = vec![0];
    b.extend(data);
    (wire::SMB1_WRITE_ANDX, w, b)
}

fn read_andx(fid: u16) -> (u8, Vec<u8>, Vec<u8>) {
    let mut w = fid.to_le_bytes().to_vec();
    w.extend([0; 4]);
    w.extend(1024u16.to_le_bytes());
    w.extend([0; 12]);
    (wire::SMB1_READ_ANDX, w, vec![])
}

fn read_andx_response(at: usize, data: &[u8]) -> (u8, Vec<u8>, Vec<u8>) {
    let mut w = vec![0; 6];
    w.extend((data.len() as u16).to_le_bytes());
    w.extend(((at + 1 + 24 + 2 + 1) as u16).to_le_bytes());
    w.extend([0; 10]);
    let mut b = vec![0];
    b.extend(data);
    (wire::SMB1_READ_ANDX, w, b)
}

/// Samba 4.17's rpcclient binding LSARPC on `\lsarpc`, and smbd's bind_ack (sec_addr
/// `\pipe\lsass`), as captured.
const LSA_BIND: &str = "05000b03100000004800000001000000b810b810000000000100000000000100785734123412cdabef000123456789ab00000000045d888aeb1cc9119fe808002b10486002000000";
const LSA_BIND_ACK: &str = "05000c03100000004400000001000000b810b810045d00000c005c706970655c6c736173730000000100000000000000045d888aeb1cc9119fe808002b10486002000000";

#[test]
fn smb1_write_andx_chained_to_read_andx_and_the_read_matched_by_pid() {
    use crate::anomaly::{Anomalies, Position};
    use crate::packet::Addr;
    use crate::proto::epm::tests::hex;
    let e = OrientedFlow {
        flow_id: 1,
        client: Addr::v4([10, 0, 0, 1]),
        client_port: 50000,
        server: Addr::v4([10, 0, 0, 2]),
        server_port: SMB_PORT,
        proto: 6,
    };
    let (bind, ack) = (hex(LSA_BIND), hex(LSA_BIND_ACK));
    let mut apps = crate::app::SessionDecoders::default();
    let mut an = Anomalies::default();
    let mut st = SmbStream::new(false);
    let mut feed =
        |apps: &mut crate::app::SessionDecoders, st: &mut SmbStream, d: usize, m: Vec<u8>| {
            let mut sink = Sink {
                an: &mut an,
                at: Position::default(),
            };
            let (smb, dce, learned_ports) = (&mut apps.smb, &mut apps.dce, &mut apps.learned_ports);
            smb.data(dce, learned_ports, st, &e, d, &nb(&m), 0, &mut sink);
        };
    // A pipe opened before the capture: the bind written by a Write AndX (at 32) chained to a
    // Read AndX (after it) of MID 9, PID 23.
    let w = write_andx(0x4000, 32, &bind);
    let w_len = 1 + 4 + w.1.len() + 2 + w.2.len();
    let req = smb1_msg(9, 23, false, &[w, read_andx(0x4000)]);
    assert_eq!(wire::smb1_chain(&req).len(), 2);
    assert_eq!(32 + w_len + 1 + 24 + 2, req.len());
    feed(&mut apps, &mut st, 0, req);
    // The same MID from another process reads nothing of this pipe.
    let other = smb1_msg(9, 24, true, &[read_andx_response(32, &ack)]);
    feed(&mut apps, &mut st, 1, other);
    assert!(apps.dce.calls.iter().all(|r| r.reply.is_none()));
    assert_eq!(st.reading.len(), 1);
    let answer = smb1_msg(9, 23, true, &[read_andx_response(32, &ack)]);
    feed(&mut apps, &mut st, 1, answer);
    assert!(st.reading.is_empty());
    assert_eq!(apps.smb.pipes, 1);
    let row = &apps.dce.calls[0];
    assert_eq!(
        (row.ptype, row.reply, row.call_id),
        ("bind", Some("bind_ack"), 1)
    );
    assert_eq!(row.pipe, None);
}

#[test]
fn frames_across_segments_and_skips_keepalives() {
    let mut f = Framer::default();
    let mut got = Vec::new();
    let mut stream = vec![0x85, 0, 0, 0]; // session keep-alive
    stream.extend(nb(b"\xfeSMBone"));
    stream.extend(nb(b"\xfeSMBtwo!"));
    for c in stream.chunks(3) {
        f.feed(c, &mut |m| got.push(m.to_vec()));
    }
    assert_eq!(got, vec![b"\xfeSMBone".to_vec(), b"\xfeSMBtwo!".to_vec()]);
}

#[test]
fn overlong_messages_are_skipped_not_kept() {
    let mut f = Framer::default();
    let mut got = Vec::new();
    let big = MAX_KEPT + 10;
    let mut stream = vec![0, (big >> 16) as u8, (big >> 8) as u8, big as u8];
    stream.extend(vec![0u8; big]);
    stream.extend(nb(b"\xfeSMBnext"));
    for c in stream.chunks(65_536) {
        f.feed(c, &mut |m| got.push(m.to_vec()));
        assert!(f.buf.len() <= MAX_KEPT + 4 + 65_536);
    }
    assert_eq!(got, vec![b"\xfeSMBnext".to_vec()]);
}

#[test]
fn midstream_start_resynchronises() {
    let mut f = Framer {
        resync: true,
        ..Framer::default()
    };
    let mut got = Vec::new();
    let mut stream = vec![0x41; 37];
    stream.extend(nb(b"\xfeSMBhello"));
    f.feed(&stream, &mut |m| got.push(m.to_vec()));
    assert_eq!(got, vec![b"\xfeSMBhello".to_vec()]);
}
