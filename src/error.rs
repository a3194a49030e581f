//! The one error type of the library. Malformed *contents* of a capture are not errors: they become
//! `anomalies` rows and decoding goes on. Errors are reserved for inputs that cannot be read at all.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read from its first byte on.
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input is not a capture portwitness understands (bad magic, empty, a directory...).
    #[error("{path}: {detail}")]
    Format { path: PathBuf, detail: String },
    /// None of the inputs could be decoded.
    #[error("no capture could be read: {0}")]
    NothingDecoded(String),
    /// A bug: a panic caught at the boundary, with where it happened.
    #[error("internal error while decoding {path} (record {record_index}, byte offset {byte_offset}): {message}")]
    Internal {
        path: PathBuf,
        record_index: u64,
        byte_offset: u64,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
