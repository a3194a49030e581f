//! DCE/RPC PDUs: connection-oriented (C706 ch. 12, MS-RPCE 2.2.2) over TCP and connectionless
//! (C706 ch. 12.5) over UDP. Headers, bind / alter_context and their acks, bind_nak, request,
//! response and fault, with the authentication trailer skipped by auth_length.

use super::ndr::{Ndr, SyntaxId, Uuid};

pub const CO_HEADER: usize = 16;
pub const CL_HEADER: usize = 80;

pub const REQUEST: u8 = 0;
pub const RESPONSE: u8 = 2;
pub const FAULT: u8 = 3;
pub const CL_REJECT: u8 = 6;
pub const BIND: u8 = 11;
pub const BIND_ACK: u8 = 12;
pub const BIND_NAK: u8 = 13;
pub const ALTER_CONTEXT: u8 = 14;
pub const ALTER_CONTEXT_RESP: u8 = 15;

pub const PFC_FIRST_FRAG: u8 = 0x01;
pub const PFC_LAST_FRAG: u8 = 0x02;
pub const PFC_OBJECT_UUID: u8 = 0x80;
/// Connectionless flags1: more fragments follow / this is a fragment.
pub const CL_LAST_FRAG: u8 = 0x02;
pub const CL_FRAG: u8 = 0x04;

/// Context items, transfer syntaxes and results read from one PDU at most (the counts are u8).
const MAX_ITEMS: usize = 255;

pub fn ptype_name(p: u8) -> &'static str {
    match p {
        0 => "request",
        1 => "ping",
        2 => "response",
        3 => "fault",
        4 => "working",
        5 => "nocall",
        6 => "reject",
        7 => "ack",
        8 => "cl_cancel",
        9 => "fack",
        10 => "cancel_ack",
        11 => "bind",
        12 => "bind_ack",
        13 => "bind_nak",
        14 => "alter_context",
        15 => "alter_context_resp",
        16 => "auth3",
        17 => "shutdown",
        18 => "co_cancel",
        19 => "orphaned",
        20 => "rts",
        _ => "unknown",
    }
}

pub fn result_name(r: u16) -> &'static str {
    match r {
        0 => "acceptance",
        1 => "user_rejection",
        2 => "provider_rejection",
        3 => "negotiate_ack",
        _ => "unknown",
    }
}

fn drep_le(drep0: u8) -> bool {
    drep0 & 0xf0 == 0x10
}

/// The data representation is one C706 defines: integers big or little endian, ASCII or EBCDIC,
/// one of the four float formats.
fn drep_sane(d0: u8, d1: u8) -> bool {
    d0 & 0xee == 0 && d1 <= 3
}

/// The 16-byte header of every connection-oriented PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoHeader {
    pub minor: u8,
    pub ptype: u8,
    pub flags: u8,
    pub le: bool,
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

/// Wireshark's `is_dcerpc()` checks: version 5.0/5.1, a known PDU type, a sane data
/// representation, a frag_length that can hold the header.
pub fn co_header(b: &[u8]) -> Option<CoHeader> {
    let h: &[u8; CO_HEADER] = b.get(..CO_HEADER)?.try_into().ok()?;
    let [5, minor @ (0 | 1), ptype @ 0..=20, flags, d0, d1, _, _, fl0, fl1, al0, al1, c0, c1, c2, c3] =
        *h
    else {
        return None;
    };
    if !drep_sane(d0, d1) {
        return None;
    }
    let le = drep_le(d0);
    let (frag_len, auth_len, call_id) = if le {
        (
            u16::from_le_bytes([fl0, fl1]),
            u16::from_le_bytes([al0, al1]),
            u32::from_le_bytes([c0, c1, c2, c3]),
        )
    } else {
        (
            u16::from_be_bytes([fl0, fl1]),
            u16::from_be_bytes([al0, al1]),
            u32::from_be_bytes([c0, c1, c2, c3]),
        )
    };
    if usize::from(frag_len) < CO_HEADER {
        return None;
    }
    Some(CoHeader {
        minor,
        ptype,
        flags,
        le,
        frag_len,
        auth_len,
        call_id,
    })
}

/// A client's first PDU that opens a DCE/RPC association: a first-fragment bind or alter_context
/// whose context items fit its frag_length exactly as declared. Strict enough for any port.
pub fn looks_like_bind(b: &[u8]) -> bool {
    let Some(h) = co_header(b) else { return false };
    if !matches!(h.ptype, BIND | ALTER_CONTEXT) || h.flags & PFC_FIRST_FRAG == 0 {
        return false;
    }
    let Some(pdu) = b.get(..usize::from(h.frag_len)) else {
        // The PDU continues in a later segment: its context count must still fit frag_length.
        let n = usize::from(b.get(24).copied().unwrap_or(0));
        return n > 0 && usize::from(h.frag_len) >= 28 + 44 * n;
    };
    matches!(parse_co(pdu), Ok((_, _, Pdu::Bind { contexts }, _)) if !contexts.is_empty())
}

