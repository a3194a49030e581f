//! The application layer over flows: which flows matter, their reassembled TCP streams, and the
//! decoders (ONC RPC, DCE/RPC with the endpoint mapper, TLS handshakes, DNS and NetBIOS names)
//! that fill `rpc_calls`, `dcerpc_calls`, `tls`, `names`, `mappings` and the learned-port table.

pub mod dcerpc;
pub mod names;
pub mod oncrpc;
pub mod smb;
pub mod starttls;
pub mod tls;

use crate::anomaly::{Anomalies, Position};
pub use crate::application::{App, DecoderKind};
use crate::flow::table::{Orientation, Session};
use crate::flow::tcp_stream::{HalfStream, StreamPiece};
use crate::learn::{LearnedPorts, Service};
use crate::packet::{Addr, IPPROTO_TCP, IPPROTO_UDP};
use crate::proto::ndr::SyntaxId;
use crate::proto::{dcerpc as dce_wire, tls as tls_wire};

pub use dcerpc::{DceCallRow, DceRpc};
pub use names::{NameRow, Names};
pub use oncrpc::{Rpc, RpcCallRow};
pub use tls::{Tls, TlsRow};

/// The two ends of a flow, as oriented by the flow table.
#[derive(Debug, Clone, Copy)]
pub struct OrientedFlow {
    pub flow_id: u64,
    pub client: Addr,
    pub client_port: u16,
    pub server: Addr,
    pub server_port: u16,
    pub proto: u8,
}

impl OrientedFlow {
    /// (client, server, server port) of a message whose sender is the client when `sender_is_c2s`.
    pub fn roles(&self, sender_is_c2s: bool) -> (Addr, Addr, u16) {
        if sender_is_c2s {
            (self.client, self.server, self.server_port)
        } else {
            (self.server, self.client, self.client_port)
        }
    }
}

/// What a packet's payload says of its flow.
#[derive(Debug, Default)]
pub struct FlowFacts {
    pub app: Option<App>,
    pub rpc: Option<(u32, u32)>,
    pub interface: Option<SyntaxId>,
    pub tls_version: Option<u16>,
    pub tls_sni: Option<String>,
    /// TLS began after a plaintext preamble of this many client bytes, and its ClientHello
    /// was decoded.
    pub tls_offset: Option<u64>,
    /// The flow's orientation was wrong: the side taken for the server acted as the client.
    pub turn: Option<Orientation>,
    /// UDP: this reply answered a call that went to another endpoint (rpcbind answers CALLIT
    /// from its forwarding socket); the call's flow, which is answered too.
    pub answered_elsewhere: Option<CallFlow>,
}

/// A UDP call's flow: (client, client port, server, server port).
pub type CallFlow = (Addr, u16, Addr, u16);

impl FlowFacts {
    /// Nothing said: most packets (no decoder, or a segment inside a record).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.app.is_none()
            && self.rpc.is_none()
            && self.interface.is_none()
            && self.tls_version.is_none()
            && self.tls_sni.is_none()
            && self.tls_offset.is_none()
    }

    fn or(self, o: FlowFacts) -> FlowFacts {
        FlowFacts {
            app: self.app.or(o.app),
            rpc: self.rpc.or(o.rpc),
            interface: self.interface.or(o.interface),
            tls_version: self.tls_version.or(o.tls_version),
            tls_sni: self.tls_sni.or(o.tls_sni),
            tls_offset: self.tls_offset.or(o.tls_offset),
            turn: self.turn.or(o.turn),
            answered_elsewhere: self.answered_elsewhere.or(o.answered_elsewhere),
        }
    }
}

/// Which decoder a stream goes to. The decoder's state is made at the stream's first bytes:
/// under a SYN flood a million streams are open that never carry one, and each must stay small.
#[derive(Debug)]
pub enum Parser {
    /// No bytes yet: the decoder to make, and whether the flow was joined mid-stream.
    Idle(DecoderKind, bool),
    OncRpc(Box<oncrpc::OncStream>),
    DceRpc(Box<dcerpc::DceStream>),
    Tls(Box<tls::TlsStream>),
    Dns(Box<names::DnsStream>),
    Smb(Box<smb::SmbStream>),
}

