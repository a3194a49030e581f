//! DNS messages (RFC 1035; AAAA, RFC 3596; mDNS's class bits, RFC 6762; NetBIOS name service
//! messages share the format, RFC 1002): the header, names with compression, and the resource
//! records of every section, enough to read which names a response binds to which addresses.
//!
//! A `Message` is a checked view: `parse` walks the questions and records once, bounding every
//! name (`MAX_NAME`, `MAX_LABEL`, `MAX_POINTERS`) and the records read (`MAX_RECORDS`), so the
//! accessors cannot fail afterwards. A message cut short keeps the records before the cut.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const HEADER_LEN: usize = 12;
/// Octets of a name in its uncompressed wire form, length bytes and root included (RFC 1035
/// §2.3.4).
pub const MAX_NAME: usize = 255;
/// Octets of one label (the two top bits of its length byte are the label type).
pub const MAX_LABEL: usize = 63;
/// Compression pointers followed while reading one name: a loop ends here.
pub const MAX_POINTERS: usize = 32;
/// Questions and resource records read from one message, all sections together.
pub const MAX_RECORDS: usize = 512;
/// Largest message believed: a TCP message's length prefix is 16 bits.
pub const MAX_MESSAGE: usize = 65_535;

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
/// NetBIOS general name service resource record (RFC 1002 §4.2.1.3).
pub const TYPE_NB: u16 = 32;
pub const CLASS_IN: u16 = 1;
/// mDNS uses the class's top bit as the cache-flush bit (answers) or the unicast-response bit
/// (questions).
const CLASS_MASK: u16 = 0x7fff;

const FLAG_RESPONSE: u16 = 0x8000;

/// The fixed header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub questions: u16,
    pub answers: u16,
    pub authorities: u16,
    pub additionals: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let u16_at = |i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
        Some(Header {
            id: u16_at(0)?,
            flags: u16_at(2)?,
            questions: u16_at(4)?,
            answers: u16_at(6)?,
            authorities: u16_at(8)?,
            additionals: u16_at(10)?,
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    fn records(&self) -> usize {
        [self.answers, self.authorities, self.additionals]
            .iter()
            .map(|&n| usize::from(n))
            .sum()
    }
}

/// A name in its uncompressed wire form without the root: length-prefixed labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name(Vec<u8>);

impl Name {
    /// The labels, in order (none for the root).
    pub fn labels(&self) -> Labels<'_> {
        Labels(&self.0)
    }

    /// The name as text: labels lower-cased and joined by dots, without the root's trailing dot
    /// (the root is the empty string); a dot or backslash inside a label is escaped with a
    /// backslash and any byte outside printable ASCII as `\DDD` (RFC 1035 §5.1).
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                out.push('.');
            }
            push_label(label, &mut out);
        }
        out
    }
}

/// Appends a label as `Name::text` writes it.
pub fn push_label(label: &[u8], out: &mut String) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7e => out.push(char::from(b.to_ascii_lowercase())),
            _ => {
                out.push('\\');
                for d in [b / 100, b / 10 % 10, b % 10] {
                    out.push(char::from(b'0' + d));
                }
            }
        }
    }
}

pub struct Labels<'a>(&'a [u8]);

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let n = usize::from(len).min(rest.len());
        let (label, rest) = rest.split_at(n);
        self.0 = rest;
        Some(label)
    }
}

/// Reads the name at `at` in `msg`, following compression pointers; returns it and the offset
/// just past it where it is written (after the first pointer, if any). None when it runs off
/// the message, is longer than `MAX_NAME`, uses a label type other than plain and pointer, or
/// follows more than `MAX_POINTERS` pointers.
pub fn read_name(msg: &[u8], at: usize) -> Option<(Name, usize)> {
    let mut out = Vec::with_capacity(64);
    let end = walk_name(msg, at, |label| {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    })?;
    Some((Name(out), end))
}

/// The name at `at` as `Name::text` writes it, read straight from the message.
pub fn name_text(msg: &[u8], at: usize) -> Option<String> {
    let mut out = String::with_capacity(48);
    walk_name(msg, at, |label| {
        if !out.is_empty() {
            out.push('.');
        }
        push_label(label, &mut out);
    })?;
    Some(out)
}

