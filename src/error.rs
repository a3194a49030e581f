//! The one error type of the library. Malformed *contents* of a capture are not errors: they become
//! `anomalies` rows and decoding goes on. Errors are reserved for inputs that cannot be read at all,
//! outputs that cannot be written, arguments that cannot be used, and bugs. The Python bindings
//! turn it into an exception in one place (`python::to_py`).

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
    /// An output file could not be written (`Io`), or its batches form no table (a bug).
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    /// An argument names something that does not exist (a table that is not one).
    #[error("{0}")]
    Argument(String),
    /// The flow sink the caller gave failed; the decode stopped handing it flows.
    #[error("the flow sink failed: {0}")]
    Sink(String),
    /// A table could not be built from the decoded rows (a bug: the schemas are ours).
    #[error("building a table: {0}")]
    Table(#[from] arrow_schema::ArrowError),
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
