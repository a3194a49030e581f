//! The endpoint mapper's answers (ept_map, ept_lookup) turned into learned ports.

use std::net::IpAddr;

use super::PendingCall;
use crate::learn::{LearnedPorts, MappingRow};
use crate::proto::epm;

/// The endpoint mapper's answer as `mappings` rows; false when the stubs could not be decoded.
pub(super) fn epm_facts(
    learned_ports: &mut LearnedPorts,
    c: &PendingCall,
    op: u16,
    epm_server: IpAddr,
    flow_id: u64,
    ts: i64,
) -> bool {
    let fact = |source: &'static str,
                tower: Option<&epm::Tower>,
                annotation: Option<String>|
     -> MappingRow {
        let ip = tower.and_then(|t| t.ip_endpoint());
        let server = tower
            .and_then(|t| t.address())
            .map_or(epm_server, IpAddr::V4);
        MappingRow {
            ts,
            source,
            server,
            transport: ip.map(|i| i.transport),
            port: ip.map(|i| i.port),
            program: None,
            version: None,
            interface: tower.and_then(|t| t.interface),
            protocol: ip.map(|i| i.protocol),
            annotation,
            registered: ip.is_some(),
            flow_id,
        }
    };
    if op == epm::OP_MAP {
        let Some(resp) = epm::parse_map_response(&c.resp_stub, c.encoding(c.resp_le)) else {
            return false;
        };
        let mut any = false;
        for t in resp.towers.iter().filter(|t| t.ip_endpoint().is_some()) {
            learned_ports.fact(fact("epm.map", Some(t), None));
            any = true;
        }
        if !any {
            // Nothing maps: a negative fact about what was asked.
            let asked =
                epm::parse_map_request(&c.req_stub, c.encoding(c.req_le)).and_then(|q| q.tower);
            let asked_ip = asked.as_ref().and_then(|t| t.ip_endpoint());
            let mut r = fact("epm.map", None, None);
            r.interface = asked.as_ref().and_then(|t| t.interface);
            r.transport = asked_ip.map(|i| i.transport);
            r.protocol = asked_ip.map(|i| i.protocol);
            learned_ports.fact(r);
        }
    } else {
        let Some(resp) = epm::parse_lookup_response(&c.resp_stub, c.encoding(c.resp_le)) else {
            return false;
        };
        for en in &resp.entries {
            if let Some(t) = en.tower.as_ref().filter(|t| t.ip_endpoint().is_some()) {
                let ann = (!en.annotation.is_empty()).then(|| en.annotation.clone());
                learned_ports.fact(fact("epm.lookup", Some(t), ann));
            }
        }
        if resp.entries.is_empty() {
            let mut r = fact("epm.lookup", None, None);
            r.interface = epm::parse_lookup_request(&c.req_stub, c.encoding(c.req_le))
                .and_then(|q| q.interface);
            learned_ports.fact(r);
        }
    }
    true
}
