//! The extension hook in the frame path (RFC 6455 section 9).
//!
//! A negotiated extension sees every data frame on its way in, after
//! unmasking and before reassembly, and on its way out, before framing.
//! permessage-deflate (RFC 7692) is one such extension; the connection does
//! not know about any particular extension.

use crate::error::Violation;
use crate::frame::OpCode;

/// A data frame as an extension sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame {
    /// Text, Binary or Continuation.
    pub opcode: OpCode,
    /// FIN bit.
    pub fin: bool,
    /// RSV bits (see [`crate::frame::RSV1`]); an extension clears the bits it
    /// consumed when decoding and sets them when encoding.
    pub rsv: u8,
    /// Payload, unmasked.
    pub payload: Vec<u8>,
}

/// A negotiated extension.
pub trait Extension: Send + Sync {
    /// Registered name, for example `permessage-deflate`.
    fn name(&self) -> &str;

    /// RSV bits this extension gives a meaning to. Frames carrying other RSV
    /// bits are a protocol error (RFC 6455 section 5.2).
    fn rsv_bits(&self) -> u8;

    /// Largest wire payload allowed for a frame whose decoded size may not
    /// exceed `decoded_limit`. The connection refuses larger frames from
    /// their header, before reading the payload.
    fn max_encoded_len(&self, decoded_limit: usize) -> usize {
        decoded_limit
    }

    /// Transforms a received data frame. `max_size` bounds the decoded
    /// payload of this frame (what remains of the message's allowance): an
    /// extension must stop producing output past it and return
    /// [`Violation::MessageTooBig`].
    fn decode(&mut self, frame: &mut DataFrame, max_size: Option<usize>) -> Result<(), Violation>;

    /// Transforms a data frame about to be sent.
    fn encode(&mut self, frame: &mut DataFrame);

    /// Releases memory while the connection is idle, keeping what is needed
    /// to resume (for permessage-deflate, the last window of bytes rather
    /// than the whole compressor state). Returns whether it freed anything.
    fn compact(&mut self) -> bool {
        false
    }
}
