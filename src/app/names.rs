//! Names the wire taught: DNS responses (UDP 53, and TCP 53 through the stream reassembly),
//! mDNS responses (UDP 5353) and NetBIOS name service bindings (UDP 137), into the `names`
//! table: one row per name bound to an address by one message. A CNAME chain binds every alias
//! on it to the addresses of the name it ends at, so the name a client asked for maps to the
//! addresses it was given.

use super::OrientedFlow;
use crate::bounded::BoundedRows;
use crate::packet::Addr;
use crate::proto::dns::{self, Message};
use crate::proto::nbns;

pub const DNS_PORT: u16 = 53;
pub const MDNS_PORT: u16 = 5353;
/// CNAME links followed from one alias; a longer chain (or a loop) binds the alias to nothing.
pub const MAX_CHAIN: usize = 16;
/// Bindings one message teaches at most: a CNAME chain binds every alias to every address, so
/// a message of many aliases and many addresses would otherwise make rows by the thousand.
pub const MAX_BINDINGS: usize = 256;
/// Bytes buffered per direction of a TCP stream: one whole message and its length prefix.
const MAX_BUFFER: usize = dns::MAX_MESSAGE + 2;
/// NetBIOS suffixes a host registers under its own name: workstation (0x00) and server (0x20).
/// Other unique suffixes name a domain's browser or a user; group names name no one host.
const HOST_SUFFIXES: [u8; 2] = [0x00, 0x20];

/// The protocol a message came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Dns,
    Mdns,
    Nbns,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Dns => "dns",
            Source::Mdns => "mdns",
            Source::Nbns => "nbns",
        }
    }
}

