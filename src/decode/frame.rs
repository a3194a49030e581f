//! One record's frame as the headers under it are peeled: what each layer passes to the next.

use crate::packet::{Encap, Tunnel};

/// One record's frame as the layers under it are peeled.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub ts: i64,
    /// The innermost VLAN tag so far.
    pub vlan: Option<u16>,
    pub capture: u32,
    pub orig_len: u32,
    /// The encapsulation that carries what follows, innermost one.
    pub tunnel: Tunnel,
    pub depth: u8,
    /// What the headers around an encapsulated packet added to the counters (IPv4, IPv6, UDP,
    /// tunnels), taken back when the record is deferred to be decoded again whole.
    pub outer: [u8; 4],
}

impl Frame {
    /// The frame inside a tunnel whose outer IP (and UDP) headers were counted.
    #[inline]
    pub fn counted(mut self, v6: bool, udp: bool) -> Frame {
        let [v4c, v6c, udpc, tunnels] = &mut self.outer;
        if v6 {
            *v6c = v6c.saturating_add(1);
        } else {
            *v4c = v4c.saturating_add(1);
        }
        if udp {
            *udpc = udpc.saturating_add(1);
        }
        *tunnels = tunnels.saturating_add(1);
        self
    }

    /// The frame as seen inside one more encapsulation; a tunnel without an id of its own keeps
    /// the tenant of the one around it.
    #[inline]
    pub fn within(self, encap: Encap, id: Option<u32>) -> Frame {
        Frame {
            tunnel: Tunnel::new(encap, id.or(self.tunnel.id())),
            depth: self.depth.saturating_add(1),
            ..self
        }
    }
}
