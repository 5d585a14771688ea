//! `FrameHeader::parse` on arbitrary bytes: never panics; a parsed header is
//! found again in its own bytes, and any shorter prefix of them is "need
//! more", never a violation (incomplete input is not an error); violations
//! found in a header are all protocol errors (1002).
#![no_main]

use ferrows::frame::FrameHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(None) => assert!(data.len() < 14, "a header is at most 14 bytes"),
        Ok(Some((header, n))) => {
            assert!((2..=14).contains(&n) && n <= data.len());
            let expected =
                2 + match header.payload_len {
                    0..=125 => 0,
                    126..=0xFFFF => 2,
                    _ => 8,
                } + if header.mask.is_some() { 4 } else { 0 };
            // Non-minimal length encodings are accepted (RFC 6455 section 5.2
            // only recommends minimal ones), so n can exceed `expected`.
            assert!(n >= expected);
            assert!(header.payload_len >> 63 == 0);
            if header.opcode.is_control() {
                assert!(header.fin && header.payload_len <= 125);
            }
            assert_eq!(FrameHeader::parse(&data[..n]), Ok(Some((header, n))));
            for short in 0..n {
                assert_eq!(FrameHeader::parse(&data[..short]), Ok(None), "prefix of {short} bytes");
            }
        }
        Err(violation) => assert_eq!(violation.close_code(), 1002, "{violation}"),
    }
});
