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

impl Position {
    /// Field by field: a whole copy is a 24-byte `memcpy` that reads the 4-byte `capture` back
    /// as 8 bytes with its padding, which stalls until the store retires (once per record).
    #[inline(always)]
    pub fn set(&mut self, at: Position) {
        self.capture = at.capture;
        self.record_index = at.record_index;
        self.byte_offset = at.byte_offset;
    }
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
    /// Appends the anomalies of a later part of the same pass, pushed as if record numbers
    /// started at `first_record` (a chunk of a file decoded before knowing how many records come
    /// before it).
    pub fn append_shifted(&mut self, later: Anomalies, first_record: u64) {
        for (k, n) in later.counts {
            *self.counts.entry(k).or_insert(0) += n;
        }
        for mut row in later.rows {
            if self.rows.len() >= MAX_ANOMALY_ROWS {
                break;
            }
            row.record_index += first_record;
            self.rows.push(row);
        }
        self.dropped = self.total() - self.rows.len() as u64;
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(capture: u32, record_index: u64) -> Position {
        Position {
            capture,
            record_index,
            byte_offset: record_index * 100,
        }
    }

    #[test]
    fn merge_is_record_order_first_half_first_and_bounded() {
        let mut a = Anomalies::default();
        let mut b = Anomalies::default();
        a.push(at(0, 1), "capture", "x", "a1");
        b.push(at(0, 1), "oncrpc", "y", "b1");
        b.push(at(0, 2), "oncrpc", "y", "b2");
        a.push(at(0, 3), "ip", "z", "a3");
        a.push(at(1, 0), "capture", "x", "a-next-file");
        b.push(at(1, 0), "tls", "w", "b-next-file");
        let m = Anomalies::merge(a, b);
        let order: Vec<&str> = m.rows.iter().map(|r| r.detail.as_str()).collect();
        assert_eq!(
            order,
            ["a1", "b1", "b2", "a3", "a-next-file", "b-next-file"]
        );
        assert_eq!((m.counts["x"], m.counts["y"], m.dropped), (2, 2, 0));

        // Past the row bound: the first rows in record order are kept, every one is counted.
        let mut a = Anomalies::default();
        let mut b = Anomalies::default();
        for i in 0..MAX_ANOMALY_ROWS as u64 {
            a.push(at(0, 2 * i), "capture", "x", "");
            b.push(at(0, 2 * i + 1), "tcp", "y", "");
        }
        let m = Anomalies::merge(a, b);
        assert_eq!(m.rows.len(), MAX_ANOMALY_ROWS);
        assert_eq!(
            m.rows.last().map(|r| r.record_index),
            Some(MAX_ANOMALY_ROWS as u64 - 1)
        );
        assert_eq!(m.total(), 2 * MAX_ANOMALY_ROWS as u64);
        assert_eq!(m.dropped, MAX_ANOMALY_ROWS as u64);
    }
}
