//! The endpoint mapper (EPM, e1af8308-5d1f-11c9-91a4-08002b14a0fa v3): ept_map and ept_lookup
//! requests and responses in NDR or NDR64 (either byte order), and protocol towers (C706
//! appendix L), whose floors are little-endian whatever the NDR order and whose ports are
//! big-endian. The tower's own transfer syntax (floor 2) is not the stub's: an NDR64 call still
//! carries towers that name NDR for the interface asked about.

use std::net::Ipv4Addr;

use super::ndr::{Encoding, Ndr, SyntaxId, Uuid};

pub const INTERFACE: Uuid = Uuid::parse("e1af8308-5d1f-11c9-91a4-08002b14a0fa");
pub const OP_LOOKUP: u16 = 2;
pub const OP_MAP: u16 = 3;
/// ept_s_not_registered: nothing maps (also the normal end of a lookup enumeration).
pub const NOT_REGISTERED: u32 = 0x16c9_a0d6;

/// Towers or entries read from one response at most.
pub const MAX_TOWERS: usize = 1 << 16;
/// Floors walked per tower at most (real towers have 4 or 5).
const MAX_FLOORS: usize = 32;

const PROTO_UUID: u8 = 0x0d;
pub const PROTO_NCACN: u8 = 0x0b;
pub const PROTO_NCADG: u8 = 0x0a;
pub const PROTO_NCALRPC: u8 = 0x0c;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Endpoint {
    #[default]
    None,
    Tcp(u16),
    Udp(u16),
    Http(u16),
    /// A named pipe (ncacn_np) or a local RPC port name (ncalrpc).
    Name(String),
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Host {
    #[default]
    None,
    Ipv4(Ipv4Addr),
    Name(String),
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tower {
    pub interface: Option<SyntaxId>,
    pub transfer: Option<SyntaxId>,
    /// Floor 3's protocol id: 0x0b connection-oriented, 0x0a datagram, 0x0c local.
    pub protocol: Option<u8>,
    pub endpoint: Endpoint,
    pub host: Host,
}

/// A network endpoint a tower names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpEndpoint {
    pub transport: &'static str,
    pub protocol: &'static str,
    pub port: u16,
}

impl Tower {
    /// The TCP or UDP endpoint, when the tower names one (ncacn_ip_tcp, ncadg_ip_udp, ncacn_http).
    pub fn ip_endpoint(&self) -> Option<IpEndpoint> {
        let (transport, protocol, port) = match (&self.endpoint, self.protocol) {
            (Endpoint::Tcp(p), None | Some(PROTO_NCACN)) => ("tcp", "ncacn_ip_tcp", *p),
            (Endpoint::Http(p), None | Some(PROTO_NCACN)) => ("tcp", "ncacn_http", *p),
            (Endpoint::Udp(p), None | Some(PROTO_NCADG)) => ("udp", "ncadg_ip_udp", *p),
            _ => return None,
        };
        Some(IpEndpoint {
            transport,
            protocol,
            port,
        })
    }

    /// The tower's IPv4 address unless absent or 0.0.0.0 (which means: the server that answered).
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self.host {
            Host::Ipv4(a) if !a.is_unspecified() => Some(a),
            _ => None,
        }
    }
}

fn le16(b: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(..2)?.try_into().ok()?))
}

