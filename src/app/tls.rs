//! TLS handshakes over flows: the ClientHello and ServerHello of each TCP flow that opens with a
//! TLS record or switches to TLS after a plaintext preamble (STARTTLS and its kin, see
//! `starttls`), gathered across records and segments (post-quantum key shares make ClientHellos
//! larger than a segment), into the `tls` table.

use super::{FlowFacts, OrientedFlow, Sink};
use crate::application::App;
use crate::bounded::BoundedRows;
use crate::packet::Addr;
use crate::proto::tls::{self, ClientHello, ServerHello};

/// Bytes buffered per direction while a hello is incomplete: the largest handshake message
/// decoded plus the headers of the records it may span.
const MAX_BUFFER: usize = tls::MAX_HANDSHAKE + 5 * 8 + 4;

/// The anomaly of a hello longer than what is reassembled to decode it.
pub const TOO_LONG: &str = "tls_hello_too_long";

fn too_long(e: &OrientedFlow, t: u8, len: usize) -> String {
    let what = match t {
        tls::CLIENT_HELLO => "ClientHello".to_owned(),
        tls::SERVER_HELLO => "ServerHello".to_owned(),
        t => format!("handshake message of type {t}"),
    };
    format!(
        "flow {} on port {}: {what} of {len} bytes, longer than the {} bytes reassembled to \
         decode it; its SNI, versions and cipher are not read",
        e.flow_id,
        e.server_port,
        tls::MAX_HANDSHAKE - 4
    )
}

#[derive(Debug, Default)]
pub struct TlsStream {
    bufs: [Vec<u8>; 2],
    finished: [bool; 2],
    ts: Option<i64>,
    server_ts: Option<i64>,
    sslv2: bool,
    /// The server asked for another ClientHello: its final ServerHello is still to come.
    hello_retry: bool,
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    emitted: bool,
    /// Client bytes of plaintext before the first TLS record (None: the flow opened with TLS).
    preamble: Option<u64>,
}

impl TlsStream {
    pub fn after_preamble(offset: u64) -> Self {
        TlsStream {
            preamble: Some(offset),
            ..TlsStream::default()
        }
    }

    pub fn swap(&mut self) {
        self.bufs.swap(0, 1);
        self.finished.swap(0, 1);
    }

    pub fn gap(&mut self, d: usize) {
        // A hello cut by a hole cannot be decoded.
        if let Some(f) = self.finished.get_mut(d) {
            *f = true;
        }
    }

    pub fn finished(&self) -> bool {
        self.finished == [true, true]
    }
}

#[derive(Debug, Clone)]
pub struct TlsRow {
    pub flow_id: u64,
    pub ts: Option<i64>,
    pub server_ts: Option<i64>,
    pub client: Addr,
    pub server: Addr,
    pub server_port: u16,
    pub sslv2: bool,
    /// Client bytes before TLS began: 0 when the flow opened with TLS.
    pub client_offset: u64,
    pub client_hello: Option<ClientHello>,
    pub server_hello: Option<ServerHello>,
}

#[derive(Debug, Default)]
pub struct Tls {
    pub rows: BoundedRows<TlsRow>,
    pub hellos: u64,
}

/// The SSLv2-compatible ClientHello's version (bytes 3-4 after the two-byte length).
fn sslv2_version(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(3)?, *b.get(4)?]))
}