/// The authentication trailer (MS-RPCE sec_trailer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth {
    pub auth_type: u8,
    pub auth_level: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub id: u16,
    pub abstract_syntax: SyntaxId,
    pub transfer: Vec<SyntaxId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindResult {
    pub result: u16,
    pub reason: u16,
    pub transfer: SyntaxId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu<'a> {
    /// bind or alter_context (the header's ptype tells which).
    Bind {
        contexts: Vec<Context>,
    },
    /// bind_ack or alter_context_resp.
    BindAck {
        sec_addr: Option<String>,
        results: Vec<BindResult>,
    },
    BindNak {
        reason: u16,
    },
    Request {
        context_id: u16,
        opnum: u16,
        object: Option<Uuid>,
        stub: &'a [u8],
    },
    Response {
        context_id: u16,
        stub: &'a [u8],
    },
    Fault {
        context_id: u16,
        status: u32,
    },
    /// auth3, shutdown, cancels, RPC over HTTP: framed and counted, not decoded.
    Other,
}

/// Where a PDU's body ends and what its trailer says: body = [16, end).
fn body_end(pdu: &[u8], h: &CoHeader) -> Result<(usize, Option<Auth>), &'static str> {
    let len = pdu.len();
    if h.auth_len == 0 {
        return Ok((len, None));
    }
    let trailer = len
        .checked_sub(usize::from(h.auth_len))
        .and_then(|n| n.checked_sub(8))
        .filter(|&t| t >= CO_HEADER)
        .ok_or("auth_length runs past the PDU")?;
    let t = pdu.get(trailer..trailer + 8).ok_or("auth trailer cut")?;
    let (auth_type, auth_level, pad) = match *t {
        [a, b, c, ..] => (a, b, c),
        _ => return Err("auth trailer cut"),
    };
    let end = trailer
        .checked_sub(usize::from(pad))
        .filter(|&e| e >= CO_HEADER)
        .ok_or("auth_pad_length runs past the body")?;
    Ok((
        end,
        Some(Auth {
            auth_type,
            auth_level,
        }),
    ))
}

