//! portwitness's capture core: reads pcap/pcapng (plain, gzip, zstd), decodes link to transport
//! layers, keeps a bounded bidirectional flow table, and hands the results over as Arrow tables.
//! A plain Rust library first; the Python bindings live in `python` and nowhere else.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod app;
pub mod application;
pub mod bounded;
pub mod capture;
pub mod community_id;
pub mod decode;
pub mod error;
pub mod flow;
pub mod learn;
pub mod order;
pub mod packet;
pub mod pending;
pub mod proto;
pub mod tables;
pub mod write;

#[cfg(feature = "python")]
mod python;

pub use decode::{decode_paths, decode_paths_catching, Options, Output};
pub use error::{Error, Result};
