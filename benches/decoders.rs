//! Criterion benches, one group per decoder: the capture walks (classic pcap, pcapng), the link to
//! transport parsers, the flow table, ONC RPC with portmap, DCE/RPC with the endpoint mapper, the
//! TLS hellos, and the whole decode pipeline. Every group reports bytes/s.
//!
//! Full run (about 3 minutes on 2 cores):
//!
//!     cargo bench --no-default-features --bench decoders
//!
//! Quick run, for CI (10 short samples per benchmark, well under a minute in all):
//!
//!     PORTWITNESS_BENCH_QUICK=1 cargo bench --no-default-features --bench decoders
//!
//! One group or benchmark (criterion's name filter; criterion's own `--quick` works too):
//!
//!     cargo bench --no-default-features --bench decoders -- tls
//!
//! `--no-default-features` leaves the Python bindings (pyo3) out; the benches never need them
//! (they build and run with the default features too, only compiling more).
//!
//! Every input is built here, deterministically (a fixed-seed generator): the link to transport
//! headers by the library's emit side (`packet::emit`, checksums included), the rest by the small
//! wire-format writers below, so the benches need no capture files and document the formats
//! they feed. Each input is decoded once before it is timed, and what the decoders say of it is
//! checked, so a bench never measures the fast path of a rejection.

use std::hint::black_box;
use std::io::Cursor;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};

use _core::anomaly::Anomalies;
use _core::app::StreamState;
use _core::capture::linktype::{self, Link};
use _core::capture::{CaptureReader, Compression, Source};
use _core::decode::{Decoder, Options};
use _core::flow::{FlowLimits, FlowTable, PacketMeta};
use _core::packet::emit::{
    ethernet_frame, EthernetRepr, IpRepr, Ipv4Repr, Ipv6Repr, TcpRepr, UdpRepr, L4,
};
use _core::packet::tcp::{ACK, FIN, SYN};
use _core::packet::{
    ipv4, ipv6, tcp, udp, Addr, Tunnel, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP,
};
use _core::proto::dcerpc::{self, Pdu};
use _core::proto::ndr::Encoding;
use _core::proto::oncrpc::{self, Message, RecordEvent, RecordMarking};
use _core::proto::portmap::{self, Query};
use _core::proto::{epm, tls};

// ---------------------------------------------------------------------------------------------
// Configuration

/// `PORTWITNESS_BENCH_QUICK=1` (any value but empty or `0`): a smoke run for CI.
fn quick() -> bool {
    std::env::var_os("PORTWITNESS_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

fn config() -> Criterion {
    let c = Criterion::default().without_plots();
    if quick() {
        c.sample_size(10)
            .measurement_time(Duration::from_millis(300))
            .warm_up_time(Duration::from_millis(100))
            .nresamples(10_000)
    } else {
        c
    }
}

/// A group for inputs that take milliseconds per iteration: flat sampling (the same iteration
/// count in every sample), and in a full run 30 samples over 10 s instead of criterion's 100
/// over 5 s.
fn heavy<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    if quick() {
        // Room for 10 iterations of the largest input (the flow table's, ~60 ms).
        g.measurement_time(Duration::from_secs(1));
    } else {
        g.sample_size(30).measurement_time(Duration::from_secs(10));
    }
    g
}

fn bytes_of<T: AsRef<[u8]>>(items: &[T]) -> u64 {
    items.iter().map(|m| m.as_ref().len() as u64).sum()
}

// ---------------------------------------------------------------------------------------------
// A fixed-seed generator

/// SplitMix64: every run benches the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// Payload bytes that are no protocol at all (not TLS, DCE/RPC or ONC RPC by any heuristic).
fn filler(n: usize) -> impl Iterator<Item = u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8)
}

// ---------------------------------------------------------------------------------------------
// Link, network and transport headers

const MSS: usize = 1448;
const ETH: usize = 14;
const VLAN_TAG: usize = 4;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
/// 20 bytes and the timestamps option (`tcp_timestamps`).
const TCP_HEADER: usize = 32;
const UDP_HEADER: usize = 8;
const PSH: u8 = 0x08;

/// Ethernet II between two QEMU-style MACs; `vlans` holds the one 802.1Q tag, if any.
fn eth(vlans: &[u16]) -> EthernetRepr<'_> {
    EthernetRepr {
        dst: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        src: [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef],
        vlans,
        ..EthernetRepr::default()
    }
}

/// IPv4 without options (DF set, TTL 64) or IPv6 without extension headers.
fn ip_repr(src: &Addr, dst: &Addr, id: u16) -> IpRepr<'static> {
    if src.v6 {
        IpRepr::V6(Ipv6Repr::new(src.bytes, dst.bytes, 0, 0))
    } else {
        let v4 = |a: &Addr| [a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]];
        IpRepr::V4(Ipv4Repr {
            id,
            ..Ipv4Repr::new(v4(src), v4(dst), 0, 0)
        })
    }
}

/// NOP, NOP and the timestamps option (kind 8, length 10: TSval, TSecr 0), as Linux sends.
fn tcp_timestamps(ts_val: u32) -> [u8; TCP_HEADER - 20] {
    let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&ts_val.to_be_bytes());
    o
}

// ---------------------------------------------------------------------------------------------
// Capture files

/// A classic pcap (little-endian, microsecond timestamps, LINKTYPE_ETHERNET): the 24-byte file
/// header, then per record ts_sec, ts_usec, incl_len, orig_len and the frame. Returns the file and
/// where each frame lies in it.
fn pcap_file(frames: &[(i64, Vec<u8>)]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut v = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.1.len()).sum::<usize>());
    v.extend(0xa1b2_c3d4u32.to_le_bytes());
    v.extend(2u16.to_le_bytes());
    v.extend(4u16.to_le_bytes());
    v.extend(0i32.to_le_bytes()); // thiszone
    v.extend(0u32.to_le_bytes()); // sigfigs
    v.extend(262_144u32.to_le_bytes()); // snaplen
    v.extend(linktype::ETHERNET.to_le_bytes());
    let mut at = Vec::with_capacity(frames.len());
    for (ts, f) in frames {
        v.extend(((ts / 1_000_000_000) as u32).to_le_bytes());
        v.extend(((ts % 1_000_000_000 / 1000) as u32).to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        at.push(v.len()..v.len() + f.len());
        v.extend(f);
    }
    (v, at)
}

/// One pcapng block: type, total length, body (padded to 4), total length again.
fn pcapng_block(v: &mut Vec<u8>, btype: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    v.extend(btype.to_le_bytes());
    v.extend(total.to_le_bytes());
    v.extend(body);
    v.extend(std::iter::repeat_n(0u8, padded - body.len()));
    v.extend(total.to_le_bytes());
}

