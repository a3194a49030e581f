//! TLS record and handshake headers, ClientHello and ServerHello (RFC 8446, RFC 5246, RFC 6066,
//! RFC 7301): enough to tell TLS from plaintext and to read SNI, ALPN, versions and the cipher.
//! Handshake bytes are given already joined across records (see `handshake_bytes`).

use std::borrow::Cow;

/// Largest TLS record length believed (ciphertext of TLS 1.2: 2^14 + 2048).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message buffered for decoding.
pub const MAX_HANDSHAKE: usize = 64 << 10;
const MAX_NAMES: usize = 64;

pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
/// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub record_version: u16,
    pub legacy_version: u16,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// supported_versions without GREASE values.
    pub supported_versions: Vec<u16>,
}

impl ClientHello {
    /// The highest version offered.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .max()
            .unwrap_or(self.legacy_version)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub cipher: u16,
    /// The negotiated version: supported_versions if present, else legacy_version.
    pub version: u16,
    pub alpn: Option<String>,
    pub hello_retry: bool,
}

/// A version's name; only an unknown one is formatted (a table names tens of thousands).
pub fn version_name(v: u16) -> Cow<'static, str> {
    Cow::Borrowed(match v {
        0x0200 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1.0",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        v => return Cow::Owned(format!("0x{v:04x}")),
    })
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

struct R<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> R<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.p)?;
        self.p += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.b.get(self.p..self.p + 2)?;
        self.p += 2;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// Does a direction's first payload open like a TLS record carrying a hello of `hello_type`?
pub fn looks_like_tls(b: &[u8], hello_type: u8) -> bool {
    match b {
        [CONTENT_HANDSHAKE, 3, minor, h1, h2, t, ..] if *minor <= 4 => {
            let len = usize::from(u16::from_be_bytes([*h1, *h2]));
            (1..=MAX_RECORD).contains(&len) && *t == hello_type
        }
        _ => false,
    }
}

/// Does a direction's first payload open with a TLS record of any content type (or an
/// SSLv2-compatible hello)? Mid-session flows start with application data or alerts.
pub fn looks_like_record(b: &[u8]) -> bool {
    match b {
        [20..=24, 3, minor, h1, h2, ..] if *minor <= 4 => {
            (1..=MAX_RECORD).contains(&usize::from(u16::from_be_bytes([*h1, *h2])))
        }
        _ => looks_like_sslv2_hello(b),
    }
}

/// An SSLv2-compatible ClientHello (two-byte length with bit 7 set, message type 1, a version).
pub fn looks_like_sslv2_hello(b: &[u8]) -> bool {
    matches!(b, [h, _, 1, 3 | 2, 0..=4, ..] if h & 0x80 != 0)
        || matches!(b, [h, _, 1, 0, 2, ..] if h & 0x80 != 0)
}

/// Joins the handshake-record payloads at the start of a direction's stream: the record version
/// of the first record and up to `MAX_HANDSHAKE` handshake bytes. `None` if it is not TLS.
pub fn handshake_bytes(stream: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut r = R { b: stream, p: 0 };
    let mut out = Vec::new();
    let mut first_version = None;
    while out.len() < MAX_HANDSHAKE {
        let Some(ct) = r.u8() else { break };
        let (Some(ver), Some(len)) = (r.u16(), r.u16()) else {
            break;
        };
        if ct != CONTENT_HANDSHAKE || ver >> 8 != 3 || usize::from(len) > MAX_RECORD {
            break;
        }
        first_version.get_or_insert(ver);
        let body =
            r.b.get(r.p..(r.p + usize::from(len)).min(r.b.len()))
                .unwrap_or(&[]);
        out.extend_from_slice(
            body.get(..body.len().min(MAX_HANDSHAKE - out.len()))
                .unwrap_or(&[]),
        );
        if body.len() < usize::from(len) {
            break;
        }
        r.p += usize::from(len);
    }
    first_version.map(|v| (v, out))
}