/// Decodes one whole connection-oriented PDU (exactly frag_length bytes).
pub fn parse_co(pdu: &[u8]) -> Result<(CoHeader, Option<Auth>, Pdu<'_>, usize), &'static str> {
    let h = co_header(pdu).ok_or("not a DCE/RPC header")?;
    if pdu.len() != usize::from(h.frag_len) {
        return Err("frag_length differs from the PDU");
    }
    let (end, auth) = body_end(pdu, &h)?;
    let body = pdu.get(..end).ok_or("body past the PDU")?;
    let mut r = Ndr::new(body, h.le);
    r.skip(CO_HEADER).ok_or("short PDU")?;
    let cut = "PDU body cut short";
    let p = match h.ptype {
        BIND | ALTER_CONTEXT => {
            r.skip(8).ok_or(cut)?; // max_xmit, max_recv, assoc_group
            let n = usize::from(r.u8().ok_or(cut)?);
            r.skip(3).ok_or(cut)?;
            let mut contexts = Vec::with_capacity(n.min(MAX_ITEMS));
            for _ in 0..n {
                let id = r.u16().ok_or(cut)?;
                let nt = usize::from(r.u8().ok_or(cut)?);
                r.skip(1).ok_or(cut)?;
                let abstract_syntax = r.syntax().ok_or(cut)?;
                let mut transfer = Vec::with_capacity(nt);
                for _ in 0..nt {
                    transfer.push(r.syntax().ok_or(cut)?);
                }
                contexts.push(Context {
                    id,
                    abstract_syntax,
                    transfer,
                });
            }
            Pdu::Bind { contexts }
        }
        BIND_ACK | ALTER_CONTEXT_RESP => {
            r.skip(8).ok_or(cut)?;
            let n = usize::from(r.u16().ok_or(cut)?);
            let raw = r.take(n).ok_or(cut)?;
            // Some stacks omit the NUL: trim at the first NUL or at the length.
            let s = raw.split(|&c| c == 0).next().unwrap_or(&[]);
            let sec_addr = (!s.is_empty()).then(|| String::from_utf8_lossy(s).into_owned());
            r.align(4).ok_or(cut)?;
            let n = usize::from(r.u8().ok_or(cut)?);
            r.skip(3).ok_or(cut)?;
            let mut results = Vec::with_capacity(n);
            for _ in 0..n {
                let result = r.u16().ok_or(cut)?;
                let reason = r.u16().ok_or(cut)?;
                let transfer = r.syntax().ok_or(cut)?;
                results.push(BindResult {
                    result,
                    reason,
                    transfer,
                });
            }
            Pdu::BindAck { sec_addr, results }
        }
        BIND_NAK => Pdu::BindNak {
            reason: r.u16().ok_or(cut)?,
        },
        REQUEST => {
            r.skip(4).ok_or(cut)?;
            let context_id = r.u16().ok_or(cut)?;
            let opnum = r.u16().ok_or(cut)?;
            let object = if h.flags & PFC_OBJECT_UUID != 0 {
                Some(r.uuid().ok_or(cut)?)
            } else {
                None
            };
            let stub = r.take(r.remaining()).ok_or(cut)?;
            Pdu::Request {
                context_id,
                opnum,
                object,
                stub,
            }
        }
        RESPONSE => {
            r.skip(4).ok_or(cut)?;
            let context_id = r.u16().ok_or(cut)?;
            r.skip(2).ok_or(cut)?;
            let stub = r.take(r.remaining()).ok_or(cut)?;
            Pdu::Response { context_id, stub }
        }
        FAULT => {
            r.skip(4).ok_or(cut)?;
            let context_id = r.u16().ok_or(cut)?;
            r.skip(2).ok_or(cut)?;
            let status = r.u32().ok_or(cut)?;
            Pdu::Fault { context_id, status }
        }
        _ => Pdu::Other,
    };
    Ok((h, auth, p, end.saturating_sub(CO_HEADER)))
}

/// The 80-byte header of a connectionless PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClHeader {
    pub ptype: u8,
    pub flags1: u8,
    pub le: bool,
    pub object: Uuid,
    pub interface: SyntaxId,
    pub activity: Uuid,
    pub seqnum: u32,
    pub opnum: u16,
    pub fragnum: u16,
    pub auth_proto: u8,
}

/// A connectionless PDU: its header and body. The checks are the ones Suricata needed to stop
/// taking DNS for DCE/RPC: version 4, a known type, a sane representation, and a body length that
/// accounts for the datagram exactly (an authenticated PDU may carry a verifier after the body).
pub fn parse_cl(b: &[u8]) -> Option<(ClHeader, &[u8])> {
    let h: &[u8; CL_HEADER] = b.get(..CL_HEADER)?.try_into().ok()?;
    let [4, ptype @ 0..=10, flags1, _flags2, d0, d1, ..] = *h else {
        return None;
    };
    if !drep_sane(d0, d1) {
        return None;
    }
    let le = drep_le(d0);
    let mut r = Ndr::new(h, le);
    r.skip(8)?;
    let object = r.uuid()?;
    let uuid = r.uuid()?;
    let activity = r.uuid()?;
    let _server_boot = r.u32()?;
    let if_vers = r.u32()?;
    let seqnum = r.u32()?;
    let opnum = r.u16()?;
    let _ihint = r.u16()?;
    let _ahint = r.u16()?;
    let body_len = usize::from(r.u16()?);
    let fragnum = r.u16()?;
    let auth_proto = r.u8()?;
    let rest = b.get(CL_HEADER..)?;
    if body_len > rest.len() || (auth_proto == 0 && body_len != rest.len()) {
        return None;
    }
    let body = rest.get(..body_len)?;
    Some((
        ClHeader {
            ptype,
            flags1,
            le,
            object,
            interface: SyntaxId {
                uuid,
                major: (if_vers & 0xffff) as u16,
                minor: (if_vers >> 16) as u16,
            },
            activity,
            seqnum,
            opnum,
            fragnum,
            auth_proto,
        },
        body,
    ))
}