/// A pcapng file (little-endian): a Section Header Block, one Interface Description Block
/// (Ethernet, if_tsresol 9 = nanoseconds) and an Enhanced Packet Block per frame.
fn pcapng_file(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes()); // byte-order magic
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes()); // section length unknown
    pcapng_block(&mut v, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend((linktype::ETHERNET as u16).to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(262_144u32.to_le_bytes());
    idb.extend([9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol: 10^-9, padded
    idb.extend([0, 0, 0, 0]); // opt_endofopt
    pcapng_block(&mut v, 1, &idb);
    let mut epb = Vec::new();
    for (ts, f) in frames {
        epb.clear();
        epb.extend(0u32.to_le_bytes()); // interface 0
        epb.extend(((*ts as u64 >> 32) as u32).to_le_bytes());
        epb.extend((*ts as u64 as u32).to_le_bytes());
        epb.extend((f.len() as u32).to_le_bytes());
        epb.extend((f.len() as u32).to_le_bytes());
        epb.extend(f);
        pcapng_block(&mut v, 6, &epb);
    }
    v
}

/// A fresh in-memory source over shared bytes: the same code path as `Source::from_bytes`
/// (a `Cursor` read into the source's 1 MiB buffer), without copying the input every iteration.
fn source(bytes: &Arc<[u8]>) -> Source {
    Source::from_reader(Box::new(Cursor::new(Arc::clone(bytes))), Compression::None)
}

/// Walks every record; returns (records, captured bytes).
fn walk(bytes: &Arc<[u8]>, an: &mut Anomalies) -> (u64, u64) {
    let mut src = source(bytes);
    let mut r = CaptureReader::open(&mut src).expect("a capture");
    let (mut n, mut b) = (0u64, 0u64);
    while let Some(rec) = r.next(&mut src, an, 0) {
        n += 1;
        b += rec.data.len() as u64;
    }
    (n, b)
}

// ---------------------------------------------------------------------------------------------
// ONC RPC (RFC 5531) and portmap (RFC 1833) in XDR (RFC 4506)

fn xdr_u32(v: &mut Vec<u8>, x: u32) {
    v.extend(x.to_be_bytes());
}

/// Variable-length opaque: length, bytes, zero padding to a multiple of 4.
fn xdr_opaque(v: &mut Vec<u8>, b: &[u8]) {
    xdr_u32(v, b.len() as u32);
    v.extend(b);
    let pad = b.len().next_multiple_of(4) - b.len();
    v.extend(std::iter::repeat_n(0u8, pad));
}

/// AUTH_UNIX (AUTH_SYS) credentials: stamp, machine name, uid, gid, supplementary gids.
struct AuthUnix<'a> {
    machine: &'a str,
    uid: u32,
    gid: u32,
    gids: &'a [u32],
}

/// A call: xid, CALL, RPC version 2, program, version, procedure, credentials (AUTH_UNIX or
/// AUTH_NULL), an AUTH_NULL verifier, then the procedure's arguments.
fn rpc_call(xid: u32, prog: (u32, u32, u32), cred: Option<&AuthUnix<'_>>, args: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(96 + args.len());
    for x in [xid, oncrpc::CALL, 2, prog.0, prog.1, prog.2] {
        xdr_u32(&mut v, x);
    }
    match cred {
        Some(a) => {
            let mut body = Vec::new();
            xdr_u32(&mut body, 0x5f3c_1a2b); // stamp
            xdr_opaque(&mut body, a.machine.as_bytes());
            xdr_u32(&mut body, a.uid);
            xdr_u32(&mut body, a.gid);
            xdr_u32(&mut body, a.gids.len() as u32);
            for &g in a.gids {
                xdr_u32(&mut body, g);
            }
            xdr_u32(&mut v, oncrpc::AUTH_SYS);
            xdr_opaque(&mut v, &body);
        }
        None => {
            xdr_u32(&mut v, 0); // AUTH_NULL
            xdr_opaque(&mut v, &[]);
        }
    }
    xdr_u32(&mut v, 0); // verifier: AUTH_NULL
    xdr_opaque(&mut v, &[]);
    v.extend(args);
    v
}

/// An accepted, successful reply: xid, REPLY, MSG_ACCEPTED, an AUTH_NULL verifier, SUCCESS, then
/// the procedure's results.
fn rpc_reply(xid: u32, results: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + results.len());
    for x in [xid, oncrpc::REPLY, 0, 0, 0, 0] {
        xdr_u32(&mut v, x);
    }
    v.extend(results);
    v
}

/// TCP record marking (RFC 5531 §11): one last fragment holding the whole message.
fn record_mark(msg: &[u8]) -> Vec<u8> {
    let mut v = (0x8000_0000 | msg.len() as u32).to_be_bytes().to_vec();
    v.extend(msg);
    v
}

const PMAP_V2: u32 = 2;
const PMAPPROC_GETPORT: u32 = 3;
const PMAPPROC_DUMP: u32 = 4;
/// Programs an NFS server registers: nfs, mountd, nlockmgr, status, nfs_acl, rquotad.
const RPC_PROGRAMS: [(u32, u32, u16); 6] = [
    (100_003, 3, 2049),
    (100_005, 3, 20048),
    (100_021, 4, 40_321),
    (100_024, 1, 662),
    (100_227, 3, 2049),
    (100_011, 2, 875),
];

/// GETPORT's argument, a `mapping`: program, version, protocol (6 TCP, 17 UDP), port (0).
fn getport_call(xid: u32, prog: u32, vers: u32, prot: u32) -> Vec<u8> {
    let mut args = Vec::new();
    for x in [prog, vers, prot, 0] {
        xdr_u32(&mut args, x);
    }
    rpc_call(
        xid,
        (portmap::PROGRAM, PMAP_V2, PMAPPROC_GETPORT),
        None,
        &args,
    )
}

/// DUMP's result: a linked list of mappings, each preceded by value_follows = 1, ended by 0.
fn dump_reply(xid: u32, entries: &[(u32, u32, u32, u32)]) -> Vec<u8> {
    let mut res = Vec::new();
    for &(prog, vers, prot, port) in entries {
        for x in [1, prog, vers, prot, port] {
            xdr_u32(&mut res, x);
        }
    }
    xdr_u32(&mut res, 0);
    rpc_reply(xid, &res)
}

/// An NFSv3 call as clients send them: AUTH_UNIX with a host name and supplementary groups, a
/// 32-byte file handle and some procedure-specific words.
fn nfs_call(r: &mut Rng, xid: u32) -> Vec<u8> {
    let machine = format!("client-{:03}.lab.example.com", r.range(0, 500));
    let gids: Vec<u32> = (0..r.range(0, 17)).map(|i| 1000 + i as u32).collect();
    let cred = AuthUnix {
        machine: &machine,
        uid: r.range(1000, 60000) as u32,
        gid: 100,
        gids: &gids,
    };
    let mut args = Vec::new();
    xdr_opaque(&mut args, &[0x42; 32]); // nfs_fh3
    for _ in 0..r.range(0, 24) {
        xdr_u32(&mut args, r.next() as u32);
    }
    let proc_ = r.range(1, 22) as u32;
    rpc_call(xid, (100_003, 3, proc_), Some(&cred), &args)
}

/// An NFSv3 reply: status, post-op attributes and some procedure-specific data.
fn nfs_reply(r: &mut Rng, xid: u32) -> Vec<u8> {
    let mut res = Vec::new();
    xdr_u32(&mut res, 0); // NFS3_OK
    for _ in 0..r.range(21, 120) {
        xdr_u32(&mut res, r.next() as u32);
    }
    rpc_reply(xid, &res)
}

// ---------------------------------------------------------------------------------------------
// DCE/RPC connection-oriented PDUs (C706 ch. 12, MS-RPCE 2.2.2) and the endpoint mapper

const EPM_IF: (&str, u16, u16) = ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", 3, 0);
const NDR: (&str, u16, u16) = ("8a885d04-1ceb-11c9-9fe8-08002b104860", 2, 0);
const NDR64: (&str, u16, u16) = ("71710533-beba-4937-8319-b5dbef9ccc36", 1, 0);
const BIND_TIME_FEATURES: (&str, u16, u16) = ("6cb71c2c-9812-4540-0300-000000000000", 1, 0);
const NIL: (&str, u16, u16) = ("00000000-0000-0000-0000-000000000000", 0, 0);
/// lsarpc, samr, netlogon, srvsvc, drsuapi, and the endpoint mapper.
const INTERFACES: [(&str, u16, u16); 6] = [
    ("12345778-1234-abcd-ef00-0123456789ab", 0, 0),
    ("12345778-1234-abcd-ef00-0123456789ac", 1, 0),
    ("12345678-1234-abcd-ef00-01234567cffb", 1, 0),
    ("4b324fc8-1670-01d3-1278-5a47bf6ee188", 3, 0),
    ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", 4, 0),
    EPM_IF,
];

/// A UUID as little-endian NDR puts it on the wire: the first three fields byte-swapped.
fn uuid_le(s: &str) -> [u8; 16] {
    let hex: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'-')
        .map(|c| (c as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = hex[2 * i] << 4 | hex[2 * i + 1];
    }
    u[..4].reverse();
    u[4..6].reverse();
    u[6..8].reverse();
    u
}

/// p_syntax_id_t: UUID, then a u32 version whose low half is the major version.
fn syntax(v: &mut Vec<u8>, s: (&str, u16, u16)) {
    v.extend(uuid_le(s.0));
    v.extend(s.1.to_le_bytes());
    v.extend(s.2.to_le_bytes());
}

/// A whole PDU, little-endian ASCII IEEE (drep 10 00 00 00): version 5.0, type, first+last
/// fragment flags (and `extra_flags`), frag_length, auth_length, call_id, then the body. With an
/// authentication verifier the body is padded to 16 and the sec_trailer (type, level, pad length,
/// reserved, context id) and the verifier follow.
fn co_pdu(ptype: u8, extra_flags: u8, call_id: u32, body: &[u8], auth: Option<&[u8]>) -> Vec<u8> {
    let mut v = vec![
        5,
        0,
        ptype,
        dcerpc::PFC_FIRST_FRAG | dcerpc::PFC_LAST_FRAG | extra_flags,
    ];
    v.extend([0x10, 0, 0, 0]);
    v.extend([0; 4]); // frag_length and auth_length, set below
    v.extend(call_id.to_le_bytes());
    v.extend(body);
    if let Some(verifier) = auth {
        let pad = (16 - v.len() % 16) % 16;
        v.extend(std::iter::repeat_n(0u8, pad));
        v.extend([10, 6, pad as u8, 0]); // NTLMSSP, packet privacy
        v.extend(0u32.to_le_bytes());
        v.extend(verifier);
        v[10..12].copy_from_slice(&(verifier.len() as u16).to_le_bytes());
    }
    let len = v.len() as u16;
    v[8..10].copy_from_slice(&len.to_le_bytes());
    v
}

/// bind: max_xmit_frag, max_recv_frag, assoc_group_id, n_context_elem (+3 reserved), then per
/// context: p_cont_id, n_transfer_syn (+1 reserved), the abstract syntax, the transfer syntaxes.
/// As Windows clients send it: the interface offered with NDR, NDR64 and bind-time features.
fn bind(call_id: u32, iface: (&str, u16, u16), contexts: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(5840u16.to_le_bytes());
    b.extend(5840u16.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend([contexts as u8, 0, 0, 0]);
    for (id, transfer) in [NDR, NDR64, BIND_TIME_FEATURES]
        .into_iter()
        .take(contexts)
        .enumerate()
    {
        b.extend((id as u16).to_le_bytes());
        b.extend([1, 0]);
        syntax(&mut b, iface);
        syntax(&mut b, transfer);
    }
    co_pdu(dcerpc::BIND, 0, call_id, &b, None)
}

/// bind_ack: max_xmit_frag, max_recv_frag, assoc_group_id, the secondary address (length and
/// NUL-terminated port string), alignment to 4, n_results (+3 reserved), then per context: result,
/// reason, transfer syntax. NDR accepted, NDR64 refused, bind-time features acknowledged.
fn bind_ack(call_id: u32, sec_addr: &str, contexts: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(5840u16.to_le_bytes());
    b.extend(5840u16.to_le_bytes());
    b.extend(0x0001_2345u32.to_le_bytes());
    b.extend((sec_addr.len() as u16 + 1).to_le_bytes());
    b.extend(sec_addr.as_bytes());
    b.push(0);
    while (dcerpc::CO_HEADER + b.len()) % 4 != 0 {
        b.push(0);
    }
    b.extend([contexts as u8, 0, 0, 0]);
    for (result, reason, transfer) in [(0u16, 0u16, NDR), (2, 2, NIL), (3, 3, NIL)]
        .into_iter()
        .take(contexts)
    {
        b.extend(result.to_le_bytes());
        b.extend(reason.to_le_bytes());
        syntax(&mut b, transfer);
    }
    co_pdu(dcerpc::BIND_ACK, 0, call_id, &b, None)
}

/// request: alloc_hint, p_cont_id, opnum, the object UUID when PFC_OBJECT_UUID, the stub.
fn request(call_id: u32, opnum: u16, object: bool, stub: &[u8], auth: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((stub.len() as u32).to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend(opnum.to_le_bytes());
    let mut flags = 0;
    if object {
        b.extend(uuid_le("6bffd098-a112-3610-9833-46c3f87e345a"));
        flags = dcerpc::PFC_OBJECT_UUID;
    }
    b.extend(stub);
    co_pdu(dcerpc::REQUEST, flags, call_id, &b, auth)
}

/// response: alloc_hint, p_cont_id, cancel_count (+1 reserved), the stub.
fn response(call_id: u32, stub: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((stub.len() as u32).to_le_bytes());
    b.extend([0, 0, 0, 0]);
    b.extend(stub);
    co_pdu(dcerpc::RESPONSE, 0, call_id, &b, None)
}

/// A protocol tower (C706 appendix L), little-endian whatever the NDR order: floor count, then
/// per floor the left-hand side (protocol id and data) and right-hand side, each with a u16
/// length: interface UUID+major / minor, transfer syntax, ncacn (0x0b), TCP port (0x07, big
/// endian), IPv4 address (0x09).
fn tower(iface: (&str, u16, u16), port: u16, ip: [u8; 4]) -> Vec<u8> {
    let mut t = 5u16.to_le_bytes().to_vec();
    for s in [iface, NDR] {
        t.extend(19u16.to_le_bytes());
        t.push(0x0d);
        t.extend(uuid_le(s.0));
        t.extend(s.1.to_le_bytes());
        t.extend(2u16.to_le_bytes());
        t.extend(s.2.to_le_bytes());
    }
    for (lhs, rhs) in [
        (0x0b, vec![0, 0]),
        (0x07, port.to_be_bytes().to_vec()),
        (0x09, ip.to_vec()),
    ] {
        t.extend([1, 0, lhs]);
        t.extend((rhs.len() as u16).to_le_bytes());
        t.extend(rhs);
    }
    t
}

/// twr_t in NDR: max_count, tower_length, the octets, aligned for what follows.
fn twr(v: &mut Vec<u8>, t: &[u8]) {
    v.extend((t.len() as u32).to_le_bytes());
    v.extend((t.len() as u32).to_le_bytes());
    v.extend(t);
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

/// ept_map's request stub: object (unique pointer, UUID), map_tower (unique pointer, twr_t),
/// entry_handle (20-byte context handle), max_towers.
fn ept_map_request(iface: (&str, u16, u16)) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(1u32.to_le_bytes());
    s.extend([0; 16]);
    s.extend(2u32.to_le_bytes());
    twr(&mut s, &tower(iface, 135, [0, 0, 0, 0]));
    s.extend([0; 20]);
    s.extend(4u32.to_le_bytes());
    s
}

/// ept_map's response stub: entry_handle, num_towers, the towers as a conformant varying array
/// of unique pointers (max_count, offset, actual_count, referents, then each twr_t), status.
fn ept_map_response(iface: (&str, u16, u16), ports: &[u16], ip: [u8; 4]) -> Vec<u8> {
    let mut s = vec![0; 20];
    let n = ports.len() as u32;
    for x in [n, 4, 0, n] {
        s.extend(x.to_le_bytes());
    }
    for i in 0..n {
        s.extend((3 + i).to_le_bytes());
    }
    for &p in ports {
        twr(&mut s, &tower(iface, p, ip));
    }
    s.extend(0u32.to_le_bytes());
    s
}

// ---------------------------------------------------------------------------------------------
// TLS hellos (RFC 8446, RFC 5246, RFC 6066, RFC 7301)

fn vec8(v: &mut Vec<u8>, b: &[u8]) {
    v.push(b.len() as u8);
    v.extend(b);
}

fn vec16(v: &mut Vec<u8>, b: &[u8]) {
    v.extend((b.len() as u16).to_be_bytes());
    v.extend(b);
}

fn ext(v: &mut Vec<u8>, t: u16, d: &[u8]) {
    v.extend(t.to_be_bytes());
    vec16(v, d);
}

fn alpn(protocols: &[&str]) -> Vec<u8> {
    let mut l = Vec::new();
    for p in protocols {
        vec8(&mut l, p.as_bytes());
    }
    let mut d = Vec::new();
    vec16(&mut d, &l);
    d
}

/// A handshake message (type, u24 length, body) in one handshake record (22, version, length).
fn tls_record(record_version: u16, hs_type: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![hs_type];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![tls::CONTENT_HANDSHAKE];
    rec.extend(record_version.to_be_bytes());
    vec16(&mut rec, &hs);
    rec
}

/// A ClientHello: legacy_version, random, session id, cipher suites, compression methods, then the
/// extensions. `modern` is a TLS 1.3 browser (GREASE, SNI, groups, ALPN, signature algorithms,
/// key_share, supported_versions, padding to 512 bytes); otherwise a TLS 1.2-only client.
fn client_hello(r: &mut Rng, sni: &str, modern: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend((0..32).map(|_| r.next() as u8));
    let sid: Vec<u8> = (0..32).map(|_| r.next() as u8).collect();
    vec8(&mut b, if modern { &sid } else { &[] });
    let suites: &[u16] = if modern {
        &[
            0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ]
    } else {
        &[
            0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009e, 0x009f, 0xc013, 0xc014,
        ]
    };
    let s: Vec<u8> = suites.iter().flat_map(|x| x.to_be_bytes()).collect();
    vec16(&mut b, &s);
    vec8(&mut b, &[0]);
    let mut e = Vec::new();
    if modern {
        ext(&mut e, 0x1a1a, &[]); // GREASE
    }
    let mut name = vec![0];
    vec16(&mut name, sni.as_bytes());
    let mut list = Vec::new();
    vec16(&mut list, &name);
    ext(&mut e, 0, &list); // server_name
    ext(&mut e, 23, &[]); // extended_master_secret
    ext(&mut e, 0xff01, &[0]); // renegotiation_info
    ext(&mut e, 10, &[0, 8, 0x2a, 0x2a, 0, 0x1d, 0, 0x17, 0, 0x18]); // supported_groups
    ext(&mut e, 11, &[1, 0]); // ec_point_formats
    ext(&mut e, 35, &[]); // session_ticket
    ext(&mut e, 16, &alpn(&["h2", "http/1.1"]));
    ext(&mut e, 5, &[1, 0, 0, 0, 0]); // status_request
    let algs: Vec<u8> = [
        0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]
    .iter()
    .flat_map(|x| x.to_be_bytes())
    .collect();
    let mut sa = Vec::new();
    vec16(&mut sa, &algs);
    ext(&mut e, 13, &sa); // signature_algorithms
    if modern {
        ext(&mut e, 18, &[]); // signed_certificate_timestamp
        let mut ks = vec![0x2a, 0x2a, 0, 1, 0, 0, 0x1d, 0, 32];
        ks.extend((0..32).map(|_| r.next() as u8));
        let mut d = Vec::new();
        vec16(&mut d, &ks);
        ext(&mut e, 51, &d); // key_share: GREASE, x25519
        ext(&mut e, 45, &[1, 1]); // psk_key_exchange_modes
        ext(&mut e, 43, &[6, 0x6a, 0x6a, 3, 4, 3, 3]); // supported_versions
        ext(&mut e, 27, &[2, 0, 2]); // compress_certificate
        ext(&mut e, 0x3a3a, &[0]); // GREASE
        let used = b.len() + 2 + e.len() + 4;
        let pad = 508usize.saturating_sub(used + 4);
        ext(&mut e, 21, &vec![0; pad]); // padding
    }
    vec16(&mut b, &e);
    tls_record(0x0301, tls::CLIENT_HELLO, &b)
}

/// A ServerHello: legacy_version, random, the echoed session id, cipher, compression, then
/// extensions: TLS 1.3 (supported_versions, key_share) or TLS 1.2 (renegotiation_info,
/// extended_master_secret, ec_point_formats, ALPN).
fn server_hello(r: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend((0..32).map(|_| r.next() as u8));
    let sid: Vec<u8> = (0..32).map(|_| r.next() as u8).collect();
    vec8(&mut b, &sid);
    b.extend(if tls13 { [0x13, 0x01] } else { [0xc0, 0x2f] });
    b.push(0);
    let mut e = Vec::new();
    if tls13 {
        ext(&mut e, 43, &[3, 4]);
        let mut ks = vec![0, 0x1d, 0, 32];
        ks.extend((0..32).map(|_| r.next() as u8));
        ext(&mut e, 51, &ks);
    } else {
        ext(&mut e, 0xff01, &[0]);
        ext(&mut e, 23, &[]);
        ext(&mut e, 11, &[1, 0]);
        ext(&mut e, 16, &alpn(&["h2"]));
    }
    vec16(&mut b, &e);
    tls_record(0x0303, tls::SERVER_HELLO, &b)
}

// ---------------------------------------------------------------------------------------------
// Synthetic traffic: flows of several kinds, interleaved in time

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DecoderKind {
    /// TCP request/response with content-free payload (ssh, http, databases).
    Bulk,
    /// TCP to 443: handshake, ClientHello, ServerHello, then ciphertext-like bulk.
    Tls,
    /// UDP query and answer to port 53.
    Dns,
    /// UDP portmap GETPORT call and reply to port 111.
    Portmap,
    /// TCP to 135: EPM bind, bind_ack, ept_map request and response.
    Epm,
}

#[derive(Clone, Copy)]
struct FlowSpec {
    client: Addr,
    server: Addr,
    cport: u16,
    sport: u16,
    proto: u8,
    vlan: Option<u16>,
    kind: DecoderKind,
}

/// A payload: none, content-free bytes, or one of the protocol messages of `Msgs`.
#[derive(Clone, Copy)]
enum Body {
    Empty,
    Filler(u16),
    Msg(u8),
}

#[derive(Clone, Copy)]
struct Pkt {
    ts: i64,
    flow: u32,
    c2s: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    body: Body,
}

/// The protocol messages the synthetic flows carry.
struct Msgs(Vec<Vec<u8>>);

const M_CLIENT_HELLO: u8 = 0;
const M_CLIENT_HELLO_12: u8 = 1;
const M_SERVER_HELLO: u8 = 2;
const M_SERVER_HELLO_12: u8 = 3;
const M_GETPORT_CALL: u8 = 4;
const M_GETPORT_REPLY: u8 = 5;
const M_BIND: u8 = 6;
const M_BIND_ACK: u8 = 7;
const M_MAP_REQUEST: u8 = 8;
const M_MAP_RESPONSE: u8 = 9;

impl Msgs {
    fn new() -> Self {
        let mut r = Rng(7);
        let mut port = Vec::new();
        xdr_u32(&mut port, 2049);
        Msgs(vec![
            client_hello(&mut r, "portal.corp.example.com", true),
            client_hello(&mut r, "backup.corp.example.com", false),
            server_hello(&mut r, true),
            server_hello(&mut r, false),
            getport_call(0x1234_5678, 100_003, 3, 6),
            rpc_reply(0x1234_5678, &port),
            bind(2, EPM_IF, 3),
            bind_ack(2, "135", 3),
            request(3, epm::OP_MAP, false, &ept_map_request(INTERFACES[2]), None),
            response(3, &ept_map_response(INTERFACES[2], &[49676, 49667], [0; 4])),
        ])
    }

    fn len(&self, b: Body) -> usize {
        match b {
            Body::Empty => 0,
            Body::Filler(n) => usize::from(n),
            Body::Msg(i) => self.0[usize::from(i)].len(),
        }
    }
}

/// Writes one flow's packets: each direction's sequence numbers advance by what it sends, and
/// the clock by half a round trip per packet.
struct Script<'a> {
    out: &'a mut Vec<Pkt>,
    msgs: &'a Msgs,
    flow: u32,
    ts: i64,
    half_rtt: i64,
    seq: [u32; 2],
}

impl Script<'_> {
    fn send(&mut self, c2s: bool, flags: u8, body: Body) {
        let d = usize::from(!c2s);
        self.out.push(Pkt {
            ts: self.ts,
            flow: self.flow,
            c2s,
            flags,
            seq: self.seq[d],
            ack: self.seq[1 - d],
            body,
        });
        let len = self.msgs.len(body) as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.seq[d] = self.seq[d].wrapping_add(len);
        self.ts += self.half_rtt;
    }

    fn open(&mut self) {
        self.send(true, SYN, Body::Empty);
        self.send(false, SYN | ACK, Body::Empty);
        self.send(true, ACK, Body::Empty);
    }

    fn close(&mut self) {
        self.send(true, FIN | ACK, Body::Empty);
        self.send(false, FIN | ACK, Body::Empty);
        self.send(true, ACK, Body::Empty);
    }

    /// Requests of a few hundred bytes, each answered by up to nine segments, every second
    /// one acknowledged.
    fn exchanges(&mut self, r: &mut Rng, rounds: u64) {
        for _ in 0..rounds {
            self.send(true, PSH | ACK, Body::Filler(r.range(60, 600) as u16));
            let segments = r.range(0, 9);
            for i in 0..segments {
                let n = if i + 1 == segments {
                    r.range(100, MSS as u64 + 1)
                } else {
                    MSS as u64
                };
                self.send(false, PSH | ACK, Body::Filler(n as u16));
                if i % 2 == 1 {
                    self.send(true, ACK, Body::Empty);
                }
            }
        }
    }

    fn run(&mut self, r: &mut Rng, kind: DecoderKind) {
        match kind {
            DecoderKind::Bulk => {
                self.open();
                let rounds = r.range(1, 5);
                self.exchanges(r, rounds);
                self.close();
            }
            DecoderKind::Tls => {
                self.open();
                let modern = r.percent(80);
                let (ch, sh) = if modern {
                    (M_CLIENT_HELLO, M_SERVER_HELLO)
                } else {
                    (M_CLIENT_HELLO_12, M_SERVER_HELLO_12)
                };
                self.send(true, PSH | ACK, Body::Msg(ch));
                self.send(false, PSH | ACK, Body::Msg(sh));
                self.send(false, PSH | ACK, Body::Filler(MSS as u16));
                self.send(true, ACK, Body::Empty);
                let rounds = r.range(1, 4);
                self.exchanges(r, rounds);
                self.close();
            }
            DecoderKind::Epm => {
                self.open();
                self.send(true, PSH | ACK, Body::Msg(M_BIND));
                self.send(false, PSH | ACK, Body::Msg(M_BIND_ACK));
                self.send(true, PSH | ACK, Body::Msg(M_MAP_REQUEST));
                self.send(false, PSH | ACK, Body::Msg(M_MAP_RESPONSE));
                self.close();
            }
            DecoderKind::Dns => {
                self.send(true, 0, Body::Filler(r.range(28, 64) as u16));
                self.send(false, 0, Body::Filler(r.range(60, 320) as u16));
            }
            DecoderKind::Portmap => {
                self.send(true, 0, Body::Msg(M_GETPORT_CALL));
                self.send(false, 0, Body::Msg(M_GETPORT_REPLY));
            }
        }
    }
}

struct Traffic {
    msgs: Msgs,
    flows: Vec<FlowSpec>,
    /// All packets of all flows, in time order.
    pkts: Vec<Pkt>,
}

impl Traffic {
    /// `n` flows from 2000 clients to 300 servers: about half bulk TCP, a quarter TLS, DNS,
    /// portmap and EPM; one in seven over IPv6, one in five VLAN-tagged. A new flow starts every
    /// 20 µs and lives a few round trips of 0.2 to 20 ms, so a few thousand are active at once.
    fn new(n: u32, seed: u64) -> Self {
        let mut r = Rng(seed);
        let msgs = Msgs::new();
        let mut flows = Vec::with_capacity(n as usize);
        let mut pkts = Vec::new();
        for i in 0..n {
            let kind = match r.range(0, 100) {
                0..52 => DecoderKind::Bulk,
                52..77 => DecoderKind::Tls,
                77..89 => DecoderKind::Dns,
                89..95 => DecoderKind::Portmap,
                _ => DecoderKind::Epm,
            };
            let v6 = matches!(
                kind,
                DecoderKind::Bulk | DecoderKind::Tls | DecoderKind::Dns
            ) && r.percent(15);
            let (c, s) = (i % 2000, r.range(0, 300) as u32);
            let addr = |net: u8, h: u32| {
                if v6 {
                    let mut b = [0u8; 16];
                    b[..2].copy_from_slice(&[0xfd, 0x00]);
                    b[7] = net;
                    b[14..].copy_from_slice(&(h as u16).to_be_bytes());
                    Addr::v6(b)
                } else {
                    Addr::v4([10, net, (h >> 8) as u8, h as u8 + 1])
                }
            };
            let sport = match kind {
                DecoderKind::Bulk => [22, 80, 3306, 5432, 8080, 6379][r.range(0, 6) as usize],
                DecoderKind::Tls => 443,
                DecoderKind::Dns => 53,
                DecoderKind::Portmap => 111,
                DecoderKind::Epm => 135,
            };
            flows.push(FlowSpec {
                client: addr(2, c),
                server: addr(1, s),
                cport: 32768 + (i / 2000) as u16,
                sport,
                proto: if matches!(kind, DecoderKind::Dns | DecoderKind::Portmap) {
                    IPPROTO_UDP
                } else {
                    IPPROTO_TCP
                },
                vlan: r.percent(20).then_some(100 + (s % 4) as u16),
                kind,
            });
            let mut script = Script {
                out: &mut pkts,
                msgs: &msgs,
                flow: i,
                ts: 1_700_000_000_000_000_000 + i64::from(i) * 20_000,
                half_rtt: r.range(100_000, 10_000_000) as i64,
                seq: [r.next() as u32, r.next() as u32],
            };
            script.run(&mut r, kind);
        }
        pkts.sort_by_key(|p| p.ts);
        Traffic { msgs, flows, pkts }
    }

    fn count(&self, kind: DecoderKind) -> usize {
        self.flows.iter().filter(|f| f.kind == kind).count()
    }

    fn ends(&self, p: &Pkt) -> (&FlowSpec, Addr, Addr, u16, u16) {
        let f = &self.flows[p.flow as usize];
        if p.c2s {
            (f, f.client, f.server, f.cport, f.sport)
        } else {
            (f, f.server, f.client, f.sport, f.cport)
        }
    }

    fn frame_len(&self, p: &Pkt) -> usize {
        let f = &self.flows[p.flow as usize];
        ETH + if f.vlan.is_some() { VLAN_TAG } else { 0 }
            + if f.client.v6 {
                IPV6_HEADER
            } else {
                IPV4_HEADER
            }
            + if f.proto == IPPROTO_TCP {
                TCP_HEADER
            } else {
                UDP_HEADER
            }
            + self.msgs.len(p.body)
    }

    fn frame(&self, p: &Pkt, n: usize) -> Vec<u8> {
        let (f, src, dst, sport, dport) = self.ends(p);
        let body: Vec<u8> = match p.body {
            Body::Empty => Vec::new(),
            Body::Filler(n) => filler(usize::from(n)).collect(),
            Body::Msg(i) => self.msgs.0[usize::from(i)].clone(),
        };
        let options = tcp_timestamps((p.ts / 1_000_000) as u32);
        let l4 = if f.proto == IPPROTO_TCP {
            L4::Tcp(TcpRepr {
                options: &options,
                ..TcpRepr::new(sport, dport, p.seq, p.ack, p.flags)
            })
        } else {
            L4::Udp(UdpRepr { sport, dport })
        };
        let vlans = f.vlan.as_slice();
        let v = ethernet_frame(&eth(vlans), ip_repr(&src, &dst, n as u16), &l4, &body);
        debug_assert_eq!(v.len(), self.frame_len(p));
        v
    }

    fn frames(&self) -> Vec<(i64, Vec<u8>)> {
        self.pkts
            .iter()
            .enumerate()
            .map(|(n, p)| (p.ts, self.frame(p, n)))
            .collect()
    }

    fn metas(&self) -> Vec<PacketMeta> {
        self.pkts
            .iter()
            .map(|p| {
                let (f, src, dst, sport, dport) = self.ends(p);
                PacketMeta {
                    ts: p.ts,
                    first_ts: p.ts,
                    frames: 1,
                    frame_bytes: self.frame_len(p) as u64,
                    src,
                    dst,
                    sport,
                    dport,
                    proto: f.proto,
                    vlan: f.vlan,
                    tunnel: Tunnel::NONE,
                    tcp_flags: p.flags,
                    payload_len: self.msgs.len(p.body) as u32,
                    capture: 0,
                }
            })
            .collect()
    }
}

/// The capture the walks, the header parsers and the whole pipeline read.
struct Capture {
    traffic: Traffic,
    pcap: Arc<[u8]>,
    pcapng: Arc<[u8]>,
    /// Where each frame lies in `pcap`.
    frames: Vec<Range<usize>>,
    frame_bytes: u64,
}

const CAPTURE_FLOWS: u32 = 3000;

fn capture() -> &'static Capture {
    static C: OnceLock<Capture> = OnceLock::new();
    C.get_or_init(|| {
        let traffic = Traffic::new(CAPTURE_FLOWS, 1);
        let frames = traffic.frames();
        let (pcap, at) = pcap_file(&frames);
        let pcapng = pcapng_file(&frames);
        let frame_bytes = frames.iter().map(|f| f.1.len() as u64).sum();
        eprintln!(
            "capture: {} flows, {} packets, {:.1} MB of frames; pcap {:.1} MB, pcapng {:.1} MB",
            traffic.flows.len(),
            frames.len(),
            frame_bytes as f64 / 1e6,
            pcap.len() as f64 / 1e6,
            pcapng.len() as f64 / 1e6,
        );
        Capture {
            traffic,
            pcap: pcap.into(),
            pcapng: pcapng.into(),
            frames: at,
            frame_bytes,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The groups

fn pcap_walk(c: &mut Criterion) {
    let cap = capture();
    let mut an = Anomalies::default();
    assert_eq!(
        walk(&cap.pcap, &mut an),
        (cap.frames.len() as u64, cap.frame_bytes)
    );
    assert_eq!(an.total(), 0);
    let mut g = heavy(c, "pcap_walk");
    g.throughput(Throughput::Bytes(cap.pcap.len() as u64));
    g.bench_function("records", |b| {
        b.iter(|| {
            let mut an = Anomalies::default();
            walk(black_box(&cap.pcap), &mut an)
        })
    });
    g.finish();
}

fn pcapng_walk(c: &mut Criterion) {
    let cap = capture();
    let mut an = Anomalies::default();
    assert_eq!(
        walk(&cap.pcapng, &mut an),
        (cap.frames.len() as u64, cap.frame_bytes)
    );
    assert_eq!(an.total(), 0);
    let mut g = heavy(c, "pcapng_walk");
    g.throughput(Throughput::Bytes(cap.pcapng.len() as u64));
    g.bench_function("blocks", |b| {
        b.iter(|| {
            let mut an = Anomalies::default();
            walk(black_box(&cap.pcapng), &mut an)
        })
    });
    g.finish();
}

/// Ethernet (and 802.1Q) to IPv4 or IPv6 to TCP or UDP, as the decoder does for each record;
/// returns (TCP, UDP) packets and a sum over the fields read.
fn l2_l4(bytes: &[u8], frames: &[Range<usize>]) -> (u32, u32, u64) {
    let (mut tcps, mut udps, mut sum) = (0, 0, 0u64);
    for r in frames {
        let Some(frame) = bytes.get(r.clone()) else {
            continue;
        };
        let Ok(Link::L3(l3)) = linktype::network_layer(linktype::ETHERNET, frame) else {
            continue;
        };
        let ip = match l3.ethertype {
            ETHERTYPE_IPV4 => ipv4::parse(l3.data),
            ETHERTYPE_IPV6 => ipv6::parse(l3.data),
            _ => continue,
        };
        let Ok(ip) = ip else { continue };
        match ip.proto {
            IPPROTO_TCP => {
                if let Ok(t) = tcp::parse(ip.payload, ip.payload_len) {
                    tcps += 1;
                    sum +=
                        u64::from(t.sport ^ t.dport) + u64::from(t.flags) + t.payload.len() as u64;
                }
            }
            IPPROTO_UDP => {
                if let Ok(u) = udp::parse(ip.payload, ip.payload_len) {
                    udps += 1;
                    sum += u64::from(u.sport ^ u.dport) + u.payload.len() as u64;
                }
            }
            _ => {}
        }
    }
    (tcps, udps, sum)
}

fn l2_l4_group(c: &mut Criterion) {
    let cap = capture();
    let (tcps, udps, _) = l2_l4(&cap.pcap, &cap.frames);
    let want_udp = cap
        .traffic
        .pkts
        .iter()
        .filter(|p| cap.traffic.flows[p.flow as usize].proto == IPPROTO_UDP)
        .count();
    assert_eq!(
        (tcps as usize + udps as usize, udps as usize),
        (cap.frames.len(), want_udp)
    );
    let mut g = heavy(c, "l2_l4");
    g.throughput(Throughput::Bytes(cap.frame_bytes));
    g.bench_function("eth_vlan_ip_tcp_udp", |b| {
        b.iter(|| l2_l4(black_box(&cap.pcap), &cap.frames))
    });
    g.finish();
}

/// ~50k flows, many packets each, interleaved: a fresh table takes every packet, creating each
/// flow at its first and accounting the rest.
fn flow_table(c: &mut Criterion) {
    let traffic = Traffic::new(50_000, 2);
    let metas = traffic.metas();
    let bytes: u64 = metas.iter().map(|m| m.frame_bytes).sum();
    eprintln!(
        "flow_table: {} flows, {} packets, {:.1} MB of frames",
        traffic.flows.len(),
        metas.len(),
        bytes as f64 / 1e6
    );
    let update_all = |metas: &[PacketMeta]| {
        let mut t = FlowTable::<StreamState>::new(FlowLimits::default());
        let mut c2s = 0usize;
        for p in metas {
            c2s += usize::from(t.update_at(p, 0).c2s);
        }
        (t.live(), c2s)
    };
    assert_eq!(update_all(&metas).0, traffic.flows.len());
    let mut g = heavy(c, "flow_table");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("update_50k_flows", |b| {
        b.iter(|| update_all(black_box(&metas)))
    });
    g.finish();
}

fn oncrpc_group(c: &mut Criterion) {
    let mut r = Rng(3);
    // NFSv3 calls (AUTH_UNIX) and replies, alternating.
    let messages: Vec<Vec<u8>> = (0..8000u32)
        .map(|i| {
            if i % 2 == 0 {
                nfs_call(&mut r, i)
            } else {
                nfs_reply(&mut r, i - 1)
            }
        })
        .collect();
    // GETPORT calls and their replies.
    let getports: Vec<(Vec<u8>, Vec<u8>)> = (0..4000u32)
        .map(|i| {
            let (prog, vers, port) = RPC_PROGRAMS[i as usize % RPC_PROGRAMS.len()];
            let prot = if i % 3 == 0 { 17 } else { 6 };
            let mut res = Vec::new();
            xdr_u32(&mut res, u32::from(port));
            (getport_call(i, prog, vers, prot), rpc_reply(i, &res))
        })
        .collect();
    // DUMP replies listing 8 to 60 registrations.
    let dumps: Vec<Vec<u8>> = (0..500u32)
        .map(|i| {
            let n = r.range(8, 61) as usize;
            let entries: Vec<_> = (0..n)
                .map(|k| {
                    let (prog, vers, port) = RPC_PROGRAMS[k % RPC_PROGRAMS.len()];
                    (
                        prog,
                        vers - (k / 12) as u32 % vers,
                        [6, 17][k % 2],
                        u32::from(port),
                    )
                })
                .collect();
            dump_reply(i, &entries)
        })
        .collect();
    // The calls and replies as one TCP stream, record-marked, in MSS-sized segments.
    let stream: Vec<u8> = messages.iter().flat_map(|m| record_mark(m)).collect();

    let parse_all = |ms: &[Vec<u8>]| {
        let mut sum = 0u64;
        for m in ms {
            match oncrpc::parse(m) {
                Some(Message::Call(c)) => {
                    sum += u64::from(c.header.program ^ c.header.uid.unwrap_or(0))
                        + c.header.machine.map_or(0, |s| s.len() as u64)
                        + c.args.len() as u64
                }
                Some(Message::Reply(r)) => sum += u64::from(r.xid) + r.results.len() as u64,
                None => {}
            }
        }
        sum
    };
    let getport_all = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        let mut ports = 0u64;
        for (call, reply) in pairs {
            let Some(Message::Call(c)) = oncrpc::parse(call) else {
                continue;
            };
            let q = portmap::parse_call(c.header.version, c.header.procedure, c.args);
            let Some(Message::Reply(r)) = oncrpc::parse(reply) else {
                continue;
            };
            for f in portmap::parse_reply(PMAP_V2, PMAPPROC_GETPORT, &q, r.results, "udp") {
                ports += u64::from(f.port.unwrap_or(0));
            }
        }
        ports
    };
    let dump_all = |replies: &[Vec<u8>]| {
        let mut facts = 0usize;
        for m in replies {
            if let Some(Message::Reply(r)) = oncrpc::parse(m) {
                facts +=
                    portmap::parse_reply(PMAP_V2, PMAPPROC_DUMP, &Query::None, r.results, "tcp")
                        .len();
            }
        }
        facts
    };
    let records_all = |stream: &[u8]| {
        let mut rm = RecordMarking::default();
        let (mut records, mut parsed) = (0usize, 0usize);
        for seg in stream.chunks(MSS) {
            rm.feed(seg, &mut |e| {
                if let RecordEvent::Record(rec, _) = e {
                    records += 1;
                    parsed += usize::from(oncrpc::parse(rec).is_some());
                }
            });
        }
        (records, parsed)
    };
    assert!(messages.iter().all(|m| oncrpc::parse(m).is_some()));
    let want_ports: u64 = getports
        .iter()
        .enumerate()
        .map(|(i, _)| u64::from(RPC_PROGRAMS[i % RPC_PROGRAMS.len()].2))
        .sum();
    assert_eq!(getport_all(&getports), want_ports);
    assert!(dump_all(&dumps) >= 8 * dumps.len());
    assert_eq!(records_all(&stream), (messages.len(), messages.len()));

    let mut g = c.benchmark_group("oncrpc");
    g.throughput(Throughput::Bytes(bytes_of(&messages)));
    g.bench_function("nfs_calls_replies", |b| {
        b.iter(|| parse_all(black_box(&messages)))
    });
    g.throughput(Throughput::Bytes(
        getports
            .iter()
            .map(|(a, b)| (a.len() + b.len()) as u64)
            .sum(),
    ));
    g.bench_function("portmap_getport", |b| {
        b.iter(|| getport_all(black_box(&getports)))
    });
    g.throughput(Throughput::Bytes(bytes_of(&dumps)));
    g.bench_function("portmap_dump", |b| b.iter(|| dump_all(black_box(&dumps))));
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("tcp_record_marking", |b| {
        b.iter(|| records_all(black_box(&stream)))
    });
    g.finish();
}

fn dcerpc_epm(c: &mut Criterion) {
    let mut r = Rng(4);
    let binds: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| {
            let iface = INTERFACES[r.range(0, INTERFACES.len() as u64) as usize];
            bind(i, iface, r.range(1, 4) as usize)
        })
        .collect();
    let verifier = [0x5a; 16]; // NTLMSSP_MESSAGE_SIGNATURE
    let requests: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| {
            let stub: Vec<u8> = filler(r.range(24, 1400) as usize).collect();
            let auth = r.percent(30).then_some(&verifier[..]);
            request(i, r.range(0, 60) as u16, r.percent(10), &stub, auth)
        })
        .collect();
    let maps: Vec<(Vec<u8>, Vec<u8>)> = (0..1000u32)
        .map(|i| {
            let iface = INTERFACES[i as usize % 5];
            let ports: Vec<u16> = (0..r.range(1, 5))
                .map(|_| r.range(49152, 65536) as u16)
                .collect();
            (
                request(i, epm::OP_MAP, false, &ept_map_request(iface), None),
                response(i, &ept_map_response(iface, &ports, [192, 168, 7, 20])),
            )
        })
        .collect();

    let bind_all = |pdus: &[Vec<u8>]| {
        let mut n = 0usize;
        for p in pdus {
            if let Ok((_, _, Pdu::Bind { contexts }, _)) = dcerpc::parse_co(p) {
                n += contexts.iter().map(|c| 1 + c.transfer.len()).sum::<usize>();
            }
        }
        n
    };
    let request_all = |pdus: &[Vec<u8>]| {
        let mut n = 0u64;
        for p in pdus {
            if let Ok((h, _, Pdu::Request { opnum, stub, .. }, _)) = dcerpc::parse_co(p) {
                n += u64::from(h.call_id ^ u32::from(opnum)) + stub.len() as u64;
            }
        }
        n
    };
    let map_all = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        let mut ports = 0u64;
        for (q, a) in pairs {
            if let Ok((h, _, Pdu::Request { stub, .. }, _)) = dcerpc::parse_co(q) {
                if let Some(m) = epm::parse_map_request(stub, Encoding::ndr(h.le)) {
                    ports += u64::from(m.max_towers);
                }
            }
            if let Ok((h, _, Pdu::Response { stub, .. }, _)) = dcerpc::parse_co(a) {
                if let Some(m) = epm::parse_map_response(stub, Encoding::ndr(h.le)) {
                    for t in &m.towers {
                        ports += u64::from(t.ip_endpoint().map_or(0, |e| e.port));
                    }
                }
            }
        }
        ports
    };
    let want_contexts: usize = binds.iter().map(|b| usize::from(b[24]) * 2).sum();
    assert_eq!(bind_all(&binds), want_contexts);
    assert!(requests.iter().all(|p| dcerpc::parse_co(p).is_ok()));
    assert!(map_all(&maps) > 49152 * maps.len() as u64);

    let mut g = c.benchmark_group("dcerpc_epm");
    g.throughput(Throughput::Bytes(bytes_of(&binds)));
    g.bench_function("bind", |b| b.iter(|| bind_all(black_box(&binds))));
    g.throughput(Throughput::Bytes(bytes_of(&requests)));
    g.bench_function("request", |b| b.iter(|| request_all(black_box(&requests))));
    g.throughput(Throughput::Bytes(
        maps.iter().map(|(a, b)| (a.len() + b.len()) as u64).sum(),
    ));
    g.bench_function("ept_map_towers", |b| b.iter(|| map_all(black_box(&maps))));
    g.finish();
}

