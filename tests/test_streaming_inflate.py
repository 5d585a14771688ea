"""Compressed text validated as it is inflated: a permessage-deflate frame
whose text turns invalid early fails with 1007 on the read that carries the
bad bytes, before the rest of the frame arrives (RFC 6455 section 8.1), on
every server I/O layer."""

from __future__ import annotations

import contextlib
import socket
import time
import zlib
from collections.abc import Iterator

import pytest

from frame_utils import TEXT, frame

from .hostile_peer import (
    LAYERS,
    MASK,
    TIMEOUT,
    close_codes,
    close_frame,
    ferrows_server,
    parse_frames,
    read_frames,
    send_pieces,
)
from .sync.utils import handshake_request

GAP = 1.0
"""Seconds between the pieces of the slow frame."""

TAIL = b"\x00\x00\xff\xff"
"""What a sync flush ends with, removed from a message (RFC 7692 section 7.2.1)."""


@contextlib.contextmanager
def deflate_client(port: int) -> Iterator[socket.socket]:
    """A connection to a server on ``port`` that negotiated permessage-deflate,
    after the opening handshake."""
    request = handshake_request(port, headers="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nsec-websocket-extensions: permessage-deflate" in head.lower()
        yield sock


def compressed_in_three(middle: bytes) -> tuple[list[bytes], bytes]:
    """One compressed text frame, masked, in three pieces: each inflates to
    its part of the text on its own (a sync flush ends each), and the second
    to ``middle``. Returns the pieces and the text."""
    parts = [b"ok ", middle, b" and the rest" * 500]
    compressor = zlib.compressobj(wbits=-15)
    compressed = [compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH) for part in parts]
    assert compressed[-1].endswith(TAIL)
    compressed[-1] = compressed[-1][: -len(TAIL)]
    payload = b"".join(compressed)
    data = frame(TEXT, payload, rsv=0b100, mask=MASK)
    first = len(data) - len(payload) + len(compressed[0])
    second = first + len(compressed[1])
    return [data[:first], data[first:second], data[second:]], b"".join(parts)


@pytest.mark.parametrize("layer", LAYERS)
def test_server_fails_compressed_invalid_utf8_before_the_frame_ends(layer: str) -> None:
    pieces, _ = compressed_in_three(b"\xff")
    with ferrows_server(layer) as port, deflate_client(port) as sock:
        send_pieces(sock, pieces[:2], gap=GAP)
        # The close frame comes before the third piece is sent.
        frames = read_frames(sock, masked=False, until_close=True, timeout=0.8 * GAP)
        with contextlib.suppress(OSError):
            sock.sendall(pieces[2])
    assert close_codes(frames) == [close_frame(1007)]


@pytest.mark.parametrize("layer", LAYERS)
def test_server_inflates_a_compressed_frame_arriving_in_pieces(layer: str) -> None:
    pieces, text = compressed_in_three("é".encode())
    with ferrows_server(layer) as port, deflate_client(port) as sock:
        send_pieces(sock, pieces, gap=0.1)
        data, frames = b"", []
        deadline = time.monotonic() + TIMEOUT
        while not frames and time.monotonic() < deadline:
            data += sock.recv(65536)
            frames, _ = parse_frames(data, masked=False)
    # The echo, compressed in turn.
    assert [opcode for opcode, _ in frames] == [TEXT]
    assert zlib.decompressobj(wbits=-15).decompress(frames[0][1] + TAIL) == text
