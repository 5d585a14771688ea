//! permessage-deflate (RFC 7692) as an [`Extension`] of the core.
//!
//! Raw deflate with a sync flush per frame; the `00 00 ff ff` tail is
//! removed from the last frame of a message on send and restored on
//! receive (section 7.2.1-7.2.2). The compressor and decompressor are
//! allocated on first use, so an idle connection costs nothing, and dropped
//! after each message when context takeover is off.
//!
//! A compressed frame is inflated as its payload arrives, chunk by chunk
//! (see [`Extension::begin_decode`]), so the connection can validate the
//! text as it comes out, and the compressed payload is never kept whole.
//! Inflating stops as soon as the output passes the message's remaining
//! allowance: a small frame that would inflate to gigabytes fails with 1009
//! after producing at most `max_size + 1` bytes.
//!
//! zlib has no raw deflate with an 8-bit window (it widens it to 9 bits,
//! and the peer could not inflate the result). An endpoint whose own window
//! was limited to 8 bits (RFC 7692 section 7.1.2 allows it) therefore sends
//! its messages uncompressed, with RSV1 clear, which section 6 allows for
//! any message, and still inflates what the peer sends.

use std::mem::MaybeUninit;

use zlib_rs::{DeflateConfig, DeflateFlush, Inflate, InflateFlush, Method, Status, Strategy};

use crate::error::{close_code, Violation};
use crate::extension::{DataFrame, DecodeBuf, Extension, FrameDecoding};
use crate::frame::{OpCode, RSV1};

/// Empty stored block produced by a sync flush (section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Negotiated parameters, seen from this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The peer resets its compressor after each message: reset our
    /// decompressor too.
    pub remote_no_context_takeover: bool,
    /// We reset our compressor after each message.
    pub local_no_context_takeover: bool,
    /// Window of the peer's compressor (8-15): size of our decompressor's,
    /// at least 9 bits, which inflates an 8-bit window's output too.
    pub remote_max_window_bits: u8,
    /// Window of our compressor (9-15), or 8 to send every message
    /// uncompressed.
    pub local_max_window_bits: u8,
    /// Compression level, 0-9 (zlib's `level`).
    pub level: i32,
    /// Memory level, 1-9 (zlib's `memLevel`): the compressor's hash table
    /// and buffer take `2^(mem_level + 9)` bytes.
    pub mem_level: i32,
}

impl Default for DeflateParams {
    /// RFC 7692's defaults (section 7.1: context takeover, 15-bit windows)
    /// and zlib's (level 6, memLevel 8). The Python layer passes what was
    /// negotiated and configured; its servers default to 12-bit windows and
    /// memLevel 5.
    fn default() -> Self {
        DeflateParams {
            remote_no_context_takeover: false,
            local_no_context_takeover: false,
            remote_max_window_bits: 15,
            local_max_window_bits: 15,
            level: 6,
            mem_level: 8,
        }
    }
}

/// Smallest window zlib compresses with.
const MIN_COMPRESS_BITS: u8 = 9;

/// A compressor for raw deflate with the given window and memory settings.
fn new_compressor(window_bits: u8, level: i32, mem_level: i32) -> zlib_rs::Deflate {
    zlib_rs::Deflate::new_with_config(DeflateConfig {
        level,
        method: Method::Deflated,
        // Negative: raw deflate, no zlib header (section 7.2.1).
        window_bits: -i32::from(window_bits),
        mem_level,
        strategy: Strategy::Default,
    })
}

/// Compresses `input` with a sync flush, appending to `out`.
fn compress_into(encoder: &mut zlib_rs::Deflate, input: &[u8], out: &mut Vec<u8>) {
    let mut consumed = 0usize;
    loop {
        out.reserve((input.len() - consumed) + (input.len() - consumed) / 64 + 64);
        let spare = out.spare_capacity_mut();
        let spare_len = spare.len();
        let (in_before, out_before) = (encoder.total_in(), encoder.total_out());
        // A sync flush on valid input and state cannot fail.
        let _ = encoder.compress_uninit(&input[consumed..], spare, DeflateFlush::SyncFlush);
        let produced = (encoder.total_out() - out_before) as usize;
        consumed += (encoder.total_in() - in_before) as usize;
        // SAFETY: the compressor initialised exactly `produced` bytes at the
        // start of the spare capacity.
        unsafe { out.set_len(out.len() + produced) };
        // With output space left over, the flush is complete (zlib's
        // contract for deflate with Z_SYNC_FLUSH).
        if consumed == input.len() && produced < spare_len {
            return;
        }
    }
}

