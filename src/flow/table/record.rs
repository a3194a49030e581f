//! What the table records of a flow: the finished flow, the cold part of a live one, and how its
//! ends were told apart and its conversation ended.

use super::{Hot, ANSWERED_ELSEWHERE, FIN_C, FIN_S, RST_FIRST, RST_S, SYNACK_S, SYN_C};
use crate::application::App;
use crate::packet::{Addr, Encap, IPPROTO_TCP};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Syn,
    /// The side that sent an RPC call (or holds a port a portmapper handed out) is the server's peer.
    Rpc,
    /// The side that sent a DCE/RPC bind or request is the client.
    DceRpc,
    /// The side that sent a TLS ClientHello is the client.
    Tls,
    WellKnown,
    FirstPacket,
}

impl Orientation {
    pub fn name(self) -> &'static str {
        match self {
            Orientation::Syn => "syn",
            Orientation::Rpc => "rpc",
            Orientation::DceRpc => "dcerpc",
            Orientation::Tls => "tls",
            Orientation::WellKnown => "well_known",
            Orientation::FirstPacket => "first_packet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Refused,
    Unanswered,
    Reset,
    Midstream,
    Open,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Refused => "refused",
            Outcome::Unanswered => "unanswered",
            Outcome::Reset => "reset",
            Outcome::Midstream => "midstream",
            Outcome::Open => "open",
        }
    }
}

/// A finished flow: what the table knew of it, put together from its hot and cold parts.
#[derive(Debug)]
pub struct Flow {
    pub id: u64,
    pub capture: u32,
    pub proto: u8,
    pub vlan: Option<u16>,
    /// The encapsulation that carried the flow's packets (the first one seen when its two
    /// directions travel differently) and the tenant id of the tunnel.
    pub encap: Encap,
    pub tunnel_id: Option<u32>,
    pub client: Addr,
    pub client_port: u16,
    pub server: Addr,
    pub server_port: u16,
    pub orientation: Orientation,
    pub first_ts: i64,
    pub last_ts: i64,
    /// Index of the record that opened the flow in its capture file (Wireshark's frame number
    /// less one), so a finding can point at the packet.
    pub first_record: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub payload: [u64; 2],
    pub(super) tcp: u8,
    /// What the flow's payload (or a learned mapping) says it carries.
    pub app: Option<App>,
    pub rpc_program: Option<u32>,
    pub rpc_version: Option<u32>,
    /// Whether each direction's first payload was a TLS record (client first).
    pub first_tls: [Option<bool>; 2],
    /// The sequence number of each direction's first payload byte seen: where the offsets of a
    /// TLS upgrade count from.
    pub stream_base: [u32; 2],
    /// What the DCE/RPC and TLS decoders said, for the few flows that carry them.
    pub info: Option<Box<FlowInfo>>,
}

/// The cold part of a live flow: who its ends are and what its payload said. Read and written
/// only by the packets that reach the application layer, not by every packet.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: u64,
    pub capture: u32,
    pub proto: u8,
    pub vlan: Option<u16>,
    pub encap: Encap,
    pub tunnel_id: Option<u32>,
    pub client: Addr,
    pub client_port: u16,
    pub server: Addr,
    pub server_port: u16,
    pub orientation: Orientation,
    pub first_record: u64,
    pub app: Option<App>,
    pub rpc_program: Option<u32>,
    pub rpc_version: Option<u32>,
    pub first_tls: [Option<bool>; 2],
    pub stream_base: [u32; 2],
    pub info: Option<Box<FlowInfo>>,
    /// Whether the flow was already considered for application decoding.
    pub app_checked: bool,
}

#[derive(Debug, Default, Clone)]
pub struct FlowInfo {
    pub interface: Option<crate::proto::ndr::SyntaxId>,
    /// The interface came from the flow's own bind, not from a learned mapping.
    pub interface_bound: bool,
    pub tls_version: Option<u16>,
    pub tls_sni: Option<String>,
    /// TLS began after this many bytes of the client's plaintext (STARTTLS and its kin).
    pub tls_offset: Option<u64>,
}

impl Flow {
    pub fn outcome(&self) -> Outcome {
        let t = self.tcp;
        if self.proto != IPPROTO_TCP {
            return if self.packets[0] > 0 && self.packets[1] > 0 || t & ANSWERED_ELSEWHERE != 0 {
                Outcome::Completed
            } else {
                Outcome::Unanswered
            };
        }
        if t & (SYN_C | SYNACK_S) == 0 {
            return Outcome::Midstream;
        }
        if t & SYNACK_S == 0 {
            return if t & RST_S != 0 {
                Outcome::Refused
            } else {
                Outcome::Unanswered
            };
        }
        if t & RST_FIRST != 0 {
            Outcome::Reset
        } else if t & (FIN_C | FIN_S) != 0 {
            Outcome::Completed
        } else {
            Outcome::Open
        }
    }

    pub(super) fn assemble(h: &Hot, m: Meta) -> Flow {
        Flow {
            id: m.id,
            capture: m.capture,
            proto: m.proto,
            vlan: m.vlan,
            encap: m.encap,
            tunnel_id: m.tunnel_id,
            client: m.client,
            client_port: m.client_port,
            server: m.server,
            server_port: m.server_port,
            orientation: m.orientation,
            first_ts: h.first_ts,
            last_ts: h.last_ts,
            first_record: m.first_record,
            packets: h.packets,
            bytes: h.bytes,
            payload: h.payload,
            tcp: h.tcp,
            app: m.app,
            rpc_program: m.rpc_program,
            rpc_version: m.rpc_version,
            first_tls: m.first_tls,
            stream_base: m.stream_base,
            info: m.info,
        }
    }
}
