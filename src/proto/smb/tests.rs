use super::*;

fn header(command: u16, response: bool, message_id: u64) -> Vec<u8> {
    let mut h = vec![0xfe, b'S', b'M', b'B', 64, 0, 1, 0];
    h.extend(0u32.to_le_bytes()); // status
    h.extend(command.to_le_bytes());
    h.extend(1u16.to_le_bytes()); // credits
    h.extend(u32::from(response).to_le_bytes()); // flags
    h.extend(0u32.to_le_bytes()); // next command
    h.extend(message_id.to_le_bytes());
    h.extend([0; 8]); // reserved, tree id
    h.extend([0; 8]); // session id
    h.extend([0; 16]); // signature
    assert_eq!(h.len(), 64);
    h
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn create_request_and_response() {
    // attack-Discovery_dcerp_srvsvc_NetShareEnum.pcapng frame 12: Create "srvsvc".
    let mut m = header(SMB2_CREATE, false, 5);
    let mut body = vec![0u8; 56];
    body[0] = 57; // structure size
    body[44..46].copy_from_slice(&120u16.to_le_bytes()); // name offset
    body[46..48].copy_from_slice(&12u16.to_le_bytes()); // name length
    m.extend(body);
    m.extend(utf16le("srvsvc"));
    assert_eq!(create_request_name(&m).as_deref(), Some("srvsvc"));
    let h = smb2_header(&m).unwrap();
    assert_eq!(
        (h.command, h.response, h.message_id),
        (SMB2_CREATE, false, 5)
    );
    let mut r = header(SMB2_CREATE, true, 5);
    let mut body = vec![0u8; 88];
    body[0] = 89;
    body[64..80].copy_from_slice(&[0xab; 16]); // file id
    r.extend(body);
    assert_eq!(create_response_file_id(&r), Some([0xab; 16]));
}

#[test]
fn write_read_and_ioctl() {
    let mut w = header(SMB2_WRITE, false, 7);
    let mut body = vec![0u8; 48];
    body[0] = 49;
    body[2..4].copy_from_slice(&112u16.to_le_bytes()); // data offset
    body[4..8].copy_from_slice(&3u32.to_le_bytes()); // length
    body[16..32].copy_from_slice(&[0x11; 16]); // file id
    w.extend(body);
    w.extend([5, 0, 11]);
    assert_eq!(write_request(&w), Some(([0x11; 16], &[5u8, 0, 11][..])));
    let mut r = header(SMB2_READ, true, 8);
    let mut body = vec![0u8; 16];
    body[0] = 17;
    body[2] = 80; // data offset
    body[4..8].copy_from_slice(&2u32.to_le_bytes());
    r.extend(body);
    r.extend([5, 0]);
    assert_eq!(read_response_data(&r), Some(&[5u8, 0][..]));
    let mut i = header(SMB2_IOCTL, true, 9);
    let mut body = vec![0u8; 48];
    body[0] = 49;
    body[4..8].copy_from_slice(&FSCTL_PIPE_TRANSCEIVE.to_le_bytes());
    body[8..24].copy_from_slice(&[0x22; 16]);
    body[32..36].copy_from_slice(&112u32.to_le_bytes()); // output offset
    body[36..40].copy_from_slice(&1u32.to_le_bytes()); // output count
    i.extend(body);
    i.push(5);
    assert_eq!(
        ioctl(&i, true),
        Some((FSCTL_PIPE_TRANSCEIVE, [0x22; 16], &[5u8][..]))
    );
    // An offset past the message is refused, not read.
    w[64 + 2] = 0xff;
    assert_eq!(write_request(&w), None);
}

#[test]
fn compound_chain() {
    let mut a = header(SMB2_CREATE, false, 1);
    a[20..24].copy_from_slice(&72u32.to_le_bytes()); // next command at 72
    a.extend([0; 8]);
    let b = header(SMB2_CLOSE, false, 2);
    a.extend(&b);
    let chain = smb2_chain(&a);
    assert_eq!(chain.len(), 2);
    assert_eq!((chain[0].1.len(), chain[1].0.command), (72, SMB2_CLOSE));
    // A next offset that is not aligned ends the chain.
    a[20..24].copy_from_slice(&70u32.to_le_bytes());
    assert_eq!(smb2_chain(&a).len(), 1);
}

#[test]
fn smb1_create_and_transact() {
    // zeek-raw_ntlm_in_smb.pcap frame 28: NT Create AndX "\srvsvc", Unicode.
    let mut m = vec![
        0xff,
        b'S',
        b'M',
        b'B',
        SMB1_NT_CREATE_ANDX,
        0,
        0,
        0,
        0,
        0x18,
    ];
    m.extend(0xc807u16.to_le_bytes()); // flags2: Unicode
    m.extend([0; 12]); // PID high, security features, reserved
    m.extend([0; 2]); // TID
    m.extend([0; 2]); // PID
    m.extend([0; 2]); // UID
    m.extend(77u16.to_le_bytes()); // MID
    m.push(24); // word count
    let mut words = vec![0u8; 48];
    words[5..7].copy_from_slice(&16u16.to_le_bytes()); // name length
    m.extend(words);
    let name = utf16le("\\srvsvc\0");
    m.extend(((name.len() + 1) as u16).to_le_bytes());
    m.push(0); // pad: the bytes start at an odd offset
    m.extend(name);
    let s = smb1(&m).unwrap();
    assert_eq!(
        (s.command, s.mid, s.unicode, s.response),
        (SMB1_NT_CREATE_ANDX, 77, true, false)
    );
    let raw = nt_create_request_name(&s).unwrap();
    assert_eq!(
        (raw.as_str(), pipe_name(&raw).as_str()),
        ("\\srvsvc", "srvsvc")
    );
    assert_eq!(pipe_name("\\PIPE\\lsarpc"), "lsarpc");
}

fn hex(s: &str) -> Vec<u8> {
    crate::proto::dns::tests::hex(s)
}

/// A Samba 4.17 rpcclient (`client ipc max protocol = NT1`) writing lsa_LookupNames to
/// `\lsarpc` (FID 0xddac) in Write AndX, the first fragment of call 3: the header, words and
/// byte count as captured, the data its first 24 bytes (the PDU's header) then zeros.
fn samba_write_andx() -> Vec<u8> {
    let mut m = hex(concat!(
        "ff534d422f000000001857c80000000000000000000000001ae81700532607000e",
        "ff000000acdd0000000000000000080000000000b810400000000000",
        "b91000",
        "0500000110000000b8100000030000008c54000000000e00"
    ));
    m.resize(64 + 4280, 0);
    m
}

#[test]
fn write_andx_from_samba() {
    let m = samba_write_andx();
    let s = smb1(&m).unwrap();
    assert_eq!(
        (s.command, s.response, s.tid, s.pid, s.uid, s.mid),
        (SMB1_WRITE_ANDX, false, 0xe81a, 0x0017, 0x2653, 7)
    );
    let (fid, data) = write_andx_request(&s).unwrap();
    assert_eq!(fid, fid1(0xddac));
    // DataOffset 64 from the header's start, DataLength 4280: a request PDU (type 0), first
    // fragment (flags 1), frag_length 4280, call id 3; WriteMode 0x0008 alone keeps it whole.
    assert_eq!(data.len(), 4280);
    assert_eq!(&data[..4], &[5, 0, 0, 1]);
    assert_eq!(u16::from_le_bytes([data[8], data[9]]), 4280);
    assert_eq!(data[12], 3);
    // Raw mode with the start of a message: the 2-byte message length first, then the PDU.
    let mut raw = m.clone();
    raw[33 + 14] = 0x0c;
    let (_, data) = write_andx_request(&smb1(&raw).unwrap()).unwrap();
    assert_eq!((data.len(), &data[..2]), (4278, &[0u8, 1][..]));
}

#[test]
fn read_andx_from_samba() {
    // The Read AndX request (MID 13, FID 0xddac, 4280 bytes) and its response: the last
    // fragment of call 3's response, 3004 bytes at DataOffset 60.
    let q = hex(concat!(
        "ff534d422e000000001857c80000000000000000000000001ae8170053260d000c",
        "ff000000acdd00000000b810b810000000000000000000000000"
    ));
    let q = smb1(&q).unwrap();
    assert_eq!(read_andx_request_fid(&q), Some(fid1(0xddac)));
    let mut r = hex(concat!(
        "ff534d422e000000008817c80000000000000000000000001ae8170053260d000c",
        "ff000000000000000000bc0b3c0000000000000000000000",
        "bd0b00",
        "0500020210000000bc0b000003000000a40b000000000000"
    ));
    r.resize(60 + 3004, 0);
    let s = smb1(&r).unwrap();
    assert!(s.response);
    assert_eq!(s.key(), q.key());
    let data = read_andx_response_data(&s).unwrap();
    assert_eq!((data.len(), &data[..4]), (3004, &[5u8, 0, 2, 2][..]));
    // DataLengthHigh that would overrun the message is a client's leftover: the low word counts.
    r[33 + 14] = 7;
    assert_eq!(
        read_andx_response_data(&smb1(&r).unwrap()).map(<[u8]>::len),
        Some(3004)
    );
    // A DataOffset past the message is refused, not read.
    r[33 + 12] = 0xff;
    r[33 + 13] = 0xff;
    assert_eq!(read_andx_response_data(&smb1(&r).unwrap()), None);
    r.truncate(40);
    assert_eq!(smb1(&r), None);
}

#[test]
fn andx_chain_from_a_mac() {
    // zeek-raw_ntlm_in_smb.pcap frame 158: NT Create AndX chained to Read AndX at 194.
    let m = hex(concat!(
        "ff534d42a2000000000801c80000000000000000000000000108010000082f0018",
        "2e00c200006c0000000000000000000100000000000000000000008000000007000000",
        "010000000000000002000000006f00005c00530061006d0070006c006500200050006900",
        "6300740075007200650073002e006c006e006b003a0063006f006d002e00610070007000",
        "6c0065002e004c00610075006e0063006800530065007200760069006300650073002e00",
        "4f00700065006e00570069007400680000000cff000000000000000000001000100000",
        "00000010000000000000"
    ));
    let chain = smb1_chain(&m);
    assert_eq!(
        chain.iter().map(|s| s.command).collect::<Vec<_>>(),
        [SMB1_NT_CREATE_ANDX, SMB1_READ_ANDX]
    );
    assert_eq!(
        nt_create_request_name(&chain[0]).as_deref(),
        Some("\\Sample Pictures.lnk:com.apple.LaunchServices.OpenWith")
    );
    assert_eq!(read_andx_request_fid(&chain[1]), Some(fid1(0)));
    assert_eq!((chain[1].mid, chain[1].words.len()), (chain[0].mid, 24));
    // An AndX offset pointing back (here: at the first block) ends the chain.
    let mut back = m.clone();
    back[35..37].copy_from_slice(&32u16.to_le_bytes());
    assert_eq!(smb1_chain(&back).len(), 1);
    // An offset past the message ends it too.
    back[35..37].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert_eq!(smb1_chain(&back).len(), 1);
}

#[test]
fn framing_helpers() {
    assert_eq!(netbios_header(&[0, 0x01, 0x00, 0x10]), Some((0, 0x10010)));
    let mut b = vec![1, 2, 3];
    b.extend([0, 0, 0, 64, 0xfe, b'S', b'M', b'B']);
    assert_eq!(resync(&b), Some(3));
    assert_eq!(message(b"\xfdSMB...."), Message::Encrypted);
    assert!(looks_like_dcerpc(&[5, 0, 11, 3]));
    assert!(!looks_like_dcerpc(&[4, 0, 0]));
}
