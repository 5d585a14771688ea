//! The extension hook in the frame path (RFC 6455 section 9).
//!
//! A negotiated extension sees every data frame on its way in, after
//! unmasking and before reassembly, and on its way out, before framing.
//! permessage-deflate (RFC 7692) is one such extension; the connection does
//! not know about any particular extension.
//!
//! An extension may decode a frame as its payload arrives rather than once
//! it is complete ([`Extension::begin_decode`]): the connection then hands
//! it each unmasked piece of the payload and validates what comes out as it
//! comes, so that a frame known to be invalid early fails early (RFC 6455
//! section 8.1), and the encoded payload is never kept whole.

use std::mem::MaybeUninit;

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

/// How an extension decodes a received data frame, decided from the
/// frame's header by [`Extension::begin_decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDecoding {
    /// The extension leaves this frame's payload as it is (for
    /// permessage-deflate, a frame of an uncompressed message); `rsv` is
    /// what remains of the RSV bits.
    Unchanged {
        /// RSV bits left.
        rsv: u8,
    },
    /// The extension decodes the payload as it arrives: the connection
    /// calls [`Extension::decode_chunk`] with each piece, in order, then
    /// [`Extension::finish_frame`]. `rsv` is what remains of the RSV bits.
    Streamed {
        /// RSV bits left.
        rsv: u8,
    },
    /// The extension decodes the complete frame with
    /// [`Extension::decode`]: the default.
    Whole,
}

/// The buffer an extension decoding a frame as it arrives appends its
/// output to ([`Extension::decode_chunk`]).
///
/// It can only grow: the connection validates text as it is appended and
/// later hands it out as a `String` without checking it again, which is
/// sound only if bytes once validated never change. The buffer may hold the
/// message's earlier frames, which are not the extension's to touch either.
#[derive(Debug)]
pub struct DecodeBuf<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> DecodeBuf<'a> {
    /// Appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        DecodeBuf { buf }
    }

    /// Bytes in the buffer, including those before this frame.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when the buffer holds nothing yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes in the buffer, to read.
    pub fn as_slice(&self) -> &[u8] {
        self.buf
    }

    /// Bytes the buffer can hold without growing.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Makes room for exactly `additional` more bytes (see
    /// [`Vec::reserve_exact`]).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.buf.reserve_exact(additional);
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The room after the bytes, to write output into before
    /// [`DecodeBuf::add_len`] appends it.
    pub fn spare_capacity_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        self.buf.spare_capacity_mut()
    }

    /// Appends the first `n` bytes of the spare capacity.
    ///
    /// # Safety
    ///
    /// `n` is at most the length of [`DecodeBuf::spare_capacity_mut`], and
    /// its first `n` bytes were initialised.
    pub unsafe fn add_len(&mut self, n: usize) {
        let len = self.buf.len() + n;
        // SAFETY: the caller guarantees that the `n` bytes after the current
        // length are within the capacity and initialised.
        unsafe { self.buf.set_len(len) };
    }
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

    /// Starts decoding a received data frame, from its header, for an
    /// extension that can decode frames as they arrive: `len` is the length
    /// of its payload on the wire, which the extension may use to size its
    /// output. Errors found in the header alone (an RSV bit where it may not
    /// be) are reported here.
    ///
    /// The connection asks only when this is the only extension: chained
    /// extensions decode whole frames. After [`FrameDecoding::Whole`], it
    /// calls [`Extension::decode`] once the frame is complete, and nothing
    /// else for this frame; after the other answers, it never calls
    /// `decode` for it.
    fn begin_decode(&mut self, opcode: OpCode, fin: bool, rsv: u8, len: u64) -> Result<FrameDecoding, Violation> {
        let _ = (opcode, fin, rsv, len);
        Ok(FrameDecoding::Whole)
    }

    /// Decodes the next piece of the payload of a frame that
    /// [`Extension::begin_decode`] streams (unmasked), appending the output
    /// to `out`: the same buffer for every piece of the frame and for
    /// [`Extension::finish_frame`], so the frame's output is contiguous.
    /// `limit` bounds the bytes this call may append (what remains of the
    /// message's allowance): past it, the extension must stop and return
    /// [`Violation::MessageTooBig`], having appended at most `limit + 1`
    /// bytes and reserved little more, whatever the input claims. The
    /// default passes the bytes through.
    fn decode_chunk(&mut self, input: &[u8], out: &mut DecodeBuf<'_>, limit: Option<usize>) -> Result<(), Violation> {
        match limit {
            Some(limit) if input.len() > limit => {
                out.extend_from_slice(&input[..limit + 1]);
                Err(Violation::MessageTooBig {
                    size: limit as u64 + 1,
                    max_size: limit,
                })
            }
            _ => {
                out.extend_from_slice(input);
                Ok(())
            }
        }
    }

    /// Ends a frame that [`Extension::begin_decode`] streams, once its
    /// whole payload went through [`Extension::decode_chunk`]; appends any
    /// last output to `out`, within `limit` as there.
    fn finish_frame(&mut self, out: &mut DecodeBuf<'_>, limit: Option<usize>) -> Result<(), Violation> {
        let _ = (out, limit);
        Ok(())
    }

    /// Transforms a data frame about to be sent.
    fn encode(&mut self, frame: &mut DataFrame);

    /// Releases memory while the connection is idle, keeping what is needed
    /// to resume (for permessage-deflate, the last window of bytes rather
    /// than the whole compressor state). Returns whether it freed anything.
    fn compact(&mut self) -> bool {
        false
    }
}
