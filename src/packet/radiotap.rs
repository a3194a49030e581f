//! Radiotap headers (link type 127) in front of 802.11 frames: their length, and the Flags field's
//! "frame includes FCS" bit, which says the last four bytes of the frame are a checksum.

use super::Malformed;

/// The Flags field's bit for "the frame ends in its 4-byte FCS".
const FLAG_FCS_AT_END: u8 = 0x10;
/// Present words beyond this are a broken writer (each one names 31 more fields).
const MAX_PRESENT_WORDS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Radiotap<'a> {
    /// The 802.11 frame, without the FCS when the header says one ends it.
    pub frame: &'a [u8],
    pub fcs_at_end: bool,
}

pub fn parse(d: &[u8]) -> Result<Radiotap<'_>, Malformed> {
    // version(1) = 0, pad(1), length(2 LE), present(4 LE), [more present words], fields.
    let (Some(&version), Some(len)) = (d.first(), le16(d, 2)) else {
        return Err(Malformed::new(
            "radiotap",
            "truncated_header",
            format!("{} bytes, header needs 8", d.len()),
        ));
    };
    if version != 0 {
        return Err(Malformed::new(
            "radiotap",
            "bad_version",
            format!("version {version}"),
        ));
    }
    let len = usize::from(len);
    let Some(frame) = d.get(len..).filter(|_| len >= 8) else {
        return Err(Malformed::new(
            "radiotap",
            "bad_length",
            format!("header length {len} in {} bytes", d.len()),
        ));
    };
    let fcs_at_end = flags(d.get(..len).unwrap_or(&[])).is_some_and(|f| f & FLAG_FCS_AT_END != 0);
    let frame = if fcs_at_end {
        frame.get(..frame.len().saturating_sub(4)).unwrap_or(&[])
    } else {
        frame
    };
    Ok(Radiotap { frame, fcs_at_end })
}

/// The Flags field (present bit 1), if present: it follows TSFT (bit 0, 8 bytes aligned to 8),
/// and the fields begin after the last present word (those with bit 31 set chain on).
fn flags(h: &[u8]) -> Option<u8> {
    let first = le32(h, 4)?;
    let mut off = 8;
    let mut word = first;
    let mut words = 1;
    while word & 0x8000_0000 != 0 {
        if words >= MAX_PRESENT_WORDS {
            return None;
        }
        word = le32(h, off)?;
        off += 4;
        words += 1;
    }
    if first & 0b10 == 0 {
        return None;
    }
    if first & 1 != 0 {
        off = off.next_multiple_of(8) + 8;
    }
    h.get(off).copied()
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_flag_after_tsft_and_extended_present() {
        let mut d = vec![
            0x00, 0x00, // version 0, pad
            0x20, 0x00, // length 32
            0x03, 0x00, 0x00, 0x80, // present: TSFT, Flags, more words follow
            0x00, 0x00, 0x00, 0x00, // second present word
            0x00, 0x00, 0x00, 0x00, // padding to TSFT's alignment
            1, 2, 3, 4, 5, 6, 7, 8,    // TSFT (offset 16, aligned to 8)
            0x10, // Flags: FCS at end
            0, 0, 0, 0, 0, 0, 0, // rest of the header
        ];
        assert_eq!(d.len(), 32);
        d.extend([0x88, 0x41, 0xaa, 0xbb]); // frame
        d.extend([0xde, 0xad, 0xbe, 0xef]); // FCS
        let r = parse(&d).unwrap();
        assert!(r.fcs_at_end);
        assert_eq!(r.frame, &[0x88, 0x41, 0xaa, 0xbb]);
    }

    #[test]
    fn no_flags_field_keeps_the_frame_whole() {
        // tcpdump-ieee802.11_htc.pcap-like: present words without the Flags field.
        let d = [0, 0, 8, 0, 0x04, 0, 0, 0, 0x88, 0x01];
        let r = parse(&d).unwrap();
        assert!(!r.fcs_at_end);
        assert_eq!(r.frame, &[0x88, 0x01]);
    }

    #[test]
    fn refused() {
        assert_eq!(parse(&[0, 0, 9]).unwrap_err().kind, "truncated_header");
        assert_eq!(parse(&[1, 0, 8, 0]).unwrap_err().kind, "bad_version");
        assert_eq!(
            parse(&[0, 0, 64, 0, 0, 0, 0, 0]).unwrap_err().kind,
            "bad_length"
        );
        // Present words that never end are not read past the bound.
        let mut d = vec![0, 0, 48, 0];
        d.extend([0xff, 0xff, 0xff, 0xff].repeat(11));
        assert!(!parse(&d).unwrap().fcs_at_end);
    }
}
