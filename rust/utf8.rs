//! Incremental UTF-8 validation (RFC 6455 section 8.1).
//!
//! A text message may be split into fragments at any byte, even inside a
//! multi-byte character. The validator keeps the bytes of an unfinished
//! character between calls so that an invalid sequence is reported at the
//! fragment that carries it, not when the whole message has arrived.

/// Validates a UTF-8 stream fed in arbitrary pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
}

/// The byte stream is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8 {
    /// Offset of the first invalid byte, counted from the start of the chunk
    /// passed to [`Utf8Validator::feed`] (can be negative when the bad
    /// sequence began in the previous chunk).
    pub position: isize,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no character is left unfinished.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Validates the next piece of the stream.
    ///
    /// An incomplete character at the end is not an error: it is kept until
    /// the next call completes it or [`Utf8Validator::finish`] rejects it.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        let mut base: isize = 0;
        if self.pending_len > 0 {
            // Complete the pending character with the first bytes of data.
            let take = (4 - self.pending_len).min(data.len());
            let mut tmp = [0u8; 4];
            tmp[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            tmp[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            let tmp_len = self.pending_len + take;
            match simdutf8::compat::from_utf8(&tmp[..tmp_len]) {
                Ok(_) => {
                    self.pending_len = 0;
                    base = take as isize;
                    data = &data[take..];
                }
                Err(e) if e.valid_up_to() >= self.pending_len => {
                    // The pending character is complete and valid; the rest of
                    // tmp is revalidated below together with the remaining data.
                    let used = e.valid_up_to() - self.pending_len;
                    self.pending_len = 0;
                    base = used as isize;
                    data = &data[used..];
                }
                Err(e) => {
                    if e.error_len().is_some() {
                        return Err(InvalidUtf8 {
                            position: -(self.pending_len as isize),
                        });
                    }
                    // Still incomplete: data was too short to finish it.
                    self.pending = tmp;
                    self.pending_len = tmp_len;
                    return Ok(());
                }
            }
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8 {
                        position: base + e.valid_up_to() as isize,
                    });
                }
                let rest = &data[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                Ok(())
            }
        }
    }

    /// Ends the stream: an unfinished character is an error.
    ///
    /// Its bytes stay readable with [`Utf8Validator::pending`] until
    /// [`Utf8Validator::reset`], so that the error can be reported with them.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8 {
                position: -(self.pending_len as isize),
            })
        }
    }

    /// The bytes of the character left unfinished by the previous chunks:
    /// after an error at a negative position, the first `-position` of them
    /// are where the invalid sequence began.
    pub fn pending(&self) -> &[u8] {
        &self.pending[..self.pending_len]
    }

    /// Forgets any pending bytes, for reuse with the next message.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

/// Validates a complete byte string at once.
pub fn validate(data: &[u8]) -> Result<(), InvalidUtf8> {
    simdutf8::compat::from_utf8(data).map(|_| ()).map_err(|e| InvalidUtf8 {
        position: e.valid_up_to() as isize,
    })
}

