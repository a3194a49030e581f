//! The second half of the pass: transport packets into the flow table and, for the flows that
//! matter, the application decoders. Everything here depends on what came before, so it runs on
//! one thread, in record order.

use std::sync::Arc;

use super::options::{FlowSpill, Options};
use super::packets::PacketSink;
use crate::anomaly::{Anomalies, Position};
use crate::app::{
    names, starttls, DecoderKind, FlowFacts, OrientedFlow, SessionDecoders, Sink, StreamState,
};
use crate::application::App;
use crate::flow::{Flow, FlowKey, FlowMut, FlowTable, Meta, Orientation, PacketMeta};
use crate::learn::Service;
use crate::packet::{tcp, Tunnel, IPPROTO_TCP, IPPROTO_UDP};
use crate::proto::tls as tls_wire;

/// The flow table and the application decoders.
pub struct FlowStage {
    flows: FlowTable<StreamState>,
    apps: SessionDecoders,
    spill: Option<FlowSpill>,
    /// Finished flows that make a spill (never reached without one).
    spill_at: usize,
    spilled: u64,
    spill_error: Option<String>,
}

/// What the second half hands over at the end.
pub struct StageOutput {
    pub flows: Vec<Flow>,
    pub apps: SessionDecoders,
    pub evicted: u64,
    pub expired: u64,
    pub split_idle: u64,
    pub split_reuse: u64,
    /// Flows still live when the input ended.
    pub live_at_end: u64,
    /// Holes skipped when the streams still open were closed at the end.
    pub end_gaps: u64,
    /// Flows handed to the spill (not in `flows`).
    pub spilled: u64,
    pub spill_error: Option<String>,
}

impl PacketSink for FlowStage {
    #[inline]
    fn packet(
        &mut self,
        at: Position,
        p: &PacketMeta,
        seq: u32,
        payload: &[u8],
        _block: Option<&Arc<Vec<u8>>>,
        an: &mut Anomalies,
    ) {
        self.packet(at, p, seq, payload, an);
    }

    #[inline]
    fn sweep(&mut self, now: i64) {
        self.flows.expire(now);
        if self.flows.finished.len() >= self.spill_at {
            self.spill();
        }
    }
}

impl FlowStage {
    pub fn new(opts: &Options) -> Self {
        FlowStage {
            flows: FlowTable::new(opts.flows),
            apps: SessionDecoders::default(),
            spill: opts.spill.clone(),
            spill_at: opts.spill.as_ref().map_or(usize::MAX, |s| s.rows.max(1)),
            spilled: 0,
            spill_error: None,
        }
    }

    /// Hands the finished flows to the spill. After a failure they are dropped: the decode ends
    /// in that error, and holding them would defeat the bound the spill is for.
    #[cold]
    fn spill(&mut self) {
        let batch = self.flows.take_finished();
        let (Some(spill), None) = (&self.spill, &self.spill_error) else {
            return;
        };
        let n = batch.len() as u64;
        match (spill.sink)(batch) {
            Ok(()) => self.spilled += n,
            Err(e) => self.spill_error = Some(e),
        }
    }

    /// One transport packet of the record at `at`; anomalies go to `an`.
    #[inline]
    pub fn packet(
        &mut self,
        at: Position,
        p: &PacketMeta,
        seq: u32,
        payload: &[u8],
        an: &mut Anomalies,
    ) {
        let hit = self.flows.update_at(p, at.record_index);
        let mut sink = Sink { an, at };
        if !self.skips(&hit, p, payload) {
            self.application(
                hit.slot,
                hit.c2s,
                p.tcp_flags,
                seq,
                payload,
                p.ts,
                &mut sink,
            );
        }
        if !self.flows.closed_sessions.is_empty() {
            close_streams(&mut self.flows, &mut self.apps, sink.an, at, p.ts);
        }
        if self.flows.finished.len() >= self.spill_at {
            self.spill();
        }
    }

    /// Whether the packet can skip the application layer without a look at its flow's cold
    /// part: the flow is quiet (judged, no decoder, no first payload of this direction to come)
    /// and the packet is none of the few a quiet flow still answers to (a STARTTLS switch, a
    /// name service datagram, a UDP reply to a pending call).
    #[inline]
    fn skips(&self, hit: &crate::flow::Hit, p: &PacketMeta, payload: &[u8]) -> bool {
        if !hit.quiet || payload.is_empty() {
            return hit.quiet;
        }
        if !hit.seen {
            return false;
        }
        match p.proto {
            IPPROTO_TCP => !starttls::may_switch(payload),
            IPPROTO_UDP => {
                names::udp_source(p.sport, p.dport).is_none()
                    && !self.apps.rpc.answers_pending_udp(p.dst, p.dport, payload)
            }
            _ => true,
        }
    }

