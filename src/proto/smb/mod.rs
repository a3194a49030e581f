//! SMB as far as it leads to named pipes: the NetBIOS session framing of TCP 139 and 445, SMB2
//! headers and compound chains, the SMB2 CREATE, CLOSE, READ, WRITE and IOCTL
//! (FSCTL_PIPE_TRANSCEIVE) bodies, and SMB1's AndX chains, NT Create AndX, Close, Transaction
//! (TransactNmPipe), Write AndX and Read AndX. Nothing about files, shares or authentication
//! beyond that.

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
pub const SMB1_READ_ANDX: u8 = 0x2e;
pub const SMB1_WRITE_ANDX: u8 = 0x2f;
pub const SMB1_NT_CREATE_ANDX: u8 = 0xa2;
/// Commands followed in one SMB1 AndX chain.
pub const MAX_ANDX: usize = 16;
/// The commands whose parameter words begin with an AndX block (command, reserved, offset).
const SMB1_ANDX: [u8; 8] = [0x24, 0x2d, 0x2e, 0x2f, 0x73, 0x74, 0x75, 0xa2];
const SMB1_ANDX_NONE: u8 = 0xff;
/// Write AndX to a named pipe: raw mode and the start of a message. With both set, the data
/// begins with the message's 2-byte length, which is not part of the message.
const WRITE_RAW_MODE: u16 = 0x0004;
const WRITE_MSG_START: u16 = 0x0008;
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

/// One command of an SMB1 message (the first, or one further down its AndX chain) with the
/// header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smb1<'a> {
    pub command: u8,
    pub status: u32,
    pub response: bool,
    pub unicode: bool,
    pub tid: u16,
    pub pid: u16,
    pub uid: u16,
    pub mid: u16,
    /// The parameter words and the data bytes of this command.
    pub words: &'a [u8],
    pub bytes: &'a [u8],
    /// Offset of `bytes` from the header's start (data offsets are counted from there).
    pub bytes_at: usize,
    /// The whole message, header included.
    pub message: &'a [u8],
}

impl Smb1<'_> {
    /// What pairs a response with its request: the MID, with the PID, TID and UID that scope it
    /// (a Read AndX response does not name its file).
    pub fn key(&self) -> u64 {
        u64::from(self.uid) << 48
            | u64::from(self.tid) << 32
            | u64::from(self.pid) << 16
            | u64::from(self.mid)
    }
}

/// The word count, words, byte count and bytes of a command block at `at`: (words, bytes,
/// offset of the bytes). Bytes beyond the message are cut, as a short capture may have cut them.
fn smb1_block(m: &[u8], at: usize) -> Option<(&[u8], &[u8], usize)> {
    let wc = usize::from(*m.get(at)?);
    let words = m.get(at + 1..at + 1 + 2 * wc)?;
    let bc_at = at + 1 + 2 * wc;
    let bc = usize::from(le16(m, bc_at)?);
    let bytes_at = bc_at + 2;
    let bytes = m.get(bytes_at..).map(|b| b.get(..bc).unwrap_or(b))?;
    Some((words, bytes, bytes_at))
}

/// The first command of an SMB1 message.
pub fn smb1(m: &[u8]) -> Option<Smb1<'_>> {
    if m.get(..4)? != b"\xffSMB" {
        return None;
    }
    let (words, bytes, bytes_at) = smb1_block(m, 32)?;
    Some(Smb1 {
        command: *m.get(4)?,
        status: le32(m, 5)?,
        response: m.get(9)? & SMB1_FLAGS_REPLY != 0,
        unicode: le16(m, 10)? & SMB1_FLAGS2_UNICODE != 0,
        tid: le16(m, 24)?,
        pid: le16(m, 26)?,
        uid: le16(m, 28)?,
        mid: le16(m, 30)?,
        words,
        bytes,
        bytes_at,
        message: m,
    })
}

/// Every command of an SMB1 message: the first, then those its AndX blocks chain to. Each next
/// block must lie past the one before (no loops), at most `MAX_ANDX` of them.
pub fn smb1_chain(m: &[u8]) -> Vec<Smb1<'_>> {
    let mut out = Vec::new();
    let Some(mut s) = smb1(m) else {
        return out;
    };
    let mut at = 32;
    loop {
        let next = s.words.first().copied();
        let off = le16(s.words, 2).map(usize::from);
        let andx = SMB1_ANDX.contains(&s.command);
        out.push(s);
        if out.len() >= MAX_ANDX || !andx {
            break;
        }
        let (Some(next), Some(off)) = (next, off) else {
            break;
        };
        if next == SMB1_ANDX_NONE || off <= at {
            break;
        }
        let Some((words, bytes, bytes_at)) = smb1_block(m, off) else {
            break;
        };
        s = Smb1 {
            command: next,
            words,
            bytes,
            bytes_at,
            ..s
        };
        at = off;
    }
    out
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

/// DataLength with its high 16 bits, or alone when the pair overruns the message: the high
/// word counts only for clients of large reads and writes, and older ones leave it as they like.
fn data_long(m: &[u8], off: usize, low: u16, high: u16) -> Option<&[u8]> {
    let long = usize::from(low) | usize::from(high) << 16;
    data_at(m, off, long).or_else(|| data_at(m, off, usize::from(low)))
}

/// Write AndX request: the FID and the data written (without the 2-byte message length a named
/// pipe's raw-mode write puts before a message's start).
pub fn write_andx_request<'a>(s: &Smb1<'a>) -> Option<(FileId, &'a [u8])> {
    let fid = fid1(le16(s.words, 4)?);
    let mode = le16(s.words, 14)?;
    let high = le16(s.words, 18)?;
    let low = le16(s.words, 20)?;
    let off = usize::from(le16(s.words, 22)?);
    let data = data_long(s.message, off, low, high)?;
    let raw_start = WRITE_RAW_MODE | WRITE_MSG_START;
    if mode & raw_start == raw_start {
        return Some((fid, data.get(2..)?));
    }
    Some((fid, data))
}

/// Read AndX request: the FID read from (its response does not name it).
pub fn read_andx_request_fid(s: &Smb1<'_>) -> Option<FileId> {
    le16(s.words, 4).map(fid1)
}

/// Read AndX response: the data read.
pub fn read_andx_response_data<'a>(s: &Smb1<'a>) -> Option<&'a [u8]> {
    let low = le16(s.words, 10)?;
    let off = usize::from(le16(s.words, 12)?);
    let high = le16(s.words, 14)?;
    data_long(s.message, off, low, high)
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
mod tests;
