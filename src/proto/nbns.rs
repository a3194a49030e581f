//! NetBIOS name service (RFC 1002 §4.2, UDP 137): the messages that bind a NetBIOS name to an
//! IPv4 address — positive name query responses, and name registrations, refreshes and their
//! positive responses. The message format is DNS's (`dns::Message` reads it); the names are
//! NetBIOS's first-level encoding (RFC 1001 §14.1): 16 bytes, each split into two nibbles written
//! as the letters 'A'..'P', in one 32-byte label, followed by the scope's labels.

use std::net::Ipv4Addr;

use super::dns::{self, Message, Name};

pub const PORT: u16 = 137;
/// Bytes of an encoded NetBIOS name's first label.
pub const ENCODED_LEN: usize = 32;
/// NB_ADDRESS entries read from one record's data (a multi-homed host lists each address).
pub const MAX_ADDRESSES: usize = 64;
const ENTRY_LEN: usize = 6;

const OP_QUERY: u8 = 0;
const OP_REGISTRATION: u8 = 5;
/// RFC 1002 says 8; implementations send 9 as well.
const OP_REFRESH: u8 = 8;
const OP_REFRESH_ALT: u8 = 9;
const OP_MULTIHOMED_REGISTRATION: u8 = 15;

/// NB_FLAGS' G bit: a group name, which names no one host.
const GROUP: u16 = 0x8000;

/// A NetBIOS name: up to 15 characters (the padding spaces removed, lower-cased as
/// `dns::Name::text` writes a label), the suffix byte that says which service registered it,
/// and the scope (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbName {
    pub name: String,
    pub suffix: u8,
    pub scope: String,
}

/// The 16 raw bytes of an encoded first label, or None when it is not one.
fn decode_label(label: &[u8]) -> Option<[u8; 16]> {
    if label.len() != ENCODED_LEN {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(label.chunks_exact(2)) {
        let nibble = |c: u8| (b'A'..=b'P').contains(&c).then(|| c - b'A');
        let [hi, lo] = *pair else { return None };
        *o = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Some(out)
}

/// The NetBIOS name a DNS-format name encodes.
pub fn decode_name(n: &Name) -> Option<NbName> {
    let mut labels = n.labels();
    let raw = decode_label(labels.next()?)?;
    let (&suffix, chars) = raw.split_last()?;
    let end = chars.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    let mut name = String::new();
    dns::push_label(chars.get(..end)?, &mut name);
    let mut scope = String::new();
    for (i, label) in labels.enumerate() {
        if i > 0 {
            scope.push('.');
        }
        dns::push_label(label, &mut scope);
    }
    Some(NbName {
        name,
        suffix,
        scope,
    })
}

/// One name bound to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: NbName,
    pub addr: Ipv4Addr,
    pub group: bool,
    pub ttl: u32,
    /// Taught by a registration or refresh (the host claiming the name), not a query's answer.
    pub registration: bool,
}

/// The bindings a message teaches: NB records of positive query responses, of registrations and
/// refreshes, and of their positive responses. Everything else (queries, releases, negative
/// answers, node status) teaches none.
pub fn bindings(m: &Message<'_>) -> Vec<Binding> {
    let h = &m.header;
    let registration = matches!(
        h.opcode(),
        OP_REGISTRATION | OP_REFRESH | OP_REFRESH_ALT | OP_MULTIHOMED_REGISTRATION
    );
    let answer = h.is_response() && h.opcode() == OP_QUERY;
    if !(answer || registration) || h.rcode() != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let records = m.records.iter().filter(|r| {
        r.rtype == dns::TYPE_NB && r.class == dns::CLASS_IN && r.rdata.len() % ENTRY_LEN == 0
    });
    for r in records {
        let Some(name) = m.name(r.name_at).and_then(|n| decode_name(&n)) else {
            continue;
        };
        for entry in r.rdata.chunks_exact(ENTRY_LEN).take(MAX_ADDRESSES) {
            let [f0, f1, a, b, c, d] = *entry else {
                continue;
            };
            out.push(Binding {
                name: name.clone(),
                addr: Ipv4Addr::new(a, b, c, d),
                group: u16::from_be_bytes([f0, f1]) & GROUP != 0,
                ttl: r.ttl,
                registration,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::tests::hex;

    /// "ARCSRV01" padded with spaces to 15 characters, suffix 0x20 (file server), encoded.
    const ARCSRV01_20: &str =
        "20 45424643454446444643464744414442 43414341434143414341434143414341 00";

    #[test]
    fn a_positive_query_response_binds_the_name() {
        let b = hex(&format!(
            "
            8a2b 8500 0000 0001 0000 0000   # id, QR AA RD, opcode 0, rcode 0, one answer
            {ARCSRV01_20}                   # ARCSRV01<20>
            0020 0001 000493e0 000c         # NB IN, ttl 300000, two entries:
            6000 0a140014                   # unique, H-node (0x6000), 10.20.0.20
            6000 c0a80114                   # 192.168.1.20
        "
        ));
        let m = Message::parse(&b).unwrap();
        let got = bindings(&m);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].name,
            NbName {
                name: "arcsrv01".into(),
                suffix: 0x20,
                scope: String::new()
            }
        );
        assert_eq!(got[0].addr, Ipv4Addr::new(10, 20, 0, 20));
        assert_eq!(got[1].addr, Ipv4Addr::new(192, 168, 1, 20));
        assert!(!got[0].group && !got[0].registration);
        assert_eq!(got[0].ttl, 300_000);
    }

    #[test]
    fn a_registration_binds_the_name_in_its_additional_record() {
        let b = hex(&format!(
            "
            7c01 2910 0001 0000 0000 0001   # opcode 5 (registration), RD, broadcast; 1 q, 1 ar
            {ARCSRV01_20} 0020 0001         # question ARCSRV01<20> NB IN
            c00c 0020 0001 000493e0 0006    # additional: the same name (pointer), NB IN
            0000 0a140014                   # unique, B-node, 10.20.0.20
        "
        ));
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.header.opcode(), 5);
        let got = bindings(&m);
        assert_eq!(got.len(), 1);
        assert!(got[0].registration && !got[0].group);
        assert_eq!(got[0].name.name, "arcsrv01");
        // The same message as a release (opcode 6) or a negative response teaches nothing.
        let mut release = b.clone();
        release[2] = 0x31;
        assert!(bindings(&Message::parse(&release).unwrap()).is_empty());
        let mut negative = b.clone();
        negative[2] = 0xa9; // a response to the registration
        negative[3] = 0x16; // rcode 6: the name is active elsewhere
        assert!(bindings(&Message::parse(&negative).unwrap()).is_empty());
    }

    #[test]
    fn group_names_and_scopes_are_told() {
        let b = hex("
            0001 8500 0000 0001 0000 0000
            20 464845504643454c4548464345504646 46414341434143414341434143414141   # WORKGROUP<00>
            07 6578616d706c65 00            # scope example
            0020 0001 00000000 0006 8000 0a000001   # group, 10.0.0.1
        ");
        let got = bindings(&Message::parse(&b).unwrap());
        assert_eq!(got.len(), 1);
        assert!(got[0].group);
        assert_eq!(got[0].name.name, "workgroup");
        assert_eq!(got[0].name.scope, "example");
        assert_eq!(got[0].name.suffix, 0);
    }

    #[test]
    fn labels_that_are_no_encoded_name_are_refused() {
        assert_eq!(decode_label(&[b'A'; 31]), None);
        assert_eq!(decode_label(&[b'Q'; 32]), None);
        assert_eq!(decode_label(&[b'A'; 32]), Some([0; 16]));
    }
}
