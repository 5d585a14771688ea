//! permessage-deflate decoding of arbitrary frames with a size limit.
//!
//! Input layout: a flags byte (window bits, context takeover, limit), then
//! frames, each `[kind, n, payload]` where `kind` gives FIN, RSV1 and the
//! opcode of a first frame, and the payload is `n` bytes (or what is left).
//!
//! Documented outcomes only: decompressed payloads never exceed the allowance;
//! failures are MessageTooBig (1009), invalid deflate data (1002) or RSV1 on
//! a continuation frame (1002); what decodes, recompressed, decodes to the
//! same bytes; and a second extension decoding the same frames as they
//! arrive, in pieces of `1 + kind >> 3` bytes, gives the same outcome.
#![no_main]

use ferrows::deflate::{compress_message, DeflateParams, PerMessageDeflate};
use ferrows::error::Violation;
use ferrows::extension::{DataFrame, DecodeBuf, Extension, FrameDecoding};
use ferrows::frame::{OpCode, RSV1};
use libfuzzer_sys::fuzz_target;

/// Decodes one frame as the connection does when it arrives in pieces.
fn decode_streamed(
    ext: &mut PerMessageDeflate,
    frame: &DataFrame,
    limit: Option<usize>,
    piece: usize,
) -> Result<Vec<u8>, Violation> {
    let len = frame.payload.len() as u64;
    if !matches!(
        ext.begin_decode(frame.opcode, frame.fin, frame.rsv, len)?,
        FrameDecoding::Streamed { .. }
    ) {
        return Ok(frame.payload.clone());
    }
    let mut out = Vec::new();
    for chunk in frame.payload.chunks(piece) {
        let left = limit.map(|l| l.saturating_sub(out.len()));
        ext.decode_chunk(chunk, &mut DecodeBuf::new(&mut out), left)?;
    }
    let left = limit.map(|l| l.saturating_sub(out.len()));
    ext.finish_frame(&mut DecodeBuf::new(&mut out), left)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let window = 9 + (flags & 0x7).min(6);
    let limit = match (flags >> 3) & 0x3 {
        0 => None,
        1 => Some(0),
        2 => Some(100),
        _ => Some(65536),
    };
    let params = DeflateParams {
        remote_no_context_takeover: flags & 0x20 != 0,
        remote_max_window_bits: window,
        ..DeflateParams::default()
    };
    let mut ext = PerMessageDeflate::new(params);
    let mut streamed = PerMessageDeflate::new(params);
    let mut in_message = false;
    // Uncompressed messages pass through untouched; the connection, not the
    // extension, checks their size.
    let mut compressed = false;
    let mut message = Vec::new();
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], usize::from(rest[1]));
        let payload = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + payload.len()..];
        let fin = kind & 0x01 != 0;
        let rsv = if kind & 0x02 != 0 { RSV1 } else { 0 };
        let opcode = if in_message {
            OpCode::Continuation
        } else if kind & 0x04 != 0 {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        if !in_message {
            compressed = rsv != 0;
        }
        let remaining = limit.map(|l: usize| l.saturating_sub(message.len()));
        let mut frame = DataFrame {
            opcode,
            fin,
            rsv,
            payload: payload.to_vec(),
        };
        let in_pieces = decode_streamed(&mut streamed, &frame, remaining, 1 + usize::from(kind >> 3));
        let whole = ext.decode(&mut frame, remaining);
        match (&whole, &in_pieces) {
            (Ok(()), Ok(payload)) => assert_eq!(&frame.payload, payload, "streamed differently"),
            (Err(a), Err(b)) => assert_eq!(a.close_code(), b.close_code(), "{a:?} / {b:?}"),
            (a, b) => panic!("whole: {a:?}, in pieces: {b:?}"),
        }
        match whole {
            Ok(()) => {
                assert_eq!(frame.rsv & RSV1, 0, "RSV1 consumed");
                if let (true, Some(r)) = (compressed, remaining) {
                    assert!(
                        frame.payload.len() <= r,
                        "{} bytes over an allowance of {r}",
                        frame.payload.len()
                    );
                }
                message.extend_from_slice(&frame.payload);
            }
            Err(Violation::MessageTooBig { size, max_size }) => {
                let r = remaining.expect("MessageTooBig without a limit");
                assert_eq!(max_size, r);
                assert!(size > r as u64);
                return;
            }
            Err(Violation::ReservedBits(bits)) => {
                assert!(in_message && bits == RSV1);
                return;
            }
            Err(v @ Violation::Extension { .. }) => {
                assert_eq!(v.close_code(), 1002);
                return;
            }
            Err(other) => panic!("undocumented failure: {other:?}"),
        }
        in_message = !fin;
        if fin && compressed {
            // Whatever decoded must survive a round trip through our own
            // compressor and a fresh decompressor.
            let packed = compress_message(&message, window, 6, 8);
            let mut fresh = PerMessageDeflate::new(params);
            let mut again = DataFrame {
                opcode: OpCode::Binary,
                fin: true,
                rsv: RSV1,
                payload: packed,
            };
            fresh.decode(&mut again, None).expect("our own output decodes");
            assert_eq!(again.payload, message);
        }
        if fin {
            message.clear();
        }
    }
});