impl Parser {
    fn layer(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Parser::OncRpc(_) | Parser::Idle(DecoderKind::OncRpc, _) => {
                ("oncrpc", "not_oncrpc", "ONC RPC")
            }
            Parser::DceRpc(_) | Parser::Idle(DecoderKind::DceRpc, _) => {
                ("dcerpc", "not_dcerpc", "DCE/RPC")
            }
            Parser::Tls(_) | Parser::Idle(DecoderKind::Tls, _) => ("tls", "not_tls", "TLS"),
            Parser::Dns(_) | Parser::Idle(DecoderKind::Dns, _) => ("dns", "not_dns", "DNS"),
            Parser::Smb(_) | Parser::Idle(DecoderKind::Smb, _) => ("smb", "not_smb", "SMB"),
        }
    }

    /// The decoder, made now if the stream had no bytes before.
    fn open(&mut self) {
        if let Parser::Idle(kind, midstream) = *self {
            *self = match kind {
                DecoderKind::OncRpc => Parser::OncRpc(Box::new(oncrpc::OncStream::new(midstream))),
                DecoderKind::DceRpc => Parser::DceRpc(Box::new(dcerpc::DceStream::new(midstream))),
                DecoderKind::Tls => Parser::Tls(Box::default()),
                DecoderKind::Dns => Parser::Dns(Box::default()),
                DecoderKind::Smb => Parser::Smb(Box::new(smb::SmbStream::new(midstream))),
            };
        }
    }
}

/// Per-flow reassembly and parsing state of a TCP flow that matters.
#[derive(Debug)]
pub struct StreamState {
    pub ends: OrientedFlow,
    dirs: [HalfStream; 2],
    parser: Parser,
    /// The stream turned out not to be what it was taken for: stop decoding it.
    pub failed: bool,
    /// Everything wanted from the stream is decoded (a TLS handshake's hellos).
    pub done: bool,
}

impl Session for StreamState {
    fn swap(&mut self) {
        StreamState::turn(self);
    }
}

impl StreamState {
    pub fn new(ends: OrientedFlow, kind: DecoderKind, midstream: bool) -> Self {
        StreamState {
            ends,
            dirs: Default::default(),
            parser: Parser::Idle(kind, midstream),
            failed: false,
            done: false,
        }
    }

    /// A stream whose client switched to TLS after `offset` bytes of plaintext: decoded as TLS
    /// from the segment that carries its ClientHello (see `starttls`).
    pub fn after_preamble(ends: OrientedFlow, offset: u64) -> Self {
        StreamState {
            ends,
            dirs: Default::default(),
            parser: Parser::Tls(Box::new(tls::TlsStream::after_preamble(offset))),
            failed: false,
            done: false,
        }
    }

    fn turn(&mut self) {
        let e = &mut self.ends;
        std::mem::swap(&mut e.client, &mut e.server);
        std::mem::swap(&mut e.client_port, &mut e.server_port);
        self.dirs.swap(0, 1);
        match &mut self.parser {
            // Both directions of a decoder not yet made are alike.
            Parser::Idle(..) => {}
            Parser::OncRpc(s) => s.swap(),
            Parser::DceRpc(s) => s.swap(),
            Parser::Tls(s) => s.swap(),
            Parser::Dns(s) => s.swap(),
            Parser::Smb(s) => s.swap(),
        }
    }
}

/// Where anomalies go and which record they are charged to.
pub struct Sink<'a> {
    pub an: &'a mut Anomalies,
    pub at: Position,
}

impl Sink<'_> {
    pub fn push(&mut self, layer: &'static str, kind: &'static str, detail: String) {
        self.an.push(self.at, layer, kind, detail);
    }
}

/// What the decoders found, as the output tables and statistics read it.
pub struct Decoded<'a> {
    pub rpc_calls: &'a [RpcCallRow],
    pub mappings: &'a [crate::learn::MappingRow],
    pub dcerpc_calls: &'a [DceCallRow],
    pub tls: &'a [TlsRow],
    pub names: &'a [NameRow],
}

/// All application decoders and what they share.
#[derive(Debug, Default)]
pub struct SessionDecoders {
    pub learned_ports: LearnedPorts,
    pub rpc: Rpc,
    pub dce: DceRpc,
    pub tls: Tls,
    pub names: Names,
    pub smb: smb::Smb,
    /// Holes skipped in reassembled streams, and times a stream's out-of-order buffer overflowed.
    pub stream_gaps: u64,
    pub stream_overflows: u64,
    /// Holes skipped when a stream closed (what waited behind them is decoded at the close's time).
    pub close_gaps: u64,
}

impl SessionDecoders {
    /// The service learned for the flow's server endpoint.
    pub fn learned(&self, e: &OrientedFlow) -> Option<Service> {
        self.learned_ports
            .learn
            .get(e.server, e.proto, e.server_port)
            .map(|l| l.service)
    }

    pub fn learned_at(&self, a: Addr, proto: u8, port: u16) -> bool {
        self.learned_ports.learn.get(a, proto, port).is_some()
    }

