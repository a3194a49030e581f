//! PPP frames (link types 9 and 50, Cisco HDLC) and PPPoE session frames; the first byte picks which.
//!
//! Input: any bytes. The parser must not panic, overflow or read out of bounds; what it says is
//! not checked here (the unit tests beside it do that).

#![no_main]

mod common;

use std::hint::black_box;

use _core::packet::ppp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick & 1 == 0 {
        let _ = black_box(ppp::parse(rest));
    } else {
        let _ = black_box(ppp::parse_pppoe(rest));
    }
});