fn tls_group(c: &mut Criterion) {
    let mut r = Rng(5);
    let hosts = ["portal", "backup", "vcenter", "idrac-03", "grafana", "git"];
    let clients: Vec<Vec<u8>> = (0..2000usize)
        .map(|i| {
            let sni = format!("{}.site{}.corp.example.com", hosts[i % hosts.len()], i % 37);
            let modern = r.percent(75);
            client_hello(&mut r, &sni, modern)
        })
        .collect();
    let servers: Vec<Vec<u8>> = (0..4000)
        .map(|_| {
            let tls13 = r.percent(75);
            server_hello(&mut r, tls13)
        })
        .collect();
    // The same hellos as a client split them over two handshake records (joined before parsing).
    let split: Vec<Vec<u8>> = clients
        .iter()
        .take(500)
        .map(|rec| {
            let hs = &rec[5..];
            let (a, b) = hs.split_at(hs.len() / 2);
            let mut v = Vec::new();
            for part in [a, b] {
                v.extend([tls::CONTENT_HANDSHAKE, 3, 1]);
                vec16(&mut v, part);
            }
            v
        })
        .collect();

    let client_all = |recs: &[Vec<u8>]| {
        let mut n = 0usize;
        for rec in recs {
            let Some((rv, tls::CLIENT_HELLO, body)) = tls::first_message(rec) else {
                continue;
            };
            if let Some(ch) = tls::parse_client_hello(rv, body) {
                n += ch.sni.as_ref().map_or(0, String::len)
                    + ch.alpn.len()
                    + usize::from(ch.max_version());
            }
        }
        n
    };
    let server_all = |recs: &[Vec<u8>]| {
        let mut n = 0usize;
        for rec in recs {
            let Some((_, tls::SERVER_HELLO, body)) = tls::first_message(rec) else {
                continue;
            };
            if let Some(sh) = tls::parse_server_hello(body) {
                n += usize::from(sh.version ^ sh.cipher) + usize::from(sh.alpn.is_some());
            }
        }
        n
    };
    let joined_all = |recs: &[Vec<u8>]| {
        let mut n = 0usize;
        for rec in recs {
            let Some((rv, hs)) = tls::handshake_bytes(rec) else {
                continue;
            };
            if let Some((tls::CLIENT_HELLO, body)) = tls::handshake_message(&hs) {
                n += tls::parse_client_hello(rv, body).map_or(0, |ch| ch.alpn.len());
            }
        }
        n
    };
    for rec in &clients {
        let (rv, _, body) = tls::first_message(rec).expect("one record");
        let ch = tls::parse_client_hello(rv, body).expect("a ClientHello");
        assert!(ch.sni.is_some() && ch.alpn.len() == 2);
    }
    assert!(servers.iter().all(|rec| tls::first_message(rec)
        .and_then(|m| tls::parse_server_hello(m.2))
        .is_some()));
    assert_eq!(joined_all(&split), 2 * split.len());

    let mut g = c.benchmark_group("tls");
    g.throughput(Throughput::Bytes(bytes_of(&clients)));
    g.bench_function("client_hello", |b| {
        b.iter(|| client_all(black_box(&clients)))
    });
    g.throughput(Throughput::Bytes(bytes_of(&servers)));
    g.bench_function("server_hello", |b| {
        b.iter(|| server_all(black_box(&servers)))
    });
    g.throughput(Throughput::Bytes(bytes_of(&split)));
    g.bench_function("client_hello_two_records", |b| {
        b.iter(|| joined_all(black_box(&split)))
    });
    g.finish();
}

