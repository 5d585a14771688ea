//! Frame headers: parsing and building (RFC 6455 section 5.2).
//!
//! Parsing is resumable: with too few bytes it returns `Ok(None)` and consumes
//! nothing, so the caller can retry once more data has arrived.

use crate::error::Violation;
use crate::mask::extend_masked;

/// Frame opcodes (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// First frame of a text message.
    Text = 0x1,
    /// First frame of a binary message.
    Binary = 0x2,
    /// Close control frame.
    Close = 0x8,
    /// Ping control frame.
    Ping = 0x9,
    /// Pong control frame.
    Pong = 0xA,
}

impl OpCode {
    /// Decodes the 4-bit opcode field; reserved values are a violation.
    pub fn from_u8(value: u8) -> Result<Self, Violation> {
        Ok(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(Violation::ReservedOpcode(other)),
        })
    }

    /// Close, ping and pong (opcodes with the high bit set).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// RSV1 bit as it sits in the first header byte, shifted down to bits 2..0
/// (RSV1 = 4, RSV2 = 2, RSV3 = 1).
pub const RSV1: u8 = 0b100;
/// RSV2 bit.
pub const RSV2: u8 = 0b010;
/// RSV3 bit.
pub const RSV3: u8 = 0b001;

/// Largest payload of a control frame (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: last frame of a message.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (see [`RSV1`]).
    pub rsv: u8,
    /// Opcode.
    pub opcode: OpCode,
    /// Masking key, present on frames sent by clients.
    pub mask: Option<[u8; 4]>,
    /// Payload length announced by the header.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns the header and its length in bytes, `Ok(None)` when `buf` is
    /// too short, or the violation found in the header. Checks that depend
    /// only on the header itself (reserved opcodes, control frame rules, the
    /// 64-bit length's top bit) are done here, before any payload is read.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, Violation> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let b0 = buf[0];
        let b1 = buf[1];
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let (payload_len, mut pos) = match len7 {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(b);
                // Section 5.2: "the most significant bit MUST be 0".
                if n >> 63 != 0 {
                    return Err(Violation::InvalidLength);
                }
                (n, 10)
            }
            n => (n as u64, 2),
        };
        if opcode.is_control() {
            // Section 5.5: control frames are never fragmented and carry at
            // most 125 bytes.
            if !fin {
                return Err(Violation::FragmentedControlFrame);
            }
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Violation::ControlFrameTooLong(payload_len));
            }
        }
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let mut m = [0u8; 4];
            m.copy_from_slice(&buf[pos..pos + 4]);
            pos += 4;
            Some(m)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Length of the header that [`write_header`] produces.
    pub fn encoded_len(payload_len: usize, masked: bool) -> usize {
        let base = if payload_len < 126 {
            2
        } else if payload_len <= 0xFFFF {
            4
        } else {
            10
        };
        base + if masked { 4 } else { 0 }
    }
}

/// Appends a frame header to `out`, using the shortest length form.
pub fn write_header(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: OpCode, payload_len: usize, mask: Option<[u8; 4]>) {
    let b0 = (if fin { 0x80 } else { 0 }) | ((rsv & 0x7) << 4) | opcode as u8;
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    if payload_len < 126 {
        out.push(mbit | payload_len as u8);
    } else if payload_len <= 0xFFFF {
        out.push(mbit | 126);
        out.extend_from_slice(&(payload_len as u16).to_be_bytes());
    } else {
        out.push(mbit | 127);
        out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
}

/// Appends a whole frame to `out`: header, then the payload, masked if a key
/// is given. The payload is copied once, straight into the output buffer.
pub fn write_frame(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    out.reserve(FrameHeader::encoded_len(payload.len(), mask.is_some()) + payload.len());
    write_header(out, fin, rsv, opcode, payload.len(), mask);
    match mask {
        Some(m) => extend_masked(out, payload, m, 0),
        None => out.extend_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::apply_mask;

    fn parse_all(buf: &[u8]) -> (FrameHeader, Vec<u8>) {
        let (h, n) = FrameHeader::parse(buf).unwrap().unwrap();
        let mut payload = buf[n..n + h.payload_len as usize].to_vec();
        if let Some(m) = h.mask {
            apply_mask(&mut payload, m, 0);
        }
        (h, payload)
    }

    // RFC 6455 section 5.7 examples.
    #[test]
    fn rfc_single_frame_unmasked_text() {
        let buf = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, p) = parse_all(&buf);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.mask, None);
        assert_eq!(p, b"Hello");
        let mut out = Vec::new();
        write_frame(&mut out, true, 0, OpCode::Text, b"Hello", None);
        assert_eq!(out, buf);
    }

    #[test]
    fn rfc_single_frame_masked_text() {
        let buf = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, p) = parse_all(&buf);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(p, b"Hello");
        let mut out = Vec::new();
        write_frame(
            &mut out,
            true,
            0,
            OpCode::Text,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(out, buf);
    }

    #[test]
    fn rfc_fragmented_unmasked_text() {
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        let (h1, p1) = parse_all(&first);
        let (h2, p2) = parse_all(&second);
        assert!(!h1.fin && h1.opcode == OpCode::Text && p1 == b"Hel");
        assert!(h2.fin && h2.opcode == OpCode::Continuation && p2 == b"lo");
    }

    #[test]
    fn rfc_ping_and_pong() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, p) = parse_all(&ping);
        assert_eq!((h.opcode, p.as_slice()), (OpCode::Ping, &b"Hello"[..]));
        let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, p) = parse_all(&pong);
        assert_eq!((h.opcode, p.as_slice()), (OpCode::Pong, &b"Hello"[..]));
    }

    #[test]
    fn rfc_256_bytes_and_64k_binary() {
        let mut out = Vec::new();
        write_header(&mut out, true, 0, OpCode::Binary, 256, None);
        assert_eq!(out, [0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        write_header(&mut out, true, 0, OpCode::Binary, 65536, None);
        assert_eq!(out, [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn all_three_length_forms_round_trip_at_their_edges() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = Vec::new();
                write_frame(&mut out, false, RSV1, OpCode::Binary, &payload, mask);
                assert_eq!(out.len(), FrameHeader::encoded_len(len, mask.is_some()) + len);
                let (h, p) = parse_all(&out);
                assert_eq!((h.fin, h.rsv, h.payload_len), (false, RSV1, len as u64));
                assert_eq!(p, payload);
            }
        }
    }

    #[test]
    fn incomplete_headers_need_more() {
        let mut out = Vec::new();
        write_header(&mut out, true, 0, OpCode::Binary, 70000, Some([1, 2, 3, 4]));
        for cut in 0..out.len() {
            assert_eq!(FrameHeader::parse(&out[..cut]), Ok(None), "cut={cut}");
        }
        assert!(FrameHeader::parse(&out).unwrap().is_some());
    }

    #[test]
    fn header_violations() {
        assert_eq!(FrameHeader::parse(&[0x83, 0x00]), Err(Violation::ReservedOpcode(3)));
        assert_eq!(FrameHeader::parse(&[0x8B, 0x00]), Err(Violation::ReservedOpcode(11)));
        assert_eq!(
            FrameHeader::parse(&[0x09, 0x00]),
            Err(Violation::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 0x7E, 0x00, 0x7E]),
            Err(Violation::ControlFrameTooLong(126))
        );
        let huge = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&huge), Err(Violation::InvalidLength));
        // 2^62 is a legal length form: the connection refuses it by max_size.
        let big = [0x82, 0x7F, 0x40, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&big).unwrap().unwrap().0.payload_len, 1 << 62);
    }
}