fn c_string(b: &[u8]) -> String {
    let s = b.split(|&c| c == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(s).into_owned()
}

/// Walks a tower_octet_string's floors. `None` when the floors run past the bytes.
pub fn parse_tower(b: &[u8]) -> Option<Tower> {
    let count = usize::from(le16(b)?);
    let mut p = 2usize;
    let mut t = Tower::default();
    let mut uuids = 0;
    for _ in 0..count.min(MAX_FLOORS) {
        if p >= b.len() {
            break; // fewer floors than announced: keep those present
        }
        let lhs_len = usize::from(le16(b.get(p..)?)?);
        let lhs = b.get(p + 2..(p + 2).checked_add(lhs_len)?)?;
        p += 2 + lhs_len;
        let rhs_len = usize::from(le16(b.get(p..)?)?);
        let rhs = b.get(p + 2..(p + 2).checked_add(rhs_len)?)?;
        p += 2 + rhs_len;
        let Some((&id, rest)) = lhs.split_first() else {
            continue;
        };
        match id {
            PROTO_UUID => {
                let uuid: &[u8; 16] = rest.get(..16)?.try_into().ok()?;
                let s = SyntaxId {
                    uuid: Uuid::from_ndr(uuid, true),
                    major: rest.get(16..).and_then(le16).unwrap_or(0),
                    minor: le16(rhs).unwrap_or(0),
                };
                if uuids == 0 {
                    t.interface = Some(s);
                } else if uuids == 1 {
                    t.transfer = Some(s);
                }
                uuids += 1;
            }
            PROTO_NCACN | PROTO_NCADG | PROTO_NCALRPC => t.protocol = Some(id),
            0x07 | 0x08 | 0x1f => {
                let port = u16::from_be_bytes(rhs.get(..2)?.try_into().ok()?);
                t.endpoint = match id {
                    0x07 => Endpoint::Tcp(port),
                    0x08 => Endpoint::Udp(port),
                    _ => Endpoint::Http(port),
                };
            }
            0x0f | 0x10 => t.endpoint = Endpoint::Name(c_string(rhs)),
            0x09 => {
                let a: [u8; 4] = rhs.get(..4)?.try_into().ok()?;
                t.host = Host::Ipv4(Ipv4Addr::from(a));
            }
            0x11 => t.host = Host::Name(c_string(rhs)),
            other if t.protocol.is_some() && t.endpoint == Endpoint::None => {
                t.endpoint = Endpoint::Other(other)
            }
            other => t.host = Host::Other(other),
        }
    }
    Some(t)
}

/// twr_t: a conformant structure (max_count, tower_length, octets); in NDR64 its conformance
/// is 8 bytes, tower_length stays 4.
fn twr(r: &mut Ndr<'_>) -> Option<Tower> {
    let _max = r.size()?;
    let len = r.u32()? as usize;
    let b = r.take(len)?;
    parse_tower(b)
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapRequest {
    pub object: Option<Uuid>,
    pub tower: Option<Tower>,
    pub max_towers: u32,
}

pub fn parse_map_request(stub: &[u8], enc: Encoding) -> Option<MapRequest> {
    let mut r = Ndr::with(stub, enc);
    let object = if r.pointer()? != 0 {
        Some(r.uuid()?)
    } else {
        None
    };
    let tower = if r.pointer()? != 0 {
        Some(twr(&mut r)?)
    } else {
        None
    };
    r.align(4)?;
    r.skip(20)?;
    let max_towers = r.u32()?;
    Some(MapRequest {
        object,
        tower,
        max_towers,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapResponse {
    pub towers: Vec<Tower>,
    pub status: u32,
}

/// A count read from the stub, believed only if that many `each`-byte items could still follow.
fn count(r: &Ndr<'_>, n: u64, each: usize) -> Option<usize> {
    let n = usize::try_from(n).ok()?;
    (n <= r.remaining() / each && n <= MAX_TOWERS).then_some(n)
}

pub fn parse_map_response(stub: &[u8], enc: Encoding) -> Option<MapResponse> {
    let mut r = Ndr::with(stub, enc);
    r.skip(20)?; // entry_handle
    let _num = r.u32()?;
    let _max = r.size()?;
    let _offset = r.size()?;
    let actual = r.size()?;
    let n = count(&r, actual, enc.word())?;
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        refs.push(r.pointer()?);
    }
    let mut towers = Vec::new();
    for rid in refs {
        if rid != 0 {
            towers.push(twr(&mut r)?);
        }
    }
    let status = r.u32()?;
    Some(MapResponse { towers, status })
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupRequest {
    pub inquiry_type: u32,
    pub object: Option<Uuid>,
    pub interface: Option<SyntaxId>,
    pub max_entries: u32,
}

pub fn parse_lookup_request(stub: &[u8], enc: Encoding) -> Option<LookupRequest> {
    let mut r = Ndr::with(stub, enc);
    let inquiry_type = r.u32()?;
    let object = if r.pointer()? != 0 {
        Some(r.uuid()?)
    } else {
        None
    };
    let interface = if r.pointer()? != 0 {
        let uuid = r.uuid()?;
        let major = r.u16()?;
        let minor = r.u16()?;
        Some(SyntaxId { uuid, major, minor })
    } else {
        None
    };
    let _vers_option = r.u32()?;
    r.skip(20)?;
    let max_entries = r.u32()?;
    Some(LookupRequest {
        inquiry_type,
        object,
        interface,
        max_entries,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupEntry {
    pub object: Uuid,
    pub tower: Option<Tower>,
    pub annotation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupResponse {
    pub entries: Vec<LookupEntry>,
    pub status: u32,
}

pub fn parse_lookup_response(stub: &[u8], enc: Encoding) -> Option<LookupResponse> {
    let mut r = Ndr::with(stub, enc);
    r.skip(20)?;
    let _num = r.u32()?;
    let _max = r.size()?;
    let _offset = r.size()?;
    let actual = r.size()?;
    // Each entry takes at least a UUID and three words: tower referent, annotation offset and
    // count (28 bytes in NDR, 40 in NDR64).
    let n = count(&r, actual, 16 + 3 * enc.word())?;
    let mut entries = Vec::with_capacity(n);
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        // ept_entry_t holds a pointer: aligned to 8 in NDR64.
        r.align_word()?;
        let object = r.uuid()?;
        refs.push(r.pointer()?);
        let _off = r.size()?;
        let len = usize::try_from(r.size()?).ok()?;
        let annotation = c_string(r.take(len)?);
        entries.push(LookupEntry {
            object,
            tower: None,
            annotation,
        });
    }
    for (e, rid) in entries.iter_mut().zip(refs) {
        if rid != 0 {
            e.tower = Some(twr(&mut r)?);
        }
    }
    let status = r.u32()?;
    Some(LookupResponse { entries, status })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Hex bytes, each line's `//` comment left out.
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .flat_map(|l| l.split_whitespace())
            .collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const NETLOGON_FLOORS_1_3: &str = "05 00
        13 00 0d 78 56 34 12 34 12 cd ab ef 00 01 23 45 67 cf fb 01 00 02 00 00 00
        13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
        01 00 0b 02 00 00 00";

    /// The ept_map request stub of dcerpc_msnrpc.pcapng (protocols.md §4.5).
    pub fn map_request_stub() -> Vec<u8> {
        hex(&format!(
            "01 00 00 00 {} 02 00 00 00 4b 00 00 00 4b 00 00 00 {}
             01 00 07 02 00 00 87 01 00 09 04 00 00 00 00 00 00 {} 04 00 00 00",
            "00 ".repeat(16),
            NETLOGON_FLOORS_1_3,
            "00 ".repeat(20)
        ))
    }

    pub fn map_response_stub() -> Vec<u8> {
        let tower = |port: &str| {
            format!(
                "4b 00 00 00 4b 00 00 00 {NETLOGON_FLOORS_1_3} 01 00 07 02 00 {port}
                 01 00 09 04 00 c0 a8 7a 11 00"
            )
        };
        hex(&format!(
            "{} 02 00 00 00 04 00 00 00 00 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00
             {} {} 00 00 00 00",
            "00 ".repeat(20),
            tower("c2 0c"),
            tower("c2 03")
        ))
    }

    #[test]
    fn real_ept_map() {
        let q = parse_map_request(&map_request_stub(), Encoding::ndr(true)).unwrap();
        assert_eq!(q.max_towers, 4);
        let t = q.tower.unwrap();
        let i = t.interface.unwrap();
        assert_eq!(i.uuid.to_string(), "12345678-1234-abcd-ef00-01234567cffb");
        assert_eq!(i.version(), "1.0");
        assert_eq!(t.ip_endpoint().unwrap().port, 135);
        assert_eq!(t.address(), None);

        let resp = parse_map_response(&map_response_stub(), Encoding::ndr(true)).unwrap();
        assert_eq!(resp.status, 0);
        let ports: Vec<u16> = resp
            .towers
            .iter()
            .map(|t| t.ip_endpoint().unwrap().port)
            .collect();
        assert_eq!(ports, [49676, 49667]);
        assert_eq!(
            resp.towers[0].address(),
            Some(Ipv4Addr::new(192, 168, 122, 17))
        );
        assert_eq!(resp.towers[0].transfer.unwrap().version(), "2.0");
    }

    #[test]
    fn hostile_towers() {
        // 65535 floors announced, none present
        assert_eq!(parse_tower(&[0xff, 0xff]), Some(Tower::default()));
        // a floor whose lhs length runs past the tower
        assert_eq!(parse_tower(&[1, 0, 0xff, 0xff, 0x0d]), None);
        // tower_length past the stub
        let mut s = map_response_stub();
        s[48..52].copy_from_slice(&0xffffu32.to_le_bytes());
        assert_eq!(parse_map_response(&s, Encoding::ndr(true)), None);
        // an actual_count that would overflow u32 arithmetic and exceed the stub
        let mut s = map_response_stub();
        s[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_map_response(&s, Encoding::ndr(true)), None);
        // truncated anywhere: never a panic
        let s = map_response_stub();
        for n in 0..s.len() {
            let _ = parse_map_response(&s[..n], Encoding::ndr(true));
            let _ = parse_lookup_response(&s[..n], Encoding::ndr(false));
        }
    }

    /// The ept_map request stub of attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng frame 3, sent
    /// on presentation context 1 whose bind_ack accepted NDR64.
    pub fn ndr64_map_request_stub() -> Vec<u8> {
        hex(&format!(
            "01 00 00 00 00 00 00 00 {zero16} // object: referent 1 (8 bytes), nil UUID
             02 00 00 00 00 00 00 00           // map_tower: referent 2
             4b 00 00 00 00 00 00 00           // twr_t conformance 75 (8 bytes)
             4b 00 00 00                       // tower_length 75 (4 bytes)
             05 00                             // 5 floors
             13 00 0d 81 bb 7a 36 44 98 f1 35 ad 32 98 f0 38 00 10 03 02 00 02 00 00 00
                                               // floor 1: SVCCTL 367abb81-... v2, minor 0
             13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
                                               // floor 2: NDR v2 (the tower's, not the call's)
             01 00 0b 02 00 00 00              // floor 3: connection-oriented
             01 00 07 02 00 00 87              // floor 4: TCP port 135
             01 00 09 04 00 ac 10 42 24        // floor 5: IP 172.16.66.36
             00                                // pad to 4
             {zero20}                         // entry_handle
             04 00 00 00                       // max_towers 4",
            zero16 = "00 ".repeat(16),
            zero20 = "00 ".repeat(20),
        ))
    }

    /// Its answer, frame 4: one tower, TCP 49683 at 172.16.66.36.
    pub fn ndr64_map_response_stub() -> Vec<u8> {
        hex(&format!(
            "{zero20}                         // entry_handle
             01 00 00 00                       // num_towers 1
             04 00 00 00 00 00 00 00           // max_count 4 (8 bytes)
             00 00 00 00 00 00 00 00           // offset 0
             01 00 00 00 00 00 00 00           // actual_count 1
             03 00 00 00 00 00 00 00           // tower referent 3
             4b 00 00 00 00 00 00 00 4b 00 00 00 // twr_t: conformance 75, tower_length 75
             05 00
             13 00 0d 81 bb 7a 36 44 98 f1 35 ad 32 98 f0 38 00 10 03 02 00 02 00 00 00
             13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
             01 00 0b 02 00 00 00
             01 00 07 02 00 c2 13              // floor 4: TCP port 49683
             01 00 09 04 00 ac 10 42 24
             00                                // pad to 4
             00 00 00 00                       // status 0",
            zero20 = "00 ".repeat(20),
        ))
    }

    #[test]
    fn real_ndr64_ept_map() {
        let ndr64 = Encoding {
            le: true,
            ndr64: true,
        };
        let q = parse_map_request(&ndr64_map_request_stub(), ndr64).unwrap();
        assert_eq!(q.max_towers, 4);
        assert_eq!(q.object, Some(Uuid::default()));
        let t = q.tower.unwrap();
        assert_eq!(
            t.interface.unwrap().uuid.to_string(),
            "367abb81-9844-35f1-ad32-98f038001003"
        );
        assert_eq!(t.transfer.unwrap().uuid, crate::proto::ndr::NDR);
        let resp = parse_map_response(&ndr64_map_response_stub(), ndr64).unwrap();
        assert_eq!(resp.status, 0);
        assert_eq!(resp.towers.len(), 1);
        let ip = resp.towers[0].ip_endpoint().unwrap();
        assert_eq!((ip.transport, ip.port), ("tcp", 49683));
        assert_eq!(
            resp.towers[0].address(),
            Some(Ipv4Addr::new(172, 16, 66, 36))
        );
        // Read as NDR the same bytes give nothing sensible: the context's syntax matters.
        assert!(
            parse_map_response(&ndr64_map_response_stub(), Encoding::ndr(true))
                .is_none_or(|r| r.towers.iter().all(|t| t.ip_endpoint().is_none()))
        );
        let s = ndr64_map_response_stub();
        for n in 0..s.len() {
            let _ = parse_map_response(&s[..n], ndr64);
            let _ = parse_lookup_response(&s[..n], ndr64);
            let _ = parse_map_request(&s[..n], ndr64);
            let _ = parse_lookup_request(&s[..n], ndr64);
        }
    }

    #[test]
    fn ndr64_lookup_request_and_response() {
        let ndr64 = Encoding {
            le: true,
            ndr64: true,
        };
        let q = hex(&format!(
            "01 00 00 00 00 00 00 00           // inquiry_type 1 (rpc_c_ep_match_by_if), pad to 8
             00 00 00 00 00 00 00 00           // object: null
             01 00 00 00 00 00 00 00           // interface: referent 1
             78 56 34 12 34 12 cd ab ef 00 01 23 45 67 cf fb 01 00 00 00
                                               // NETLOGON v1.0
             01 00 00 00                       // vers_option
             {zero20}                         // entry_handle
             01 00 00 00                       // max_entries",
            zero20 = "00 ".repeat(20),
        ));
        let q = parse_lookup_request(&q, ndr64).unwrap();
        assert_eq!(q.inquiry_type, 1);
        assert_eq!(q.object, None);
        assert_eq!(
            q.interface.unwrap().uuid.to_string(),
            "12345678-1234-abcd-ef00-01234567cffb"
        );
        let tcp_tower =
            format!("{NETLOGON_FLOORS_1_3} 01 00 07 02 00 c2 0c 01 00 09 04 00 00 00 00 00");
        let tl = hex(&tcp_tower).len();
        let stub = hex(&format!(
            "{zero20}                         // entry_handle
             01 00 00 00                       // num_ents 1
             01 00 00 00 00 00 00 00           // max_count
             00 00 00 00 00 00 00 00           // offset
             01 00 00 00 00 00 00 00           // actual_count
             {zero16}                         // entry 0: object
             07 00 00 00 00 00 00 00           // tower referent
             00 00 00 00 00 00 00 00           // annotation offset
             03 00 00 00 00 00 00 00 61 62 00  // annotation count 3, \"ab\"
             00 00 00 00 00                    // pad to 8
             {tl:02x} 00 00 00 00 00 00 00 {tl:02x} 00 00 00 {tcp_tower}
             00                                // pad to 4
             d6 a0 c9 16                       // status ept_s_not_registered",
            zero20 = "00 ".repeat(20),
            zero16 = "00 ".repeat(16),
        ));
        let r = parse_lookup_response(&stub, ndr64).unwrap();
        assert_eq!(r.status, NOT_REGISTERED);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries[0].annotation, "ab");
        let t = r.entries[0].tower.as_ref().unwrap();
        assert_eq!(t.ip_endpoint().unwrap().port, 49676);
    }

    #[test]
    fn lookup_response_with_annotation_and_pipe() {
        let pipe_tower =
            "04 00 13 00 0d 78 56 34 12 34 12 cd ab ef 00 01 23 45 67 cf fb 01 00 02 00 00 00
            13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
            01 00 0b 02 00 00 00 01 00 0f 06 00 5c 70 69 70 65 00";
        let tcp_tower =
            format!("{NETLOGON_FLOORS_1_3} 01 00 07 02 00 c2 0c 01 00 09 04 00 00 00 00 00");
        let pl = hex(pipe_tower).len();
        let tl = hex(&tcp_tower).len();
        let stub = hex(&format!(
            "{handle} 02 00 00 00 02 00 00 00 00 00 00 00 02 00 00 00
             {obj} 01 00 00 00 00 00 00 00 03 00 00 00 61 62 00 00
             {obj} 02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00
             {pl:02x} 00 00 00 {pl:02x} 00 00 00 {pipe_tower} 00 00
             {tl:02x} 00 00 00 {tl:02x} 00 00 00 {tcp_tower} 00
             d6 a0 c9 16",
            handle = "00 ".repeat(20),
            obj = "00 ".repeat(16),
        ));
        let r = parse_lookup_response(&stub, Encoding::ndr(true)).unwrap();
        assert_eq!(r.status, NOT_REGISTERED);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[0].annotation, "ab");
        let t0 = r.entries[0].tower.as_ref().unwrap();
        assert_eq!(t0.endpoint, Endpoint::Name("\\pipe".into()));
        assert_eq!(t0.ip_endpoint(), None);
        assert_eq!(r.entries[1].annotation, "");
        let t1 = r.entries[1].tower.as_ref().unwrap();
        assert_eq!(t1.ip_endpoint().unwrap().port, 49676);
        assert_eq!(t1.address(), None);
    }
}
