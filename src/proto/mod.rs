//! Application protocols, one file each: the wire format and its meaning, no flow logic.

pub mod oncrpc;
pub mod portmap;
pub mod tls;
pub mod xdr;
