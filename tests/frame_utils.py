"""Helpers shared by the Sans-I/O tests: frames built by hand, in pure
Python, so that the tests never use the code under test to make their input."""

from __future__ import annotations

import struct

MASK = b"\x37\xfa\x21\x3d"
"""Masking key of RFC 6455 section 5.7's examples."""

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def xor(data: bytes, mask: bytes) -> bytes:
    """Masks or unmasks ``data`` (RFC 6455 section 5.3), as one big-integer
    XOR: plain Python, yet fast enough for megabyte payloads."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """Encodes one frame.

    Args:
        opcode: Any 4-bit value, reserved ones included.
        payload: Payload, before masking.
        fin: FIN bit.
        rsv: RSV1-3 as a 3-bit number (4 is RSV1).
        mask: Masking key, or :obj:`None` for an unmasked frame.
        length: Length to announce instead of ``len(payload)``.
    """
    n = len(payload) if length is None else length
    head = bytes([fin << 7 | rsv << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 2**16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + xor(payload, mask)


def client_frame(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """A frame as a client sends it: masked with :data:`MASK`."""
    return frame(opcode, payload, mask=MASK, **kwargs)  # type: ignore[arg-type]


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def parse_frames(data: bytes) -> list[tuple[int, bytes, bool, int]]:
    """Decodes a byte string made of whole frames into
    ``(opcode, payload, fin, rsv)``, unmasking masked ones."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        mask = None
        if b1 & 0x80:
            mask = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + n]
        assert len(payload) == n, "truncated frame"
        pos += n
        if mask is not None:
            payload = xor(payload, mask)
        frames.append((b0 & 0x0F, payload, bool(b0 & 0x80), (b0 >> 4) & 0x7))
    return frames


def is_masked(data: bytes) -> bool:
    """Whether the first frame in ``data`` is masked."""
    return bool(data[1] & 0x80)