/// Hands each label of the name at `at` to `label`, following pointers within the bounds
/// `read_name` states; returns the offset just past the name where it is written.
fn walk_name(msg: &[u8], at: usize, mut label: impl FnMut(&[u8])) -> Option<usize> {
    let mut pos = at;
    let mut end = None;
    let mut jumps = 0usize;
    let mut octets = 1usize; // the root's
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(end.unwrap_or(pos.checked_add(1)?)),
            0x00 => {
                let n = usize::from(len);
                let start = pos.checked_add(1)?;
                let stop = start.checked_add(n)?;
                octets = octets.checked_add(n + 1)?;
                if n > MAX_LABEL || octets > MAX_NAME {
                    return None;
                }
                label(msg.get(start..stop)?);
                pos = stop;
            }
            0xc0 => {
                let lo = *msg.get(pos.checked_add(1)?)?;
                if end.is_none() {
                    end = Some(pos.checked_add(2)?);
                }
                jumps += 1;
                if jumps > MAX_POINTERS {
                    return None;
                }
                pos = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
            }
            // 0x40 (extended) and 0x80 (reserved) label types.
            _ => return None,
        }
    }
}

/// The offset just past the name written at `at`, without following its pointer: enough to
/// step over a name whose value is not needed (most are not).
fn skip_name(msg: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return pos.checked_add(1),
            0x00 => pos = pos.checked_add(1 + usize::from(len))?,
            0xc0 => {
                let after = pos.checked_add(2)?;
                return (after <= msg.len()).then_some(after);
            }
            _ => return None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Where the name is written (`Message::name`, `Message::text`).
    pub name_at: usize,
    pub qtype: u16,
    pub class: u16,
}

/// The section a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub section: Section,
    /// Where the owner's name is written (`Message::name`, `Message::text`).
    pub name_at: usize,
    pub rtype: u16,
    /// The class without mDNS's cache-flush bit.
    pub class: u16,
    pub ttl: u32,
    pub rdata: &'a [u8],
    /// Where `rdata` starts in the message (names inside it may point anywhere before).
    pub rdata_at: usize,
}

impl Record<'_> {
    /// The address of an A or AAAA record of class IN whose data has the right length.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        if self.class != CLASS_IN {
            return None;
        }
        match (self.rtype, self.rdata) {
            (TYPE_A, &[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d).into()),
            (TYPE_AAAA, data) if data.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                Some(Ipv6Addr::from(o).into())
            }
            _ => None,
        }
    }
}

/// A message's header and whatever of its questions and records could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub bytes: &'a [u8],
    pub header: Header,
    pub questions: Vec<Question>,
    pub records: Vec<Record<'a>>,
    /// Every question and record the header counts was read.
    pub complete: bool,
}

impl<'a> Message<'a> {
    /// The message in `b` (a whole UDP payload, or one TCP message without its length prefix).
    /// None when even the header is missing.
    pub fn parse(b: &'a [u8]) -> Option<Message<'a>> {
        let header = Header::parse(b)?;
        let mut m = Message {
            bytes: b,
            header,
            questions: Vec::new(),
            records: Vec::new(),
            complete: false,
        };
        let mut pos = HEADER_LEN;
        let mut budget = MAX_RECORDS;
        for _ in 0..header.questions {
            let Some(q) = budget.checked_sub(1).and_then(|_| question(b, pos)) else {
                return Some(m);
            };
            budget -= 1;
            pos = q.1;
            m.questions.push(q.0);
        }
        let sections = [
            (Section::Answer, header.answers),
            (Section::Authority, header.authorities),
            (Section::Additional, header.additionals),
        ];
        for (section, count) in sections {
            for _ in 0..count {
                let Some(r) = budget.checked_sub(1).and_then(|_| record(b, pos, section)) else {
                    return Some(m);
                };
                budget -= 1;
                pos = r.1;
                m.records.push(r.0);
            }
        }
        m.complete = m.questions.len() == usize::from(header.questions)
            && m.records.len() == header.records();
        Some(m)
    }

    /// The name written at `at` (a question's or record's `name_at`).
    pub fn name(&self, at: usize) -> Option<Name> {
        read_name(self.bytes, at).map(|(n, _)| n)
    }

    /// The name written at `at` as text (`Name::text`).
    pub fn text(&self, at: usize) -> Option<String> {
        name_text(self.bytes, at)
    }

    /// The name a CNAME record points to.
    pub fn cname_target(&self, r: &Record<'_>) -> Option<Name> {
        if r.rtype != TYPE_CNAME {
            return None;
        }
        let (name, end) = read_name(self.bytes, r.rdata_at)?;
        // The target must lie inside the record's data (its pointers may leave it).
        (end == r.rdata_at.checked_add(r.rdata.len())?).then_some(name)
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i.checked_add(1)?)?]))
}

