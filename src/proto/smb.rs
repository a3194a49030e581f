//! SMB as far as it leads to named pipes: the NetBIOS session framing of TCP 139 and 445, SMB2
//! headers and compound chains, the SMB2 CREATE, CLOSE, READ, WRITE and IOCTL
//! (FSCTL_PIPE_TRANSCEIVE) bodies, and SMB1's NT Create AndX, Close and Transaction
//! (TransactNmPipe). Nothing about files, shares or authentication beyond that.

use super::ndr::Uuid;

/// A NetBIOS session message (type 0) or, on 445, a direct-TCP message: 17 and 24 bits of length.
pub const MAX_MESSAGE: usize = 1 << 24;
/// Characters of a CREATE's name kept (pipe names are short; a file's path may not be).
pub const MAX_NAME: usize = 256;
/// SMB2 messages followed in one compound chain.
pub const MAX_COMPOUND: usize = 64;

pub const SMB2_CREATE: u16 = 0x05;
pub const SMB2_CLOSE: u16 = 0x06;
pub const SMB2_READ: u16 = 0x08;
pub const SMB2_WRITE: u16 = 0x09;
pub const SMB2_IOCTL: u16 = 0x0b;
pub const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_c017;

const SMB2_FLAGS_SERVER_TO_REDIR: u32 = 0x01;
const SMB2_FLAGS_SIGNED: u32 = 0x08;
/// The operation is still running: its real response follows later, with the same message id.
pub const STATUS_PENDING: u32 = 0x0000_0103;
/// Not an error for a pipe: the data so far is returned, the rest follows.
pub const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;

pub const SMB1_CLOSE: u8 = 0x04;
pub const SMB1_TRANSACTION: u8 = 0x25;
pub const SMB1_NT_CREATE_ANDX: u8 = 0xa2;
const SMB1_TRANSACT_NM_PIPE: u16 = 0x0026;
const SMB1_FLAGS_REPLY: u8 = 0x80;
const SMB1_FLAGS2_UNICODE: u16 = 0x8000;

/// A file id: SMB2's 16 bytes, or SMB1's 2-byte FID in the first two.
pub type FileId = [u8; 16];

/// What one NetBIOS message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// SMB2 (or SMB3) messages, possibly a compound chain (`smb2_chain`).
    Smb2(&'a [u8]),
    Smb1(&'a [u8]),
    /// An SMB3 transform header: the message inside is encrypted.
    Encrypted,
    /// An SMB3 compression transform.
    Compressed,
    /// NetBIOS session request, response, keep-alive, or bytes that are not SMB.
    Other,
}

/// What follows a NetBIOS session header of type 0 (4 bytes: type, then a 24-bit length).
pub fn message(m: &[u8]) -> Message<'_> {
    match m {
        [0xfe, b'S', b'M', b'B', ..] => Message::Smb2(m),
        [0xff, b'S', b'M', b'B', ..] => Message::Smb1(m),
        [0xfd, b'S', b'M', b'B', ..] => Message::Encrypted,
        [0xfc, b'S', b'M', b'B', ..] => Message::Compressed,
        _ => Message::Other,
    }
}

/// A NetBIOS session header at the start of `b`: (type, length of what follows).
pub fn netbios_header(b: &[u8]) -> Option<(u8, usize)> {
    let [t, a, x, y] = *b.get(..4)? else {
        return None;
    };
    Some((
        t,
        usize::from(a) << 16 | usize::from(x) << 8 | usize::from(y),
    ))
}

