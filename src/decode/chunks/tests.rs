//! Chunks decode what one pass does: classic pcap and pcapng files, clean and corrupt, split at
//! many places on two and three threads.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::framing::PANIC_AT_OFFSET;
use super::reads::{Bytes, ALIGN};
use super::*;
use crate::capture::pcap::HEADER;
use crate::decode::{driver, Output};
use crate::error::Error;
use crate::flow::FlowLimits;
use crate::packet::emit::{ethernet_frame, EthernetRepr, IpRepr, Ipv4Repr, UdpRepr, L4};

const FILE_HEADER: u64 = 24;

/// `paths` decoded on the chunks' schedule.
fn decode_paths(paths: &[PathBuf], opts: Options) -> Result<Output> {
    driver::drive(paths, &opts, Chunks::new(&opts))
}

/// A small deterministic generator (tests must not depend on a crate's random numbers).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn ip_repr(src: u8, dst: u8, id: u16, frag: u16) -> IpRepr<'static> {
    IpRepr::V4(Ipv4Repr {
        id,
        dont_frag: false,
        more_frags: frag & 0x2000 != 0,
        frag_offset: (frag & 0x1fff) * 8,
        ..Ipv4Repr::new([10, 0, 0, src], [10, 0, 0, dst], 0, 0)
    })
}

/// A frame from 10.0.0.`src` to 10.0.0.`dst` of `body` (a whole datagram or a fragment's
/// piece); `frag` as the header's flags and offset field.
fn ipv4(src: u8, dst: u8, id: u16, frag: u16, proto: u8, body: &[u8]) -> Vec<u8> {
    let eth = EthernetRepr {
        dst: [2, 0, 0, 0, 0, dst],
        src: [2, 0, 0, 0, 0, src],
        ..EthernetRepr::default()
    };
    ethernet_frame(&eth, ip_repr(src, dst, id, frag), &L4::Raw(proto), body)
}

/// A UDP datagram from 10.0.0.`src` to 10.0.0.`dst`, to be sent whole or in pieces.
fn udp(src: u8, dst: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    UdpRepr { sport, dport }.emit(&mut u, &ip_repr(src, dst, 0, 0), payload);
    u
}

