//! Application protocols, one file each: the wire format and its meaning, no flow logic.

pub mod dcerpc;
pub mod dns;
pub mod epm;
pub mod nbns;
pub mod ndr;
pub mod oncrpc;
pub mod portmap;
pub mod smb;
pub mod tls;
pub mod xdr;
