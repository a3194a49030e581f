//! Shared by the targets: a cursor that decodes the fuzzer's bytes into the values a target
//! drives the decoders with, the framing of message sequences, fixed flow ends, and a bound on
//! what a compressed input may expand to.
//!
//! Framed inputs (`frames`): a sequence of `flags: u8, len: u16 BE, len bytes` (the last one cut
//! at the end of the input). `fuzz/seed.py` writes the protocol targets' seeds in this format.

#![allow(dead_code)]

use std::io::Read;

use _core::app::OrientedFlow;
use _core::packet::Addr;

/// A forward-only reader over the fuzzer's input; every read past the end is `None` or empty.
pub struct Bytes<'a> {
    b: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Bytes { b }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&x, rest) = self.b.split_first()?;
        self.b = rest;
        Some(x)
    }

    pub fn u16(&mut self) -> Option<u16> {
        let s = self.b.get(..2)?;
        let v = u16::from_be_bytes([s[0], s[1]]);
        self.b = &self.b[2..];
        Some(v)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let s = self.b.get(..4)?;
        let v = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        self.b = &self.b[4..];
        Some(v)
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) << 32 | u64::from(self.u32()?))
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.b.split_at(n.min(self.b.len()));
        self.b = b;
        a
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

/// The framed messages of an input: (flags, bytes).
pub fn frames(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut c = Bytes::new(data);
    let mut out = Vec::new();
    while let Some(flags) = c.u8() {
        let len = c.u16().unwrap_or(0);
        out.push((flags, c.take(usize::from(len))));
    }
    out
}

/// Flow ends as the flow table would hand them to the application decoders.
pub fn ends(proto: u8, client_port: u16, server_port: u16) -> OrientedFlow {
    OrientedFlow {
        flow_id: 1,
        client: Addr::v4([10, 0, 0, 1]),
        client_port,
        server: Addr::v4([10, 0, 0, 2]),
        server_port,
        proto,
    }
}

/// What a gzip or zstd input may expand to before a target skips it: a decompression bomb is a
/// long input, not a bug (a real capture of that size takes as long), and would only make the
/// fuzzer report timeouts.
pub const MAX_EXPANDED: u64 = 256 << 10;

/// Does `data`, if it is gzip or zstd (detected by magic, as `Source` does), decompress to more
/// than `limit` bytes?
pub fn expands_past(data: &[u8], limit: u64) -> bool {
    let reader: Box<dyn Read + '_> = match data {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(data)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => match zstd::stream::read::Decoder::new(data) {
            Ok(d) => Box::new(d),
            Err(_) => return false,
        },
        _ => return false,
    };
    let mut limited = reader.take(limit + 1);
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    // A corrupt stream still counts what it yielded before the error (so does the decoder).
    while let Ok(k @ 1..) = limited.read(&mut buf) {
        n += k as u64;
    }
    n > limit
}

/// libFuzzer's SIGSEGV handler runs on the stack that faulted: after a stack overflow it cannot
/// run, and the process dies without saving the input. Give the handler an alternate stack (once
/// per process; libFuzzer installs its handlers before the first input, after the targets' init).
pub fn catch_stack_overflow() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        const SIZE: usize = 1 << 18;
        let stack: &'static mut [u8] = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        // SAFETY: a leaked (never freed) buffer becomes this thread's signal stack; the handlers
        // are libFuzzer's own, re-registered unchanged but for SA_ONSTACK.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: SIZE,
            };
            if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
                return;
            }
            for sig in [libc::SIGSEGV, libc::SIGBUS] {
                let mut act: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut act) != 0 {
                    continue;
                }
                if act.sa_sigaction == libc::SIG_DFL || act.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                act.sa_flags |= libc::SA_ONSTACK;
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    });
}