/// Compresses one whole message into a frame payload without context
/// (no takeover): the same bytes are valid on every connection that
/// negotiated `server_no_context_takeover` with this window size, which is
/// what lets a broadcast compress once.
///
/// With an 8-bit window, which zlib cannot compress with, the payload goes
/// into stored blocks (level 0): they refer to no earlier bytes, so any
/// window inflates them.
pub fn compress_message(payload: &[u8], window_bits: u8, level: i32, mem_level: i32) -> Vec<u8> {
    let (window_bits, level) = if window_bits < MIN_COMPRESS_BITS {
        (MIN_COMPRESS_BITS, 0)
    } else {
        (window_bits, level)
    };
    let mut encoder = new_compressor(window_bits, level, mem_level);
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    compress_into(&mut encoder, payload, &mut out);
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - 4);
    }
    out
}

/// The last bytes that went through a compression context, kept so that a
/// compressor or decompressor dropped while the connection is idle can be
/// rebuilt later, primed with them as its dictionary (RFC 7692 section
/// 7.2.2: with context takeover, a message may refer to the previous ones,
/// but never further back than the window).
#[derive(Debug, Default)]
struct Window {
    /// Ring buffer of at most `cap` bytes; `start` is the oldest byte once
    /// the buffer is full.
    buf: Vec<u8>,
    start: usize,
    cap: usize,
}

impl Window {
    fn new(window_bits: u8) -> Self {
        Window {
            buf: Vec::new(),
            start: 0,
            cap: 1 << window_bits.max(9),
        }
    }

    /// Appends bytes, forgetting what falls out of the window. Costs
    /// O(len(data)), whatever the window size.
    fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        if self.buf.len() < self.cap {
            let room = self.cap - self.buf.len();
            let (now, later) = data.split_at(data.len().min(room));
            self.buf.extend_from_slice(now);
            data_into_ring(&mut self.buf, &mut self.start, later);
        } else {
            data_into_ring(&mut self.buf, &mut self.start, data);
        }
    }

    /// The window's bytes, oldest first.
    fn linear(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len());
        out.extend_from_slice(&self.buf[self.start..]);
        out.extend_from_slice(&self.buf[..self.start]);
        out
    }
}

/// Overwrites the oldest bytes of a full ring buffer with `data`.
fn data_into_ring(buf: &mut [u8], start: &mut usize, mut data: &[u8]) {
    while !data.is_empty() {
        let n = data.len().min(buf.len() - *start);
        buf[*start..*start + n].copy_from_slice(&data[..n]);
        *start = (*start + n) % buf.len();
        data = &data[n..];
    }
}

/// The permessage-deflate extension of one connection.
pub struct PerMessageDeflate {
    params: DeflateParams,
    encoder: Option<zlib_rs::Deflate>,
    decoder: Option<Inflate>,
    /// The message being received is compressed (RSV1 on its first frame).
    decoding: bool,
    /// The compressed frame being received is the last of its message.
    frame_fin: bool,
    /// Its payload bytes not inflated yet.
    frame_left: u64,
    /// Where its output begins in the buffer that decode_chunk and
    /// finish_frame append to, once it produced some.
    frame_start: Option<usize>,
    /// The message being sent is compressed.
    encoding: bool,
    /// History of the compressor, with context takeover.
    sent: Option<Window>,
    /// History of the decompressor, with context takeover.
    received: Option<Window>,
}

impl PerMessageDeflate {
    /// The extension with negotiated parameters.
    pub fn new(params: DeflateParams) -> Self {
        PerMessageDeflate {
            params,
            encoder: None,
            decoder: None,
            decoding: false,
            frame_fin: false,
            frame_left: 0,
            frame_start: None,
            encoding: false,
            sent: (!params.local_no_context_takeover && params.local_max_window_bits >= MIN_COMPRESS_BITS)
                .then(|| Window::new(params.local_max_window_bits)),
            received: (!params.remote_no_context_takeover).then(|| Window::new(params.remote_max_window_bits)),
        }
    }

    /// Whether the compressor or decompressor currently holds state (memory).
    pub fn is_allocated(&self) -> (bool, bool) {
        (self.encoder.is_some(), self.decoder.is_some())
    }
}

/// The decompressor, created on first use; after compaction it starts with
/// the previous messages as its dictionary, as if it had never been dropped.
fn ensure_decoder<'a>(
    decoder: &'a mut Option<Inflate>,
    params: &DeflateParams,
    history: Option<&Window>,
) -> &'a mut Inflate {
    decoder.get_or_insert_with(|| {
        // zlib inflates what a raw 8-bit window produced with 9 bits.
        let mut decoder = Inflate::new(false, params.remote_max_window_bits.max(MIN_COMPRESS_BITS));
        if let Some(history) = history.filter(|h| !h.buf.is_empty()) {
            let _ = decoder.set_dictionary(&history.linear());
        }
        decoder
    })
}

