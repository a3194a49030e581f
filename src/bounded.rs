//! The rows a decoder hands out, bounded: every output table (`rpc_calls`, `dcerpc_calls`,
//! `mappings`, `tls`, `names`) keeps at most `MAX_ROWS` rows and only counts the rest, so a
//! hostile capture cannot make a table grow without end.

use std::ops::{Deref, DerefMut};

/// Rows kept in each output table; past it only counted.
pub const MAX_ROWS: usize = 10_000_000;

/// A table's rows and the number of rows it had no room for. Reads go through the slice it
/// derefs to; rows enter only through `push`, so the bound cannot be bypassed.
#[derive(Debug, Clone)]
pub struct BoundedRows<T> {
    rows: Vec<T>,
    cap: usize,
    dropped: u64,
}

impl<T> Default for BoundedRows<T> {
    fn default() -> Self {
        BoundedRows::with_cap(MAX_ROWS)
    }
}

impl<T> BoundedRows<T> {
    pub fn with_cap(cap: usize) -> Self {
        BoundedRows {
            rows: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    /// Keeps `row` if there is room; otherwise counts it. True when kept.
    #[inline]
    pub fn push(&mut self, row: T) -> bool {
        if self.rows.len() >= self.cap {
            self.dropped += 1;
            return false;
        }
        self.rows.push(row);
        true
    }

    /// Rows that found the table full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Withdraws the rows `keep` refuses; withdrawn rows are not counted as dropped.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.rows.retain(keep);
    }

    pub fn into_vec(self) -> Vec<T> {
        self.rows
    }
}

impl<T> Deref for BoundedRows<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.rows
    }
}

/// A slice cannot grow: rows may be changed or reordered in place, never added.
impl<T> DerefMut for BoundedRows<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.rows
    }
}

impl<'a, T> IntoIterator for &'a BoundedRows<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_rows_are_counted_not_kept() {
        let mut t = BoundedRows::with_cap(2);
        assert!(t.push(1));
        assert!(t.push(2));
        assert!(!t.push(3));
        assert!(!t.push(4));
        assert_eq!((&t[..], t.dropped()), (&[1, 2][..], 2));
        t.retain(|&r| r != 1);
        assert!(t.push(5));
        assert_eq!((&t[..], t.dropped()), (&[2, 5][..], 2));
        t.sort_unstable_by_key(|&r| std::cmp::Reverse(r));
        assert_eq!(t.into_vec(), vec![5, 2]);
        assert_eq!(BoundedRows::<u8>::default().cap, MAX_ROWS);
    }
}