/// The first handshake message when it lies whole inside the first record of `b`, as it
/// usually does: (record version, type, body), without copying.
pub fn first_message(b: &[u8]) -> Option<(u16, u8, &[u8])> {
    let [CONTENT_HANDSHAKE, 3, minor, l0, l1, rest @ ..] = b else {
        return None;
    };
    let record = rest.get(..usize::from(u16::from_be_bytes([*l0, *l1])))?;
    let (t, body) = handshake_message(record)?;
    Some((u16::from_be_bytes([3, *minor]), t, body))
}

/// The type and declared body length of the handshake message `hs` starts with, complete or not.
pub fn handshake_header(hs: &[u8]) -> Option<(u8, usize)> {
    let [t, a, b, c, ..] = *hs else { return None };
    Some((
        t,
        usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c),
    ))
}

/// The first handshake message of `hs` if it is complete: (type, body).
pub fn handshake_message(hs: &[u8]) -> Option<(u8, &[u8])> {
    let (&t, len) = (hs.first()?, hs.get(1..4)?);
    let len = (usize::from(*len.first()?) << 16)
        | (usize::from(*len.get(1)?) << 8)
        | usize::from(*len.get(2)?);
    Some((t, hs.get(4..4 + len)?))
}

fn extensions<'a>(r: &mut R<'a>) -> Vec<(u16, &'a [u8])> {
    let mut out = Vec::new();
    let Some(block) = r.vec16() else { return out };
    let mut e = R { b: block, p: 0 };
    while out.len() < 256 {
        let (Some(t), Some(d)) = (e.u16(), e.vec16()) else {
            break;
        };
        out.push((t, d));
    }
    out
}

fn alpn_list(d: &[u8]) -> Vec<String> {
    let mut r = R { b: d, p: 0 };
    let mut out = Vec::new();
    if let Some(list) = r.vec16() {
        let mut l = R { b: list, p: 0 };
        while out.len() < MAX_NAMES {
            let Some(p) = l.vec8() else { break };
            out.push(String::from_utf8_lossy(p).into_owned());
        }
    }
    out
}