/// Input of a frame still to come that the output buffer is sized for, at
/// most: a frame arriving in many reads then grows its output once rather
/// than doubling at each read (each doubling copies it), and a header
/// announcing a large frame reserves no more than this, times four, before
/// its bytes come.
const AHEAD_LIMIT: usize = 1 << 20;

/// Inflates `input`, appending the output to `out`, and fails as soon as
/// this call produced more than `limit` bytes: a small input that would
/// inflate to gigabytes stops after `limit + 1` bytes, and `out` never
/// grows past that (whatever capacity it had already is used, not more).
/// `ahead` is how much more input this frame announced after `input`.
fn inflate_into(
    decoder: &mut Inflate,
    input: &[u8],
    ahead: usize,
    out: &mut DecodeBuf<'_>,
    limit: Option<usize>,
) -> Result<(), Violation> {
    let start = out.len();
    // One byte over the allowance is enough to know it is too big.
    let cap = limit.map_or(usize::MAX, |l| start.saturating_add(l).saturating_add(1));
    let mut consumed = 0usize;
    loop {
        // Below the cap here: reaching it returned the error below.
        if out.len() == out.capacity() {
            // Room for the rest of the frame, guessing a ratio of 4 as
            // zlib does, or else grow geometrically; never past the cap.
            let extra = (input.len() - consumed)
                .saturating_add(ahead.min(AHEAD_LIMIT))
                .saturating_mul(4)
                .max(out.len())
                .max(4096)
                .min(cap - out.len());
            out.reserve_exact(extra);
        }
        let room = (out.capacity() - out.len()).min(cap - out.len());
        let spare: &mut [MaybeUninit<u8>] = &mut out.spare_capacity_mut()[..room];
        let (in_before, out_before) = (decoder.total_in(), decoder.total_out());
        let status = decoder.decompress_uninit(&input[consumed..], spare, InflateFlush::SyncFlush);
        let produced = (decoder.total_out() - out_before) as usize;
        let used = (decoder.total_in() - in_before) as usize;
        consumed += used;
        // SAFETY: the decompressor initialised exactly `produced` bytes at
        // the start of the spare capacity (at most `room` bytes of it).
        unsafe { out.add_len(produced) };
        if let Some(limit) = limit {
            if out.len() - start > limit {
                return Err(Violation::MessageTooBig {
                    size: (out.len() - start) as u64,
                    max_size: limit,
                });
            }
        }
        match status {
            Err(_) => {
                return Err(Violation::Extension {
                    code: close_code::PROTOCOL_ERROR,
                    reason: "decompression failed: invalid deflate data".into(),
                })
            }
            Ok(Status::StreamEnd) => return Ok(()),
            Ok(_) => {}
        }
        // With output space left over, the input is all inflated (zlib's
        // contract for inflate with Z_SYNC_FLUSH); no progress at all means
        // the rest is buffered inside the decompressor.
        if (consumed == input.len() && produced < room) || (used == 0 && produced == 0) {
            return Ok(());
        }
    }
}

impl PerMessageDeflate {
    /// Inflates into `out`, or on failure drops the stream: the connection
    /// fails, the state is moot.
    fn inflate(&mut self, input: &[u8], out: &mut DecodeBuf<'_>, limit: Option<usize>) -> Result<(), Violation> {
        self.frame_start.get_or_insert(out.len());
        self.frame_left = self.frame_left.saturating_sub(input.len() as u64);
        let ahead = usize::try_from(self.frame_left).unwrap_or(usize::MAX);
        let decoder = ensure_decoder(&mut self.decoder, &self.params, self.received.as_ref());
        inflate_into(decoder, input, ahead, out, limit).inspect_err(|_| {
            self.decoder = None;
            self.decoding = false;
        })
    }

    /// Records the frame's output in the history, once per frame rather
    /// than per chunk: only its last window of bytes is kept, and a frame
    /// arriving in many reads would otherwise copy a window at each.
    fn remember_frame(&mut self, out: &DecodeBuf<'_>) {
        if let (Some(start), Some(history)) = (self.frame_start.take(), self.received.as_mut()) {
            history.push(&out.as_slice()[start..]);
        }
    }
}

impl Extension for PerMessageDeflate {
    fn name(&self) -> &str {
        "permessage-deflate"
    }

    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn compact(&mut self) -> bool {
        // Between messages only: a fragmented message in progress needs its
        // stream as it is.
        let mut freed = false;
        if !self.encoding {
            freed |= self.encoder.take().is_some();
        }
        if !self.decoding {
            freed |= self.decoder.take().is_some();
        }
        freed
    }

