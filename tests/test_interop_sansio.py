"""Interoperability with the real websockets package, in memory: bytes are
pumped between ferrows' Sans-I/O objects and websockets' own."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import websockets.client
import websockets.exceptions
import websockets.frames
import websockets.server
import websockets.uri

from ferrows.client import ClientProtocol
from ferrows.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
)
from ferrows.frames import Opcode
from ferrows.protocol import CLOSED, OPEN, Protocol
from ferrows.server import ServerProtocol
from ferrows.typing import Subprotocol
from frame_utils import BINARY, TEXT, frame


@dataclass
class Pair:
    """ferrows on one side, websockets on the other, already connected."""

    ours: Protocol
    theirs: Any  # websockets.protocol.Protocol
    ours_is_server: bool

    def flush(self) -> None:
        """Moves bytes both ways until neither side has anything to send."""
        while True:
            moved = _pump(self.ours, self.theirs) + _pump(self.theirs, self.ours)
            if not moved:
                return

    def ours_to_theirs(self) -> list[Any]:
        _pump(self.ours, self.theirs)
        return self.theirs.events_received()

    def theirs_to_ours(self) -> list[Any]:
        _pump(self.theirs, self.ours)
        return self.ours.events_received()


def _pump(src: Any, dst: Any) -> int:
    moved = 0
    for data in src.data_to_send():
        moved += 1
        if data:
            dst.receive_data(data)
        else:
            dst.receive_eof()
    return moved


def connect(ours_is_server: bool, **kwargs: Any) -> Pair:
    """Runs the opening handshake between the two libraries."""
    ours: ServerProtocol | ClientProtocol
    if ours_is_server:
        ours = ServerProtocol(**kwargs)
        theirs = websockets.client.ClientProtocol(
            websockets.uri.parse_uri("ws://example.com/chat"),
            subprotocols=kwargs.get("subprotocols"),
        )
        theirs.send_request(theirs.connect())
        _pump(theirs, ours)
        (request,) = ours.events_received()
        assert request.path == "/chat"
        ours.send_response(ours.accept(request))
        _pump(ours, theirs)
        (response,) = theirs.events_received()
        assert response.status_code == 101
    else:
        ours = ClientProtocol("ws://example.com/chat", **kwargs)
        theirs = websockets.server.ServerProtocol(subprotocols=kwargs.get("subprotocols"))
        ours.send_request(ours.connect())
        _pump(ours, theirs)
        (request,) = theirs.events_received()
        assert request.path == "/chat"
        theirs.send_response(theirs.accept(request))
        _pump(theirs, ours)
        (response,) = ours.events_received()
        assert response.status_code == 101
    assert ours.handshake_exc is None and theirs.handshake_exc is None
    assert ours.state is OPEN
    assert theirs.state is websockets.protocol.State.OPEN
    return Pair(ours, theirs, ours_is_server)


@pytest.fixture(params=[True, False], ids=["ours-server", "ours-client"])
def pair(request: pytest.FixtureRequest) -> Pair:
    return connect(request.param)


def messages_from(frames: list[Any]) -> Iterator[tuple[int, bytes]]:
    """Reassembles data frames (of either library) into (opcode, data)."""
    opcode, parts = None, []
    for f in frames:
        if int(f.opcode) in (1, 2):
            assert opcode is None
            opcode, parts = int(f.opcode), [f.data]
        elif int(f.opcode) == 0:
            assert opcode is not None
            parts.append(f.data)
        else:
            continue
        if f.fin:
            assert opcode is not None
            yield opcode, b"".join(parts)
            opcode, parts = None, []


# ------------------------------------------------------------------ handshake


@pytest.mark.parametrize("ours_is_server", [True, False], ids=["ours-server", "ours-client"])
def test_handshake_with_subprotocol(ours_is_server: bool) -> None:
    p = connect(ours_is_server, subprotocols=[Subprotocol("chat"), Subprotocol("superchat")])
    assert p.ours.subprotocol == "chat"
    assert p.theirs.subprotocol == "chat"


def test_their_client_rejected_by_our_server() -> None:
    ours = ServerProtocol(origins=["https://good.example"])
    theirs = websockets.client.ClientProtocol(
        websockets.uri.parse_uri("ws://example.com/"),
        origin=websockets.typing.Origin("https://evil.example"),
    )
    theirs.send_request(theirs.connect())
    _pump(theirs, ours)
    (request,) = ours.events_received()
    ours.send_response(ours.accept(request))
    _pump(ours, theirs)
    (response,) = theirs.events_received()
    assert response.status_code == 403
    assert isinstance(theirs.handshake_exc, websockets.exceptions.InvalidStatus)
    assert b"Failed to open a WebSocket connection" in response.body


def test_our_client_rejected_by_their_server() -> None:
    ours = ClientProtocol("ws://example.com/", subprotocols=[Subprotocol("v9")])
    theirs = websockets.server.ServerProtocol(subprotocols=[websockets.typing.Subprotocol("v1")])
    ours.send_request(ours.connect())
    _pump(ours, theirs)
    (request,) = theirs.events_received()
    theirs.send_response(theirs.accept(request))
    _pump(theirs, ours)
    (response,) = ours.events_received()
    assert response.status_code == 400
    assert response.body == theirs.accept(request).body
    ours.receive_eof()
    assert ours.state is CLOSED


# ------------------------------------------------------------------ messages

SIZES = [0, 10, 70_000, 2**20]


def payload(size: int, text: bool) -> bytes:
    if text:
        return ("€uro" * size).encode()[: size - size % 6] if size else b""
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_ours_to_theirs(pair: Pair, size: int, text: bool) -> None:
    data = payload(size, text)
    (pair.ours.send_text if text else pair.ours.send_binary)(data)
    frames = pair.ours_to_theirs()
    assert list(messages_from(frames)) == [(TEXT if text else BINARY, data)]
    assert pair.theirs.parser_exc is None


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_theirs_to_ours(pair: Pair, size: int, text: bool) -> None:
    data = payload(size, text)
    (pair.theirs.send_text if text else pair.theirs.send_binary)(data)
    frames = pair.theirs_to_ours()
    assert list(messages_from(frames)) == [(TEXT if text else BINARY, data)]
    assert pair.ours.parser_exc is None


def test_fragmented_both_ways(pair: Pair) -> None:
    text = "fragmented café €".encode()
    # Fragment boundaries inside multi-byte characters.
    for sender, transfer, reply in (
        (pair.ours, pair.ours_to_theirs, pair.theirs_to_ours),
        (pair.theirs, pair.theirs_to_ours, pair.ours_to_theirs),
    ):
        sender.send_text(text[:15], fin=False)
        sender.send_continuation(text[15:18], fin=False)
        sender.send_ping(b"in between")
        sender.send_continuation(text[18:], fin=True)
        sender.send_binary(b"", fin=False)
        sender.send_continuation(b"\x00" * 70_000, fin=False)
        sender.send_continuation(b"", fin=True)
        frames = transfer()
        assert [int(f.opcode) for f in frames] == [1, 0, 9, 0, 2, 0, 0]
        assert list(messages_from(frames)) == [(TEXT, text), (BINARY, b"\x00" * 70_000)]
        # The receiver answered the ping.
        assert [(int(f.opcode), f.data) for f in reply()] == [(0xA, b"in between")]
    assert pair.ours.parser_exc is None and pair.theirs.parser_exc is None


def test_ping_pong(pair: Pair) -> None:
    pair.ours.send_ping(b"from ours")
    (ping,) = pair.ours_to_theirs()
    assert ping.opcode is websockets.frames.Opcode.PING
    # websockets answers automatically.
    (pong,) = pair.theirs_to_ours()
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"from ours")

    pair.theirs.send_ping(b"from theirs")
    (ping,) = pair.theirs_to_ours()
    assert ping.opcode is Opcode.PING
    (pong,) = pair.ours_to_theirs()
    assert (pong.opcode, pong.data) == (websockets.frames.Opcode.PONG, b"from theirs")


# ------------------------------------------------------------------ closing


def test_close_initiated_by_ours(pair: Pair) -> None:
    pair.ours.send_close(1001, "going away")
    pair.flush()
    assert pair.ours.state is CLOSED
    assert pair.theirs.state is websockets.protocol.State.CLOSED
    assert pair.theirs.close_code == 1001
    assert pair.theirs.close_reason == "going away"
    assert pair.ours.close_code == 1001
    assert pair.ours.close_reason == "going away"
    assert pair.ours.close_rcvd_then_sent is False
    assert pair.theirs.close_rcvd_then_sent is True
    assert isinstance(pair.ours.close_exc, ConnectionClosedOK)
    assert isinstance(pair.theirs.close_exc, websockets.exceptions.ConnectionClosedOK)


def test_close_initiated_by_theirs(pair: Pair) -> None:
    pair.theirs.send_close(4000, "app-specific")
    pair.flush()
    assert pair.ours.state is CLOSED
    assert pair.theirs.state is websockets.protocol.State.CLOSED
    assert pair.ours.close_code == 4000
    assert pair.ours.close_reason == "app-specific"
    assert pair.theirs.close_code == 4000
    assert pair.ours.close_rcvd_then_sent is True
    assert pair.theirs.close_rcvd_then_sent is False
    assert isinstance(pair.ours.close_exc, ConnectionClosedError)
    # Both libraries describe the handshake the same way, each from its end.
    assert str(pair.ours.close_exc) == (
        "received 4000 (private use) app-specific; then sent 4000 (private use) app-specific"
    )
    assert str(pair.theirs.close_exc) == (
        "sent 4000 (private use) app-specific; then received 4000 (private use) app-specific"
    )


def test_close_without_code(pair: Pair) -> None:
    pair.ours.send_close()
    pair.flush()
    assert pair.ours.close_code == 1005
    assert pair.theirs.close_code == 1005
    assert isinstance(pair.ours.close_exc, ConnectionClosedOK)


def test_simultaneous_close(pair: Pair) -> None:
    pair.ours.send_close(1000, "ours")
    pair.theirs.send_close(1000, "theirs")
    pair.flush()
    assert pair.ours.state is CLOSED
    assert pair.theirs.state is websockets.protocol.State.CLOSED
    assert pair.ours.close_reason == "theirs"
    assert pair.theirs.close_reason == "ours"


# ------------------------------------------------------------------ errors


def check_failed(pair: Pair, code: int, *, ours_failed: bool) -> None:
    """One side failed the connection with ``code``; after the closing
    handshake both ends agree on it."""
    pair.flush()
    failed, peer = (pair.ours, pair.theirs) if ours_failed else (pair.theirs, pair.ours)
    assert failed.close_sent.code == code
    assert peer.close_rcvd.code == code
    # The peer echoes the code back (RFC 6455 section 5.5.1).
    assert peer.close_sent.code == code
    # The server closed TCP, then the client did.
    assert pair.ours.state is CLOSED
    assert pair.theirs.state is websockets.protocol.State.CLOSED
    assert isinstance(pair.ours.close_exc, ConnectionClosedError)
    assert isinstance(pair.theirs.close_exc, websockets.exceptions.ConnectionClosedError)


def test_theirs_sends_invalid_utf8(pair: Pair) -> None:
    # websockets doesn't check outgoing text; ferrows must refuse it.
    pair.theirs.send_text(b"caf\xe9")
    pair.theirs_to_ours()
    assert isinstance(pair.ours.parser_exc, UnicodeDecodeError)
    check_failed(pair, 1007, ours_failed=True)


def test_theirs_sends_too_big(pair: Pair) -> None:
    pair.theirs.send_binary(b"x" * (2**20 + 1))
    pair.theirs_to_ours()
    assert isinstance(pair.ours.parser_exc, PayloadTooBig)
    check_failed(pair, 1009, ours_failed=True)


def test_injected_invalid_frame_to_ours(pair: Pair) -> None:
    # A frame websockets would never send: wrong masking for its role.
    raw = frame(TEXT, b"hi") if pair.ours_is_server else frame(TEXT, b"hi", mask=b"\x00\x00\x00\x01")
    pair.ours.receive_data(raw)
    assert pair.ours.events_received() == []
    assert isinstance(pair.ours.parser_exc, ProtocolError)
    check_failed(pair, 1002, ours_failed=True)


@pytest.mark.parametrize(
    "raw",
    [
        frame(TEXT, b"x", rsv=0b100),  # RSV1 without an extension
        frame(0x3, b""),  # reserved opcode
        frame(0x9, b"", fin=False),  # fragmented ping
        frame(0x0, b"x"),  # unexpected continuation
    ],
    ids=["rsv1", "opcode", "fragmented-ping", "continuation"],
)
def test_ours_sends_invalid_frame_to_theirs(pair: Pair, raw: bytes) -> None:
    if not pair.ours_is_server:
        # A client's frames are masked.
        raw = bytes([raw[0], raw[1] | 0x80]) + b"\x00\x00\x00\x00" + raw[2:]
    pair.theirs.receive_data(raw)
    assert isinstance(pair.theirs.parser_exc, websockets.exceptions.ProtocolError)
    check_failed(pair, 1002, ours_failed=False)
    assert pair.ours.close_code == 1002


def test_ours_sends_too_big_to_theirs(pair: Pair) -> None:
    pair.ours.send_binary(b"x" * (2**20 + 1))
    pair.ours_to_theirs()
    assert isinstance(pair.theirs.parser_exc, websockets.exceptions.PayloadTooBig)
    check_failed(pair, 1009, ours_failed=False)
    assert pair.ours.close_code == 1009
