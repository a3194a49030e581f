//! The one pass, whatever the schedule: the inputs in the order given, each read into records
//! whose headers are decoded and whose packets are applied in order to the flow stage; then the
//! end of the input reported and the results joined. Where each of those runs (all on the calling
//! thread, a pipeline of two, chunks on every thread) is the `Schedule`'s business; the order the
//! flow stage sees, the anomalies' order and the end are the driver's, so every schedule gives the
//! same result, row for row.

use std::path::{Path, PathBuf};

use super::boundary::WHERE;
use super::options::Options;
use super::output::{Border, HeadersEnd, Output, Stats};
use super::packets::HeaderDecoder;
use super::records::RecordReader;
use super::state::FlowStage;
use crate::anomaly::Anomalies;
use crate::error::{Error, Result};

/// Where the parts of the pass run.
pub trait Schedule {
    /// Decodes one file or `-` through the flow stage: unreadable files are errors; a file that
    /// is no capture is recorded in `records` and returned as `Error::Format`.
    fn input(&mut self, records: &mut RecordReader, path: &Path) -> Result<()>;
    /// A part running elsewhere failed: reading on is pointless (`end` says why).
    fn stopped(&self) -> bool {
        false
    }
    /// After the last input: every part joined.
    fn end(self) -> Result<Ended>;
}

/// What the parts of a schedule end with.
pub struct Ended {
    /// The anomalies of the headers, in record order.
    pub headers: Anomalies,
    /// The anomalies the flow stage raised, in record order (empty when the flow stage shared
    /// the headers' list, on one thread).
    pub table: Anomalies,
    pub counters: HeadersEnd,
    pub state: FlowStage,
}

/// The pass over `paths` on `schedule`.
pub fn drive<S: Schedule>(paths: &[PathBuf], opts: &Options, mut schedule: S) -> Result<Output> {
    let mut records = RecordReader::new(opts);
    let mut format_errors = Vec::new();
    let mut failed = None;
    for (i, p) in paths.iter().enumerate() {
        WHERE.with(|w| w.set((i, 0, 0)));
        match schedule.input(&mut records, p) {
            Ok(()) => {}
            Err(e @ Error::Format { .. }) => format_errors.push(e),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        if schedule.stopped() {
            break;
        }
    }
    // Joined even after a failure: a part that failed elsewhere says why first.
    let ended = schedule.end()?;
    if let Some(e) = failed {
        return Err(e);
    }
    nothing_decoded(paths, format_errors)?;
    Ok(conclude(records, ended))
}

/// The one-thread schedule's end: the header stage's sink is the flow stage.
pub fn ended(packets: HeaderDecoder<FlowStage>) -> Ended {
    let (counters, headers, state) = packets.end();
    Ended {
        headers,
        table: Anomalies::default(),
        counters,
        state,
    }
}

/// Everything on the calling thread.
pub struct OneThread {
    pub packets: HeaderDecoder<FlowStage>,
}

impl OneThread {
    pub fn new(opts: &Options) -> Self {
        OneThread {
            packets: HeaderDecoder::new(opts, FlowStage::new(opts)),
        }
    }
}

impl Schedule for OneThread {
    fn input(&mut self, records: &mut RecordReader, path: &Path) -> Result<()> {
        records.decode_path(path, &mut self.packets)
    }

    fn end(self) -> Result<Ended> {
        Ok(ended(self.packets))
    }
}

/// The results joined: anomalies in record order (the containers', the headers', then the flow
/// table's at the same record), then what the end of the input reports (fragments never
/// completed, streams still open), the flows and the counters.
pub fn conclude(mut records: RecordReader, ended: Ended) -> Output {
    let Ended {
        headers,
        table,
        counters,
        state,
    } = ended;
    let mut anomalies = Anomalies::merge(std::mem::take(&mut records.anomalies), headers);
    anomalies = Anomalies::merge(anomalies, table);
    let before_end = anomalies.total();
    let at = records.pos;
    let mut stats: Stats = counters.report(&mut anomalies, at);
    let done = state.finish(&mut anomalies, at, records.last_ts());
    let border = Border {
        live_flows: done.live_at_end,
        end_gaps: done.end_gaps,
        end_anomalies: anomalies.total().saturating_sub(before_end),
        withdrawn_mappings: done.apps.learned_ports.withdrawn,
    };
    stats.flows_evicted = done.evicted;
    stats.flows_expired = done.expired;
    stats.flows_split_idle = done.split_idle;
    stats.flows_split_reuse = done.split_reuse;
    stats.flows = done.flows.len() as u64 + done.spilled;
    stats.anomalies = anomalies.total();
    stats.anomalies_dropped = anomalies.dropped;
    Output {
        flows: done.flows,
        apps: done.apps,
        anomalies,
        stats,
        captures: records.captures,
        border,
        spill_error: done.spill_error,
    }
}

/// The error when no input at all could be read.
fn nothing_decoded(paths: &[PathBuf], mut format_errors: Vec<Error>) -> Result<()> {
    if !paths.is_empty() && format_errors.len() == paths.len() {
        if let [only] = format_errors.as_mut_slice() {
            return Err(std::mem::replace(
                only,
                Error::NothingDecoded(String::new()),
            ));
        }
        let msgs: Vec<String> = format_errors.iter().map(ToString::to_string).collect();
        return Err(Error::NothingDecoded(msgs.join("; ")));
    }
    Ok(())
}
