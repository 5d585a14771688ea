//! Masking of frame payloads (RFC 6455 section 5.3).
//!
//! The client masks every frame it sends; the server unmasks every frame it
//! receives. Payloads can be megabytes long, so the loop works on 8 bytes at a
//! time, which the compiler turns into SIMD code; the byte-wise loop only
//! handles the unaligned head and the tail.

/// XORs `buf` in place with `key`, as if `buf` started `offset` bytes into the
/// payload. Applying the same mask twice restores the original bytes.
///
/// `offset` lets a payload arriving in several network reads be unmasked chunk
/// by chunk without copying it into one buffer first.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that index 0 of `buf` lines up with key[offset % 4].
    let mut k = [0u8; 4];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(offset + i) % 4];
    }
    // SAFETY: u64 has no invalid bit patterns, so viewing initialised bytes as
    // u64 is sound; align_to_mut guarantees the middle slice is aligned.
    let (head, middle, tail) = unsafe { buf.align_to_mut::<u64>() };
    for (i, b) in head.iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
    // After the head, the key phase has advanced by head.len().
    let shift = head.len() % 4;
    let mut rk = [0u8; 4];
    for (i, b) in rk.iter_mut().enumerate() {
        *b = k[(shift + i) % 4];
    }
    let k32 = u32::from_ne_bytes(rk) as u64;
    let k64 = k32 | (k32 << 32);
    for w in middle.iter_mut() {
        *w ^= k64;
    }
    let shift = (head.len() + middle.len() * 8) % 4;
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= k[(shift + i) % 4];
    }
}

/// Writes `src` masked with `key` into `dst` (same length), as if `src`
/// started `offset` bytes into the payload: copying and masking in one pass
/// over the bytes instead of two. Frames received by a server and sent by a
/// client go through here, so a megabyte payload is read once, not twice.
pub fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "copy_masked needs equal lengths");
    // SAFETY: `dst` is valid for `src.len()` writes.
    unsafe { write_masked(dst.as_mut_ptr(), src, key, offset) }
}

/// Appends `src` masked with `key` to `buf`, as if `src` started `offset`
/// bytes into the payload (see [`copy_masked`]). The new bytes are written
/// once: zero-filling them first cost as much as the copy.
pub fn extend_masked(buf: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    buf.reserve(src.len());
    let len = buf.len();
    // SAFETY: `reserve` made room for `src.len()` bytes after `len`; all of
    // them are written before the length covers them.
    unsafe {
        write_masked(buf.as_mut_ptr().add(len), src, key, offset);
        buf.set_len(len + src.len());
    }
}

/// # Safety
/// `dst` must be valid for `src.len()` byte writes and not overlap `src`.
unsafe fn write_masked(dst: *mut u8, src: &[u8], key: [u8; 4], offset: usize) {
    let mut k = [0u8; 4];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(offset + i) % 4];
    }
    let k32 = u32::from_ne_bytes(k) as u64;
    let k64 = k32 | (k32 << 32);
    // Unaligned 8-byte loads and stores; the compiler vectorises the loop.
    let chunks = src.chunks_exact(8);
    let tail = chunks.remainder();
    let mut at = 0;
    for s8 in chunks {
        let w = u64::from_ne_bytes(s8.try_into().expect("chunk of 8")) ^ k64;
        // SAFETY: `at + 8 <= src.len()`, within `dst` by the contract.
        unsafe { dst.add(at).cast::<u64>().write_unaligned(w) };
        at += 8;
    }
    // Whole 8-byte chunks leave the key phase where it was.
    for (i, b) in tail.iter().enumerate() {
        // SAFETY: `at + i < src.len()`.
        unsafe { dst.add(at + i).write(b ^ k[i % 4]) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_reference_at_every_length_alignment_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let source: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..(source.len() - start) {
                for offset in 0..4 {
                    let mut fast = source.clone();
                    let mut slow = source.clone();
                    apply_mask(&mut fast[start..start + len], key, offset);
                    reference(&mut slow[start..start + len], key, offset);
                    assert_eq!(fast, slow, "start={start} len={len} offset={offset}");
                }
            }
        }
    }

    #[test]
    fn copy_masked_matches_reference_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let source: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..(source.len() - start) {
                for offset in 0..4 {
                    let src = &source[start..start + len];
                    let mut fast = vec![0u8; len];
                    copy_masked(&mut fast, src, key, offset);
                    let mut slow = src.to_vec();
                    reference(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start={start} len={len} offset={offset}");
                }
            }
        }
    }

    #[test]
    fn extend_masked_in_pieces_equals_whole() {
        let key = [9, 8, 7, 6];
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = Vec::new();
        for step in [1usize, 3, 7, 64, 100, 825] {
            let pos = pieces.len();
            extend_masked(&mut pieces, &data[pos..pos + step], key, pos);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn rfc6455_masked_hello() {
        // RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn chunked_unmasking_equals_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let mut pos = 0;
        for step in [1usize, 3, 7, 64, 100, 825] {
            apply_mask(&mut pieces[pos..pos + step], key, pos);
            pos += step;
        }
        assert_eq!(pos, data.len());
        assert_eq!(whole, pieces);
    }
}