/// The status of a connectionless reject or fault: the body's first u32.
pub fn cl_status(h: &ClHeader, body: &[u8]) -> Option<u32> {
    Ndr::new(body, h.le).u32()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    pub const EPM: &str = "e1af8308-5d1f-11c9-91a4-08002b14a0fa";
    pub const NDR: &str = "8a885d04-1ceb-11c9-9fe8-08002b104860";

    /// Frame 1 of dcerpc_msnrpc.pcapng (protocols.md §3.2).
    pub fn bind_bytes() -> Vec<u8> {
        hex(
            "05 00 0b 03 10 00 00 00 48 00 00 00 01 00 00 00 d0 16 00 20 00 00 00 00
             01 00 00 00 00 00 01 00
             08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa 03 00 00 00
             04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 00 00",
        )
    }

    #[test]
    fn real_bind() {
        let b = bind_bytes();
        assert!(looks_like_bind(&b));
        let (h, auth, p, _) = parse_co(&b).unwrap();
        assert_eq!((h.ptype, h.call_id, h.le, auth), (BIND, 1, true, None));
        let Pdu::Bind { contexts } = p else { panic!() };
        assert_eq!(contexts.len(), 1);
        assert_eq!(contexts[0].abstract_syntax.uuid.to_string(), EPM);
        assert_eq!(contexts[0].abstract_syntax.version(), "3.0");
        assert_eq!(contexts[0].transfer[0].uuid.to_string(), NDR);
        assert_eq!(contexts[0].transfer[0].version(), "2.0");
    }

    #[test]
    fn real_bind_ack_sec_addr() {
        let b = hex(
            "05 00 0c 03 10 00 00 00 3c 00 00 00 01 00 00 00 d0 16 d0 16 78 20 00 00
                     04 00 31 33 35 00 00 00 01 00 00 00 00 00 00 00
                     04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 00 00",
        );
        let (h, _, p, _) = parse_co(&b).unwrap();
        assert_eq!(h.ptype, BIND_ACK);
        let Pdu::BindAck { sec_addr, results } = p else {
            panic!()
        };
        assert_eq!(sec_addr.as_deref(), Some("135"));
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].result, 0);
    }

    #[test]
    fn big_endian_request_with_auth_trailer() {
        // request, BE, frag_len 48, auth_len 8: body 24 + stub 8 (incl. 4 pad) + trailer 8 + 8
        let mut b = hex("05 00 00 03 00 00 00 00 00 30 00 08 00 00 00 07
                         00 00 00 04 00 01 00 2b");
        b.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0]); // stub + 4 pad bytes
        b.extend_from_slice(&[10, 6, 4, 0, 0, 0, 0, 1]); // NTLM, privacy, pad 4
        b.extend_from_slice(&[0xaa; 8]);
        let (h, auth, p, stub_len) = parse_co(&b).unwrap();
        assert_eq!((h.le, h.call_id, h.frag_len), (false, 7, 48));
        assert_eq!(
            auth,
            Some(Auth {
                auth_type: 10,
                auth_level: 6
            })
        );
        let Pdu::Request {
            context_id,
            opnum,
            stub,
            ..
        } = p
        else {
            panic!()
        };
        assert_eq!(
            (context_id, opnum, stub, stub_len),
            (1, 43, &[1, 2, 3, 4][..], 12)
        );
    }

    #[test]
    fn hostile_lengths() {
        // frag_length smaller than the header
        let mut b = bind_bytes();
        b[8] = 10;
        assert!(co_header(&b).is_none());
        // auth_length past the PDU
        let mut b = bind_bytes();
        b[10] = 0xff;
        b[11] = 0xff;
        assert!(parse_co(&b).is_err());
        // 255 context items announced in a 72-byte PDU
        let mut b = bind_bytes();
        b[24] = 255;
        assert!(parse_co(&b).is_err());
        assert!(!looks_like_bind(&b));
        // garbage and DNS are not DCE/RPC
        assert!(co_header(b"GET / HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_cl(&[0u8; 100]).is_none());
    }

    #[test]
    fn connectionless_header() {
        let mut b = vec![4u8, 0, 0x20, 0, 0x10, 0, 0, 0];
        b.extend_from_slice(&[0; 16]); // object
        let iface = Uuid::parse(EPM);
        let mut w = iface.0;
        w[..4].reverse();
        w[4..6].reverse();
        w[6..8].reverse();
        b.extend_from_slice(&w);
        b.extend_from_slice(&[7; 16]); // activity
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes()); // if_vers 3.0
        b.extend_from_slice(&9u32.to_le_bytes()); // seqnum
        b.extend_from_slice(&3u16.to_le_bytes()); // opnum
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        b.extend_from_slice(&4u16.to_le_bytes()); // body len
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&[1, 2, 3, 4]);
        let (h, body) = parse_cl(&b).unwrap();
        assert_eq!(h.interface.uuid, iface);
        assert_eq!(h.interface.version(), "3.0");
        assert_eq!((h.seqnum, h.opnum, body), (9, 3, &[1, 2, 3, 4][..]));
        b.push(0);
        assert!(
            parse_cl(&b).is_none(),
            "body length must account for the datagram"
        );
    }
}
