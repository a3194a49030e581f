//! GRE headers (keys, sequence numbers, PPTP's enhanced GRE), then the ERSPAN header or the payload they announce.
//!
//! Input: any bytes. The parser must not panic, overflow or read out of bounds; what it says is
//! not checked here (the unit tests beside it do that).

#![no_main]

mod common;

use std::hint::black_box;

use _core::packet::{erspan, gre};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    if let Ok(g) = gre::parse(data) {
        let _ = black_box(g.inner());
        let _ = black_box(erspan::parse(g.payload, 2));
        let _ = black_box(erspan::parse(g.payload, 3));
    }
});
