//! ERSPAN type II and III headers; the first byte picks the type.
//!
//! Input: any bytes. The parser must not panic, overflow or read out of bounds; what it says is
//! not checked here (the unit tests beside it do that).

#![no_main]

mod common;

use std::hint::black_box;

use _core::packet::erspan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _ = black_box(erspan::parse(rest, 2 + (pick & 1)));
});
