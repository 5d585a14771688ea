"""Tests for Protocol's ``assemble`` mode, the one the I/O layers use: whole
messages, typed control events and deferred failures, on the core's path
and on the path where extensions written in Python run above the core."""

from __future__ import annotations

import logging

import pytest

from ferrows import _core
from ferrows.events import CloseReceived, Fragment, PingReceived, PongReceived, ProtocolViolation
from ferrows.exceptions import InvalidState, PayloadTooBig, ProtocolError
from ferrows.frames import Frame, Opcode
from ferrows.protocol import CLIENT, CLOSING, CONNECTING, OPEN, SERVER, Protocol, Side
from ferrows.server import ServerProtocol
from frame_utils import BINARY, CLOSE, CONT, PING, PONG, TEXT, client_frame, close_payload, frame, parse_frames
from xor_extension import XorExtension, connected_pair

both_sides = pytest.mark.parametrize("side", [SERVER, CLIENT])


def incoming(side: Side, opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    if side is SERVER:
        return client_frame(opcode, payload, **kwargs)
    return frame(opcode, payload, **kwargs)  # type: ignore[arg-type]


def xored(data: bytes, key: int = 42) -> bytes:
    return bytes(b ^ key for b in data)


def assembling(side: Side, *, python_extension: bool = False, **kwargs: object) -> Protocol:
    extensions = [XorExtension(42)] if python_extension else []
    proto = Protocol(side, extensions=extensions, assemble=True, **kwargs)  # type: ignore[arg-type]
    assert proto.assemble
    return proto


paths = pytest.mark.parametrize("python_extension", [False, True], ids=["core", "python-extension"])


# ------------------------------------------------------------------ events


@both_sides
@paths
def test_messages_and_control_events(side: Side, python_extension: bool) -> None:
    proto = assembling(side, python_extension=python_extension)
    data = (
        incoming(side, TEXT, b"caf", fin=False)
        + incoming(side, PING, b"p")
        + incoming(side, CONT, "é".encode())
        + incoming(side, BINARY, b"\x00\x01")
        + incoming(side, PONG, b"q")
        + incoming(side, BINARY, b"", fin=False)
        + incoming(side, CONT, b"")
    )
    # The ping came between the fragments of the text message.
    assert proto.receive_events(data) == [PingReceived(b"p"), "café", b"\x00\x01", PongReceived(b"q"), b""]
    out = b"".join(proto.data_to_send())
    assert parse_frames(out) == [(PONG, b"p", True, 0)]


@both_sides
@paths
def test_receive_data_and_events_received_agree(side: Side, python_extension: bool) -> None:
    proto = assembling(side, python_extension=python_extension)
    proto.receive_data(incoming(side, TEXT, b"a"))
    proto.receive_data(incoming(side, BINARY, b"b"))
    assert proto.events_received() == ["a", b"b"]


@both_sides
@paths
def test_close_event(side: Side, python_extension: bool) -> None:
    proto = assembling(side, python_extension=python_extension)
    assert proto.receive_events(incoming(side, CLOSE, close_payload(1001, "bye"))) == [
        CloseReceived(close_payload(1001, "bye"))
    ]
    assert proto.close_rcvd is not None and proto.close_rcvd.code == 1001
    assert proto.state is CLOSING


@paths
def test_the_python_path_decodes_extensions(python_extension: bool) -> None:
    proto = assembling(SERVER, python_extension=python_extension)
    payload = xored("héllo".encode()) if python_extension else "héllo".encode()
    rsv = 0b001 if python_extension else 0
    assert proto.receive_events(client_frame(TEXT, payload, rsv=rsv)) == ["héllo"]


def test_fast_path_forwards_to_the_core() -> None:
    """Without Python extensions, a read and a send run no Python code."""
    proto = assembling(SERVER)
    assert type(proto.receive_events).__name__ == "builtin_function_or_method"
    assert type(proto.send_data).__name__ == "builtin_function_or_method"
    slow = assembling(SERVER, python_extension=True)
    assert type(slow.receive_events).__name__ == "method"
    # Frame mode: receive_events goes through the frames, send_data doesn't.
    frames = Protocol(SERVER)
    assert type(frames.receive_events).__name__ == "method"
    assert frames.receive_events(client_frame(TEXT, b"x")) == [Frame(Opcode.TEXT, b"x")]


def test_assemble_set_after_opening() -> None:
    """A connection built over a protocol that is already open switches it
    to assemble mode before feeding data (websockets' users bring their own
    handshake that way)."""
    proto = Protocol(SERVER)
    assert not proto.assemble
    proto.assemble = True
    assert proto.receive_events(client_frame(TEXT, b"x")) == ["x"]
    proto.assemble = False
    assert proto.receive_events(client_frame(TEXT, b"y")) == [Frame(Opcode.TEXT, b"y")]


def test_assemble_before_the_handshake() -> None:
    server = ServerProtocol()
    server.assemble = True
    assert server.state is CONNECTING
    with pytest.raises(InvalidState):
        server.send_data(TEXT, b"x", True)


# ------------------------------------------------------------------ sending


@both_sides
@paths
def test_send_data(side: Side, python_extension: bool) -> None:
    proto = assembling(side, python_extension=python_extension)
    peer = assembling(CLIENT if side is SERVER else SERVER, python_extension=python_extension)
    wire = b"".join(
        [
            proto.send_data(TEXT, "ça", False),
            proto.send_data(PING, b"1", True),
            proto.send_data(CONT, " va", True),
            proto.send_data(BINARY, b"\x00", True),
            proto.send_data(PONG, b"2", True),
        ]
    )
    assert peer.receive_events(wire) == [PingReceived(b"1"), "ça va", b"\x00", PongReceived(b"2")]
    if python_extension:
        assert parse_frames(wire)[0][3] == 0b001  # RSV3: the extension encoded it


@both_sides
@paths
def test_send_data_checks(side: Side, python_extension: bool) -> None:
    proto = assembling(side, python_extension=python_extension)
    with pytest.raises(ProtocolError):
        proto.send_data(CONT, b"x", True)
    with pytest.raises(ProtocolError):
        proto.send_data(PING, b"x" * 126, True)
    with pytest.raises(ValueError):
        proto.send_data(CLOSE, b"", True)
    proto.send_close(1000)
    proto.data_to_send()
    with pytest.raises(InvalidState):
        proto.send_data(TEXT, b"x", True)
    assert proto.send_data(PING, b"x", True)  # allowed while closing


def test_send_header() -> None:
    server = assembling(SERVER)
    header = server.send_header(BINARY, 100_000, True)
    assert header is not None and parse_frames(header + b"x" * 100_000) == [(BINARY, b"x" * 100_000, True, 0)]
    assert assembling(CLIENT).send_header(BINARY, 10, True) is None  # clients mask
    assert assembling(SERVER, python_extension=True).send_header(BINARY, 10, True) is None


@both_sides
def test_send_frame_and_send_eof(side: Side) -> None:
    proto = assembling(side)
    proto.send_frame(Frame(Opcode.TEXT, b"hi"))
    proto.send_frame(Frame(Opcode.CLOSE, close_payload(1000, "ok")))
    out = proto.data_to_send()
    frames = parse_frames(b"".join(o for o in out if o))
    assert frames[:2] == [(TEXT, b"hi", True, 0), (CLOSE, close_payload(1000, "ok"), True, 0)]
    proto.send_eof()
    assert proto.data_to_send() == [b""]
    with pytest.raises(InvalidState):
        proto.send_eof()


@both_sides
def test_send_frame_refuses_a_fragmented_control_frame(side: Side) -> None:
    with pytest.raises(ProtocolError, match="fragmented control frame"):
        assembling(side).send_frame(Frame(Opcode.PING, b"", fin=False))


# ------------------------------------------------------------------ failures

VIOLATIONS = {
    "rsv2": (lambda side: incoming(side, TEXT, b"x", rsv=0b010), 1002, ProtocolError),
    "opcode 5": (lambda side: incoming(side, 5, b""), 1002, ProtocolError),
    "opcode 11": (lambda side: incoming(side, 11, b""), 1002, ProtocolError),
    "text inside a fragmented message": (
        lambda side: incoming(side, BINARY, b"a", fin=False) + incoming(side, TEXT, b"b"),
        1002,
        ProtocolError,
    ),
    "continuation without a start": (lambda side: incoming(side, CONT, b"x"), 1002, ProtocolError),
    "invalid utf-8": (lambda side: incoming(side, TEXT, b"\xff"), 1007, UnicodeDecodeError),
}


@both_sides
@paths
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_violation_after_a_message_is_deferred(side: Side, python_extension: bool, violation: str) -> None:
    """The message before the violation is delivered, the answer to it goes
    out before the close frame, and a ping after the violation is ignored."""
    make, code, exc_type = VIOLATIONS[violation]
    proto = assembling(side, python_extension=python_extension)
    data = incoming(side, TEXT, b"hello") + make(side) + incoming(side, PING, b"late")
    events = proto.receive_events(data)
    assert events[0] == "hello"
    assert events[-1] == ProtocolViolation(code)
    assert isinstance(proto.parser_exc, exc_type)
    # Nothing was written and the connection is still open for answers.
    assert proto.data_to_send() == []
    assert proto.state is OPEN
    answer = proto.send_data(TEXT, b"echo: hello" if not python_extension else b"skip: hello", True)
    assert proto.fail_pending()
    assert not proto.fail_pending()  # once
    out = proto.data_to_send()
    frames = parse_frames(answer + b"".join(o for o in out if o))
    assert frames[0] == (TEXT, b"echo: hello" if not python_extension else b"skip: hello", True, 0)
    assert frames[1][0] == CLOSE and frames[1][1][:2] == code.to_bytes(2, "big")
    assert len(frames) == 2  # no pong for the late ping
    assert (b"" in out) is (side is SERVER)
    assert proto.state is CLOSING
    assert proto.close_exc.__cause__ is proto.parser_exc
    # More input is ignored.
    assert proto.receive_events(incoming(side, TEXT, b"more")) == []


@both_sides
def test_frame_mode_fails_at_once(side: Side) -> None:
    """Without assemble, websockets' semantics: the close frame is due at once."""
    proto = Protocol(side)
    proto.receive_data(incoming(side, TEXT, b"hello") + incoming(side, 5))
    assert proto.events_received() == [Frame(Opcode.TEXT, b"hello")]
    out = proto.data_to_send()
    assert parse_frames(out[0])[0][1][:2] == b"\x03\xea"
    assert not proto.fail_pending()


@both_sides
def test_fail_pending_after_the_application_closed(side: Side) -> None:
    proto = assembling(side)
    proto.receive_events(incoming(side, 5))
    proto.send_close(1000)
    proto.data_to_send()
    # No second close frame: the peer's reply will not be read, so a server
    # only closes TCP.
    proto.fail_pending()
    assert proto.data_to_send() == ([b""] if side is SERVER else [])
    assert proto.close_sent is not None and proto.close_sent.code == 1000


@both_sides
def test_eof_after_a_deferred_violation(side: Side) -> None:
    proto = assembling(side)
    proto.receive_events(incoming(side, 5))
    proto.receive_eof()
    assert proto.events_received() == []
    assert isinstance(proto.parser_exc, ProtocolError)
    assert not proto.fail_pending()


def test_python_extension_violations_are_deferred_too() -> None:
    _client, server = connected_pair(max_size=4)
    server.assemble = True
    events = server.receive_events(client_frame(TEXT, b"ok") + client_frame(BINARY, xored(b"12345"), rsv=0b001))
    assert events == ["ok", ProtocolViolation(1009)]
    assert isinstance(server.parser_exc, PayloadTooBig)
    assert server.data_to_send() == []
    assert server.fail_pending()
    out = server.data_to_send()
    assert parse_frames(out[0])[0][1][:2] == b"\x03\xf1"
    assert server.receive_events(client_frame(TEXT, b"later")) == []


def test_core_event_classes_are_the_public_ones() -> None:
    assert PingReceived is _core.PingReceived and ProtocolViolation is _core.ProtocolViolation


# --------------------------------------------------------------- fragments


def data_frame(side: Side, opcode: int, payload: bytes, python_extension: bool, fin: bool = True) -> bytes:
    """A data frame as the peer sends it, encoded by XorExtension if used."""
    if python_extension:
        return incoming(side, opcode, xored(payload), fin=fin, rsv=1)
    return incoming(side, opcode, payload, fin=fin)


@both_sides
@paths
def test_fragments_are_reported_as_they_arrive(side: Side, python_extension: bool) -> None:
    """With ``fragments``, each frame of a fragmented message is an event of
    the read that completes it; a message in one frame stays whole."""
    proto = assembling(side, python_extension=python_extension, fragments=True)
    ext = python_extension
    smiley = "😀".encode()
    assert proto.receive_events(data_frame(side, TEXT, b"ok", ext)) == ["ok"]
    # The character split across frames comes out in the frame that ends it.
    first = data_frame(side, TEXT, b"a" + smiley[:1], ext, fin=False)
    assert proto.receive_events(first) == [Fragment("a", False)]
    second = data_frame(side, CONT, smiley[1:], ext, fin=False)
    assert proto.receive_events(second) == [Fragment("😀", False)]
    last = incoming(side, PING, b"p") + data_frame(side, CONT, b"", ext)
    assert proto.receive_events(last) == [PingReceived(b"p"), Fragment("", True)]
    binary = data_frame(side, BINARY, b"\x01", ext, fin=False) + data_frame(side, CONT, b"\x02", ext)
    assert proto.receive_events(binary) == [Fragment(b"\x01", False), Fragment(b"\x02", True)]
    assert proto.fragments


@both_sides
@paths
def test_fragments_keep_the_limits_of_the_message(side: Side, python_extension: bool) -> None:
    """max_size bounds the whole message: the fragments within it come
    first, then the violation."""
    proto = assembling(side, python_extension=python_extension, fragments=True, max_size=4)
    ext = python_extension
    data = data_frame(side, BINARY, b"abc", ext, fin=False) + data_frame(side, CONT, b"de", ext)
    assert proto.receive_events(data) == [Fragment(b"abc", False), ProtocolViolation(1009)]
    assert isinstance(proto.parser_exc, PayloadTooBig)


def test_fragments_set_after_opening() -> None:
    """Like assemble, the setting can change before data is fed."""
    proto = Protocol(SERVER, assemble=True)
    data = client_frame(TEXT, b"a", fin=False) + client_frame(CONT, b"b")
    assert proto.receive_events(data) == ["ab"]
    proto.fragments = True
    assert proto.receive_events(data) == [Fragment("a", False), Fragment("b", True)]


def test_fragment_events() -> None:
    """Fragment is a value: equality, hash, repr, and only str or bytes."""
    assert Fragment("a", True) == Fragment("a", True)
    assert Fragment("a", True) != Fragment("a", False)
    assert Fragment(b"a") != Fragment("a")
    assert Fragment("a") != "a"
    assert hash(Fragment(b"x", True)) == hash(Fragment(b"x", True))
    assert repr(Fragment("a", True)) == "Fragment(data='a', fin=True)"
    assert Fragment(b"\x00").fin is False
    with pytest.raises(TypeError):
        Fragment(1)  # type: ignore[arg-type]


def test_fragments_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.fragments")
    logger.setLevel(logging.DEBUG)
    proto = Protocol(SERVER, assemble=True, fragments=True, logger=logger)
    with caplog.at_level(logging.DEBUG, logger="test.fragments"):
        proto.receive_events(client_frame(TEXT, b"a", fin=False) + client_frame(CONT, b"b"))
    fragments = [r.getMessage() for r in caplog.records if "fragment" in r.getMessage()]
    assert fragments == ["< fragment CONT 'a' [text, 1 byte, continued]", "< fragment CONT 'b' [text, 1 byte]"]