impl Tls {
    /// Reassembled bytes of one direction.
    pub fn data(
        &mut self,
        st: &mut TlsStream,
        e: &OrientedFlow,
        d: usize,
        bytes: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> FlowFacts {
        let mut said = FlowFacts::default();
        let (Some(buf), Some(&done)) = (st.bufs.get_mut(d), st.finished.get(d)) else {
            return said;
        };
        if done {
            return said;
        }
        said.app = Some(App::Tls);
        if buf.is_empty() && tls::looks_like_sslv2_hello(bytes) {
            st.sslv2 = true;
            st.ts = Some(ts);
            st.client_hello = Some(ClientHello {
                record_version: 0x0200,
                legacy_version: sslv2_version(bytes).unwrap_or(0x0200),
                ..ClientHello::default()
            });
            self.finish_direction(st, d);
        } else if let Some((rv, t, body)) =
            buf.is_empty().then(|| tls::first_message(bytes)).flatten()
        {
            // The usual case: the whole hello in the first record of the first segment.
            self.hello(st, d, rv, t, body, ts);
        } else {
            let room = MAX_BUFFER.saturating_sub(buf.len());
            buf.extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or(&[]));
            if st.hello_retry && d == 1 {
                // After a HelloRetryRequest the server may send a ChangeCipherSpec first.
                while let [20, 3, _, h, l, _, ..] = buf.as_slice() {
                    let n = 5 + usize::from(u16::from_be_bytes([*h, *l]));
                    buf.drain(..n.min(buf.len()));
                }
            }
            let full = buf.len() >= MAX_BUFFER;
            match tls::handshake_bytes(buf) {
                // Not a handshake record: nothing more to learn from this direction.
                None => self.finish_direction(st, d),
                Some((rv, hs)) => match tls::handshake_message(&hs) {
                    Some((t, body)) => self.hello(st, d, rv, t, body, ts),
                    None => match tls::handshake_header(&hs) {
                        // Said as soon as its header is read: it can never be whole, and nothing
                        // after it in this direction is read, so the flow's SNI would be lost
                        // without a word.
                        Some((t, len)) if 4 + len > tls::MAX_HANDSHAKE => {
                            sink.push("tls", TOO_LONG, too_long(e, t, len));
                            self.finish_direction(st, d);
                        }
                        _ if full => self.finish_direction(st, d),
                        _ => said.app = Some(App::Tls),
                    },
                },
            }
        }
        said.tls_sni = st.client_hello.as_ref().and_then(|c| c.sni.clone());
        said.tls_version = st.server_hello.as_ref().map(|s| s.version);
        said.tls_offset = st.preamble.filter(|_| st.client_hello.is_some());
        if st.finished() {
            self.emit(st, e);
        }
        said
    }

    fn finish_direction(&mut self, st: &mut TlsStream, d: usize) {
        if let (Some(f), Some(b)) = (st.finished.get_mut(d), st.bufs.get_mut(d)) {
            *f = true;
            *b = Vec::new();
        }
    }

    /// A whole handshake message at the start of direction `d`.
    fn hello(&mut self, st: &mut TlsStream, d: usize, rv: u16, t: u8, body: &[u8], ts: i64) {
        self.hellos += 1;
        if t == tls::CLIENT_HELLO {
            st.ts = Some(ts);
            st.client_hello = tls::parse_client_hello(rv, body);
        } else if t == tls::SERVER_HELLO {
            st.server_ts = Some(ts);
            let mut sh = tls::parse_server_hello(body);
            if let Some(sh) = sh.as_mut() {
                sh.hello_retry |= st.hello_retry;
                if sh.hello_retry && !st.hello_retry {
                    // Wait for the final ServerHello (RFC 8446 §4.1.4).
                    st.hello_retry = true;
                    st.server_hello = Some(sh.clone());
                    if let Some(b) = st.bufs.get_mut(d) {
                        b.clear();
                    }
                    return;
                }
            }
            st.server_hello = sh;
        }
        self.finish_direction(st, d);
    }

    fn emit(&mut self, st: &mut TlsStream, e: &OrientedFlow) {
        if st.emitted || (st.client_hello.is_none() && st.server_hello.is_none()) {
            return;
        }
        st.emitted = true;
        self.rows.push(TlsRow {
            flow_id: e.flow_id,
            ts: st.ts,
            server_ts: st.server_ts,
            client: e.client,
            server: e.server,
            server_port: e.server_port,
            sslv2: st.sslv2,
            client_offset: st.preamble.unwrap_or(0),
            client_hello: st.client_hello.take(),
            server_hello: st.server_hello.take(),
        });
    }

    pub fn close(&mut self, mut st: TlsStream, e: &OrientedFlow) {
        self.emit(&mut st, e);
    }

