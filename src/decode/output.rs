//! What a decode ends with: flows, learned mappings, anomalies, counters, per-file facts.

use std::collections::BTreeSet;

use crate::anomaly::{Anomalies, Position};
use crate::app::SessionDecoders;
use crate::flow::Flow;

/// Counters over the whole decode, reported as `stats`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub records: u64,
    pub frame_bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub icmpv6: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    pub unknown_link: u64,
    /// Encapsulation headers opened (GRE, ERSPAN, VXLAN, Geneve, IP in IP).
    pub tunnelled: u64,
    /// Frames whose encapsulation is not decoded (counted by kind in the anomalies).
    pub encap_undecoded: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub reassembled: u64,
    pub fragments_evicted: u64,
    pub fragments_expired: u64,
    pub flows: u64,
    pub flows_evicted: u64,
    pub flows_expired: u64,
    pub flows_split_idle: u64,
    pub flows_split_reuse: u64,
    pub anomalies: u64,
    pub anomalies_dropped: u64,
}

impl Stats {
    /// Adds the counters of another part of the same pass.
    pub fn add(&mut self, o: &Stats) {
        let Stats {
            records,
            frame_bytes,
            ipv4,
            ipv6,
            tcp,
            udp,
            icmp,
            icmpv6,
            other_ip,
            non_ip,
            unknown_link,
            tunnelled,
            encap_undecoded,
            malformed,
            fragments,
            reassembled,
            fragments_evicted,
            fragments_expired,
            flows,
            flows_evicted,
            flows_expired,
            flows_split_idle,
            flows_split_reuse,
            anomalies,
            anomalies_dropped,
        } = o;
        self.records += records;
        self.frame_bytes += frame_bytes;
        self.ipv4 += ipv4;
        self.ipv6 += ipv6;
        self.tcp += tcp;
        self.udp += udp;
        self.icmp += icmp;
        self.icmpv6 += icmpv6;
        self.other_ip += other_ip;
        self.non_ip += non_ip;
        self.unknown_link += unknown_link;
        self.tunnelled += tunnelled;
        self.encap_undecoded += encap_undecoded;
        self.malformed += malformed;
        self.fragments += fragments;
        self.reassembled += reassembled;
        self.fragments_evicted += fragments_evicted;
        self.fragments_expired += fragments_expired;
        self.flows += flows;
        self.flows_evicted += flows_evicted;
        self.flows_expired += flows_expired;
        self.flows_split_idle += flows_split_idle;
        self.flows_split_reuse += flows_split_reuse;
        self.anomalies += anomalies;
        self.anomalies_dropped += anomalies_dropped;
    }

    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("records", self.records),
            ("frame_bytes", self.frame_bytes),
            ("ipv4", self.ipv4),
            ("ipv6", self.ipv6),
            ("tcp", self.tcp),
            ("udp", self.udp),
            ("icmp", self.icmp),
            ("icmpv6", self.icmpv6),
            ("other_ip", self.other_ip),
            ("non_ip", self.non_ip),
            ("unknown_link", self.unknown_link),
            ("tunnelled", self.tunnelled),
            ("encap_undecoded", self.encap_undecoded),
            ("malformed", self.malformed),
            ("fragments", self.fragments),
            ("reassembled", self.reassembled),
            ("fragments_evicted", self.fragments_evicted),
            ("fragments_expired", self.fragments_expired),
            ("flows", self.flows),
            ("flows_evicted", self.flows_evicted),
            ("flows_expired", self.flows_expired),
            ("flows_split_idle", self.flows_split_idle),
            ("flows_split_reuse", self.flows_split_reuse),
            ("anomalies", self.anomalies),
            ("anomalies_dropped", self.anomalies_dropped),
        ]
    }
}

/// What was learned of each input file.
#[derive(Debug, Clone, Default)]
pub struct CaptureInfo {
    pub path: String,
    pub format: &'static str,
    pub compression: &'static str,
    pub link_types: BTreeSet<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// Why the file could not be read, when it could not.
    pub error: Option<String>,
}

pub struct Output {
    pub flows: Vec<Flow>,
    pub apps: SessionDecoders,
    pub anomalies: Anomalies,
    pub stats: Stats,
    pub captures: Vec<CaptureInfo>,
    pub border: Border,
    /// Why the spill's sink failed, when it did: the flows it did not take are lost.
    pub spill_error: Option<String>,
}

/// What the end of the input changed: the facts a merge of separately decoded inputs needs to
/// know whether this decode, continued by a later input, would have gone differently.
#[derive(Debug, Clone, Copy, Default)]
pub struct Border {
    /// Flows still in the table when the input ended (a later input would have expired them).
    pub live_flows: u64,
    /// Holes skipped when the streams still open were closed at the end: what waited behind
    /// them is decoded with the time of the close, which one pass would have made later. (The
    /// other rows a close produces, calls never answered and handshakes cut short, carry their
    /// own times and are sorted by them.)
    pub end_gaps: u64,
    /// Anomalies the end reported (fragments never completed, stream gaps flushed).
    pub end_anomalies: u64,
    /// Mapping rows withdrawn at the end (any-version answers the input contradicts): the
    /// endpoints they taught were learned while decoding, but the table no longer names them.
    pub withdrawn_mappings: u64,
}

/// The header stage at the end of the input (`HeaderDecoder::end`).
#[derive(Debug, Default)]
pub struct HeadersEnd {
    pub(super) stats: Stats,
    pub(super) pending: u64,
    pub(super) evicted: u64,
    pub(super) expired: u64,
}

impl HeadersEnd {
    /// Adds the counters of headers decoded elsewhere (chunks).
    pub fn add(&mut self, stats: &Stats) {
        self.stats.add(stats);
    }

    /// Datagrams never completed are reported (charged to `at`, the last record, in `an`: the
    /// anomalies of the whole pass, merged in record order); the counters.
    pub fn report(mut self, an: &mut Anomalies, at: Position) -> Stats {
        if self.pending > 0 {
            an.push(
                at,
                "ip",
                "incomplete_fragments",
                format!("{} datagrams never completed", self.pending),
            );
        }
        self.stats.fragments_evicted = self.evicted;
        self.stats.fragments_expired = self.expired + self.pending;
        self.stats
    }
}