    /// Which decoder a flow goes to, judged on its ports, what was learned, and its first
    /// payload; and whether that payload proves the flow's orientation wrong (only asked of flows
    /// not oriented by a handshake).
    pub fn kind_for(
        &self,
        e: &OrientedFlow,
        learned: Option<Service>,
        first: Option<&[u8]>,
        c2s: bool,
        by_syn: bool,
    ) -> Option<(DecoderKind, bool)> {
        let port = |p: u16| e.server_port == p || e.client_port == p;
        if port(oncrpc::PORTMAP_PORT) {
            return Some((DecoderKind::OncRpc, false));
        }
        if port(dcerpc::EPM_PORT) {
            return Some((DecoderKind::DceRpc, false));
        }
        if e.proto == IPPROTO_TCP && (port(smb::SMB_PORT) || port(smb::NETBIOS_SSN_PORT)) {
            return Some((DecoderKind::Smb, false));
        }
        match learned {
            Some(Service::OncRpc { .. }) => return Some((DecoderKind::OncRpc, false)),
            Some(Service::DceRpc(_)) => return Some((DecoderKind::DceRpc, false)),
            None => {}
        }
        let p = first?;
        // The payload's sender acts as the client or the server; against the flow's orientation?
        let wrong = |sender_is_client: bool| sender_is_client != c2s && !by_syn;
        if Rpc::looks_like_call(e, p, c2s) {
            return Some((DecoderKind::OncRpc, false));
        }
        if e.proto == IPPROTO_UDP {
            return dce_wire::parse_cl(p).map(|_| (DecoderKind::DceRpc, false));
        }
        if e.proto != IPPROTO_TCP {
            return None;
        }
        if dce_wire::looks_like_bind(p) && (c2s || !by_syn) {
            return Some((DecoderKind::DceRpc, wrong(true)));
        }
        if tls_wire::looks_like_tls(p, tls_wire::CLIENT_HELLO)
            || tls_wire::looks_like_sslv2_hello(p)
        {
            return Some((DecoderKind::Tls, wrong(true)));
        }
        if tls_wire::looks_like_tls(p, tls_wire::SERVER_HELLO) {
            return Some((DecoderKind::Tls, wrong(false)));
        }
        port(names::DNS_PORT).then_some((DecoderKind::Dns, false))
    }

    /// One TCP segment of a flow that matters: reassembled, then decoded in stream order.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_segment(
        &mut self,
        st: &mut StreamState,
        c2s: bool,
        seq: u32,
        syn: bool,
        payload: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> FlowFacts {
        let d = usize::from(!c2s);
        let mut said = FlowFacts::default();
        let StreamState {
            ends,
            dirs,
            parser,
            failed,
            done,
        } = st;
        if let Some(dir) = dirs.get_mut(d) {
            dir.segment(seq, syn, payload, &mut |c| {
                let s = self.piece(parser, ends, failed, done, d, c, ts, sink, true);
                said = std::mem::take(&mut said).or(s);
            });
        }
        said
    }

    /// One piece of a direction's reassembled stream: bytes, or a hole to resynchronise after.
    #[allow(clippy::too_many_arguments)]
    fn piece(
        &mut self,
        parser: &mut Parser,
        e: &OrientedFlow,
        failed: &mut bool,
        done: &mut bool,
        d: usize,
        chunk: StreamPiece<'_>,
        ts: i64,
        sink: &mut Sink<'_>,
        report_gaps: bool,
    ) -> FlowFacts {
        if *failed || *done {
            return FlowFacts::default();
        }
        parser.open();
        let bytes = match chunk {
            StreamPiece::Data(b) => b,
            StreamPiece::Gap(n) => {
                if report_gaps {
                    sink.push(
                        "tcp",
                        "stream_gap",
                        format!("{n} bytes missing from the stream"),
                    );
                }
                match parser {
                    Parser::Idle(..) => {}
                    Parser::OncRpc(s) => Rpc::gap(s, d),
                    Parser::DceRpc(s) => s.gap(d),
                    Parser::Tls(s) => s.gap(d),
                    Parser::Dns(s) => s.gap(d),
                    Parser::Smb(s) => s.gap(d),
                }
                return FlowFacts::default();
            }
        };
        let r = match parser {
            Parser::Idle(..) => Ok(FlowFacts::default()),
            Parser::OncRpc(s) => self
                .rpc
                .data(&mut self.learned_ports, s, e, d, bytes, ts, sink),
            Parser::DceRpc(s) => self
                .dce
                .data(&mut self.learned_ports, s, e, d, bytes, ts, sink),
            Parser::Tls(s) => {
                let said = self.tls.data(s, e, d, bytes, ts, sink);
                *done = s.finished();
                Ok(said)
            }
            Parser::Dns(s) => {
                self.names.stream_data(s, e, d, bytes, ts);
                *done = s.finished();
                Ok(FlowFacts::default())
            }
            Parser::Smb(s) => Ok(self.smb.data(
                &mut self.dce,
                &mut self.learned_ports,
                s,
                e,
                d,
                bytes,
                ts,
                sink,
            )),
        };
        r.unwrap_or_else(|detail| {
            *failed = true;
            let (layer, kind, what) = parser.layer();
            sink.push(
                layer,
                kind,
                format!(
                    "flow {} on port {} does not carry {what}: {detail}",
                    e.flow_id, e.server_port
                ),
            );
            FlowFacts::default()
        })
    }

