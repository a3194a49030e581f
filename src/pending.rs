//! Requests awaiting their answer, bounded, with one eviction policy for every decoder: ONC RPC
//! calls (per TCP flow and across UDP flows), DCE/RPC binds and calls (per association and
//! connectionless), SMB CREATEs and READs awaiting their responses.
//!
//! When the table is full, the entry inserted first leaves to make room (and the caller records
//! it as unanswered). The alternative once used beside it, emptying the whole table, threw away
//! the calls just made together with the stale ones: one association with more calls in flight
//! than the bound lost every reply still to come. The oldest call is the one least likely to be
//! answered, and dropping one per new call keeps the damage proportional to the excess.
//!
//! "First inserted" rather than "earliest timestamp": a decoder sees a capture's packets in
//! capture order, so in a time-ordered capture the two agree; the insertion order needs no tie
//! break and finds the oldest in O(1) where searching the map cost one comparison per pending
//! call for every call past the bound.

use std::collections::VecDeque;
use std::hash::Hash;

use hashbrown::HashMap;

/// At most `CAP` entries by key; `CAP` is in the type so that tables embedding one keep
/// `Default`.
#[derive(Debug, Clone)]
pub struct PendingCalls<K, V, const CAP: usize> {
    /// Each entry with the sequence number it was inserted under.
    map: HashMap<K, (u64, V), foldhash::fast::RandomState>,
    /// Keys in insertion order. An entry removed or replaced leaves a stale pair behind (its
    /// sequence number no longer matches); stale pairs are skipped and compacted away.
    order: VecDeque<(u64, K)>,
    next: u64,
}

impl<K, V, const CAP: usize> Default for PendingCalls<K, V, CAP> {
    fn default() -> Self {
        PendingCalls {
            map: HashMap::default(),
            order: VecDeque::new(),
            next: 0,
        }
    }
}

impl<K: Copy + Hash + Eq, V, const CAP: usize> PendingCalls<K, V, CAP> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|(_, v)| v)
    }

    /// Inserts `v` as the newest entry. Returns the entry it pushed out, which went unanswered:
    /// the one under the same key (a new call reusing an id), or, when the table was full, the
    /// oldest one.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let seq = self.next;
        self.next += 1;
        let out = match self.map.get_mut(&k) {
            // The key's old pair in `order` is stale now: the new call is the newest.
            Some(slot) => Some(std::mem::replace(slot, (seq, v)).1),
            None => {
                let evicted = self.make_room();
                self.map.insert(k, (seq, v));
                evicted
            }
        };
        self.compact();
        self.order.push_back((seq, k));
        out
    }

    /// The entry under `k`, made by `make` if there is none; and the entry a new one pushed out.
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> (&mut V, Option<V>) {
        let seq = self.next;
        self.next += 1;
        let mut evicted = None;
        if !self.map.contains_key(&k) {
            evicted = self.make_room();
            self.compact();
            self.order.push_back((seq, k));
        }
        let (_, v) = self.map.entry(k).or_insert_with(|| (seq, make()));
        (v, evicted)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let (_, v) = self.map.remove(k)?;
        self.compact();
        Some(v)
    }

    /// Every entry, oldest first; the table is left empty.
    pub fn drain(&mut self) -> Vec<(K, V)> {
        let mut out = Vec::with_capacity(self.map.len());
        while let Some(kv) = self.pop_oldest() {
            out.push(kv);
        }
        self.order.clear();
        out
    }

    /// A full table gives up its oldest entry (a table of `CAP` 0 still holds one).
    fn make_room(&mut self) -> Option<V> {
        if self.map.len() < CAP {
            return None;
        }
        self.pop_oldest().map(|(_, v)| v)
    }

    fn pop_oldest(&mut self) -> Option<(K, V)> {
        while let Some((seq, k)) = self.order.pop_front() {
            if self.map.get(&k).is_some_and(|(s, _)| *s == seq) {
                return self.map.remove(&k).map(|(_, v)| (k, v));
            }
        }
        None
    }

    /// Keeps the stale pairs fewer than the live ones (plus slack), so `order` stays within
    /// twice the bound and the work of dropping them is constant per operation on average.
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.map.len() + 32 {
            return;
        }
        let map = &self.map;
        self.order
            .retain(|(seq, k)| map.get(k).is_some_and(|(s, _)| s == seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_gives_up_its_oldest_entry() {
        let mut p: PendingCalls<u32, &str, 3> = PendingCalls::new();
        assert_eq!(p.insert(1, "a"), None);
        assert_eq!(p.insert(2, "b"), None);
        assert_eq!(p.insert(3, "c"), None);
        // Full: 1 is the oldest.
        assert_eq!(p.insert(4, "d"), Some("a"));
        // A reused key pushes out its own entry and becomes the newest.
        assert_eq!(p.insert(2, "b2"), Some("b"));
        assert_eq!(p.insert(5, "e"), Some("c"));
        assert_eq!(p.remove(&4), Some("d"));
        assert_eq!(p.remove(&4), None);
        let (v, out) = p.get_or_insert_with(6, || "f");
        assert_eq!((*v, out), ("f", None));
        let (v, out) = p.get_or_insert_with(6, || "never");
        assert_eq!((*v, out), ("f", None));
        let (v, out) = p.get_or_insert_with(7, || "g");
        assert_eq!((*v, out), ("g", Some("b2")));
        *p.get_mut(&7).unwrap() = "g2";
        assert_eq!(p.get(&5), Some(&"e"));
        assert_eq!(p.drain(), vec![(5, "e"), (6, "f"), (7, "g2")]);
        assert!(p.is_empty());
        assert_eq!(p.insert(8, "h"), None);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn removed_entries_do_not_pile_up() {
        let mut p: PendingCalls<u64, u64, 4096> = PendingCalls::new();
        for i in 0..1_000_000u64 {
            assert_eq!(p.insert(i, i), None);
            assert_eq!(p.remove(&i), Some(i));
            assert_eq!(p.insert(i % 7, i), (i >= 7).then(|| i - 7));
        }
        assert!(p.order.len() <= 2 * p.map.len() + 33, "{}", p.order.len());
        // One flood of calls never answered: each new call costs one eviction, in order.
        let mut p: PendingCalls<u64, u64, 4> = PendingCalls::new();
        let out: Vec<_> = (0..10).filter_map(|i| p.insert(i, i)).collect();
        assert_eq!(out, (0..6).collect::<Vec<_>>());
        assert_eq!(p.drain(), (6..10).map(|i| (i, i)).collect::<Vec<_>>());
    }
}
