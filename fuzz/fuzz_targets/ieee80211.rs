//! 802.11 data frames and LLC/SNAP.
//!
//! Input: any bytes. The parser must not panic, overflow or read out of bounds; what it says is
//! not checked here (the unit tests beside it do that).

#![no_main]

mod common;

use std::hint::black_box;

use _core::packet::ieee80211;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let _ = black_box(ieee80211::parse(data));
});
