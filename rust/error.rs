//! Errors of the core, one enum per concern.
//!
//! Each variant knows what the peer is told: a close code for frame-level
//! violations (RFC 6455 section 7.4.1), an HTTP status for handshake errors.
//! The Python binding converts them to `ferrows.exceptions` in one place.

use std::fmt;

/// Close codes the core sends or reports (RFC 6455 section 7.4.1); the
/// Python layer has the full list (`ferrows.frames.CloseCode`).
pub mod close_code {
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1005: no status code in the close frame (never sent).
    pub const NO_STATUS_RCVD: u16 = 1005;
    /// 1006: connection lost without a close frame (never sent).
    pub const ABNORMAL_CLOSURE: u16 = 1006;
    /// 1007: invalid data, for example bad UTF-8 in a text message.
    pub const INVALID_DATA: u16 = 1007;
    /// 1009: message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// A violation of RFC 6455 or RFC 7692 by the peer: the connection fails with
/// the close code of [`Violation::close_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// RSV bits set that no negotiated extension claims (section 5.2).
    ReservedBits(u8),
    /// Opcode 3-7 or 11-15 (section 5.2).
    ReservedOpcode(u8),
    /// Control frame with FIN clear (section 5.5).
    FragmentedControlFrame,
    /// Control frame payload over 125 bytes (section 5.5).
    ControlFrameTooLong(u64),
    /// Unmasked frame sent by a client (section 5.1).
    UnmaskedFrame,
    /// Masked frame sent by a server (section 5.1).
    MaskedFrame,
    /// Length with the most significant bit set (section 5.2).
    InvalidLength,
    /// Continuation frame without a message in progress (section 5.4).
    UnexpectedContinuation,
    /// New data frame while a fragmented message is in progress (section 5.4).
    ExpectedContinuation,
    /// Close frame with a one-byte payload (section 5.5.1).
    CloseFrameTooShort,
    /// Close code not allowed on the wire (section 7.4).
    InvalidCloseCode(u16),
    /// Text or close reason that is not UTF-8 (section 8.1).
    InvalidUtf8 {
        /// The bytes that failed to decode: the frame's payload (for a
        /// close frame, its reason), preceded by the bytes of a character
        /// begun in the previous frame when the invalid sequence started
        /// there. The Python binding builds its `UnicodeDecodeError` from
        /// them; errors are rare, so the copy costs nothing that matters.
        data: Vec<u8>,
        /// Offset of the first byte of the invalid sequence within `data`.
        position: usize,
    },
    /// Message over the size limit, as the parts of the core that check
    /// it report it; the connection restates it as [`Violation::FrameTooBig`]
    /// before failing.
    MessageTooBig {
        /// Size reached, or announced by a frame header.
        size: u64,
        /// Configured limit.
        max_size: usize,
    },
    /// A frame that takes its message over the size limit, in websockets'
    /// terms (its `PayloadTooBig`), which users match on: "frame with 2
    /// bytes after reading 2 bytes exceeds limit of 3 bytes".
    FrameTooBig {
        /// Bytes of the frame (announced by its header, or decoded);
        /// `None` when decompression stopped at the limit, before the
        /// frame's size was known.
        size: Option<u64>,
        /// Bytes of the message received in its earlier frames; `None` for
        /// the first frame of a message.
        current: Option<u64>,
        /// Limit of the whole message.
        max_size: usize,
    },
    /// Too many fragments in one message.
    TooManyFragments {
        /// Configured limit.
        max_fragments: usize,
    },
    /// An extension rejected a frame (for example invalid deflate data).
    Extension {
        /// Close code the extension chose (1002, 1007 or 1009).
        code: u16,
        /// Description for logs.
        reason: String,
    },
    /// The peer closed the TCP connection without a closing handshake,
    /// between frames.
    UnexpectedEof,
    /// The peer closed the TCP connection in the middle of a frame:
    /// `received` of the `expected` bytes of the part being read (the first
    /// two header bytes, the extended length, the masking key or the
    /// payload), as websockets counts them.
    TruncatedFrame {
        /// Bytes of that part received.
        received: u64,
        /// Length of that part.
        expected: u64,
    },
}