pub fn parse_client_hello(record_version: u16, body: &[u8]) -> Option<ClientHello> {
    let mut r = R { b: body, p: 0 };
    let legacy_version = r.u16()?;
    r.take(32)?;
    let sid = r.vec8()?;
    if sid.len() > 32 {
        return None;
    }
    let suites = r.vec16()?;
    if suites.len() % 2 != 0 {
        return None;
    }
    r.vec8()?;
    let mut ch = ClientHello {
        record_version,
        legacy_version,
        ..Default::default()
    };
    for (t, d) in extensions(&mut r) {
        match t {
            0 => {
                let mut s = R { b: d, p: 0 };
                if let Some(list) = s.vec16() {
                    let mut l = R { b: list, p: 0 };
                    while let (Some(kind), Some(name)) = (l.u8(), l.vec16()) {
                        if kind == 0 {
                            ch.sni = Some(String::from_utf8_lossy(name).into_owned());
                            break;
                        }
                    }
                }
            }
            16 => ch.alpn = alpn_list(d),
            43 => {
                let mut s = R { b: d, p: 0 };
                if let Some(list) = s.vec8() {
                    let mut l = R { b: list, p: 0 };
                    while let Some(v) = l.u16() {
                        if !is_grease(v) && ch.supported_versions.len() < MAX_NAMES {
                            ch.supported_versions.push(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(ch)
}

pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = R { b: body, p: 0 };
    let legacy_version = r.u16()?;
    let random = r.take(32)?;
    r.vec8()?;
    let cipher = r.u16()?;
    r.u8()?;
    let mut sh = ServerHello {
        legacy_version,
        cipher,
        version: legacy_version,
        hello_retry: random == HRR_RANDOM,
        alpn: None,
    };
    for (t, d) in extensions(&mut r) {
        match (t, d) {
            (43, [a, b]) => sh.version = u16::from_be_bytes([*a, *b]),
            (16, d) => sh.alpn = alpn_list(d).into_iter().next(),
            _ => {}
        }
    }
    Some(sh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(t: u16, d: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend((d.len() as u16).to_be_bytes());
        v.extend(d);
        v
    }

    fn client_hello(sni: &str) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0x11; 32]); // random
        body.push(0); // session id
        body.extend([0, 4, 0x13, 0x01, 0xc0, 0x2f]); // two suites
        body.extend([1, 0]); // null compression
        let mut name = vec![0];
        name.extend((sni.len() as u16).to_be_bytes());
        name.extend(sni.as_bytes());
        let mut sni_ext = ((name.len()) as u16).to_be_bytes().to_vec();
        sni_ext.extend(name);
        let mut exts = ext(0, &sni_ext);
        exts.extend(ext(
            16,
            &[0, 9, 2, b'h', b'2', 5, b'h', b't', b't', b'p', b'/'],
        ));
        exts.extend(ext(43, &[6, 0x3a, 0x3a, 3, 4, 3, 3])); // GREASE, 1.3, 1.2
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![CLIENT_HELLO, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![CONTENT_HANDSHAKE, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn client_hello_fields() {
        let rec = client_hello("mgmt.example.com");
        assert!(looks_like_tls(&rec, CLIENT_HELLO));
        let (rv, hs) = handshake_bytes(&rec).unwrap();
        let (t, body) = handshake_message(&hs).unwrap();
        assert_eq!((rv, t), (0x0301, CLIENT_HELLO));
        let ch = parse_client_hello(rv, body).unwrap();
        assert_eq!(ch.sni.as_deref(), Some("mgmt.example.com"));
        assert_eq!(ch.alpn, ["h2", "http/"]);
        assert_eq!(ch.supported_versions, [0x0304, 0x0303]);
        assert_eq!(version_name(ch.max_version()), "TLSv1.3");
    }

    #[test]
    fn hello_split_over_records() {
        let rec = client_hello("a.example");
        let hs = &rec[5..];
        let (a, b) = hs.split_at(20);
        let mut two = vec![CONTENT_HANDSHAKE, 3, 3, 0, a.len() as u8];
        two.extend(a);
        two.extend([CONTENT_HANDSHAKE, 3, 3]);
        two.extend((b.len() as u16).to_be_bytes());
        two.extend(b);
        let (_, joined) = handshake_bytes(&two).unwrap();
        let (_, body) = handshake_message(&joined).unwrap();
        assert_eq!(
            parse_client_hello(0x0303, body).unwrap().sni.as_deref(),
            Some("a.example")
        );
    }

    #[test]
    fn server_hello_and_retry() {
        let mut body = vec![3, 3];
        body.extend(HRR_RANDOM);
        body.extend([0, 0x13, 0x02, 0]);
        let exts = ext(43, &[3, 4]);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let sh = parse_server_hello(&body).unwrap();
        assert_eq!(
            (sh.version, sh.cipher, sh.hello_retry),
            (0x0304, 0x1302, true)
        );
    }

    #[test]
    fn plaintext_and_hostile_lengths() {
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n", CLIENT_HELLO));
        assert!(!looks_like_tls(&[22, 3, 9, 0, 10, 1], CLIENT_HELLO));
        assert!(looks_like_sslv2_hello(&[0x80, 0x2e, 1, 3, 1]));
        let mut rec = client_hello("x");
        // an extension block longer than the record: the hello still parses, extensions stop
        let n = rec.len();
        rec[n - 20] = 0xff;
        let (rv, hs) = handshake_bytes(&rec).unwrap();
        if let Some((_, body)) = handshake_message(&hs) {
            let _ = parse_client_hello(rv, body);
        }
        assert!(handshake_message(&[1, 0xff, 0xff, 0xff, 0]).is_none());
    }
}
