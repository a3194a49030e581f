//! What the wire taught about which service runs where: the learned-port table fed by portmapper,
//! rpcbind, the endpoint mapper and bind_ack secondary addresses, and the `mappings` rows that
//! record each fact. Both bounded; the table keeps the latest fact per (server, transport, port).

use std::net::IpAddr;

use hashbrown::HashMap;

use crate::bounded::BoundedRows;
use crate::packet::Addr;
use crate::proto::ndr::SyntaxId;

pub const MAX_LEARNED: usize = 1 << 20;
pub use crate::bounded::MAX_ROWS;

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

/// The ONC RPC versions a program said it serves at an endpoint (its PROG_MISMATCH reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Serves {
    program: u32,
    low: u32,
    high: u32,
}

impl Serves {
    /// True when this contradicts an answer that put `version` of `program` here.
    fn denies(&self, program: Option<u32>, version: Option<u32>) -> bool {
        program == Some(self.program) && version.is_some_and(|v| v < self.low || v > self.high)
    }
}

/// The learned-port table and the mapping rows, kept together so every fact lands in both.
#[derive(Debug, Default)]
pub struct LearnedPorts {
    pub learn: LearnTable,
    pub mappings: BoundedRows<MappingRow>,
    /// Rows `finish` withdrew: what they taught was learned all the same while decoding.
    pub withdrawn: u64,
    /// Version ranges programs reported at their endpoints, bounded like the learned table.
    serves: HashMap<(Addr, u8, u16), Serves, foldhash::fast::RandomState>,
}

impl LearnedPorts {
    /// Records a fact; a registered endpoint is learned, an unset one forgotten.
    pub fn fact(&mut self, row: MappingRow) {
        if let (Some(t), Some(port)) = (row.transport, row.port) {
            let server = addr_of(row.server);
            let proto = proto_of(t);
            if row.registered && crate::proto::portmap::answers_any_version(row.source) {
                let key = (server, proto, port);
                if self
                    .serves
                    .get(&key)
                    .is_some_and(|s| s.denies(row.program, row.version))
                {
                    return;
                }
            }
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
        self.mappings.push(row);
    }

    /// The program at an endpoint answered PROG_MISMATCH: it serves `low..=high` only. The
    /// portmapper's any-version answers that put another version there were wrong (rpcbind names
    /// a registered version's port for one that is not registered), so they are withdrawn; the
    /// endpoint stays learned for the program, at the highest version it serves.
    pub fn prog_mismatch(
        &mut self,
        server: Addr,
        proto: u8,
        port: u16,
        program: u32,
        low: u32,
        high: u32,
    ) {
        let serves = Serves { program, low, high };
        let key = (server, proto, port);
        if self.serves.len() < MAX_LEARNED || self.serves.contains_key(&key) {
            self.serves.insert(key, serves);
        }
        if let Some(l) = self.learn.map.get_mut(&key) {
            if let Service::OncRpc {
                program: p,
                version,
            } = l.service
            {
                if serves.denies(Some(p), Some(version)) {
                    l.service = Service::OncRpc {
                        program,
                        version: high,
                    };
                }
            }
        }
    }

    /// Drops the any-version answers the capture contradicts elsewhere: a PROG_MISMATCH from the
    /// endpoint itself, or a DUMP that lists the program at that endpoint without that version.
    /// Both hold for the whole capture, whenever they were seen: a program that re-registers
    /// another version mid-capture is rare next to a client asking for a version that is not there.
    pub fn finish(&mut self) {
        let any_version = |row: &MappingRow| {
            row.registered && crate::proto::portmap::answers_any_version(row.source)
        };
        if !self.mappings.iter().any(any_version) {
            return;
        }
        let key = |row: &MappingRow| match (row.transport, row.port, row.program) {
            (Some(t), Some(port), Some(program)) => {
                Some((addr_of(row.server), proto_of(t), port, program))
            }
            _ => None,
        };
        let mut listed: HashMap<(Addr, u8, u16, u32), Vec<u32>, foldhash::fast::RandomState> =
            HashMap::default();
        for row in &self.mappings {
            if let (true, true, Some(k), Some(v)) = (
                row.registered,
                row.source.ends_with(".dump"),
                key(row),
                row.version,
            ) {
                let versions = listed.entry(k).or_default();
                if !versions.contains(&v) {
                    versions.push(v);
                }
            }
        }
        let serves = &self.serves;
        let before = self.mappings.len();
        self.mappings.retain(|row| {
            let (true, Some(k @ (server, proto, port, _)), Some(v)) =
                (any_version(row), key(row), row.version)
            else {
                return true;
            };
            let mismatched = serves
                .get(&(server, proto, port))
                .is_some_and(|s| s.denies(row.program, row.version));
            let unlisted = listed.get(&k).is_some_and(|vs| !vs.contains(&v));
            !(mismatched || unlisted)
        });
        self.withdrawn += before.saturating_sub(self.mappings.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &'static str, version: u32, ts: i64) -> MappingRow {
        MappingRow {
            ts,
            source,
            server: "127.0.0.1".parse().unwrap(),
            transport: Some("tcp"),
            port: Some(40001),
            program: Some(395649),
            version: Some(version),
            interface: None,
            protocol: None,
            annotation: None,
            registered: true,
            flow_id: 1,
        }
    }

    const SERVER: [u8; 4] = [127, 0, 0, 1];

    #[test]
    fn prog_mismatch_withdraws_any_version_answers() {
        let mut k = LearnedPorts::default();
        k.fact(row("rpcbind.getaddr", 3, 1));
        let tcp = crate::packet::IPPROTO_TCP;
        k.prog_mismatch(Addr::v4(SERVER), tcp, 40001, 395649, 1, 2);
        // Learned stays on the program, at the highest version it serves.
        assert_eq!(
            k.learn.get(Addr::v4(SERVER), tcp, 40001).map(|l| l.service),
            Some(Service::OncRpc {
                program: 395649,
                version: 2
            })
        );
        // A later any-version answer for a version it does not serve is not taken.
        k.fact(row("portmap.getport", 4, 3));
        k.fact(row("portmap.getport", 1, 4));
        k.finish();
        let left: Vec<_> = k.mappings.iter().map(|r| (r.source, r.version)).collect();
        assert_eq!(left, [("portmap.getport", Some(1))]);
        // The rows withdrawn are counted: a merge of separate decodes needs to know.
        assert_eq!(k.withdrawn, 1);
    }

    #[test]
    fn a_dump_withdraws_any_version_answers_for_unlisted_versions() {
        let mut k = LearnedPorts::default();
        k.fact(row("portmap.getport", 1, 1));
        k.fact(row("portmap.getport", 2, 2));
        // GETVERSADDR insists on the version: never withdrawn.
        k.fact(row("rpcbind.getversaddr", 3, 3));
        k.fact(row("portmap.dump", 2, 4));
        k.finish();
        let left: Vec<_> = k.mappings.iter().map(|r| (r.source, r.version)).collect();
        assert_eq!(
            left,
            [
                ("portmap.getport", Some(2)),
                ("rpcbind.getversaddr", Some(3)),
                ("portmap.dump", Some(2))
            ]
        );
        assert_eq!(k.withdrawn, 1);
    }
}
