//! SMB as far as it leads to named pipes: the NetBIOS framer (overlong messages skipped,
//! resynchronisation mid-stream), SMB2 headers and compound chains, CREATE/CLOSE/READ/WRITE/IOCTL
//! bodies, SMB1 AndX chains, NT Create AndX, Close, TransactNmPipe, Write AndX and Read AndX, and
//! the DCE/RPC decoder fed per pipe.
//!
//! Input: framed chunks (see `common::frames`). Flags: bit 0 sent by the server, bit 1 bytes were
//! lost before this chunk, bit 2 the chunk is one SMB message to wrap in a NetBIOS header (else raw
//! stream bytes), bit 3 (first chunk only) the stream was joined mid-way, bits 4-7 advance the clock.

#![no_main]

mod common;

use _core::anomaly::{Anomalies, Position};
use _core::app::smb::SmbStream;
use _core::app::{SessionDecoders, Sink};
use _core::packet::IPPROTO_TCP;
use _core::proto::smb;
use libfuzzer_sys::fuzz_target;

/// Every wire reader on `m` as one message, whatever it claims to be.
fn stateless(m: &[u8]) {
    std::hint::black_box((smb::message(m), smb::resync(m), smb::netbios_header(m)));
    for (h, part) in smb::smb2_chain(m) {
        std::hint::black_box((
            h,
            smb::create_request_name(part),
            smb::create_response_file_id(part),
            smb::close_request_file_id(part),
            smb::write_request(part),
            smb::read_request_file_id(part),
            smb::read_response_data(part),
            smb::ioctl(part, h.response),
        ));
    }
    for s in smb::smb1_chain(m) {
        std::hint::black_box((
            s.key(),
            smb::nt_create_request_name(&s),
            smb::nt_create_response_fid(&s),
            smb::close1_fid(&s),
            smb::transact_nm_pipe_request(&s),
            smb::transaction_response_data(&s),
            smb::write_andx_request(&s),
            smb::read_andx_request_fid(&s),
            smb::read_andx_response_data(&s),
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    common::catch_stack_overflow();
    let mut apps = SessionDecoders::default();
    let mut an = Anomalies::default();
    let frames = common::frames(data);
    let midstream = frames.first().is_some_and(|(f, _)| f & 8 != 0);
    let mut stream = SmbStream::new(midstream);
    let e = common::ends(IPPROTO_TCP, 50_000, 445);
    let mut ts = 0i64;
    for (flags, chunk) in frames {
        let d = usize::from(flags & 1);
        ts += i64::from(flags >> 4) * 1_000_000;
        stateless(chunk);
        if flags & 2 != 0 {
            stream.gap(d);
        }
        let mut sink = Sink {
            an: &mut an,
            at: Position::default(),
        };
        let bytes = if flags & 4 != 0 {
            let n = chunk.len().min(0x00ff_ffff);
            let mut v = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
            v.extend_from_slice(chunk);
            v
        } else {
            chunk.to_vec()
        };
        let said = apps.smb.data(
            &mut apps.dce,
            &mut apps.learned_ports,
            &mut stream,
            &e,
            d,
            &bytes,
            ts,
            &mut sink,
        );
        std::hint::black_box(said);
    }
    apps.smb.close(&mut apps.dce, stream, &e);
    apps.finish();
    std::hint::black_box((apps.dce.calls.len(), apps.learned_ports.mappings.len()));
});