fn question(b: &[u8], at: usize) -> Option<(Question, usize)> {
    let pos = skip_name(b, at)?;
    let qtype = u16_at(b, pos)?;
    let class = u16_at(b, pos.checked_add(2)?)? & CLASS_MASK;
    let q = Question {
        name_at: at,
        qtype,
        class,
    };
    Some((q, pos.checked_add(4)?))
}

fn record(b: &[u8], at: usize, section: Section) -> Option<(Record<'_>, usize)> {
    let pos = skip_name(b, at)?;
    let rtype = u16_at(b, pos)?;
    let class = u16_at(b, pos.checked_add(2)?)? & CLASS_MASK;
    let ttl_at = pos.checked_add(4)?;
    let ttl = u32::from_be_bytes(b.get(ttl_at..ttl_at.checked_add(4)?)?.try_into().ok()?);
    let len = usize::from(u16_at(b, pos.checked_add(8)?)?);
    let rdata_at = pos.checked_add(10)?;
    let end = rdata_at.checked_add(len)?;
    let rdata = b.get(rdata_at..end)?;
    let r = Record {
        section,
        name_at: at,
        rtype,
        class,
        ttl,
        rdata,
        rdata_at,
    };
    Some((r, end))
}

/// The record type's mnemonic, for the types a binding comes from.
pub fn type_name(t: u16) -> &'static str {
    match t {
        TYPE_A => "A",
        TYPE_AAAA => "AAAA",
        TYPE_CNAME => "CNAME",
        TYPE_NB => "NB",
        _ => "other",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex text; whitespace and `#` comments to the end of a line are ignored.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: String = s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    /// www.example.com A? answered with a CNAME chain www -> cdn.example.net -> edge.example.net
    /// and two A records for edge, all names after the question compressed.
    pub(crate) fn cname_response() -> Vec<u8> {
        hex("
            1234 8180 0001 0004 0000 0000   # id, QR RD RA, 1 question, 4 answers
            03 777777 07 6578616d706c65 03 636f6d 00   # 12: www.example.com
            0001 0001                       # A IN
            c00c 0005 0001 0000012c 0011    # 33: www.example.com CNAME, ttl 300, 17 bytes:
            03 63646e 07 6578616d706c65 03 6e6574 00    # 45: cdn.example.net
            c02d 0005 0001 0000003c 0007    # 62: cdn.example.net CNAME, ttl 60, 7 bytes:
            04 65646765 c031                # 74: edge + .example.net (pointer to 49)
            c04a 0001 0001 0000001e 0004 c0000201   # 81: edge.example.net A 192.0.2.1, ttl 30
            c04a 0001 0001 0000001e 0004 c0000202   # edge.example.net A 192.0.2.2
        ")
    }

    #[test]
    fn a_cname_chain_is_read_with_its_pointers() {
        let b = cname_response();
        let m = Message::parse(&b).unwrap();
        assert!(m.complete && m.header.is_response() && m.header.rcode() == 0);
        assert_eq!(m.header.id, 0x1234);
        assert_eq!(m.questions.len(), 1);
        assert_eq!(m.text(m.questions[0].name_at).unwrap(), "www.example.com");
        assert_eq!(m.questions[0].qtype, TYPE_A);
        let names: Vec<String> = m
            .records
            .iter()
            .map(|r| m.text(r.name_at).unwrap())
            .collect();
        let read: Vec<String> = m
            .records
            .iter()
            .map(|r| m.name(r.name_at).unwrap().text())
            .collect();
        assert_eq!(names, read);
        assert_eq!(
            names,
            [
                "www.example.com",
                "cdn.example.net",
                "edge.example.net",
                "edge.example.net"
            ]
        );
        let targets: Vec<Option<String>> = m
            .records
            .iter()
            .map(|r| m.cname_target(r).map(|n| n.text()))
            .collect();
        assert_eq!(
            targets,
            [
                Some("cdn.example.net".into()),
                Some("edge.example.net".into()),
                None,
                None
            ]
        );
        assert_eq!(m.records[0].ttl, 300);
        assert_eq!(m.records[3].address(), Some("192.0.2.2".parse().unwrap()));
        assert_eq!(m.records[3].section, Section::Answer);
    }

    #[test]
    fn aaaa_and_mdns_cache_flush_class() {
        let b = hex("
            0000 8400 0000 0001 0000 0000   # mDNS: id 0, QR AA, one answer, no question
            04 686f7374 05 6c6f63616c 00    # host.local
            001c 8001 00000078 0010         # AAAA, class IN with cache-flush, ttl 120
            fe800000000000000000000000000001
        ");
        let m = Message::parse(&b).unwrap();
        assert!(m.complete);
        let r = &m.records[0];
        assert_eq!(
            (m.text(r.name_at).unwrap(), r.class, r.ttl),
            ("host.local".into(), 1, 120)
        );
        assert_eq!(r.address(), Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn names_are_lowercased_and_odd_bytes_escaped() {
        let b = hex("
            0000 8000 0001 0000 0000 0000
            04 412e5c20 03 434f4d 00 0001 0001   # 'A.\\ ' . COM
        ");
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.text(m.questions[0].name_at).unwrap(), "a\\.\\\\\\032.com");
    }

    #[test]
    fn pointer_loops_end() {
        // The name at 12 points to itself; the one at 14 is a label, then a pointer to itself.
        // The question is stepped over; its name is not a name.
        let b = hex("0000 8000 0001 0000 0000 0000 c00c 0001 0001");
        let m = Message::parse(&b).unwrap();
        assert!(m.complete && m.questions[0].qtype == TYPE_A);
        assert_eq!((m.name(12), m.text(12)), (None, None));
        let b = hex("0000 8000 0000 0000 0000 0000 01 61 c00e");
        assert_eq!(read_name(&b, 12), None);
    }

    #[test]
    fn a_record_whose_owner_loops_does_not_end_the_message() {
        let b = hex("
            0000 8180 0000 0002 0000 0000
            c00c 0001 0001 00000001 0004 0a000001   # 12: owner points to itself, A 10.0.0.1
            01 78 00 0001 0001 00000001 0004 0a000002   # x A 10.0.0.2
        ");
        let m = Message::parse(&b).unwrap();
        assert!(m.complete && m.records.len() == 2);
        assert_eq!(m.text(m.records[0].name_at), None);
        assert_eq!(m.text(m.records[1].name_at).as_deref(), Some("x"));
        assert_eq!(m.records[1].address(), Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn overlong_names_and_labels_are_refused() {
        let mut b = hex("0000 8000 0001 0000 0000 0000");
        for _ in 0..5 {
            b.push(63);
            b.extend([b'a'; 63]);
        }
        b.push(0);
        assert_eq!(read_name(&b, 12), None);
        // Four labels of 63 make 256 octets with the root: one too many.
        let mut b = vec![0; 12];
        for _ in 0..4 {
            b.push(63);
            b.extend([b'a'; 63]);
        }
        b.push(0);
        assert_eq!(read_name(&b, 12), None);
        // Three of 63 and one of 61: 255, the largest.
        let mut b = vec![0; 12];
        for n in [63u8, 63, 63, 61] {
            b.push(n);
            b.extend(vec![b'a'; usize::from(n)]);
        }
        b.push(0);
        let (name, end) = read_name(&b, 12).unwrap();
        assert_eq!((name.text().len(), end), (253, b.len()));
        // Label type 0x40.
        assert_eq!(read_name(&hex("41 61 00"), 0), None);
    }

    #[test]
    fn a_message_cut_short_keeps_the_records_before_the_cut() {
        let b = cname_response();
        for cut in 0..b.len() {
            let Some(m) = Message::parse(&b[..cut]) else {
                assert!(cut < HEADER_LEN);
                continue;
            };
            assert!(!m.complete);
            assert!(m.records.len() < 4);
        }
        let cut = Message::parse(&b[..b.len() - 1]).unwrap();
        assert_eq!(cut.records.len(), 3);
    }

    #[test]
    fn a_cname_target_must_fill_its_record_data() {
        let mut b = cname_response();
        // Lengthen the first CNAME's data by one byte: the name no longer ends where it does.
        b[44] = 0x12;
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.cname_target(&m.records[0]), None);
    }

    #[test]
    fn the_record_budget_bounds_a_message() {
        // 0xffff answers claimed, each a root-named A record of 15 bytes.
        let mut b = hex("0000 8000 0000 ffff 0000 0000");
        for _ in 0..1000 {
            b.extend(hex("00 0001 0001 00000000 0004 0a000001"));
        }
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.records.len(), MAX_RECORDS);
        assert!(!m.complete);
    }
}
