//! Everything malformed, truncated or over a bound that decoding met, kept as rows with where it was.
//! The number of rows is bounded; past the bound only the per-kind counts grow.

use std::collections::BTreeMap;

/// Rows kept at most; a flood of one malformed packet type must not become a flood of memory.
pub const MAX_ANOMALY_ROWS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub capture: u32,
    pub record_index: u64,
    pub byte_offset: u64,
    pub layer: &'static str,
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Anomalies {
    pub rows: Vec<Anomaly>,
    /// Every anomaly seen, by kind, including those past the row bound.
    pub counts: BTreeMap<&'static str, u64>,
    pub dropped: u64,
}

/// Where in the input the decoder currently is; anomalies are stamped with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Position {
    pub capture: u32,
    pub record_index: u64,
    pub byte_offset: u64,
}

impl Anomalies {
    pub fn push(
        &mut self,
        at: Position,
        layer: &'static str,
        kind: &'static str,
        detail: impl Into<String>,
    ) {
        *self.counts.entry(kind).or_insert(0) += 1;
        if self.rows.len() < MAX_ANOMALY_ROWS {
            self.rows.push(Anomaly {
                capture: at.capture,
                record_index: at.record_index,
                byte_offset: at.byte_offset,
                layer,
                kind,
                detail: detail.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}
