//! Reassembly of fragmented messages (RFC 6455 section 5.4).

use crate::error::Violation;
use crate::frame::OpCode;
use crate::utf8::{into_string, InvalidUtf8, Utf8Validator};

/// How [`MessageState::account`] treats the UTF-8 of a text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Check {
    /// No validation: binary data, or text validation turned off.
    Off,
    /// Validate the frame's payload now.
    Payload,
    /// The payload went through [`MessageState::feed_text`] as it arrived:
    /// only the end of the message is left to check.
    Fed,
}

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
    /// The bytes of a character that the previous fragment of this text
    /// message left unfinished, for the next fragment to begin with (see
    /// [`MessageState::text_fragment`]).
    carry: Vec<u8>,
    utf8: Utf8Validator,
    /// No frame of this text message skipped validation ([`Utf8Check::Off`]).
    all_checked: bool,
    /// The validator accepted the end of the message.
    end_checked: bool,
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
        self.carry.clear();
        self.all_checked = true;
        self.end_checked = false;
    }

    /// The bytes of a character left unfinished by the text fed so far
    /// (see [`invalid_utf8`]).
    pub fn utf8_pending(&self) -> &[u8] {
        self.utf8.pending()
    }

    /// Validates the next bytes of a text frame before the frame is
    /// complete, so that a frame arriving in several reads fails with the
    /// read that makes it invalid (RFC 6455 section 8.1: fail "as soon as"
    /// the data is known invalid). `position` is relative to `bytes`.
    pub fn feed_text(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        self.utf8.feed(bytes)
    }

    /// Accounts for one decoded frame: fragment count, size limit, and UTF-8
    /// validity for text (checked on this frame, or as it arrived with
    /// [`Utf8Check::Fed`], so a bad byte fails here and not at the end of
    /// the message).
    pub fn account(
        &mut self,
        payload: &[u8],
        fin: bool,
        max_size: Option<usize>,
        max_fragments: Option<usize>,
        check: Utf8Check,
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
        if check == Utf8Check::Off {
            self.all_checked = false;
        }
        if check != Utf8Check::Off && self.is_text() {
            if check == Utf8Check::Payload {
                self.utf8
                    .feed(payload)
                    .map_err(|e| invalid_utf8(self.utf8.pending(), payload, e.position))?;
            }
            if fin {
                self.utf8
                    .finish()
                    .map_err(|e| invalid_utf8(self.utf8.pending(), payload, payload.len() as isize + e.position))?;
                self.end_checked = true;
            }
        }
        Ok(())
    }

    /// Ends the message, returning its opcode, the collected bytes, and
    /// whether the validator accepted every byte of every frame of this
    /// text message and its end: false for binary messages, or when a frame
    /// skipped validation.
    ///
    /// The size goes back to zero: the next frame's header is checked
    /// against the limit before that frame starts a message, and must not be
    /// charged for the message that just ended.
    pub fn finish(&mut self) -> (OpCode, Vec<u8>, bool) {
        self.size = 0;
        self.fragments = 0;
        let opcode = self.opcode.take().unwrap_or(OpCode::Binary);
        let utf8_checked = opcode == OpCode::Text && self.all_checked && self.end_checked;
        self.carry.clear();
        self.all_checked = false;
        self.end_checked = false;
        (opcode, std::mem::take(&mut self.buffer), utf8_checked)
    }

    /// The text of one fragment of a text message, as it arrives: the
    /// character the previous fragment left unfinished, then this
    /// fragment's payload up to its own unfinished character, which is kept
    /// for the next one, as an incremental UTF-8 decoder does. A code point
    /// split across frames thus comes out whole, in the fragment that
    /// completes it. The last fragment (`fin`) keeps nothing back.
    ///
    /// The text is checked as it becomes a `String` ([`into_string`]),
    /// whatever validation ran before: fragments are not the fast path, and
    /// the check keeps the safety of the `String` local. On failure, the
    /// bytes come back with the position of the error in them.
    pub fn text_fragment(&mut self, payload: Vec<u8>, fin: bool) -> Result<String, (Vec<u8>, isize)> {
        let mut bytes = if self.carry.is_empty() {
            payload
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&payload);
            joined
        };
        if !fin {
            let tail = unfinished_tail(&bytes);
            self.carry = bytes.split_off(bytes.len() - tail);
        }
        into_string(bytes).map_err(|(bytes, e)| (bytes, e.position))
    }

    /// Remaining decoded bytes allowed for this message.
    pub fn remaining(&self, max_size: Option<usize>) -> Option<usize> {
        max_size.map(|m| (m as u64).saturating_sub(self.size) as usize)
    }
}