    pub fn finish(&mut self) {
        crate::order::sort_rows_by_key(&mut self.rows, |r| (r.ts.or(r.server_ts), r.flow_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::{Anomalies, Position};
    use crate::packet::IPPROTO_TCP;

    /// A ClientHello naming `sni` whose body is `body_len` bytes (padded by cipher suites and a
    /// padding extension, as a hello with a large post-quantum key share is), as TLS records of at
    /// most 16 KiB.
    fn records(sni: &str, body_len: usize) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0x11; 32]);
        body.push(0);
        // Cipher suites: as many as it takes past 64 KiB (one extensions block holds at most
        // 65535 bytes).
        let suites = 8000;
        body.extend(u16::try_from(suites).unwrap().to_be_bytes());
        body.extend(std::iter::repeat_n([0x13, 0x01], suites / 2).flatten());
        body.extend([1, 0]);
        let name = [&[0][..], &(sni.len() as u16).to_be_bytes(), sni.as_bytes()].concat();
        let sni_ext = [&(name.len() as u16).to_be_bytes()[..], &name].concat();
        let mut exts = [&[0, 0][..], &(sni_ext.len() as u16).to_be_bytes(), &sni_ext].concat();
        let pad = body_len - body.len() - 2 - exts.len() - 4;
        exts.extend([0, 21]);
        exts.extend(u16::try_from(pad).unwrap().to_be_bytes());
        exts.extend(std::iter::repeat_n(0, pad));
        body.extend(u16::try_from(exts.len()).unwrap().to_be_bytes());
        body.extend(exts);
        assert_eq!(body.len(), body_len);
        let len = u32::try_from(body_len).unwrap().to_be_bytes();
        let hs = [&[tls::CLIENT_HELLO, len[1], len[2], len[3]][..], &body].concat();
        let mut out = Vec::new();
        for rec in hs.chunks(1 << 14) {
            out.extend([tls::CONTENT_HANDSHAKE, 3, 1]);
            out.extend(u16::try_from(rec.len()).unwrap().to_be_bytes());
            out.extend(rec);
        }
        out
    }

    /// The hello fed to a stream in segments of 1460 bytes: the flow's SNI and the anomalies.
    fn decode(stream: &[u8]) -> (Option<String>, Anomalies, u64) {
        let mut tls = Tls::default();
        let mut st = TlsStream::default();
        let mut an = Anomalies::default();
        let e = OrientedFlow {
            flow_id: 7,
            client: Addr::v4([10, 0, 0, 1]),
            client_port: 40000,
            server: Addr::v4([10, 0, 0, 2]),
            server_port: 443,
            proto: IPPROTO_TCP,
        };
        let mut sni = None;
        for (i, seg) in stream.chunks(1460).enumerate() {
            let at = Position {
                capture: 0,
                record_index: i as u64 + 3,
                byte_offset: 0,
            };
            let mut sink = Sink { an: &mut an, at };
            let said = tls.data(&mut st, &e, 0, seg, 0, &mut sink);
            if i == 0 {
                assert_eq!(said.app, Some(App::Tls));
            }
            sni = sni.or(said.tls_sni);
        }
        (sni, an, tls.hellos)
    }

    #[test]
    fn a_hello_longer_than_the_bound_is_an_anomaly_naming_its_flow() {
        let (sni, an, hellos) = decode(&records("big.example", 70_000));
        assert_eq!((sni, hellos), (None, 0));
        let [row] = an.rows.as_slice() else {
            panic!("{:?}", an.rows)
        };
        assert_eq!(
            (row.layer, row.kind, row.record_index),
            ("tls", TOO_LONG, 3)
        );
        assert_eq!(
            row.detail,
            "flow 7 on port 443: ClientHello of 70000 bytes, longer than the 65532 bytes \
             reassembled to decode it; its SNI, versions and cipher are not read"
        );
    }

    #[test]
    fn a_hello_just_under_the_bound_is_decoded() {
        let (sni, an, hellos) = decode(&records("under.example", tls::MAX_HANDSHAKE - 4));
        assert_eq!((sni.as_deref(), hellos), (Some("under.example"), 1));
        assert!(an.rows.is_empty(), "{:?}", an.rows);
    }
}
