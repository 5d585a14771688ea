//! Reassembly of fragmented messages (RFC 6455 section 5.4).

use crate::error::Violation;
use crate::frame::OpCode;
use crate::utf8::Utf8Validator;

/// The message being received: its type, size so far, fragment count, the
/// UTF-8 state of a text message and, when assembling, the bytes so far.
#[derive(Debug, Default)]
pub struct MessageState {
    /// Opcode of the first frame, `None` between messages.
    pub opcode: Option<OpCode>,
    /// Decoded bytes received so far in this message.
    pub size: u64,
    /// Frames received so far in this message.
    pub fragments: usize,
    /// Payload collected so far (assembling mode only).
    pub buffer: Vec<u8>,
    utf8: Utf8Validator,
}

impl MessageState {
    /// True while a fragmented message is in progress.
    pub fn in_progress(&self) -> bool {
        self.opcode.is_some()
    }

    /// True when the message in progress is text.
    pub fn is_text(&self) -> bool {
        self.opcode == Some(OpCode::Text)
    }

    /// Starts a message with its first frame's opcode.
    pub fn start(&mut self, opcode: OpCode) {
        self.opcode = Some(opcode);
        self.size = 0;
        self.fragments = 0;
        self.utf8.reset();
    }

    /// Accounts for one decoded frame: fragment count, size limit, and UTF-8
    /// validity for text (checked on this frame, so a bad byte fails here and
    /// not at the end of the message).
    pub fn account(
        &mut self,
        payload: &[u8],
        fin: bool,
        max_size: Option<usize>,
        max_fragments: Option<usize>,
        check_text: bool,
    ) -> Result<(), Violation> {
        self.fragments += 1;
        if let Some(max) = max_fragments {
            if self.fragments > max {
                return Err(Violation::TooManyFragments { max_fragments: max });
            }
        }
        self.size += payload.len() as u64;
        if let Some(max) = max_size {
            if self.size > max as u64 {
                return Err(Violation::MessageTooBig {
                    size: self.size,
                    max_size: max,
                });
            }
        }
        if check_text && self.is_text() {
            self.utf8
                .feed(payload)
                .map_err(|e| invalid_utf8(self.utf8.pending(), payload, e.position))?;
            if fin {
                self.utf8
                    .finish()
                    .map_err(|e| invalid_utf8(self.utf8.pending(), payload, payload.len() as isize + e.position))?;
            }
        }
        Ok(())
    }

    /// Ends the message, returning its opcode and the collected bytes.
    ///
    /// The size goes back to zero: the next frame's header is checked
    /// against the limit before that frame starts a message, and must not be
    /// charged for the message that just ended.
    pub fn finish(&mut self) -> (OpCode, Vec<u8>) {
        self.size = 0;
        self.fragments = 0;
        let opcode = self.opcode.take().unwrap_or(OpCode::Binary);
        (opcode, std::mem::take(&mut self.buffer))
    }

    /// Remaining decoded bytes allowed for this message.
    pub fn remaining(&self, max_size: Option<usize>) -> Option<usize> {
        max_size.map(|m| (m as u64).saturating_sub(self.size) as usize)
    }
}

/// The violation for an invalid sequence at `position` in `payload`, with
/// the bytes it is reported with. A negative position means the sequence
/// began `-position` bytes before the payload: those bytes are the first
/// ones `carried` over by the validator from the previous frames.
fn invalid_utf8(carried: &[u8], payload: &[u8], position: isize) -> Violation {
    match usize::try_from(position) {
        Ok(position) => Violation::InvalidUtf8 {
            data: payload.to_vec(),
            position,
        },
        Err(_) => {
            let before = position.unsigned_abs().min(carried.len());
            let mut data = Vec::with_capacity(before + payload.len());
            data.extend_from_slice(&carried[..before]);
            data.extend_from_slice(payload);
            Violation::InvalidUtf8 { data, position: 0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_size_and_fragments() {
        let mut m = MessageState::default();
        m.start(OpCode::Binary);
        assert!(m.account(b"abc", false, Some(5), Some(2), true).is_ok());
        assert_eq!(m.remaining(Some(5)), Some(2));
        assert_eq!(
            m.account(b"abc", false, Some(5), Some(2), true),
            Err(Violation::MessageTooBig { size: 6, max_size: 5 })
        );
        let mut m = MessageState::default();
        m.start(OpCode::Binary);
        for _ in 0..2 {
            m.account(b"", false, None, Some(2), true).unwrap();
        }
        assert_eq!(
            m.account(b"", true, None, Some(2), true),
            Err(Violation::TooManyFragments { max_fragments: 2 })
        );
    }

    #[test]
    fn finish_resets_the_size() {
        let mut m = MessageState::default();
        m.start(OpCode::Binary);
        m.account(b"abcd", true, Some(5), None, true).unwrap();
        m.finish();
        assert_eq!(m.remaining(Some(5)), Some(5));
    }

    #[test]
    fn text_is_validated_per_frame() {
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert!(m.account(b"\xe2\x82", false, None, None, true).is_ok());
        assert!(m.account(b"\xac ok", false, None, None, true).is_ok());
        assert!(
            m.account(b"\xe2", true, None, None, true).is_err(),
            "truncated at the end of the message"
        );
    }

    #[test]
    fn invalid_utf8_carries_the_bytes_that_failed() {
        let invalid = |data: &[u8], position| Violation::InvalidUtf8 {
            data: data.to_vec(),
            position,
        };
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert_eq!(m.account(b"ok\xff", true, None, None, true), Err(invalid(b"ok\xff", 2)));
        // A character begun in the previous frame and broken in this one.
        m.start(OpCode::Text);
        m.account(b"ab\xe2\x82", false, None, None, true).unwrap();
        assert_eq!(m.account(b"x", true, None, None, true), Err(invalid(b"\xe2\x82x", 0)));
        // Truncated at the end of the message, partly in the last frame.
        m.start(OpCode::Text);
        m.account(b"\xf0\x9d", false, None, None, true).unwrap();
        assert_eq!(
            m.account(b"\x84", true, None, None, true),
            Err(invalid(b"\xf0\x9d\x84", 0))
        );
        m.start(OpCode::Text);
        assert_eq!(
            m.account(b"abc\xf0\x9d", true, None, None, true),
            Err(invalid(b"abc\xf0\x9d", 3))
        );
    }
}
