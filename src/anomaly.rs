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

impl Anomalies {
    /// The anomalies of two halves of one pass, as if pushed into one: rows in record order, the
    /// first's before the second's at the same record, at most `MAX_ANOMALY_ROWS` kept.
    pub fn merge(first: Anomalies, second: Anomalies) -> Anomalies {
        let mut counts = first.counts;
        for (k, n) in second.counts {
            *counts.entry(k).or_insert(0) += n;
        }
        let mut rows =
            Vec::with_capacity((first.rows.len() + second.rows.len()).min(MAX_ANOMALY_ROWS));
        let mut a = first.rows.into_iter().peekable();
        let mut b = second.rows.into_iter().peekable();
        while rows.len() < MAX_ANOMALY_ROWS {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => (x.capture, x.record_index) <= (y.capture, y.record_index),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            rows.extend(next);
        }
        let total: u64 = counts.values().sum();
        Anomalies {
            dropped: total - rows.len() as u64,
            rows,
            counts,
        }
    }
}