    /// One UDP datagram of a flow whose payload is ONC RPC or DCE/RPC.
    #[allow(clippy::too_many_arguments)]
    pub fn udp_datagram(
        &mut self,
        app: App,
        e: &OrientedFlow,
        c2s: bool,
        payload: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> Option<FlowFacts> {
        match app {
            App::DceRpc => {
                self.dce
                    .udp_datagram(&mut self.learned_ports, e, c2s, payload, ts, sink)
            }
            _ => self.rpc.udp_datagram(
                &mut self.learned_ports,
                e,
                c2s,
                payload,
                ts,
                sink.an,
                sink.at,
            ),
        }
    }

    /// A TCP flow ended: what waited behind a hole is decoded after a gap, and calls never
    /// answered become rows.
    // The stream comes out of a flow's box: taking it unboxed would copy it for nothing.
    #[allow(clippy::boxed_local)]
    pub fn close(&mut self, mut st: Box<StreamState>, ts: i64, sink: &mut Sink<'_>) {
        let StreamState {
            ends,
            dirs,
            parser,
            failed,
            done,
        } = &mut *st;
        self.stream_overflows += dirs.iter().map(|d| d.overflows).sum::<u64>();
        let gaps_before = dirs.iter().map(|d| d.gaps).sum::<u64>();
        for (d, dir) in dirs.iter_mut().enumerate() {
            dir.flush(&mut |c| {
                self.piece(parser, ends, failed, done, d, c, ts, sink, false);
            });
        }
        let gaps = dirs.iter().map(|d| d.gaps).sum::<u64>();
        self.close_gaps += gaps.saturating_sub(gaps_before);
        self.stream_gaps += gaps;
        let ends = st.ends;
        match st.parser {
            // No bytes ever came: nothing is pending.
            Parser::Idle(..) => {}
            Parser::OncRpc(s) => self.rpc.close(*s),
            Parser::DceRpc(s) => self.dce.close(*s, &ends),
            Parser::Tls(s) => self.tls.close(*s, &ends),
            // A message cut by the end of the stream teaches nothing.
            Parser::Dns(_) => {}
            Parser::Smb(s) => self.smb.close(&mut self.dce, *s, &ends),
        }
    }

    /// The rows the decoders made (complete after `finish`).
    pub fn decoded(&self) -> Decoded<'_> {
        Decoded {
            rpc_calls: &self.rpc.calls,
            mappings: &self.learned_ports.mappings,
            dcerpc_calls: &self.dce.calls,
            tls: &self.tls.rows,
            names: &self.names.rows,
        }
    }

    /// The end of the decode: calls never answered, rows in time order.
    pub fn finish(&mut self) {
        self.learned_ports.finish();
        self.rpc.finish();
        self.dce.finish();
        self.tls.finish();
        self.names.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ndr::{SyntaxId, Uuid};

    #[test]
    fn said_is_empty_until_any_field_that_applies_to_a_flow_is_set() {
        assert!(FlowFacts::default().is_empty());
        // A turn alone changes nothing `apply_said` writes: it is applied before.
        let turn = FlowFacts {
            turn: Some(Orientation::Tls),
            ..FlowFacts::default()
        };
        assert!(turn.is_empty());
        let each = [
            FlowFacts {
                app: Some(App::Tls),
                ..FlowFacts::default()
            },
            FlowFacts {
                rpc: Some((100_000, 2)),
                ..FlowFacts::default()
            },
            FlowFacts {
                interface: Some(SyntaxId {
                    uuid: Uuid([7; 16]),
                    major: 3,
                    minor: 0,
                }),
                ..FlowFacts::default()
            },
            FlowFacts {
                tls_version: Some(0x0303),
                ..FlowFacts::default()
            },
            FlowFacts {
                tls_sni: Some("backup.example".into()),
                ..FlowFacts::default()
            },
            FlowFacts {
                tls_offset: Some(36),
                ..FlowFacts::default()
            },
        ];
        for s in each {
            assert!(!s.is_empty(), "{s:?}");
        }
    }
}
