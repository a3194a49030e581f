//! The panic boundary: where the decoder is, so a panic caught at the boundary names the capture,
//! record and byte offset it happened at.

use std::cell::Cell;
use std::path::PathBuf;

use crate::error::Error;

thread_local! {
    /// Where the decoder is (input index, record index, byte offset), for the message of a panic
    /// caught at the boundary.
    pub static WHERE: Cell<(usize, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

#[cfg(test)]
thread_local! {
    /// Tests make the decoder panic at this record to prove the boundary catches it.
    pub static PANIC_AT_RECORD: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// `Error::Internal` for a panic at `(input, record, offset)`.
pub fn internal(paths: &[PathBuf], at: (usize, u64, u64), message: String) -> Error {
    let (input, record_index, byte_offset) = at;
    Error::Internal {
        path: paths.get(input).cloned().unwrap_or_default(),
        record_index,
        byte_offset,
        message,
    }
}
