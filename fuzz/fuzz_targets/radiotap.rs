//! radiotap headers, then the 802.11 frame they carry.
//!
//! Input: any bytes. The parser must not panic, overflow or read out of bounds; what it says is
//! not checked here (the unit tests beside it do that).

#![no_main]

mod common;

use std::hint::black_box;

use _core::packet::{ieee80211, radiotap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    if let Ok(r) = radiotap::parse(data) {
        let _ = black_box(ieee80211::parse(r.frame));
    }
});