impl Violation {
    /// Close code sent to the peer when failing the connection.
    pub fn close_code(&self) -> u16 {
        use close_code::*;
        match self {
            Violation::InvalidUtf8 { .. } => INVALID_DATA,
            Violation::MessageTooBig { .. } | Violation::FrameTooBig { .. } | Violation::TooManyFragments { .. } => {
                MESSAGE_TOO_BIG
            }
            Violation::Extension { code, .. } => *code,
            Violation::UnexpectedEof | Violation::TruncatedFrame { .. } => ABNORMAL_CLOSURE,
            _ => PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ReservedBits(bits) => {
                let names: Vec<&str> = [(4, "RSV1"), (2, "RSV2"), (1, "RSV3")]
                    .iter()
                    .filter(|(bit, _)| bits & bit != 0)
                    .map(|(_, n)| *n)
                    .collect();
                write!(f, "reserved bits must be 0: {}", names.join(", "))
            }
            // websockets' wording, which users match on: the opcode and the
            // side are in the frame, not the message.
            Violation::ReservedOpcode(_) => write!(f, "invalid opcode"),
            Violation::FragmentedControlFrame => write!(f, "fragmented control frame"),
            Violation::ControlFrameTooLong(n) => write!(f, "control frame too long: {n} bytes"),
            Violation::UnmaskedFrame | Violation::MaskedFrame => write!(f, "incorrect masking"),
            Violation::InvalidLength => write!(f, "invalid payload length"),
            Violation::UnexpectedContinuation => write!(f, "unexpected continuation frame"),
            Violation::ExpectedContinuation => write!(f, "expected a continuation frame"),
            Violation::CloseFrameTooShort => write!(f, "close frame too short"),
            Violation::InvalidCloseCode(c) => write!(f, "invalid status code {c}"),
            // Python's reason for the UnicodeDecodeError, then its start, as
            // websockets builds the close reason.
            Violation::InvalidUtf8 { data, position } => {
                let (_, reason) = utf8_error_span(data, *position);
                write!(f, "{reason} at position {}", (*position).min(data.len()))
            }
            Violation::MessageTooBig { size, max_size } => {
                write!(f, "frame with {size} bytes exceeds limit of {max_size} bytes")
            }
            Violation::FrameTooBig {
                size,
                current,
                max_size,
            } => {
                f.write_str("frame ")?;
                if let Some(size) = size {
                    write!(f, "with {size} bytes ")?;
                }
                if let Some(current) = current {
                    write!(f, "after reading {current} bytes ")?;
                }
                write!(f, "exceeds limit of {max_size} bytes")
            }
            Violation::TooManyFragments { max_fragments } => {
                write!(f, "more than {max_fragments} fragments")
            }
            Violation::Extension { reason, .. } => f.write_str(reason),
            Violation::UnexpectedEof => write!(f, "unexpected end of stream"),
            Violation::TruncatedFrame { received, expected } => {
                write!(f, "stream ends after {received} bytes, expected {expected} bytes")
            }
        }
    }
}

impl std::error::Error for Violation {}

/// The end of the invalid UTF-8 sequence that starts at `position` in
/// `data`, and CPython's reason for it ("invalid start byte", "invalid
/// continuation byte", "unexpected end of data"): what `data.decode()`
/// reports in Python, so that the close reason and the `UnicodeDecodeError`
/// say what websockets' do.
pub fn utf8_error_span(data: &[u8], position: usize) -> (usize, &'static str) {
    let start = position.min(data.len());
    match std::str::from_utf8(&data[start..]) {
        // The core reports the first invalid sequence, so decoding from it
        // fails at once; the arm after this one covers the rest.
        Err(e) if e.valid_up_to() == 0 => match e.error_len() {
            None => (data.len(), "unexpected end of data"),
            Some(len) if matches!(data[start], 0x80..=0xc1 | 0xf5..=0xff) => (start + len, "invalid start byte"),
            Some(len) => (start + len, "invalid continuation byte"),
        },
        _ => ((start + 1).min(data.len()), "invalid utf-8"),
    }
}

