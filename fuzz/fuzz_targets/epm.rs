//! The endpoint mapper's NDR stubs: ept_map requests and responses (towers and their floors),
//! ept_lookup requests and responses, and a bare tower.
//!
//! Input: a byte whose bit 0 says little-endian and bit 1 NDR64 (else NDR), then the stub.

#![no_main]

mod common;

use _core::proto::epm::{self, Tower};
use _core::proto::ndr::Encoding;
use libfuzzer_sys::fuzz_target;

fn tower(t: &Tower) {
    std::hint::black_box((t.ip_endpoint(), t.address()));
    if let Some(i) = &t.interface {
        std::hint::black_box((i.uuid.to_string(), i.version()));
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let Some((&mode, stub)) = data.split_first() else {
        return;
    };
    let le = Encoding {
        le: mode & 1 != 0,
        ndr64: mode & 2 != 0,
    };
    if let Some(t) = epm::parse_tower(stub) {
        tower(&t);
    }
    if let Some(m) = epm::parse_map_request(stub, le) {
        if let Some(t) = &m.tower {
            tower(t);
        }
    }
    if let Some(m) = epm::parse_map_response(stub, le) {
        m.towers.iter().for_each(tower);
    }
    if let Some(l) = epm::parse_lookup_request(stub, le) {
        std::hint::black_box(l);
    }
    if let Some(l) = epm::parse_lookup_response(stub, le) {
        l.entries
            .iter()
            .filter_map(|e| e.tower.as_ref())
            .for_each(tower);
    }
});
