//! What the wire taught about which service runs where: the learned-port table fed by portmapper,
//! rpcbind, the endpoint mapper and bind_ack secondary addresses, and the `mappings` rows that
//! record each fact. Both bounded; the table keeps the latest fact per (server, transport, port).

use std::net::IpAddr;

use hashbrown::HashMap;

use crate::packet::Addr;
use crate::proto::ndr::SyntaxId;

pub const MAX_LEARNED: usize = 1 << 20;
/// Rows kept in each output table; past it only counted.
pub const MAX_ROWS: usize = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    OncRpc { program: u32, version: u32 },
    DceRpc(SyntaxId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub service: Service,
    pub ts: i64,
}

#[derive(Debug, Default)]
pub struct LearnTable {
    map: HashMap<(Addr, u8, u16), Learned, foldhash::fast::RandomState>,
    pub dropped: u64,
}

impl LearnTable {
    pub fn insert(&mut self, server: Addr, proto: u8, port: u16, fact: Learned) {
        if self.map.len() >= MAX_LEARNED && !self.map.contains_key(&(server, proto, port)) {
            self.dropped += 1;
            return;
        }
        self.map.insert((server, proto, port), fact);
    }

    pub fn remove(&mut self, server: Addr, proto: u8, port: u16) {
        self.map.remove(&(server, proto, port));
    }

    #[inline]
    pub fn get(&self, server: Addr, proto: u8, port: u16) -> Option<&Learned> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&(server, proto, port))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// One fact of the `mappings` table: a service registered (or not) at an endpoint.
#[derive(Debug, Clone)]
pub struct MappingRow {
    pub ts: i64,
    pub source: &'static str,
    pub server: IpAddr,
    pub transport: Option<&'static str>,
    pub port: Option<u16>,
    pub program: Option<u32>,
    pub version: Option<u32>,
    pub interface: Option<SyntaxId>,
    /// The DCE/RPC protocol sequence of an endpoint-mapper or bind_ack fact.
    pub protocol: Option<&'static str>,
    pub annotation: Option<String>,
    pub registered: bool,
    pub flow_id: u64,
}

pub fn addr_of(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(v4) => Addr::v4(v4.octets()),
        IpAddr::V6(v6) => Addr::v6(v6.octets()),
    }
}

fn proto_of(transport: &str) -> u8 {
    if transport == "tcp" {
        crate::packet::IPPROTO_TCP
    } else {
        crate::packet::IPPROTO_UDP
    }
}

/// The learned-port table and the mapping rows, kept together so every fact lands in both.
#[derive(Debug, Default)]
pub struct Knowledge {
    pub learn: LearnTable,
    pub mappings: Vec<MappingRow>,
    pub rows_dropped: u64,
}

impl Knowledge {
    /// Records a fact; a registered endpoint is learned, an unset one forgotten.
    pub fn fact(&mut self, row: MappingRow) {
        if let (Some(t), Some(port)) = (row.transport, row.port) {
            let server = addr_of(row.server);
            let proto = proto_of(t);
            let service = match (row.program, row.version, row.interface) {
                (Some(program), Some(version), _) => Some(Service::OncRpc { program, version }),
                (_, _, Some(i)) => Some(Service::DceRpc(i)),
                _ => None,
            };
            if let (true, Some(service)) = (row.registered, service) {
                self.learn.insert(
                    server,
                    proto,
                    port,
                    Learned {
                        service,
                        ts: row.ts,
                    },
                );
            } else if row.source.ends_with(".unset") {
                self.learn.remove(server, proto, port);
            }
        }
        if self.mappings.len() >= MAX_ROWS {
            self.rows_dropped += 1;
            return;
        }
        self.mappings.push(row);
    }
}