    /// Hands a packet of a flow to the application decoders when the flow matters.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn application(
        &mut self,
        slot: u32,
        c2s: bool,
        flags: u8,
        seq: u32,
        payload: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) {
        let Some(mut f) = self.flows.get_mut(slot) else {
            return;
        };
        let mut c2s = c2s;
        let proto = f.proto;
        // A TCP flow is judged at its first packet (a stream must start with its SYN) and again
        // at its first payload.
        let first_packet = f.packets() == 1;
        let judge =
            !f.app_checked && (!payload.is_empty() || (proto == IPPROTO_TCP && first_packet));
        if judge && f.orientation != Orientation::Syn {
            // A port a portmapper or endpoint mapper handed out marks its side as the server.
            if self.apps.learned_at(f.client, proto, f.client_port)
                && !self.apps.learned_at(f.server, proto, f.server_port)
            {
                f.swap(Orientation::Rpc);
                c2s = !c2s;
            }
        }
        if judge {
            let ends = ends_of(&f);
            let learned = self.apps.learned(&ends);
            if let Some(service) = learned {
                apply_learned(&mut f, service);
            }
            let first = (!payload.is_empty()).then_some(payload);
            let by_syn = f.orientation == Orientation::Syn;
            match self.apps.kind_for(&ends, learned, first, c2s, by_syn) {
                Some((kind, turn)) => {
                    f.app_checked = true;
                    if turn {
                        f.swap(match kind {
                            DecoderKind::Tls => Orientation::Tls,
                            DecoderKind::DceRpc | DecoderKind::Smb => Orientation::DceRpc,
                            DecoderKind::OncRpc => Orientation::Rpc,
                            // Never turned: DNS is judged on its port alone.
                            DecoderKind::Dns => Orientation::WellKnown,
                        });
                        c2s = !c2s;
                    }
                    if proto == IPPROTO_TCP {
                        let midstream = !by_syn;
                        *f.session = Some(Box::new(StreamState::new(ends_of(&f), kind, midstream)));
                    } else {
                        f.app = kind.app();
                    }
                }
                None if !payload.is_empty() => f.app_checked = true,
                None => {}
            }
        }
        if proto == IPPROTO_TCP {
            let decoded = f.session.is_some();
            if let Some(offset) = starttls::switch_offset(&f, decoded, c2s, seq, payload) {
                *f.session = Some(Box::new(StreamState::after_preamble(ends_of(&f), offset)));
            }
        }
        let said = if let Some(mut st) = f.session.take() {
            let syn = flags & tcp::SYN != 0;
            let said = self
                .apps
                .tcp_segment(&mut st, c2s, seq, syn, payload, ts, sink);
            if st.done {
                self.apps.close(st, ts, sink);
            } else if !st.failed {
                if let Some(f) = self.flows.get_mut(slot) {
                    *f.session = Some(st);
                }
            }
            said
        } else if proto == IPPROTO_UDP && !payload.is_empty() {
            let ends = ends_of(&f);
            let (dst, dport, sport) = if c2s {
                (ends.server, ends.server_port, ends.client_port)
            } else {
                (ends.client, ends.client_port, ends.server_port)
            };
            if let Some(source) = names::udp_source(sport, dport) {
                self.apps
                    .names
                    .udp_datagram(&ends, c2s, payload, ts, source);
            }
            match f.app {
                Some(app @ (App::OncRpc | App::DceRpc)) => {
                    match self.apps.udp_datagram(app, &ends, c2s, payload, ts, sink) {
                        Some(s) => s,
                        None => {
                            if f.rpc_program.is_none() && f.info.is_none() {
                                f.app = None;
                            }
                            FlowFacts::default()
                        }
                    }
                }
                _ if self.apps.rpc.answers_pending_udp(dst, dport, payload) => self
                    .apps
                    .udp_datagram(App::OncRpc, &ends, c2s, payload, ts, sink)
                    .unwrap_or_default(),
                _ => FlowFacts::default(),
            }
        } else {
            FlowFacts::default()
        };
        let Some(mut f) = self.flows.get_mut(slot) else {
            return;
        };
        if let Some(o) = said.turn {
            if f.orientation != Orientation::Syn {
                f.swap(o);
                c2s = !c2s;
            }
        }
        let elsewhere = said.answered_elsewhere;
        if !said.is_empty() {
            apply_said(&mut f, said);
        }
        if let Some((client, client_port, server, server_port)) = elsewhere {
            // Neither the call's flow nor this reply's flow is an unanswered attempt.
            f.answered_elsewhere();
            quiet_if_done(&mut f);
            let key = FlowKey::new(
                client,
                client_port,
                server,
                server_port,
                IPPROTO_UDP,
                f.vlan,
            )
            .within(Tunnel::new(f.encap, f.tunnel_id).key());
            if let Some(mut call_flow) =
                self.flows.slot_of(&key).and_then(|s| self.flows.get_mut(s))
            {
                call_flow.answered_elsewhere();
            }
            return;
        }
        if proto == IPPROTO_TCP && !payload.is_empty() {
            let d = usize::from(!c2s);
            if let Some(first @ None) = f.first_tls.get_mut(d) {
                let tls = tls_wire::looks_like_record(payload);
                *first = Some(tls);
                if let Some(base) = f.stream_base.get_mut(d) {
                    *base = seq;
                }
                if tls && d == 0 && f.app.is_none() {
                    f.app = Some(App::Tls);
                }
            }
        }
        quiet_if_done(&mut f);
    }

    /// The end: streams still open are closed at `last_ts` (their anomalies charged to `at`, the
    /// last record, in `an`: the anomalies of both halves, merged), then every flow in order.
    pub fn finish(mut self, an: &mut Anomalies, at: Position, last_ts: i64) -> StageOutput {
        let live_at_end = self.flows.live() as u64;
        let before = self.apps.close_gaps;
        self.flows.close_all();
        close_streams(&mut self.flows, &mut self.apps, an, at, last_ts);
        let end_gaps = self.apps.close_gaps.saturating_sub(before);
        let (evicted, expired, split_idle, split_reuse) = (
            self.flows.evicted,
            self.flows.expired,
            self.flows.split_idle,
            self.flows.split_reuse,
        );
        // Side by side: the flows put in order and the decoders' rows sorted take milliseconds
        // each on a large capture, with the other core idle.
        let (table, apps) = (self.flows, &mut self.apps);
        let (flows, finished_aside) = std::thread::scope(|s| {
            let aside = std::thread::Builder::new().spawn_scoped(s, || apps.finish());
            let flows = table.into_flows();
            let finished_aside = match aside {
                Ok(handle) => match handle.join() {
                    Ok(()) => true,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => false,
            };
            (flows, finished_aside)
        });
        if !finished_aside {
            self.apps.finish();
        }
        StageOutput {
            flows,
            apps: self.apps,
            evicted,
            expired,
            split_idle,
            split_reuse,
            live_at_end,
            end_gaps,
            spilled: self.spilled,
            spill_error: self.spill_error,
        }
    }
}

