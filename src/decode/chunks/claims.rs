//! Where the threads meet: the claim board. Every thread claims the next chunk to frame, at most
//! `WINDOW` ahead of the one being applied (bounding the memory held); the applying thread takes
//! the chunks in file order, framing one itself while the next it needs is not done.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

use super::framing::{Chunk, Container, Worker};
use super::reads::{lock, Spares};
use super::split::{Plan, WINDOW};
use crate::decode::options::Options;
use crate::decode::queue::Batch;

/// Where the threads meet: which chunk is claimed next, which are done, which is applied.
#[derive(Default)]
pub struct Board {
    claimed: u64,
    applied: u64,
    done: BTreeMap<u64, Box<Chunk>>,
    stop: bool,
}

pub struct Shared {
    pub board: Mutex<Board>,
    pub changed: Condvar,
    pub spares: Spares,
    pub chunks: u64,
}

pub enum Next {
    Apply(Box<Chunk>),
    Parse(u64),
}

impl Shared {
    /// The next chunk a helper may claim; None when there is none or the decode stops.
    pub fn claim(&self) -> Option<u64> {
        let mut b = lock(&self.board);
        loop {
            if b.stop || b.claimed >= self.chunks {
                return None;
            }
            if b.claimed < b.applied + WINDOW {
                b.claimed += 1;
                return Some(b.claimed - 1);
            }
            b = self.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// For the applying thread: chunk `k` when it is done, else a chunk to frame meanwhile.
    pub fn next(&self, k: u64) -> Next {
        let mut b = lock(&self.board);
        loop {
            if let Some(c) = b.done.remove(&k) {
                return Next::Apply(c);
            }
            if b.claimed < self.chunks && b.claimed < k + WINDOW {
                b.claimed += 1;
                return Next::Parse(b.claimed - 1);
            }
            b = self.changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn deliver(&self, c: Chunk) {
        lock(&self.board).done.insert(c.k, Box::new(c));
        self.changed.notify_all();
    }

    pub fn applied(&self, k: u64) {
        lock(&self.board).applied = k;
        self.changed.notify_all();
    }

    pub fn recycle(&self, c: Box<Chunk>) {
        let Batch {
            mut items, blocks, ..
        } = c.batch;
        items.clear();
        let Some(bytes) = blocks.into_iter().next() else {
            return;
        };
        if let Ok(data) = Arc::try_unwrap(bytes) {
            let mut spares = lock(&self.spares);
            if spares.len() < WINDOW as usize + 2 {
                spares.push((data, items));
            }
        }
    }
}

/// Stops the helpers however the applying thread leaves (a panic included), so the scope can
/// join them.
pub struct StopOnDrop<'a>(pub &'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        lock(&self.0.board).stop = true;
        self.0.changed.notify_all();
    }
}

/// `Worker::parse` on a chunk ahead of the one being applied, where a panic would name the
/// record by its number within the chunk: after one, the chunk is delivered as having nothing,
/// the applying thread frames it again itself when its turn comes, knowing the record numbers,
/// and the panic recurs there with them.
pub fn parse_or_none<C: Container>(worker: &mut Worker<'_, C>, k: u64) -> Chunk {
    let first = (k == 0).then_some(worker.plan.data_start);
    catch_unwind(AssertUnwindSafe(|| worker.parse(k, first, None)))
        .unwrap_or_else(|_| Chunk::none(k, worker.plan.start(k)))
}

pub fn helper<C: Container>(shared: &Shared, plan: &Plan<C>, opts: &Options) {
    let Ok(mut worker) = Worker::new(plan, opts, &shared.spares) else {
        return;
    };
    while let Some(k) = shared.claim() {
        shared.deliver(parse_or_none(&mut worker, k));
    }
}
