//! Bidirectional flows: the key, the per-flow state, and the bounded table that holds them.

pub mod key;
pub mod table;
pub mod tcp_stream;

pub use key::FlowKey;
pub use table::{
    Flow, FlowLimits, FlowMut, FlowTable, Hit, Meta, Orientation, Outcome, PacketMeta, Session,
};