/// Length of the character begun at the end of `bytes` and not finished
/// there (0 to 3 bytes): its lead byte announces more continuation bytes
/// than follow it. Anything else, valid or not, is left for the UTF-8 check.
fn unfinished_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// The violation for an invalid sequence at `position` in `payload`, with
/// the bytes it is reported with. A negative position means the sequence
/// began `-position` bytes before the payload: those bytes are the first
/// ones `carried` over by the validator from the previous frames.
pub(crate) fn invalid_utf8(carried: &[u8], payload: &[u8], position: isize) -> Violation {
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
        assert!(m.account(b"abc", false, Some(5), Some(2), Utf8Check::Payload).is_ok());
        assert_eq!(m.remaining(Some(5)), Some(2));
        assert_eq!(
            m.account(b"abc", false, Some(5), Some(2), Utf8Check::Payload),
            Err(Violation::MessageTooBig { size: 6, max_size: 5 })
        );
        let mut m = MessageState::default();
        m.start(OpCode::Binary);
        for _ in 0..2 {
            m.account(b"", false, None, Some(2), Utf8Check::Payload).unwrap();
        }
        assert_eq!(
            m.account(b"", true, None, Some(2), Utf8Check::Payload),
            Err(Violation::TooManyFragments { max_fragments: 2 })
        );
    }

    #[test]
    fn finish_resets_the_size() {
        let mut m = MessageState::default();
        m.start(OpCode::Binary);
        m.account(b"abcd", true, Some(5), None, Utf8Check::Payload).unwrap();
        assert!(!m.finish().2, "binary is not text");
        assert_eq!(m.remaining(Some(5)), Some(5));
    }

    #[test]
    fn text_is_validated_per_frame() {
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert!(m.account(b"\xe2\x82", false, None, None, Utf8Check::Payload).is_ok());
        assert!(m.account(b"\xac ok", false, None, None, Utf8Check::Payload).is_ok());
        assert!(
            m.account(b"\xe2", true, None, None, Utf8Check::Payload).is_err(),
            "truncated at the end of the message"
        );
    }

    #[test]
    fn fed_text_is_only_finished_at_the_end() {
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert!(m.feed_text(b"\xe2\x82").is_ok());
        assert_eq!(m.feed_text(b"\xff"), Err(InvalidUtf8 { position: -2 }));
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert!(m.feed_text(b"ok \xe2\x82").is_ok());
        // Fed: the payload is not validated a second time, only finished.
        assert!(m.account(b"ok \xe2\x82", false, None, None, Utf8Check::Fed).is_ok());
        assert!(m.feed_text(b"\xac").is_ok());
        assert!(m.account(b"\xac", true, None, None, Utf8Check::Fed).is_ok());
        assert!(m.finish().2, "every byte and the end checked");
        m.start(OpCode::Text);
        assert!(m.feed_text(b"\xe2").is_ok());
        assert!(m.account(b"\xe2", true, None, None, Utf8Check::Fed).is_err());
        // Off: nothing checked, and finish says so.
        m.start(OpCode::Text);
        assert!(m.account(b"\xff", true, None, None, Utf8Check::Off).is_ok());
        assert!(!m.finish().2);
        // One unchecked frame is enough to make the message unchecked.
        m.start(OpCode::Text);
        assert!(m.account(b"a", false, None, None, Utf8Check::Off).is_ok());
        assert!(m.account(b"b", true, None, None, Utf8Check::Payload).is_ok());
        assert!(!m.finish().2);
        // Not finished by a final frame: not checked.
        m.start(OpCode::Text);
        assert!(m.account(b"a", false, None, None, Utf8Check::Payload).is_ok());
        assert!(!m.finish().2);
    }

    #[test]
    fn text_fragments_carry_split_characters_over() {
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        let smiley = "😀".as_bytes();
        // A 4-byte character split 1 + 2 + 1 over three frames.
        assert_eq!(
            m.text_fragment(b"a".iter().chain(&smiley[..1]).copied().collect(), false),
            Ok("a".into())
        );
        assert_eq!(m.text_fragment(smiley[1..3].to_vec(), false), Ok(String::new()));
        assert_eq!(m.text_fragment(smiley[3..].to_vec(), false), Ok("😀".into()));
        assert_eq!(m.text_fragment(b"".to_vec(), true), Ok(String::new()));
        // The last fragment keeps nothing back: unfinished is invalid.
        m.start(OpCode::Text);
        assert_eq!(
            m.text_fragment(b"\xe2\x82".to_vec(), true),
            Err((b"\xe2\x82".to_vec(), 0))
        );
        // A new message forgets what the previous one carried.
        m.start(OpCode::Text);
        assert_eq!(m.text_fragment(smiley[..2].to_vec(), false), Ok(String::new()));
        m.start(OpCode::Text);
        assert_eq!(m.text_fragment(b"ok".to_vec(), true), Ok("ok".into()));
        // Invalid bytes are not held back as if unfinished.
        m.start(OpCode::Text);
        assert!(m.text_fragment(b"a\xff".to_vec(), false).is_err());
    }

    #[test]
    fn unfinished_tail_finds_a_begun_character() {
        assert_eq!(unfinished_tail(b""), 0);
        assert_eq!(unfinished_tail(b"abc"), 0);
        assert_eq!(unfinished_tail("é".as_bytes()), 0);
        assert_eq!(unfinished_tail(b"a\xc3"), 1);
        assert_eq!(unfinished_tail(b"a\xe2\x82"), 2);
        assert_eq!(unfinished_tail(b"\xf0\x9f\x98"), 3);
        assert_eq!(unfinished_tail("😀".as_bytes()), 0);
        assert_eq!(unfinished_tail(b"\x80\x80\x80"), 0);
        assert_eq!(unfinished_tail(b"\xff"), 0);
    }

    #[test]
    fn invalid_utf8_carries_the_bytes_that_failed() {
        let invalid = |data: &[u8], position| Violation::InvalidUtf8 {
            data: data.to_vec(),
            position,
        };
        let mut m = MessageState::default();
        m.start(OpCode::Text);
        assert_eq!(
            m.account(b"ok\xff", true, None, None, Utf8Check::Payload),
            Err(invalid(b"ok\xff", 2))
        );
        // A character begun in the previous frame and broken in this one.
        m.start(OpCode::Text);
        m.account(b"ab\xe2\x82", false, None, None, Utf8Check::Payload).unwrap();
        assert_eq!(
            m.account(b"x", true, None, None, Utf8Check::Payload),
            Err(invalid(b"\xe2\x82x", 0))
        );
        // Truncated at the end of the message, partly in the last frame.
        m.start(OpCode::Text);
        m.account(b"\xf0\x9d", false, None, None, Utf8Check::Payload).unwrap();
        assert_eq!(
            m.account(b"\x84", true, None, None, Utf8Check::Payload),
            Err(invalid(b"\xf0\x9d\x84", 0))
        );
        m.start(OpCode::Text);
        assert_eq!(
            m.account(b"abc\xf0\x9d", true, None, None, Utf8Check::Payload),
            Err(invalid(b"abc\xf0\x9d", 3))
        );
    }
}
