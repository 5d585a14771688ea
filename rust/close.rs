//! Close frame payloads (RFC 6455 sections 5.5.1 and 7.4).

use crate::error::{close_code, Violation};
use crate::utf8;

/// A close code and reason, as carried by a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Status code; 1005 stands for "no code in the frame".
    pub code: u16,
    /// Reason, valid UTF-8.
    pub reason: String,
}

/// True for the codes that may appear in a close frame on the wire: the
/// defined codes 1000-1003 and 1007-1014, and the registered and private
/// ranges 3000-4999. 1004-1006 and 1015 are reserved for local use.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl CloseFrame {
    /// Parses and validates a received close payload.
    ///
    /// An empty payload means "no status code": it reads as 1005. A one-byte
    /// payload is a protocol error (section 5.5.1), an invalid code too
    /// (section 7.4), and a reason that is not UTF-8 is invalid data (1007).
    pub fn parse(payload: &[u8]) -> Result<CloseFrame, Violation> {
        match payload.len() {
            0 => Ok(CloseFrame {
                code: close_code::NO_STATUS_RCVD,
                reason: String::new(),
            }),
            1 => Err(Violation::CloseFrameTooShort),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_valid_code(code) {
                    return Err(Violation::InvalidCloseCode(code));
                }
                let reason = &payload[2..];
                // Positions count from the start of the reason, as Python's
                // `data[2:].decode()` would report them.
                utf8::validate(reason).map_err(|e| Violation::InvalidUtf8 {
                    data: reason.to_vec(),
                    position: e.position.unsigned_abs(),
                })?;
                // Validated just above.
                let reason = String::from_utf8(reason.to_vec()).unwrap_or_default();
                Ok(CloseFrame { code, reason })
            }
        }
    }

    /// Close payload for sending: code then reason. 1005 serialises as empty.
    pub fn serialize(&self) -> Vec<u8> {
        if self.code == close_code::NO_STATUS_RCVD {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(2 + self.reason.len());
        out.extend_from_slice(&self.code.to_be_bytes());
        out.extend_from_slice(self.reason.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_is_1005() {
        let c = CloseFrame::parse(b"").unwrap();
        assert_eq!((c.code, c.reason.as_str()), (1005, ""));
        assert_eq!(c.serialize(), b"");
    }

    #[test]
    fn one_byte_is_too_short() {
        assert_eq!(CloseFrame::parse(b"\x03"), Err(Violation::CloseFrameTooShort));
    }

    #[test]
    fn codes_are_checked() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let p = code.to_be_bytes();
            assert_eq!(CloseFrame::parse(&p), Err(Violation::InvalidCloseCode(code)), "{code}");
            assert_eq!(CloseFrame::parse(&p).unwrap_err().close_code(), 1002);
        }
        for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(CloseFrame::parse(&code.to_be_bytes()).is_ok(), "{code}");
        }
    }

    #[test]
    fn reason_must_be_utf8() {
        let err = CloseFrame::parse(b"\x03\xe8ab\xff").unwrap_err();
        assert_eq!(
            err,
            Violation::InvalidUtf8 {
                data: b"ab\xff".to_vec(),
                position: 2
            }
        );
        assert_eq!(err.close_code(), 1007);
        let ok = CloseFrame::parse("\x03\u{e8}".as_bytes());
        assert!(ok.is_err(), "U+00E8 encodes as two bytes making code 0x03C3");
    }

    #[test]
    fn round_trip() {
        let c = CloseFrame {
            code: 1001,
            reason: "bye ☃".into(),
        };
        assert_eq!(CloseFrame::parse(&c.serialize()).unwrap(), c);
    }
}
