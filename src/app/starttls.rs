//! TLS that starts after a plaintext preamble: SMTP, IMAP, POP3 and XMPP STARTTLS, LDAP's
//! StartTLS extended operation, FTP's `AUTH TLS`, PostgreSQL's SSLRequest, MySQL's SSL request,
//! RDP's X.224 negotiation, and any other protocol that does the same. No port list and no
//! parser per protocol: whatever the preamble said, the switch shows as a client segment that
//! opens with a TLS record carrying a ClientHello on a flow whose client's first payload was not
//! TLS. Such a flow is then decoded as TLS from that segment on, and the client bytes before it
//! are the preamble's length.
//!
//! The test is one byte compare on the payload packets of plaintext flows without a decoder;
//! the record header check follows only for a segment that starts with a handshake record.

use crate::flow::Meta;
use crate::proto::tls as wire;

/// The preamble's length when this client segment switches the flow to TLS: the client spoke
/// plaintext first, no decoder follows the flow (`decoded`: one does), no switch was seen before,
/// and the segment opens with a TLS handshake record holding a ClientHello.
#[inline]
pub fn switch_offset(f: &Meta, decoded: bool, c2s: bool, seq: u32, payload: &[u8]) -> Option<u64> {
    if payload.first() != Some(&wire::CONTENT_HANDSHAKE) {
        return None;
    }
    switch_offset_slow(f, decoded, c2s, seq, payload)
}

/// Whether a payload could be the segment `switch_offset` looks for: packets that cannot skip
/// the application layer.
#[inline]
pub fn may_switch(payload: &[u8]) -> bool {
    payload.first() == Some(&wire::CONTENT_HANDSHAKE)
}

#[inline(never)]
fn switch_offset_slow(f: &Meta, decoded: bool, c2s: bool, seq: u32, payload: &[u8]) -> Option<u64> {
    let plaintext_first = f.first_tls.first().copied().flatten() == Some(false);
    let switched = f.info.as_ref().is_some_and(|i| i.tls_offset.is_some());
    if !c2s || !plaintext_first || switched || decoded {
        return None;
    }
    if !wire::looks_like_tls(payload, wire::CLIENT_HELLO) {
        return None;
    }
    let base = f.stream_base.first().copied().unwrap_or(seq);
    Some(u64::from(seq.wrapping_sub(base)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowLimits, FlowTable, PacketMeta};
    use crate::packet::tcp::SYN;
    use crate::packet::{Addr, IPPROTO_TCP};

    /// `16 03 01 00 2f 01`: a handshake record (TLS 1.0 record version, 47 bytes) opening with a
    /// ClientHello (type 1). The rest of the record does not matter here.
    const CLIENT_HELLO_HEAD: [u8; 6] = [0x16, 0x03, 0x01, 0x00, 0x2f, 0x01];

    /// A session-less flow table, as the tests need one.
    #[derive(Debug)]
    struct NoSession;

    impl crate::flow::Session for NoSession {
        fn swap(&mut self) {}
    }

    fn flow_with(first_c2s: Option<bool>, base: u32) -> Meta {
        let p = PacketMeta {
            ts: 0,
            first_ts: 0,
            frames: 1,
            frame_bytes: 74,
            src: Addr::v4([10, 16, 1, 11]),
            dst: Addr::v4([142, 250, 123, 27]),
            sport: 34634,
            dport: 25,
            proto: IPPROTO_TCP,
            vlan: None,
            tcp_flags: SYN,
            payload_len: 0,
            capture: 0,
            tunnel: crate::packet::Tunnel::NONE,
        };
        let mut table = FlowTable::<NoSession>::new(FlowLimits::default());
        let slot = table.update_at(&p, 0).slot;
        let mut f = table.get_mut(slot).unwrap();
        f.first_tls[0] = first_c2s;
        f.stream_base[0] = base;
        f.meta.clone()
    }

    #[test]
    fn a_client_hello_after_plaintext_switches_at_the_preamble_length() {
        // sv-smtp-startssl.pcap: "EHLO ...\r\n" (22 bytes) and "STARTTLS\r\n" (10) before the
        // ClientHello, whose segment starts 32 bytes after the client's first byte.
        let f = flow_with(Some(false), 1000);
        assert_eq!(
            switch_offset(&f, false, true, 1032, &CLIENT_HELLO_HEAD),
            Some(32)
        );
        // Sequence numbers wrap.
        let f = flow_with(Some(false), u32::MAX - 3);
        assert_eq!(
            switch_offset(&f, false, true, 4, &CLIENT_HELLO_HEAD),
            Some(8)
        );
    }

    #[test]
    fn no_switch_without_plaintext_first_or_from_the_server_or_for_other_records() {
        // The flow opened with TLS: its security is `tls`, not an upgrade.
        assert_eq!(
            switch_offset(
                &flow_with(Some(true), 0),
                false,
                true,
                9,
                &CLIENT_HELLO_HEAD
            ),
            None
        );
        // The client never spoke.
        assert_eq!(
            switch_offset(&flow_with(None, 0), false, true, 9, &CLIENT_HELLO_HEAD),
            None
        );
        let f = flow_with(Some(false), 0);
        // A ServerHello (type 2) or a ClientHello from the server side.
        let server_hello = [0x16, 0x03, 0x03, 0x00, 0x2f, 0x02];
        assert_eq!(switch_offset(&f, false, true, 9, &server_hello), None);
        assert_eq!(switch_offset(&f, false, false, 9, &CLIENT_HELLO_HEAD), None);
        // PostgreSQL's StartupMessage, which stays plaintext; a record version 3.9; nothing.
        let startup = [0x00, 0x00, 0x00, 0x54, 0x00, 0x03, 0x00, 0x00];
        assert_eq!(switch_offset(&f, false, true, 9, &startup), None);
        assert_eq!(
            switch_offset(&f, false, true, 9, &[0x16, 0x03, 0x09, 0x00, 0x2f, 0x01]),
            None
        );
        assert_eq!(switch_offset(&f, false, true, 9, &[]), None);
    }
}
