"""No accepted message is lost to a protocol violation that follows it.

A hostile peer sends a valid text message, then a frame that violates the
protocol, then a ping, all in one write, and again split at every byte. On
both sides (server and client), on both I/O layers (asyncio on both loops,
threading), ferrows' application must receive the message, and its echo
must be on the wire before the close frame, which carries 1002; the ping
after the bad frame gets no pong.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ferrows.exceptions import ConnectionClosedError
from frame_utils import BINARY, CONT, PING, TEXT, frame

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
    splits,
)

# The frames after the valid message that violate the protocol, built for a
# sender that masks (a client) or not (a server).
VIOLATIONS: dict[str, Callable[[bytes | None], bytes]] = {
    "rsv2": lambda mask: frame(TEXT, b"bad", rsv=0b010, mask=mask),
    "opcode 5": lambda mask: frame(5, b"", mask=mask),
    "opcode 11": lambda mask: frame(11, b"", mask=mask),
    "text inside a fragmented message": lambda mask: (
        frame(BINARY, b"a", fin=False, mask=mask) + frame(TEXT, b"b", mask=mask)
    ),
    "continuation without a start": lambda mask: frame(CONT, b"x", mask=mask),
}

EXPECTED = [(TEXT, b"hello"), close_frame(1002)]


def hostile_bytes(violation: str, *, masked: bool) -> bytes:
    mask = MASK if masked else None
    return frame(TEXT, b"hello", mask=mask) + VIOLATIONS[violation](mask) + frame(PING, b"late", mask=mask)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_server_answers_before_failing(layer: str, violation: str) -> None:
    with ferrows_server(layer) as port:
        for pieces in splits(hostile_bytes(violation, masked=True)):
            with raw_client(port) as sock:
                send_pieces(sock, pieces)
                frames = read_frames(sock, masked=False)
            assert close_codes(frames) == EXPECTED, f"split {[len(p) for p in pieces]}: {frames}"


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_client_answers_before_failing(layer: str, violation: str) -> None:
    for pieces in splits(hostile_bytes(violation, masked=False)):

        def script(sock, pieces=pieces):  # type: ignore[no-untyped-def]
            send_pieces(sock, pieces)
            # The client closes TCP after the server: stop at its close frame.
            return read_frames(sock, masked=True, until_close=True)

        with raw_server(script) as (port, results):
            exc = run_client(layer, f"ws://127.0.0.1:{port}/")
        assert isinstance(exc, ConnectionClosedError)
        assert exc.sent is not None and exc.sent.code == 1002
        assert exc.rcvd is None
        assert close_codes(results[0]) == EXPECTED, f"split {[len(p) for p in pieces]}: {results[0]}"