fn record(us: u64, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let (sec, frac) = ((us / 1_000_000) as u32, (us % 1_000_000) as u32);
    for x in [sec, frac, data.len() as u32, data.len() as u32] {
        v.extend(x.to_le_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// One thing written into a test capture.
enum Ev {
    Rec(u64, Vec<u8>),
    /// Bytes that are no record.
    Raw(Vec<u8>),
    /// A record cut short: its first bytes only.
    Cut(u64, Vec<u8>, usize),
    /// pcapng only: a new section here (in the other byte order when true), its interfaces as
    /// the first one's.
    Section(bool),
}

/// Records of UDP conversations with idle gaps longer than the timeout, ARP between them (a
/// record without a packet can be the one that sweeps), fragmented datagrams, records longer
/// than a small chunk, and payloads that look like records and blocks (wrong guesses of a
/// chunk's first record); `corrupt`: a zero-length record and garbage after two thirds, a cut
/// last record.
fn events(seed: u64, corrupt: bool) -> Vec<Ev> {
    let mut r = Lcg(seed);
    let mut f = Vec::new();
    let mut us = 1_700_000_000_000_000u64;
    for i in 0..3000u64 {
        us += r.next(400_000);
        let (a, b) = (1 + r.next(6) as u8, 100 + r.next(3) as u8);
        let port = 1000 + r.next(5) as u16;
        match r.next(100) {
            0..=9 => {
                let mut arp = vec![0xff; 6];
                arp.extend([2, 0, 0, 0, 0, a, 0x08, 0x06]);
                arp.extend([0; 28]);
                f.push(Ev::Rec(us, arp));
            }
            10..=14 => {
                let body = udp(a, b, port, 53, &[i as u8; 40]);
                let id = i as u16;
                f.push(Ev::Rec(us, ipv4(a, b, id, 0x2000, 17, &body[..24])));
                us += r.next(3000);
                f.push(Ev::Rec(us, ipv4(a, b, id, 3, 17, &body[24..])));
            }
            15 => f.push(Ev::Rec(
                us,
                ipv4(a, b, 1, 0, 17, &udp(a, b, port, 2049, &[7; 3000])),
            )),
            16..=18 => {
                // Two bytes first: the pcapng blocks after the pcap records fall on offsets a
                // block may start at.
                let mut fake = vec![0, 0];
                for k in 0..5 {
                    fake.extend(record(us + k, &[0x45; 8]));
                }
                let mut w = Ng::new(false);
                for k in 0..5 {
                    w.epb(0, us + k, 1000, &[0x45; 8]);
                }
                fake.extend(w.v);
                f.push(Ev::Rec(
                    us,
                    ipv4(a, b, 1, 0, 17, &udp(a, b, port, 111, &fake)),
                ));
            }
            _ => {
                let len = r.next(600) as usize;
                let (s, d, sp, dp) = if r.next(2) == 0 {
                    (a, b, port, 53)
                } else {
                    (b, a, 53, port)
                };
                f.push(Ev::Rec(
                    us,
                    ipv4(s, d, 1, 0, 17, &udp(s, d, sp, dp, &vec![9; len])),
                ));
            }
        }
        if corrupt && i == 2000 {
            f.push(Ev::Rec(us, Vec::new()));
            f.push(Ev::Raw(vec![0xee; 77]));
            // Records of 1970 the resynchronisation skips, knowing the last record's time.
            f.push(Ev::Rec(5_000_000, vec![1; 20]));
            f.push(Ev::Rec(5_000_001, vec![1; 20]));
        }
    }
    if corrupt {
        f.push(Ev::Cut(us, vec![5; 300], 100));
    }
    f
}

/// A classic pcap file of `events`.
fn capture(seed: u64, corrupt: bool) -> Vec<u8> {
    let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    f.extend(65_535u32.to_le_bytes());
    f.extend(1u32.to_le_bytes());
    for e in events(seed, corrupt) {
        match e {
            Ev::Rec(us, data) => f.extend(record(us, &data)),
            Ev::Raw(b) => f.extend(b),
            Ev::Cut(us, data, keep) => f.extend(&record(us, &data)[..keep]),
            Ev::Section(_) => {}
        }
    }
    f
}

/// pcapng blocks written in one byte order.
struct Ng {
    be: bool,
    v: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Self {
        Ng { be, v: Vec::new() }
    }

    fn u32(&mut self, x: u32) {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend(b);
    }

    fn u16(&mut self, x: u16) {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend(b);
    }

    fn block(&mut self, t: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        self.u32(t);
        self.u32(len as u32);
        self.v.extend_from_slice(body);
        self.v.resize(self.v.len() + (len - 12 - body.len()), 0);
        self.u32(len as u32);
    }

    fn shb(&mut self) {
        let mut b = Ng::new(self.be);
        b.u32(0x1A2B_3C4D);
        b.u16(1);
        b.u16(0);
        b.v.extend([0xff; 8]);
        self.block(0x0A0D_0D0A, &b.v);
    }

    /// An interface of Ethernet with time resolution `tsresol` (the option's byte).
    fn idb(&mut self, tsresol: u8) {
        let mut b = Ng::new(self.be);
        b.u16(1);
        b.u16(0);
        b.u32(0);
        b.u16(9);
        b.u16(1);
        b.v.extend([tsresol, 0, 0, 0]);
        b.u32(0);
        self.block(1, &b.v);
    }

    /// A packet at `us` microseconds on interface `iface`, whose ticks are `per_s` a second.
    fn epb(&mut self, iface: u32, us: u64, per_s: u64, data: &[u8]) {
        let ticks = (u128::from(us) * u128::from(per_s) / 1_000_000) as u64;
        let mut b = Ng::new(self.be);
        b.u32(iface);
        b.u32((ticks >> 32) as u32);
        b.u32(ticks as u32);
        b.u32(data.len() as u32);
        b.u32(data.len() as u32);
        b.v.extend_from_slice(data);
        self.block(6, &b.v);
    }
}

/// How a pcapng test file is written.
#[derive(Debug, Clone, Copy)]
struct NgStyle {
    be: bool,
    /// Two interfaces (microseconds, 2^-20 s), the packets alternating between them.
    two_ifaces: bool,
    /// Name resolution, statistics and unknown blocks between the packets.
    other_blocks: bool,
    /// A new section in the other byte order halfway.
    sections: bool,
}

/// The events of `capture` as a pcapng file.
fn capture_ng(seed: u64, corrupt: bool, style: NgStyle) -> Vec<u8> {
    let mut evs = events(seed, corrupt);
    if style.sections {
        evs.insert(1500, Ev::Section(true));
    }
    let mut w = Ng::new(style.be);
    let head = |w: &mut Ng| {
        w.shb();
        w.idb(6);
        if style.two_ifaces {
            w.idb(0x94);
        }
    };
    head(&mut w);
    for (i, e) in evs.into_iter().enumerate() {
        let (iface, per_s) = if style.two_ifaces && i % 2 == 1 {
            (1, 1 << 20)
        } else {
            (0, 1_000_000)
        };
        match e {
            Ev::Rec(us, data) => w.epb(iface, us, per_s, &data),
            Ev::Raw(b) => w.v.extend(b),
            Ev::Cut(us, data, keep) => {
                let mut c = Ng::new(w.be);
                c.epb(iface, us, per_s, &data);
                w.v.extend(&c.v[..keep]);
            }
            Ev::Section(flip) => {
                w.be ^= flip;
                head(&mut w);
            }
        }
        if style.other_blocks && i % 97 == 5 {
            w.block(4, &[0; 8]);
            w.block(5, &[0; 12]);
            w.block(0x0000_0BAD, &[7; 13]);
            w.block(0x0000_7777, &[1; 20]);
        }
    }
    w.v
}

fn options(threads: usize, chunk_bytes: u64) -> Options {
    Options {
        threads,
        chunk_bytes,
        flows: FlowLimits {
            max_flows: 64,
            idle_timeout_ns: 5_000_000_000,
        },
        ..Options::default()
    }
}

fn summary(out: &Output) -> String {
    crate::tables::fingerprint(out)
}

#[test]
fn a_chunk_is_read_cache_line_aligned_at_its_own_offsets() {
    let dir = std::env::temp_dir().join(format!("pw-chunks-align-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bytes");
    let file: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &file).unwrap();
    let f = File::open(&path).unwrap();
    for from in [0u64, 24, 700, 4096 + 13, 19_990] {
        let stop = (from + 3000).min(20_000);
        let mut b = Bytes::new(vec![0; 4000 + ALIGN], from, stop, 20_000);
        assert_eq!(b.offset_of(b.start), from);
        assert_eq!(b.base % ALIGN as u64, 0, "{from}");
        assert_eq!((b.data.as_ptr() as usize + b.filled) % ALIGN, 0, "{from}");
        assert_eq!(b.span - b.start, (stop - from) as usize);
        b.ensure(&f, b.start + 200, None);
        let want = &file[from as usize..(from as usize + 200).min(20_000)];
        assert_eq!(&b.get(b.start)[..want.len()], want, "{from}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn chunks_decode_what_one_pass_does() {
    let dir = std::env::temp_dir().join(format!("pw-chunks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clean = dir.join("clean.pcap");
    let broken = dir.join("broken.pcap");
    std::fs::write(&clean, capture(1, false)).unwrap();
    std::fs::write(&broken, capture(2, true)).unwrap();
    for paths in [
        vec![clean.clone()],
        vec![broken.clone()],
        vec![clean.clone(), broken.clone()],
    ] {
        let one = crate::decode::decode_paths(&paths, options(1, 0)).unwrap();
        assert!(
            one.stats.reassembled > 50 && one.stats.non_ip > 100,
            "{:?}",
            one.stats
        );
        assert!(
            one.stats.flows_expired + one.stats.flows_split_idle > 10,
            "{:?}",
            one.stats
        );
        for (threads, chunk) in [(2, 700), (2, 4096), (3, 1500), (2, 64 << 10)] {
            let opts = options(threads, chunk);
            assert!(suits(&paths, &opts));
            let many = decode_paths(&paths, opts).unwrap();
            assert_eq!(summary(&one), summary(&many), "{paths:?} {threads} {chunk}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pcapng_chunks_decode_what_one_pass_does() {
    let dir = std::env::temp_dir().join(format!("pw-chunks-ng-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = NgStyle {
        be: false,
        two_ifaces: false,
        other_blocks: false,
        sections: false,
    };
    let styles = [
        (plain, false),
        (plain, true),
        (
            NgStyle {
                be: true,
                two_ifaces: true,
                other_blocks: true,
                ..plain
            },
            false,
        ),
        (
            NgStyle {
                two_ifaces: true,
                other_blocks: true,
                ..plain
            },
            true,
        ),
        (
            NgStyle {
                sections: true,
                two_ifaces: true,
                ..plain
            },
            false,
        ),
    ];
    let mut files = Vec::new();
    for (n, (style, corrupt)) in styles.into_iter().enumerate() {
        let path = dir.join(format!("{n}.pcapng"));
        std::fs::write(&path, capture_ng(10 + n as u64, corrupt, style)).unwrap();
        files.push((path, style, corrupt));
    }
    for (path, style, corrupt) in &files {
        let paths = vec![path.clone()];
        // The chunks frame the packets themselves, from a guessed first block, not only the
        // careful reader after them.
        let Some(split::Planned::Pcapng(plan)) = split::probe(path, 4096, 0) else {
            panic!("{style:?} is not split");
        };
        let spares = std::sync::Mutex::new(Vec::new());
        let opts = options(2, 4096);
        let mut worker = framing::Worker::new(&plan, &opts, &spares).unwrap();
        // Most chunks: a guess that fails lands in a payload that looks like blocks.
        let framed = (1..20)
            .map(|k| worker.parse(k, None, None))
            .filter(|c| c.first.is_some() && c.records > 3 && !c.dirty)
            .count();
        assert!(framed > 12, "{style:?}: {framed} of 19 chunks framed");
        let one = crate::decode::decode_paths(&paths, options(1, 0)).unwrap();
        assert!(
            one.stats.records > 3000 && one.stats.reassembled > 50,
            "{style:?} {:?}",
            one.stats
        );
        assert_eq!(one.captures[0].format, "pcapng");
        let kinds: Vec<&str> = one.anomalies.rows.iter().map(|a| a.kind).collect();
        if *corrupt {
            assert!(kinds.contains(&"zero_length_record"), "{kinds:?}");
            assert!(kinds.contains(&"truncated_record"), "{kinds:?}");
        } else {
            assert!(!kinds.iter().any(|k| k.contains("record")), "{kinds:?}");
        }
        if style.two_ifaces {
            assert_eq!(one.captures[0].link_types.len(), 1);
        }
        for (threads, chunk) in [(2, 700), (2, 4096), (3, 1500), (2, 64 << 10)] {
            let opts = options(threads, chunk);
            assert!(suits(&paths, &opts), "{style:?}");
            let many = decode_paths(&paths, opts).unwrap();
            assert_eq!(
                summary(&one),
                summary(&many),
                "{style:?} {corrupt} {threads} {chunk}"
            );
        }
    }
    // Several files, pcap and pcapng, as one pass.
    let pcap = dir.join("c.pcap");
    std::fs::write(&pcap, capture(3, true)).unwrap();
    let paths = vec![files[1].0.clone(), pcap, files[2].0.clone()];
    let one = crate::decode::decode_paths(&paths, options(1, 0)).unwrap();
    let many = decode_paths(&paths, options(2, 2048)).unwrap();
    assert_eq!(summary(&one), summary(&many));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_pcapng_preamble_carries_byte_order_and_resolutions() {
    let style = NgStyle {
        be: true,
        two_ifaces: true,
        other_blocks: false,
        sections: false,
    };
    let f = capture_ng(4, false, style);
    let pre = crate::capture::pcapng::framing::Preamble::read(&f).unwrap();
    use crate::capture::pcapng::TsResol;
    assert_eq!(pre.resolutions(), [TsResol::Pow10(6), TsResol::Pow2(20)]);
    let at = pre.len as usize;
    // The first packet block, and every 4-byte offset after it that is not a block start.
    assert_eq!(pre.chain(&f[at..], false), crate::capture::pcap::Chain::Yes);
    let second = at + u32::from_be_bytes(f[at + 4..at + 8].try_into().unwrap()) as usize;
    for i in (at + 4..second).step_by(4) {
        assert_eq!(
            pre.chain(&f[i..], false),
            crate::capture::pcap::Chain::No,
            "{i}"
        );
    }
    // A file cut inside its preamble, or not starting with one, is read by the careful reader.
    assert!(crate::capture::pcapng::framing::Preamble::read(&f[..at - 4]).is_none());
    assert!(crate::capture::pcapng::framing::Preamble::read(&capture(1, false)).is_none());
}

#[cfg(unix)]
#[test]
fn a_fifo_is_not_opened_to_be_probed() {
    // Opening a FIFO waits for a writer and, once one came, consumes what it wrote: the probe
    // must tell it apart by its name alone (no writer ever comes here).
    let dir = std::env::temp_dir().join(format!("pw-chunks-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("live.pcap");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let paths = vec![fifo.clone()];
    std::thread::spawn(move || tx.send(suits(&paths, &options(2, 0))).ok());
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(got, Ok(false), "the probe opened the FIFO");
}

#[test]
fn a_panic_in_any_thread_names_the_record() {
    let dir = std::env::temp_dir().join(format!("pw-chunks-panic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clean.pcap");
    std::fs::write(&path, capture(3, false)).unwrap();
    let paths = vec![path.clone()];
    let one = crate::decode::decode_paths(&paths, options(1, 0)).unwrap();
    // Records far enough apart that some fall in chunks the helper frames, some in the
    // applying thread's: with 40 chunks, both kinds are met.
    let mut seen = Vec::new();
    for at in [0.3, 0.5, 0.7, 0.9] {
        let target = (one.stats.records as f64 * at) as u64;
        let offset = offset_of(&path, target);
        PANIC_AT_OFFSET.store(offset, Ordering::Relaxed);
        let err = crate::decode::decode_paths_catching(&paths, options(2, 2048));
        PANIC_AT_OFFSET.store(u64::MAX, Ordering::Relaxed);
        match err {
            Err(Error::Internal {
                path: p,
                record_index,
                byte_offset,
                message,
            }) => {
                assert_eq!(
                    (p, record_index, byte_offset),
                    (path.clone(), target, offset)
                );
                assert_eq!(message, format!("injected at offset {offset}"));
            }
            other => panic!("expected Error::Internal, got {:?}", other.map(|_| ())),
        }
        seen.push(target);
    }
    assert_eq!(seen.len(), 4);
    assert!(decode_paths(&paths, options(2, 2048)).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

/// The byte offset of record `index` of a classic pcap file.
fn offset_of(path: &Path, index: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut at = FILE_HEADER as usize;
    for _ in 0..index {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += HEADER + incl as usize;
    }
    at as u64
}