/// Where, in `b`, a NetBIOS session message that holds SMB seems to begin: for a stream joined
/// mid-way.
pub fn resync(b: &[u8]) -> Option<usize> {
    b.windows(8).position(|w| {
        matches!(w, [0, _, _, _, 0xfc..=0xff, b'S', b'M', b'B'])
            && netbios_header(w).is_some_and(|(_, n)| n >= 4)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smb2Header {
    pub command: u16,
    pub status: u32,
    pub response: bool,
    pub signed: bool,
    pub message_id: u64,
    /// Offset of the next message of a compound chain from this one's start (0: the last).
    pub next: u32,
    /// Part of a compound whose file id is the one the chain's CREATE returned.
    pub related: bool,
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn file_id(b: &[u8], off: usize) -> Option<FileId> {
    b.get(off..off + 16)?.try_into().ok()
}

pub fn smb2_header(m: &[u8]) -> Option<Smb2Header> {
    if m.get(..4)? != b"\xfeSMB" || le16(m, 4)? != 64 {
        return None;
    }
    let flags = le32(m, 16)?;
    Some(Smb2Header {
        command: le16(m, 12)?,
        status: le32(m, 8)?,
        response: flags & SMB2_FLAGS_SERVER_TO_REDIR != 0,
        signed: flags & SMB2_FLAGS_SIGNED != 0,
        message_id: le64(m, 24)?,
        next: le32(m, 20)?,
        related: flags & 0x04 != 0,
    })
}

/// The messages of a compound chain, each bounded by the next one's offset.
pub fn smb2_chain(m: &[u8]) -> Vec<(Smb2Header, &[u8])> {
    let mut out = Vec::new();
    let mut rest = m;
    while out.len() < MAX_COMPOUND {
        let Some(h) = smb2_header(rest) else {
            break;
        };
        let next = h.next as usize;
        // A next offset is 8-byte aligned and past the header; anything else ends the chain.
        let (this, after) = if next >= 64 && next % 8 == 0 && next < rest.len() {
            (rest.get(..next).unwrap_or(rest), rest.get(next..))
        } else {
            (rest, None)
        };
        out.push((h, this));
        match after {
            Some(a) if next != 0 => rest = a,
            _ => break,
        }
    }
    out
}

/// The body at `off` past the header, with its data at `data_off` (from the header's start) for
/// `len` bytes, or None when it overruns the message.
fn data_at(m: &[u8], data_off: usize, len: usize) -> Option<&[u8]> {
    m.get(data_off..data_off.checked_add(len)?)
}

/// UTF-16LE as a String, at most `MAX_NAME` characters, lossy.
fn utf16(b: &[u8]) -> String {
    let units = b
        .chunks_exact(2)
        .take(MAX_NAME)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A pipe's name as both dialects write it: `\PIPE\srvsvc`, `\srvsvc` and `srvsvc` are `srvsvc`.
pub fn pipe_name(raw: &str) -> String {
    let s = raw.trim_start_matches('\\');
    let s = match s.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("pipe\\") => s.get(5..).unwrap_or(""),
        _ => s,
    };
    s.to_string()
}

const BODY: usize = 64;

/// SMB2 CREATE request: the name asked for.
pub fn create_request_name(m: &[u8]) -> Option<String> {
    let off = usize::from(le16(m, BODY + 44)?);
    let len = usize::from(le16(m, BODY + 46)?);
    Some(utf16(data_at(m, off, len)?))
}

/// SMB2 CREATE response: the file id handed out.
pub fn create_response_file_id(m: &[u8]) -> Option<FileId> {
    file_id(m, BODY + 64)
}

/// SMB2 CLOSE request: the file id closed.
pub fn close_request_file_id(m: &[u8]) -> Option<FileId> {
    file_id(m, BODY + 8)
}

/// SMB2 WRITE request: the file id and the data written.
pub fn write_request(m: &[u8]) -> Option<(FileId, &[u8])> {
    let off = usize::from(le16(m, BODY + 2)?);
    let len = le32(m, BODY + 4)? as usize;
    Some((file_id(m, BODY + 16)?, data_at(m, off, len)?))
}

/// SMB2 READ request: the file id read from (its response does not name it).
pub fn read_request_file_id(m: &[u8]) -> Option<FileId> {
    file_id(m, BODY + 16)
}

/// SMB2 READ response: the data read.
pub fn read_response_data(m: &[u8]) -> Option<&[u8]> {
    let off = usize::from(*m.get(BODY + 2)?);
    let len = le32(m, BODY + 4)? as usize;
    data_at(m, off, len)
}

/// SMB2 IOCTL request or response: control code, file id, and the input (request) or output
/// (response) buffer.
pub fn ioctl(m: &[u8], response: bool) -> Option<(u32, FileId, &[u8])> {
    let ctl = le32(m, BODY + 4)?;
    let fid = file_id(m, BODY + 8)?;
    let (off, len) = if response {
        (le32(m, BODY + 32)?, le32(m, BODY + 36)?)
    } else {
        (le32(m, BODY + 24)?, le32(m, BODY + 28)?)
    };
    Some((ctl, fid, data_at(m, off as usize, len as usize)?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smb1<'a> {
    pub command: u8,
    pub status: u32,
    pub response: bool,
    pub unicode: bool,
    pub mid: u16,
    /// The parameter words and the data bytes after the 32-byte header.
    pub words: &'a [u8],
    pub bytes: &'a [u8],
    /// Offset of `bytes` from the header's start (data offsets are counted from there).
    pub bytes_at: usize,
    pub message: &'a [u8],
}

pub fn smb1(m: &[u8]) -> Option<Smb1<'_>> {
    if m.get(..4)? != b"\xffSMB" {
        return None;
    }
    let wc = usize::from(*m.get(32)?);
    let words = m.get(33..33 + 2 * wc)?;
    let bc_at = 33 + 2 * wc;
    let bc = usize::from(le16(m, bc_at)?);
    let bytes_at = bc_at + 2;
    let bytes = m.get(bytes_at..).map(|b| b.get(..bc).unwrap_or(b))?;
    Some(Smb1 {
        command: *m.get(4)?,
        status: le32(m, 5)?,
        response: m.get(9)? & SMB1_FLAGS_REPLY != 0,
        unicode: le16(m, 10)? & SMB1_FLAGS2_UNICODE != 0,
        mid: le16(m, 30)?,
        words,
        bytes,
        bytes_at,
        message: m,
    })
}

/// The 2-byte FID as a `FileId`.
pub fn fid1(fid: u16) -> FileId {
    let mut f = [0u8; 16];
    f[..2].copy_from_slice(&fid.to_le_bytes());
    f[15] = 1; // never equal to an SMB2 id of the same session by accident
    f
}

/// NT Create AndX request: the name (after a pad byte that aligns Unicode text to 2).
pub fn nt_create_request_name(s: &Smb1<'_>) -> Option<String> {
    let len = usize::from(le16(s.words, 5)?);
    if s.unicode {
        let pad = s.bytes_at % 2;
        Some(utf16(s.bytes.get(pad..pad + len)?))
    } else {
        let raw = s.bytes.get(..len)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Some(String::from_utf8_lossy(raw.get(..end.min(MAX_NAME))?).into_owned())
    }
}

/// NT Create AndX response: the FID.
pub fn nt_create_response_fid(s: &Smb1<'_>) -> Option<FileId> {
    le16(s.words, 5).map(fid1)
}

/// Close request: the FID.
pub fn close1_fid(s: &Smb1<'_>) -> Option<FileId> {
    le16(s.words, 0).map(fid1)
}

/// Transaction request: the FID and data of a TransactNmPipe, None for other transactions.
pub fn transact_nm_pipe_request<'a>(s: &Smb1<'a>) -> Option<(FileId, &'a [u8])> {
    let count = usize::from(le16(s.words, 22)?);
    let off = usize::from(le16(s.words, 24)?);
    let setup_count = *s.words.get(26)?;
    if setup_count < 2 || le16(s.words, 28)? != SMB1_TRANSACT_NM_PIPE {
        return None;
    }
    let fid = fid1(le16(s.words, 30)?);
    Some((fid, data_at(s.message, off, count)?))
}

/// Transaction response: its data.
pub fn transaction_response_data<'a>(s: &Smb1<'a>) -> Option<&'a [u8]> {
    let count = usize::from(le16(s.words, 12)?);
    let off = usize::from(le16(s.words, 14)?);
    data_at(s.message, off, count)
}

/// Does `b` begin a connection-oriented DCE/RPC PDU (version 5.0 or 5.1, a known type)?
pub fn looks_like_dcerpc(b: &[u8]) -> bool {
    matches!(b, [5, 0 | 1, ptype, ..] if *ptype <= 20)
}

/// An SMB2 file id as text (tests, anomalies).
pub fn file_id_text(f: &FileId) -> String {
    Uuid(*f).to_string()
}

#[cfg(test)]
mod tests {
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
}