/// Misuse of the sending API by the local application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not in a state that allows this frame.
    InvalidState(&'static str),
    /// Fragmentation misuse, invalid close code, oversized control frame...
    Protocol(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::InvalidState(state) => write!(f, "connection is {state}"),
            SendError::Protocol(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for SendError {}

/// An HTTP/1.1 message that cannot be an opening handshake. Each variant
/// knows the status a server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Request line over the line limit.
    RequestLineTooLong {
        /// Configured limit, in bytes with the CRLF, as websockets counts.
        limit: usize,
        /// Bytes of the line read when it crossed the limit.
        read: usize,
    },
    /// Status line over the line limit.
    StatusLineTooLong {
        /// Configured limit.
        limit: usize,
        /// Bytes of the line read.
        read: usize,
    },
    /// One header line over the line limit.
    HeaderLineTooLong {
        /// Configured limit.
        limit: usize,
        /// Bytes of the line read.
        read: usize,
    },
    /// More header lines than allowed.
    TooManyHeaders {
        /// Configured limit.
        limit: usize,
    },
    /// Response body larger than allowed.
    BodyTooLarge {
        /// Configured limit.
        limit: usize,
    },
    /// A line not ending with CRLF, or another framing error.
    InvalidLine(String),
    /// Request line that is not `METHOD target HTTP/x.y`.
    InvalidRequestLine(String),
    /// Status line that is not `HTTP/x.y code reason`.
    InvalidStatusLine(String),
    /// A status line with a protocol other than HTTP/1.1: the whole line.
    UnsupportedProtocol(String),
    /// Header line that is not `name: value`.
    InvalidHeader(String),
    /// A request that carries a body.
    RequestBody,
    /// Transfer-Encoding, which the handshake does not support.
    TransferEncoding,
    /// Content-Length that is not a number.
    InvalidContentLength(String),
    /// The peer closed the connection before the message was complete.
    Eof(&'static str),
}

impl HttpError {
    /// Status code a server answers with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::RequestLineTooLong { .. } => 414,
            HttpError::HeaderLineTooLong { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::UnsupportedProtocol(_) => 505,
            HttpError::TransferEncoding => 501,
            _ => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // websockets' wording, which users match on.
            HttpError::RequestLineTooLong { limit, read }
            | HttpError::StatusLineTooLong { limit, read }
            | HttpError::HeaderLineTooLong { limit, read } => {
                write!(f, "read {read} bytes, expected no more than {limit} bytes")
            }
            HttpError::TooManyHeaders { limit } => write!(f, "expected no more than {limit} headers"),
            HttpError::BodyTooLarge { limit } => write!(f, "body too large: over {limit} bytes"),
            HttpError::InvalidLine(m) => write!(f, "invalid HTTP line: {m}"),
            HttpError::InvalidRequestLine(l) => write!(f, "invalid HTTP request line: {l}"),
            HttpError::InvalidStatusLine(l) => write!(f, "invalid HTTP status line: {l}"),
            HttpError::UnsupportedProtocol(p) => write!(f, "unsupported protocol; expected HTTP/1.1: {p}"),
            HttpError::InvalidHeader(l) => write!(f, "invalid HTTP header line: {l}"),
            HttpError::RequestBody => write!(f, "unsupported request body"),
            HttpError::TransferEncoding => write!(f, "transfer codings aren't supported"),
            HttpError::InvalidContentLength(v) => write!(f, "invalid Content-Length: {v}"),
            HttpError::Eof(what) => write!(f, "connection closed while reading {what}"),
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_map_to_their_close_codes() {
        assert_eq!(Violation::UnmaskedFrame.close_code(), 1002);
        assert_eq!(Violation::ReservedBits(4).close_code(), 1002);
        let invalid = Violation::InvalidUtf8 {
            data: b"abc\xff".to_vec(),
            position: 3,
        };
        assert_eq!(invalid.close_code(), 1007);
        assert_eq!(Violation::MessageTooBig { size: 10, max_size: 5 }.close_code(), 1009);
        assert_eq!(Violation::TooManyFragments { max_fragments: 4 }.close_code(), 1009);
        assert_eq!(Violation::UnexpectedEof.close_code(), 1006);
        let truncated = Violation::TruncatedFrame {
            received: 1,
            expected: 2,
        };
        assert_eq!(truncated.close_code(), 1006);
        let too_big = Violation::FrameTooBig {
            size: None,
            current: None,
            max_size: 3,
        };
        assert_eq!(too_big.close_code(), 1009);
        assert_eq!(
            Violation::Extension {
                code: 1007,
                reason: "x".into()
            }
            .close_code(),
            1007
        );
    }

    #[test]
    fn http_errors_map_to_statuses() {
        assert_eq!(
            HttpError::RequestLineTooLong {
                limit: 8192,
                read: 8202
            }
            .status(),
            414
        );
        assert_eq!(
            HttpError::HeaderLineTooLong {
                limit: 8192,
                read: 8202
            }
            .status(),
            431
        );
        assert_eq!(
            HttpError::HeaderLineTooLong {
                limit: 8192,
                read: 8202
            }
            .to_string(),
            "read 8202 bytes, expected no more than 8192 bytes"
        );
        assert_eq!(
            HttpError::TooManyHeaders { limit: 128 }.to_string(),
            "expected no more than 128 headers"
        );
        assert_eq!(HttpError::TooManyHeaders { limit: 128 }.status(), 431);
        assert_eq!(HttpError::UnsupportedProtocol("HTTP/1.0".into()).status(), 505);
        assert_eq!(HttpError::InvalidHeader("x".into()).status(), 400);
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            Violation::ReservedBits(6).to_string(),
            "reserved bits must be 0: RSV1, RSV2"
        );
        assert_eq!(
            Violation::MessageTooBig {
                size: 2000,
                max_size: 1000
            }
            .to_string(),
            "frame with 2000 bytes exceeds limit of 1000 bytes"
        );
    }

    #[test]
    fn messages_are_worded_as_websockets_words_them() {
        let cases = [
            (Violation::ReservedOpcode(15), "invalid opcode"),
            (Violation::UnmaskedFrame, "incorrect masking"),
            (Violation::MaskedFrame, "incorrect masking"),
            (Violation::UnexpectedEof, "unexpected end of stream"),
            (
                Violation::TruncatedFrame {
                    received: 1,
                    expected: 2,
                },
                "stream ends after 1 bytes, expected 2 bytes",
            ),
            (
                Violation::FrameTooBig {
                    size: Some(4),
                    current: None,
                    max_size: 3,
                },
                "frame with 4 bytes exceeds limit of 3 bytes",
            ),
            (
                Violation::FrameTooBig {
                    size: Some(2),
                    current: Some(2),
                    max_size: 3,
                },
                "frame with 2 bytes after reading 2 bytes exceeds limit of 3 bytes",
            ),
            (
                Violation::FrameTooBig {
                    size: None,
                    current: Some(5),
                    max_size: 8,
                },
                "frame after reading 5 bytes exceeds limit of 8 bytes",
            ),
            (
                Violation::InvalidUtf8 {
                    data: b"\xff\xff".to_vec(),
                    position: 0,
                },
                "invalid start byte at position 0",
            ),
            (
                Violation::InvalidUtf8 {
                    data: b"ab\xe2\x28".to_vec(),
                    position: 2,
                },
                "invalid continuation byte at position 2",
            ),
            (
                Violation::InvalidUtf8 {
                    data: b"a\xe2\x82".to_vec(),
                    position: 1,
                },
                "unexpected end of data at position 1",
            ),
        ];
        for (v, text) in cases {
            assert_eq!(v.to_string(), text, "{v:?}");
        }
    }
}
