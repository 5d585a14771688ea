"""Strict receiving against a hostile peer, on both sides and every I/O
layer: invalid UTF-8 fails as soon as the received part of a frame can no
longer be valid, not when the frame is complete; a close frame in the
middle of a fragmented message is answered normally."""

from __future__ import annotations

import socket

import pytest

from ferrows.exceptions import ConnectionClosedError, ConnectionClosedOK
from frame_utils import CLOSE, CONT, TEXT, close_payload, frame

from .hostile_peer import (
    LAYERS,
    MASK,
    close_codes,
    close_frame,
    ferrows_server,
    raw_client,
    raw_server,
    read_frames,
    run_client,
    send_pieces,
)

GAP = 1.0
"""Seconds between the pieces of the slow frame."""


def slow_invalid_text(kind: str, *, masked: bool) -> list[bytes]:
    """Three pieces: the second makes the text invalid, the third ends it."""
    mask = MASK if masked else None
    payload = "ok é".encode()[:-1] + b"\x28" + b"x" * 20  # a lead byte, then no continuation byte
    if kind == "single frame":
        data = frame(TEXT, payload, mask=mask)
        head = len(data) - len(payload)
    else:
        start = frame(TEXT, b"start ", fin=False, mask=mask)
        data = start + frame(CONT, payload, mask=mask)
        head = len(data) - len(payload)
    cut = head + len(b"ok ") + 2  # just past the bad byte
    return [data[: head + 3], data[head + 3 : cut], data[cut:]]


def send_until_close(sock: socket.socket, pieces: list[bytes], *, masked: bool) -> list[tuple[int, bytes]]:
    """Sends the first two pieces ``GAP`` apart, waits less than ``GAP`` for
    the close frame, then sends the third piece only if none came."""
    send_pieces(sock, pieces[:2], gap=GAP)
    frames = read_frames(sock, masked=masked, until_close=True, timeout=0.8 * GAP)
    if not frames:
        try:
            sock.sendall(pieces[2])
        except OSError:
            pass
    return frames


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("kind", ["single frame", "fragmented message"])
def test_server_fails_invalid_utf8_before_the_frame_ends(layer: str, kind: str) -> None:
    with ferrows_server(layer) as port, raw_client(port) as sock:
        frames = send_until_close(sock, slow_invalid_text(kind, masked=True), masked=False)
    assert close_codes(frames) == [close_frame(1007)]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("kind", ["single frame", "fragmented message"])
def test_client_fails_invalid_utf8_before_the_frame_ends(layer: str, kind: str) -> None:
    pieces = slow_invalid_text(kind, masked=False)
    with raw_server(lambda sock: send_until_close(sock, pieces, masked=True)) as (port, results):
        exc = run_client(layer, f"ws://127.0.0.1:{port}/")
    assert isinstance(exc, ConnectionClosedError) and exc.sent is not None and exc.sent.code == 1007
    assert close_codes(results[0]) == [close_frame(1007)]


def fragment_close_continuation(*, masked: bool) -> bytes:
    mask = MASK if masked else None
    return (
        frame(TEXT, b"frag", fin=False, mask=mask)
        + frame(CLOSE, close_payload(1000), mask=mask)
        + frame(CONT, b"ment", mask=mask)
    )


@pytest.mark.parametrize("layer", LAYERS)
def test_server_answers_close_in_a_fragmented_message(layer: str) -> None:
    with ferrows_server(layer) as port, raw_client(port) as sock:
        sock.sendall(fragment_close_continuation(masked=True))
        frames = read_frames(sock, masked=False)
    assert close_codes(frames) == [close_frame(1000)]


@pytest.mark.parametrize("layer", LAYERS)
def test_client_answers_close_in_a_fragmented_message(layer: str) -> None:
    def script(sock: socket.socket) -> list[tuple[int, bytes]]:
        sock.sendall(fragment_close_continuation(masked=False))
        frames = read_frames(sock, masked=True, until_close=True)
        return frames

    with raw_server(script) as (port, results):
        exc = run_client(layer, f"ws://127.0.0.1:{port}/")
    assert exc is None or isinstance(exc, ConnectionClosedOK)
    assert close_codes(results[0]) == [close_frame(1000)]