/// Which name protocol a UDP datagram sent from `sport` to `dport` may carry: DNS and mDNS
/// answers come from their port; NetBIOS registrations may come from any port to 137.
#[inline]
pub fn udp_source(sport: u16, dport: u16) -> Option<Source> {
    if sport == DNS_PORT {
        Some(Source::Dns)
    } else if sport == MDNS_PORT {
        Some(Source::Mdns)
    } else if sport == nbns::PORT || dport == nbns::PORT {
        Some(Source::Nbns)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRow {
    pub ts: i64,
    pub flow_id: u64,
    pub name: String,
    pub addr: Addr,
    pub source: Source,
    /// The record type that carried the address: A, AAAA or NB.
    pub record: &'static str,
    pub ttl: u32,
    /// The name the address record was for, when `name` reached it through CNAME records.
    pub canonical: Option<String>,
    /// The host that sent the message (the resolver, the mDNS responder, the registering host).
    pub sender: Addr,
}

#[derive(Debug, Default)]
pub struct Names {
    pub rows: BoundedRows<NameRow>,
    /// Messages that taught at least one binding.
    pub messages: u64,
}

/// A DNS-over-TCP stream: each direction's bytes until a whole length-prefixed message is in.
#[derive(Debug, Default)]
pub struct DnsStream {
    bufs: [Vec<u8>; 2],
    /// A hole in the direction lost the message framing: nothing more is read from it.
    lost: [bool; 2],
}

impl DnsStream {
    pub fn swap(&mut self) {
        self.bufs.swap(0, 1);
        self.lost.swap(0, 1);
    }

    pub fn gap(&mut self, d: usize) {
        if let (Some(l), Some(b)) = (self.lost.get_mut(d), self.bufs.get_mut(d)) {
            *l = true;
            *b = Vec::new();
        }
    }

    pub fn finished(&self) -> bool {
        self.lost == [true, true]
    }
}

/// Where a message came from.
struct Origin {
    ts: i64,
    flow_id: u64,
    sender: Addr,
    source: Source,
}

fn origin(e: &OrientedFlow, sender_is_c2s: bool, ts: i64, source: Source) -> Origin {
    Origin {
        ts,
        flow_id: e.flow_id,
        sender: if sender_is_c2s { e.client } else { e.server },
        source,
    }
}

impl Names {
    /// One UDP datagram whose ports `udp_source` chose.
    pub fn udp_datagram(
        &mut self,
        e: &OrientedFlow,
        c2s: bool,
        payload: &[u8],
        ts: i64,
        source: Source,
    ) {
        self.message(&origin(e, c2s, ts, source), payload);
    }

    /// Reassembled bytes of direction `d` of a DNS-over-TCP stream.
    pub fn stream_data(
        &mut self,
        st: &mut DnsStream,
        e: &OrientedFlow,
        d: usize,
        bytes: &[u8],
        ts: i64,
    ) {
        let at = origin(e, d == 0, ts, Source::Dns);
        let (Some(buf), Some(false)) = (st.bufs.get_mut(d), st.lost.get(d).copied()) else {
            return;
        };
        if buf.is_empty() {
            // The usual case: whole messages in the segment, read where they lie.
            let used = self.framed(&at, bytes);
            buf.extend_from_slice(bytes.get(used..).unwrap_or_default());
        } else {
            buf.extend_from_slice(bytes);
            let used = self.framed(&at, buf);
            buf.drain(..used.min(buf.len()));
        }
        if buf.len() > MAX_BUFFER {
            // Only bytes that are no DNS stream get here: a message and its prefix fit.
            st.gap(d);
        }
    }

    /// Reads the whole length-prefixed messages at the start of `b`; returns the bytes used.
    fn framed(&mut self, at: &Origin, b: &[u8]) -> usize {
        let mut pos = 0usize;
        while let (Some(&hi), Some(&lo)) = (b.get(pos), b.get(pos.saturating_add(1))) {
            let start = pos.saturating_add(2);
            let end = start.saturating_add(usize::from(u16::from_be_bytes([hi, lo])));
            let Some(msg) = b.get(start..end) else {
                break;
            };
            self.message(at, msg);
            pos = end;
        }
        pos
    }

    fn message(&mut self, at: &Origin, bytes: &[u8]) {
        // Only responses to standard queries bind names in DNS: the header says so before the
        // records are read (mDNS queries come from the same port as its answers).
        let answer = |h: &dns::Header| h.is_response() && h.opcode() == 0;
        let wanted =
            at.source == Source::Nbns || dns::Header::parse(bytes).is_some_and(|h| answer(&h));
        let Some(m) = wanted.then(|| Message::parse(bytes)).flatten() else {
            return;
        };
        let taught = match at.source {
            Source::Dns | Source::Mdns => self.answers(at, &m),
            Source::Nbns => self.nbns(at, &m),
        };
        if taught > 0 {
            self.messages += 1;
        }
    }

    /// The A and AAAA records of a DNS or mDNS response, each under its own name and under every
    /// alias whose CNAME chain in the message ends at that name; returns the bindings taught.
    fn answers(&mut self, at: &Origin, m: &Message<'_>) -> usize {
        let mut addrs = Vec::new();
        let mut cnames: Vec<(String, String, u32)> = Vec::new();
        // Names are read only for the records that bind: most of a message is other records.
        for r in &m.records {
            if let Some(ip) = r.address() {
                if let Some(owner) = m.text(r.name_at) {
                    addrs.push((owner, addr_of(ip), dns::type_name(r.rtype), r.ttl));
                }
            } else if let Some(target) = m.cname_target(r) {
                if let Some(alias) = m.text(r.name_at) {
                    cnames.push((alias, target.text(), r.ttl));
                }
            }
        }
        let mut seen = Taught::default();
        for (name, addr, record, ttl) in &addrs {
            if seen.first(name, *addr) {
                self.push(at, name, *addr, record, *ttl, None);
            }
        }
        for (alias, _, _) in &cnames {
            let Some((end, ttl)) = chain_end(&cnames, alias) else {
                continue;
            };
            for (name, addr, record, a_ttl) in &addrs {
                if *name == end && seen.first(alias, *addr) {
                    self.push(at, alias, *addr, record, ttl.min(*a_ttl), Some(&end));
                }
            }
        }
        seen.0.len()
    }

    fn nbns(&mut self, at: &Origin, m: &Message<'_>) -> usize {
        let mut hosts = Vec::new();
        for b in nbns::bindings(m) {
            if b.group || !HOST_SUFFIXES.contains(&b.name.suffix) {
                continue;
            }
            let mut name = b.name.name;
            if !b.name.scope.is_empty() {
                name.push('.');
                name.push_str(&b.name.scope);
            }
            hosts.push((name, Addr::v4(b.addr.octets()), b.ttl));
        }
        let mut seen = Taught::default();
        for (name, addr, ttl) in &hosts {
            if seen.first(name, *addr) {
                self.push(at, name, *addr, "NB", *ttl, None);
            }
        }
        seen.0.len()
    }

    fn push(
        &mut self,
        at: &Origin,
        name: &str,
        addr: Addr,
        record: &'static str,
        ttl: u32,
        canonical: Option<&str>,
    ) {
        self.rows.push(NameRow {
            ts: at.ts,
            flow_id: at.flow_id,
            name: name.to_owned(),
            addr,
            source: at.source,
            record,
            ttl,
            canonical: canonical.map(str::to_owned),
            sender: at.sender,
        });
    }

    pub fn finish(&mut self) {
        crate::order::sort_rows_by_key(&mut self.rows, |r| r.ts);
    }
}

/// The bindings of one message so far, to teach each once (a linear scan: messages teach a few,
/// and at most `MAX_BINDINGS`).
#[derive(Default)]
struct Taught<'a>(Vec<(&'a str, Addr)>);

