//! IP fragment reassembly, for IPv4 and IPv6 alike. Bounded in datagrams, bytes and time; every
//! overflow and expiry is counted by the caller.

use hashbrown::HashMap;

use super::{Addr, FragInfo};

/// Largest reassembled datagram accepted (an IPv6 fragment may start at 65528 and add a full MTU).
pub const MAX_DATAGRAM: u32 = 65_535 + 1_500;
/// Pieces one datagram may arrive in.
pub const MAX_PIECES: usize = 256;

#[derive(Debug, Clone, Copy)]
pub struct FragLimits {
    pub max_datagrams: usize,
    pub max_bytes: usize,
    pub timeout_ns: i64,
}

impl Default for FragLimits {
    fn default() -> Self {
        FragLimits {
            max_datagrams: 4_096,
            max_bytes: 64 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: Addr,
    pub dst: Addr,
    pub id: u32,
    pub proto: u8,
    pub vlan: Option<u16>,
}

#[derive(Debug, Default)]
struct Pending {
    first_ts: i64,
    last_ts: i64,
    frames: u32,
    frame_bytes: u64,
    data: Vec<u8>,
    ranges: Vec<(u32, u32)>,
    total: Option<u32>,
    /// Some piece was cut by the snaplen: the bytes are zero-filled, only the lengths are real.
    truncated: bool,
}

/// A complete datagram: the transport header and payload, and the frames it came in.
#[derive(Debug)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub first_ts: i64,
    pub frames: u32,
    pub frame_bytes: u64,
    pub truncated: bool,
}

pub enum Outcome {
    Held,
    Complete(Datagram),
    /// The piece was refused: the reason, for an anomaly.
    Rejected(&'static str),
}

#[derive(Debug, Default)]
pub struct Reassembler {
    pending: HashMap<FragKey, Pending, foldhash::fast::RandomState>,
    bytes: usize,
    pub limits: FragLimits,
    pub evicted: u64,
    pub expired: u64,
}

impl Reassembler {
    pub fn new(limits: FragLimits) -> Self {
        Reassembler {
            limits,
            ..Default::default()
        }
    }

    /// Adds one fragment: `payload` is what was captured of it, `wire_len` its length on the wire.
    pub fn add(
        &mut self,
        key: FragKey,
        f: FragInfo,
        payload: &[u8],
        wire_len: u32,
        ts: i64,
        frame_len: u32,
    ) -> Outcome {
        let end = f.offset.saturating_add(wire_len);
        if end > MAX_DATAGRAM {
            return Outcome::Rejected("fragment_overflow");
        }
        if !self.pending.contains_key(&key) && self.pending.len() >= self.limits.max_datagrams {
            self.evict_oldest();
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts,
            ..Default::default()
        });
        if p.ranges.len() >= MAX_PIECES {
            return Outcome::Rejected("too_many_fragments");
        }
        p.last_ts = ts;
        p.frames += 1;
        p.frame_bytes += u64::from(frame_len);
        if !f.more {
            p.total = Some(end);
        }
        let before = p.data.len();
        if p.data.len() < end as usize {
            p.data.resize(end as usize, 0);
        }
        let n = payload.len().min(wire_len as usize);
        if n < wire_len as usize {
            p.truncated = true;
        }
        let start = f.offset as usize;
        if let (Some(dst), Some(src)) = (p.data.get_mut(start..start + n), payload.get(..n)) {
            dst.copy_from_slice(src);
        }
        p.ranges.push((f.offset, end));
        self.bytes += p.data.len() - before;
        let complete = p.total.is_some_and(|total| covers(&mut p.ranges, total));
        if complete {
            if let Some(mut p) = self.pending.remove(&key) {
                self.bytes -= p.data.len();
                if let Some(total) = p.total {
                    p.data.truncate(total as usize);
                }
                return Outcome::Complete(Datagram {
                    data: p.data,
                    first_ts: p.first_ts,
                    frames: p.frames,
                    frame_bytes: p.frame_bytes,
                    truncated: p.truncated,
                });
            }
        }
        while self.bytes > self.limits.max_bytes && !self.pending.is_empty() {
            self.evict_oldest();
        }
        Outcome::Held
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.last_ts)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            if let Some(p) = self.pending.remove(&k) {
                self.bytes -= p.data.len();
                self.evicted += 1;
            }
        }
    }

    /// Drops datagrams idle longer than the timeout at capture time `now`; returns how many.
    pub fn expire(&mut self, now: i64) -> u64 {
        let timeout = self.limits.timeout_ns;
        let mut freed = 0usize;
        let before = self.pending.len();
        self.pending.retain(|_, p| {
            let keep = now.saturating_sub(p.last_ts) <= timeout;
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.bytes -= freed;
        let n = (before - self.pending.len()) as u64;
        self.expired += n;
        n
    }

    /// Datagrams still waiting for pieces.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

fn covers(ranges: &mut [(u32, u32)], total: u32) -> bool {
    ranges.sort_unstable();
    let mut reached = 0u32;
    for &(s, e) in ranges.iter() {
        if s > reached {
            return false;
        }
        reached = reached.max(e);
    }
    reached >= total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey {
            src: Addr::v4([10, 1, 0, 1]),
            dst: Addr::v4([10, 1, 0, 2]),
            id: 7,
            proto: 17,
            vlan: None,
        }
    }

    #[test]
    fn out_of_order_pieces_complete() {
        let mut r = Reassembler::default();
        let last = FragInfo {
            offset: 16,
            more: false,
            id: 7,
        };
        assert!(matches!(
            r.add(key(), last, &[3; 4], 4, 3, 60),
            Outcome::Held
        ));
        assert!(matches!(
            r.add(
                key(),
                FragInfo {
                    offset: 0,
                    more: true,
                    id: 7
                },
                &[1; 8],
                8,
                1,
                60
            ),
            Outcome::Held
        ));
        match r.add(
            key(),
            FragInfo {
                offset: 8,
                more: true,
                id: 7,
            },
            &[2; 8],
            8,
            2,
            60,
        ) {
            Outcome::Complete(d) => {
                assert_eq!(
                    d.data,
                    [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
                );
                assert_eq!((d.frames, d.frame_bytes, d.first_ts), (3, 180, 3));
            }
            _ => panic!("incomplete"),
        }
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn bounded_and_expiring() {
        let limits = FragLimits {
            max_datagrams: 2,
            max_bytes: 1 << 20,
            timeout_ns: 10,
        };
        let mut r = Reassembler::new(limits);
        for id in 0..5 {
            let k = FragKey { id, ..key() };
            r.add(
                k,
                FragInfo {
                    offset: 0,
                    more: true,
                    id,
                },
                &[0; 8],
                8,
                i64::from(id),
                60,
            );
        }
        assert_eq!((r.pending(), r.evicted), (2, 3));
        assert_eq!(r.expire(100), 2);
        assert!(matches!(
            r.add(
                key(),
                FragInfo {
                    offset: 65_528,
                    more: true,
                    id: 7
                },
                &[],
                4_000,
                0,
                60
            ),
            Outcome::Rejected(_)
        ));
    }
}