#[cold]
fn close_streams(
    flows: &mut FlowTable<StreamState>,
    apps: &mut SessionDecoders,
    an: &mut Anomalies,
    at: Position,
    ts: i64,
) {
    let mut sink = Sink { an, at };
    for (_, st) in std::mem::take(&mut flows.closed_sessions) {
        apps.close(st, ts, &mut sink);
    }
}

/// Tells the table whether the flow's later packets may skip `FlowStage::application`: judged, no
/// decoder to feed, and not a UDP flow whose datagrams go to the RPC decoders.
fn quiet_if_done(f: &mut FlowMut<'_, StreamState>) {
    let udp_decoded = f.proto == IPPROTO_UDP && matches!(f.app, Some(App::OncRpc | App::DceRpc));
    let quiet = f.app_checked && f.session.is_none() && !udp_decoded;
    f.set_quiet(quiet);
}

fn ends_of(f: &Meta) -> OrientedFlow {
    OrientedFlow {
        flow_id: f.id,
        client: f.client,
        client_port: f.client_port,
        server: f.server,
        server_port: f.server_port,
        proto: f.proto,
    }
}

/// A flow on a port learned for a service carries that service until its payload says more.
fn apply_learned(f: &mut Meta, service: Service) {
    match service {
        Service::OncRpc { program, version } => {
            f.app = Some(App::OncRpc);
            f.rpc_program = Some(program);
            f.rpc_version = Some(version);
        }
        Service::DceRpc(i) => {
            f.app = Some(App::DceRpc);
            f.info.get_or_insert_with(Default::default).interface = Some(i);
        }
    }
}

fn apply_said(f: &mut Meta, said: FlowFacts) {
    if let Some(app) = said.app {
        if f.app.is_none() || app != App::Tls {
            f.app = Some(app);
        }
    }
    if let Some((prog, vers)) = said.rpc {
        if f.rpc_program.is_none() {
            f.rpc_program = Some(prog);
            f.rpc_version = Some(vers);
        }
    }
    if said.interface.is_none()
        && said.tls_version.is_none()
        && said.tls_sni.is_none()
        && said.tls_offset.is_none()
    {
        return;
    }
    let info = f.info.get_or_insert_with(Default::default);
    if let Some(i) = said.interface {
        if !info.interface_bound {
            info.interface = Some(i);
            info.interface_bound = true;
        }
    }
    if said.tls_version.is_some() {
        info.tls_version = said.tls_version;
    }
    if said.tls_sni.is_some() {
        info.tls_sni = said.tls_sni;
    }
    if said.tls_offset.is_some() {
        info.tls_offset = said.tls_offset;
    }
}