impl<'a> Taught<'a> {
    /// Whether (name, addr) is a binding to teach: not the root (which names no host), not
    /// taught by this message before, and within `MAX_BINDINGS`.
    fn first(&mut self, name: &'a str, addr: Addr) -> bool {
        if name.is_empty() || self.0.len() >= MAX_BINDINGS || self.0.contains(&(name, addr)) {
            return false;
        }
        self.0.push((name, addr));
        true
    }
}

/// The name `alias`'s CNAME chain ends at, and the least TTL along it; None when the chain is
/// longer than `MAX_CHAIN` links (a loop is).
fn chain_end(cnames: &[(String, String, u32)], alias: &str) -> Option<(String, u32)> {
    let mut at = alias;
    let mut ttl = u32::MAX;
    for _ in 0..MAX_CHAIN {
        match cnames.iter().find(|(from, _, _)| from == at) {
            Some((_, to, t)) => {
                at = to;
                ttl = ttl.min(*t);
            }
            None => return Some((at.to_owned(), ttl)),
        }
    }
    None
}

fn addr_of(ip: std::net::IpAddr) -> Addr {
    match ip {
        std::net::IpAddr::V4(a) => Addr::v4(a.octets()),
        std::net::IpAddr::V6(a) => Addr::v6(a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{IPPROTO_TCP, IPPROTO_UDP};
    use crate::proto::dns::tests::{cname_response, hex};

    fn ends(proto: u8) -> OrientedFlow {
        OrientedFlow {
            flow_id: 7,
            client: Addr::v4([10, 0, 0, 5]),
            client_port: 40_000,
            server: Addr::v4([10, 0, 0, 53]),
            server_port: 53,
            proto,
        }
    }

    fn bound(n: &Names) -> Vec<(String, String, Option<String>, u32)> {
        n.rows
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.addr.to_string(),
                    r.canonical.clone(),
                    r.ttl,
                )
            })
            .collect()
    }

    #[test]
    fn a_cname_chain_binds_the_name_asked_for_and_every_alias() {
        let mut n = Names::default();
        n.udp_datagram(&ends(IPPROTO_UDP), false, &cname_response(), 5, Source::Dns);
        let edge = Some("edge.example.net".to_string());
        assert_eq!(
            bound(&n),
            [
                ("edge.example.net".into(), "192.0.2.1".into(), None, 30),
                ("edge.example.net".into(), "192.0.2.2".into(), None, 30),
                (
                    "www.example.com".into(),
                    "192.0.2.1".into(),
                    edge.clone(),
                    30
                ),
                (
                    "www.example.com".into(),
                    "192.0.2.2".into(),
                    edge.clone(),
                    30
                ),
                (
                    "cdn.example.net".into(),
                    "192.0.2.1".into(),
                    edge.clone(),
                    30
                ),
                ("cdn.example.net".into(), "192.0.2.2".into(), edge, 30),
            ]
        );
        let r = &n.rows[0];
        assert_eq!(
            (r.ts, r.flow_id, r.record, r.source),
            (5, 7, "A", Source::Dns)
        );
        assert_eq!(r.sender, Addr::v4([10, 0, 0, 53]));
        assert_eq!(n.messages, 1);
    }

    #[test]
    fn queries_teach_nothing() {
        let mut n = Names::default();
        let mut query = cname_response();
        query[2] &= 0x7f;
        n.udp_datagram(&ends(IPPROTO_UDP), true, &query, 5, Source::Dns);
        assert!(n.rows.is_empty() && n.messages == 0);
    }

    #[test]
    fn cname_loops_bind_nothing() {
        // a.x CNAME b.x, b.x CNAME a.x, and an A record for c.x.
        let b = hex("
            0000 8180 0000 0003 0000 0000
            01 61 01 78 00  0005 0001 00000001 0005 01 62 01 78 00   # 12: a.x -> b.x
            01 62 01 78 00  0005 0001 00000001 0005 01 61 01 78 00   # b.x -> a.x
            01 63 01 78 00  0001 0001 00000001 0004 0a000001         # c.x A 10.0.0.1
        ");
        let mut n = Names::default();
        n.udp_datagram(&ends(IPPROTO_UDP), false, &b, 5, Source::Dns);
        assert_eq!(bound(&n), [("c.x".into(), "10.0.0.1".into(), None, 1)]);
    }

    #[test]
    fn tcp_messages_are_framed_across_segments() {
        let msg = cname_response();
        let mut stream = (msg.len() as u16).to_be_bytes().to_vec();
        stream.extend(&msg);
        stream.extend(&stream.clone());
        let e = ends(IPPROTO_TCP);
        for cut in [1, 2, 3, 40, msg.len() + 2, msg.len() + 3] {
            let mut n = Names::default();
            let mut st = DnsStream::default();
            n.stream_data(&mut st, &e, 1, &stream[..cut], 1);
            n.stream_data(&mut st, &e, 1, &stream[cut..], 2);
            assert_eq!(n.rows.len(), 12, "cut at {cut}");
            assert_eq!(n.messages, 2);
            assert!(st.bufs[1].is_empty());
        }
        // A hole loses the framing of its direction only.
        let mut n = Names::default();
        let mut st = DnsStream::default();
        st.gap(0);
        n.stream_data(&mut st, &e, 0, &stream, 1);
        assert!(n.rows.is_empty() && !st.finished());
        st.gap(1);
        assert!(st.finished());
    }

    #[test]
    fn nbns_binds_host_names_not_groups_or_other_suffixes() {
        // ARCSRV01<00> and ARCSRV01<20> answered with the same address: one binding; then
        // WORKGROUP<1e>, a unique name of another suffix: none.
        let b = hex("
            0001 8500 0000 0003 0000 0000
            20 45424643454446444643464744414442 43414341434143414341434143414141 00
            0020 0001 00000e10 0006 0000 0a140014
            20 45424643454446444643464744414442 43414341434143414341434143414341 00
            0020 0001 00000e10 0006 0000 0a140014
            20 464845504643454c4548464345504646 4641434143414341434143414341424f 00
            0020 0001 00000e10 0006 0000 0a140014
        ");
        let mut n = Names::default();
        let mut e = ends(IPPROTO_UDP);
        e.client_port = 137;
        e.server_port = 137;
        assert_eq!(udp_source(137, 137), Some(Source::Nbns));
        n.udp_datagram(&e, false, &b, 5, Source::Nbns);
        assert_eq!(
            bound(&n),
            [("arcsrv01".into(), "10.20.0.20".into(), None, 3600)]
        );
        assert_eq!(n.rows[0].record, "NB");
    }

    #[test]
    fn one_message_teaches_at_most_max_bindings() {
        // 20 A records of x and 20 aliases of x: 20 + 20 * 20 bindings, of which MAX_BINDINGS.
        let mut b = hex("0000 8180 0000 0028 0000 0000");
        for i in 0..20u8 {
            b.extend(hex("01 78 00 0001 0001 00000001 0004 0a0000"));
            b.push(i);
        }
        for i in 0..20u8 {
            b.extend([2, b'a', b'a' + i, 0]);
            b.extend(hex("0005 0001 00000001 0003 01 78 00"));
        }
        let mut n = Names::default();
        n.udp_datagram(&ends(IPPROTO_UDP), false, &b, 5, Source::Dns);
        assert_eq!(n.rows.len(), MAX_BINDINGS);
        assert_eq!((n.rows.dropped(), n.messages), (0, 1));
    }

    #[test]
    fn ports_choose_the_protocol() {
        assert_eq!(udp_source(53, 40_000), Some(Source::Dns));
        assert_eq!(udp_source(40_000, 53), None);
        assert_eq!(udp_source(5353, 5353), Some(Source::Mdns));
        assert_eq!(udp_source(40_000, 137), Some(Source::Nbns));
        assert_eq!(udp_source(40_000, 443), None);
    }
}