    fn max_encoded_len(&self, decoded_limit: usize) -> usize {
        // Incompressible data grows a little: 5 bytes per stored block of
        // up to 64 KiB, plus block headers. Anything larger cannot decode
        // within the limit.
        decoded_limit.saturating_add(decoded_limit / 1024 * 5 + 1024)
    }

    fn begin_decode(&mut self, opcode: OpCode, fin: bool, rsv: u8, len: u64) -> Result<FrameDecoding, Violation> {
        if opcode == OpCode::Continuation {
            // RFC 7692 section 6.1: RSV1 is set on the first frame only.
            if rsv & RSV1 != 0 {
                return Err(Violation::ReservedBits(RSV1));
            }
        } else {
            self.decoding = rsv & RSV1 != 0;
        }
        if !self.decoding {
            return Ok(FrameDecoding::Unchanged { rsv });
        }
        self.frame_fin = fin;
        self.frame_left = len;
        self.frame_start = None;
        Ok(FrameDecoding::Streamed { rsv: rsv & !RSV1 })
    }

    fn decode_chunk(&mut self, input: &[u8], out: &mut DecodeBuf<'_>, limit: Option<usize>) -> Result<(), Violation> {
        self.inflate(input, out, limit)
    }

    fn finish_frame(&mut self, out: &mut DecodeBuf<'_>, limit: Option<usize>) -> Result<(), Violation> {
        if !self.frame_fin {
            self.remember_frame(out);
            return Ok(());
        }
        // Section 7.2.2: the end of the message restores the tail that the
        // sender removed.
        self.inflate(&TAIL, out, limit)?;
        self.remember_frame(out);
        self.decoding = false;
        if self.params.remote_no_context_takeover {
            // Free the window between messages: the peer starts afresh.
            self.decoder = None;
        }
        Ok(())
    }

    fn decode(&mut self, frame: &mut DataFrame, max_size: Option<usize>) -> Result<(), Violation> {
        // The frame as one chunk: the same path as a frame streamed.
        let FrameDecoding::Streamed { rsv } =
            self.begin_decode(frame.opcode, frame.fin, frame.rsv, frame.payload.len() as u64)?
        else {
            return Ok(());
        };
        let mut out = Vec::new();
        let mut buf = DecodeBuf::new(&mut out);
        let result = self.decode_chunk(&frame.payload, &mut buf, max_size).and_then(|()| {
            let left = max_size.map(|m| m.saturating_sub(buf.len()));
            self.finish_frame(&mut buf, left)
        });
        match (result, max_size) {
            // Over the frame's allowance, however the two calls shared it.
            (Err(Violation::MessageTooBig { .. }), Some(max_size)) => Err(Violation::MessageTooBig {
                size: out.len() as u64,
                max_size,
            }),
            (Err(e), _) => Err(e),
            (Ok(()), _) => {
                frame.rsv = rsv;
                frame.payload = out;
                Ok(())
            }
        }
    }

    fn encode(&mut self, frame: &mut DataFrame) {
        if self.params.local_max_window_bits < MIN_COMPRESS_BITS {
            // See the module documentation: uncompressed, RSV1 clear.
            return;
        }
        if frame.opcode != OpCode::Continuation {
            self.encoding = true;
            frame.rsv |= RSV1;
        }
        if !self.encoding {
            return;
        }
        let (bits, level, mem) = (
            self.params.local_max_window_bits,
            self.params.level,
            self.params.mem_level,
        );
        let history = &self.sent;
        let encoder = self.encoder.get_or_insert_with(|| {
            let mut encoder = new_compressor(bits, level, mem);
            if let Some(history) = history.as_ref().filter(|h| !h.buf.is_empty()) {
                // Rebuilt after compaction: later messages may refer to
                // the previous ones, which the peer still remembers.
                let _ = encoder.set_dictionary(&history.linear());
            }
            encoder
        });
        let mut out = Vec::with_capacity(frame.payload.len() / 2 + 64);
        compress_into(encoder, &frame.payload, &mut out);
        if let Some(history) = self.sent.as_mut() {
            history.push(&frame.payload);
        }
        if frame.fin {
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - 4);
            }
            if out.is_empty() {
                // A sync flush right after another one outputs nothing, and
                // the receiver appends 00 00 ff ff to the final frame, which
                // alone is no valid block. RFC 7692 section 7.2.3.6: an empty
                // message is the single octet 0x00.
                out.push(0x00);
            }
            self.encoding = false;
            if self.params.local_no_context_takeover {
                self.encoder = None;
            }
        }
        frame.payload = out;
    }
}

#[cfg(test)]
mod tests;