/// Turns bytes into a `String` without copying them, after checking that
/// they are UTF-8.
///
/// Every `String` the connection hands out is built here, whatever
/// validation ran before: its safety then rests on this function alone, not
/// on the configuration (text validation can be turned off) or on the order
/// of earlier checks. The check costs one more pass over the text, at the
/// speed of `simdutf8`, which is small next to the copy every consumer of
/// the message makes anyway.
///
/// On failure, the bytes come back with the error, for the caller to report.
pub fn into_string(data: Vec<u8>) -> Result<String, (Vec<u8>, InvalidUtf8)> {
    if simdutf8::basic::from_utf8(&data).is_err() {
        // The error path only: find the position with the slower check.
        let error = validate(&data).err().unwrap_or(InvalidUtf8 { position: 0 });
        return Err((data, error));
    }
    // SAFETY: `simdutf8::basic::from_utf8` accepted exactly these bytes on the
    // line above (it returns `Ok` only for valid UTF-8), and nothing changed
    // them since.
    Ok(unsafe { String::from_utf8_unchecked(data) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(data: &[u8]) -> bool {
        let mut v = Utf8Validator::new();
        v.feed(data).is_ok() && v.finish().is_ok()
    }

    fn split_everywhere(data: &[u8]) -> Vec<bool> {
        let mut out = Vec::new();
        for i in 0..=data.len() {
            for j in i..=data.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&data[..i]).is_ok()
                    && v.feed(&data[i..j]).is_ok()
                    && v.feed(&data[j..]).is_ok()
                    && v.finish().is_ok();
                out.push(ok);
            }
        }
        out
    }

    #[test]
    fn valid_sequences_pass_whatever_the_split() {
        for s in [
            "",
            "hello",
            "é",
            "€uro",
            "κόσμε",
            "𝄞 clef",
            "\u{10FFFF}",
            "\u{FFFD}\u{D7FF}\u{E000}",
        ] {
            assert!(whole(s.as_bytes()), "{s:?}");
            assert!(split_everywhere(s.as_bytes()).iter().all(|&ok| ok), "{s:?}");
        }
    }

    #[test]
    fn invalid_sequences_fail_whatever_the_split() {
        let cases: &[&[u8]] = &[
            b"\xc0\xaf",         // overlong "/"
            b"\xe0\x80\xaf",     // overlong 3-byte
            b"\xf0\x80\x80\xaf", // overlong 4-byte
            b"\xed\xa0\x80",     // surrogate U+D800
            b"\xed\xbf\xbf",     // surrogate U+DFFF
            b"\xf4\x90\x80\x80", // U+110000, above U+10FFFF
            b"\xf5\x80\x80\x80", // lead byte beyond range
            b"\xff",             // never valid
            b"\x80",             // lone continuation
            b"ab\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xe2\x82",     // truncated at the end
            b"\xf0\x9d\x84", // truncated 4-byte
        ];
        for case in cases {
            assert!(!whole(case), "{case:?}");
            assert!(split_everywhere(case).iter().all(|&ok| !ok), "{case:?}");
        }
    }

    #[test]
    fn fails_at_the_chunk_carrying_the_bad_byte() {
        let mut v = Utf8Validator::new();
        assert!(v.feed("κό".as_bytes()).is_ok());
        assert!(v.feed(b"\xce").is_ok()); // incomplete, not yet wrong
        assert_eq!(v.feed(b"\x20abc"), Err(InvalidUtf8 { position: -1 }));
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"abc").is_ok());
        assert_eq!(v.feed(b"de\xffg"), Err(InvalidUtf8 { position: 2 }));
    }

    #[test]
    fn a_sequence_split_across_frames_is_accepted() {
        let bytes = "𝄞".as_bytes();
        let mut v = Utf8Validator::new();
        assert!(v.feed(&bytes[..1]).is_ok());
        assert!(!v.is_complete());
        assert!(v.feed(&bytes[1..3]).is_ok());
        assert!(v.feed(&bytes[3..]).is_ok());
        assert!(v.is_complete());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn into_string_checks_what_it_converts() {
        assert_eq!(into_string("κόσμε".as_bytes().to_vec()).unwrap(), "κόσμε");
        assert_eq!(into_string(Vec::new()).unwrap(), "");
        assert_eq!(
            into_string(b"ab\xff".to_vec()),
            Err((b"ab\xff".to_vec(), InvalidUtf8 { position: 2 }))
        );
        assert_eq!(
            into_string(b"\xe2\x82".to_vec()),
            Err((b"\xe2\x82".to_vec(), InvalidUtf8 { position: 0 }))
        );
    }

    #[test]
    fn surrogate_split_across_frames_is_rejected_at_second_frame() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xed").is_ok());
        assert!(v.feed(b"\xa0\x80").is_err());
    }
}
