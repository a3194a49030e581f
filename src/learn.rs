//! The learned-port table: what portmapper, rpcbind (and later the endpoint mapper) said runs on
//! which (server, transport, port). Bounded; the oldest fact goes first when it is full.

use hashbrown::HashMap;

use crate::packet::Addr;

pub const MAX_LEARNED: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub program: u32,
    pub version: u32,
    pub ts: i64,
}

#[derive(Debug, Default)]
pub struct LearnTable {
    map: HashMap<(Addr, u8, u16), Learned, foldhash::fast::RandomState>,
    pub dropped: u64,
}

impl LearnTable {
    pub fn insert(&mut self, server: Addr, proto: u8, port: u16, fact: Learned) {
        if self.map.len() >= MAX_LEARNED && !self.map.contains_key(&(server, proto, port)) {
            self.dropped += 1;
            return;
        }
        self.map.insert((server, proto, port), fact);
    }

    pub fn remove(&mut self, server: Addr, proto: u8, port: u16) {
        self.map.remove(&(server, proto, port));
    }

    #[inline]
    pub fn get(&self, server: Addr, proto: u8, port: u16) -> Option<&Learned> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&(server, proto, port))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
