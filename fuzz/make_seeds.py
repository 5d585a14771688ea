"""Writes the seed corpora under fuzz/corpus/<target>/: a handful of valid
inputs per target, built in pure Python (not with the code under test).

Run from anywhere: ``python fuzz/make_seeds.py``. The files are committed;
rerun only to change the seeds.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = b"\x37\xfa\x21\x3d"


def xor(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    n = len(payload)
    head = bytes([fin << 7 | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    return head + (mask + xor(payload, mask) if mask else payload)


def deflate(data: bytes, wbits: int = 15) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def write(target: str, seeds: list[bytes]) -> None:
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()
        with open(os.path.join(directory, name), "wb") as f:
            f.write(seed)


def stream(mask: bytes | None) -> list[bytes]:
    """Frame streams as a peer sends them: data, fragments, control frames,
    compressed messages and the closing handshake."""
    hello = deflate(b"Hello")
    return [
        frame(1, b"Hello", mask=mask),
        frame(2, bytes(range(256)) * 2, mask=mask),
        frame(1, b"caf\xc3", fin=False, mask=mask) + frame(9, b"ping", mask=mask) + frame(0, b"\xa9!", mask=mask),
        frame(10, b"pong", mask=mask) + frame(8, struct.pack("!H", 1000) + b"bye", mask=mask),
        frame(1, hello, rsv=4, mask=mask) + frame(1, deflate(b"x" * 300), rsv=4, mask=mask),
        frame(2, hello[:3], fin=False, rsv=4, mask=mask) + frame(0, hello[3:], mask=mask) + frame(8, mask=mask),
        # A close frame between fragments, then a continuation to ignore.
        frame(1, b"frag", fin=False, mask=mask)
        + frame(8, struct.pack("!H", 1000), mask=mask)
        + frame(0, b"ment", mask=mask),
        # A message, a violation (reserved opcode), then a ping to ignore.
        frame(1, b"question", mask=mask) + b"\x83\x00" + frame(9, b"after", mask=mask),
        # Invalid text early in a long frame.
        frame(1, b"ok \xff" + b"a" * 300, mask=mask),
    ]


def main() -> None:
    write(
        "frame_header",
        [
            b"\x81\x05",
            b"\x81\x85" + MASK,
            b"\x82\x7e\x01\x00",
            b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" + MASK,
            b"\x89\x00",
            b"\x08\x00",
        ],
    )
    # flags: 0x01 deflate, 0x02 assemble, 0x08/0x10 max_size, 0x80 EOF.
    # chunking: chunk sizes (low 6 bits), 0x40 check_text off, 0x80 defer_failure.
    for target, mask in [("receive_data_server", MASK), ("receive_data_client", None)]:
        seeds = []
        for i, data in enumerate(stream(mask)):
            flags = [0x01 | 0x02 | 0x10, 0x03 | 0x80, 0x01 | 0x18, 0x02 | 0x08][i % 4]
            seeds.append(bytes([flags, [0, 1, 7, 33][i % 4]]) + data)
            # chunking byte: 0x40 check_text off, 0x80 defer_failure.
            seeds.append(bytes([flags | 0x02, [0x40 | 3, 0x80 | 5, 0xC0, 0x80][i % 4]]) + data)
        write(target, seeds)

    request = (
        b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    write(
        "http_request",
        [
            b"\x00" + request,
            b"\x03" + request + frame(1, b"early", mask=MASK),
            b"\x01GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            b"\x00POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
            b"\x05GET / HTTP/1.0\r\n\r\n",
        ],
    )
    write(
        "http_response",
        [
            b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" + frame(1, b"hi"),
            b"\x02HTTP/1.1 403 Forbidden\r\nContent-Length: 15\r\n\r\nInvalid API key",
            b"\x07HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\npartial body until EOF",
            b"\x01HTTP/1.1 204 No Content\r\n\r\n",
        ],
    )

    # flags: window bits (low 3 bits + 9), limit (0x08/0x10), no context takeover (0x20).
    # frames: [kind (1 FIN, 2 RSV1, 4 text), n, n payload bytes].
    def frames(*parts: tuple[int, bytes]) -> bytes:
        out = b""
        for kind, payload in parts:
            assert len(payload) < 256
            out += bytes([kind, len(payload)]) + payload
        return out

    write(
        "inflate",
        [
            bytes([0x06 | 0x10]) + frames((7, deflate(b"Hello"))),
            bytes([0x06 | 0x18]) + frames((3, deflate(b"a" * 100_000))),
            bytes([0x06]) + frames((6, deflate(b"Hello")[:3]), (1, deflate(b"Hello")[3:])),
            bytes([0x00 | 0x20 | 0x18]) + frames((3, deflate(b"window of 512 bytes", 9)), (3, b"\x00")),
            bytes([0x06]) + frames((1, b"uncompressed")),
        ],
    )


if __name__ == "__main__":
    main()