/// The whole pipeline on the capture: walk, headers, flow table, TCP reassembly for the flows
/// that matter, the application decoders, and `finish` (flows out, unanswered calls).
fn decode_all(c: &mut Criterion) {
    let cap = capture();
    let decode = |bytes: &Arc<[u8]>| {
        let mut d = Decoder::new(Options::default());
        let mut src = source(bytes);
        d.decode_source(&mut src, "bench").expect("a capture");
        d.finish()
    };
    let out = decode(&cap.pcap);
    let t = &cap.traffic;
    assert_eq!(out.stats.records as usize, cap.frames.len());
    assert_eq!(out.flows.len(), t.flows.len());
    assert_eq!(out.anomalies.total(), 0, "{:?}", out.anomalies.rows.first());
    let found = out.apps.decoded();
    assert_eq!(found.tls.len(), t.count(DecoderKind::Tls));
    assert_eq!(found.rpc_calls.len(), t.count(DecoderKind::Portmap));
    assert!(found.dcerpc_calls.len() >= t.count(DecoderKind::Epm));
    assert!(found.mappings.len() >= t.count(DecoderKind::Epm) + t.count(DecoderKind::Portmap));

    let mut g = heavy(c, "decode_all");
    g.throughput(Throughput::Bytes(cap.pcap.len() as u64));
    g.bench_function("mixed_pcap", |b| {
        b.iter(|| decode(black_box(&cap.pcap)).flows.len())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = pcap_walk, pcapng_walk, l2_l4_group, flow_table, oncrpc_group, dcerpc_epm,
        tls_group, decode_all
}
criterion_main!(benches);
