"""Tests for ferrows.protocol: the Sans-I/O connection in the OPEN state and
after, on both sides, with bytes in and bytes out."""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Sequence

import pytest

from ferrows.client import ClientProtocol
from ferrows.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
    TooManyFragments,
)
from ferrows.extensions.base import Extension
from ferrows.frames import Close, Frame, Opcode
from ferrows.protocol import (
    CLIENT,
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    SERVER,
    Protocol,
    Side,
    State,
)
from ferrows.server import ServerProtocol
from ferrows.typing import ExtensionName
from frame_utils import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    client_frame,
    close_payload,
    frame,
    is_masked,
    parse_frames,
)
from xor_extension import XorExtension, connected_pair, pump

# ------------------------------------------------------------------ helpers


def incoming(side: Side, opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """A frame as the peer of ``side`` sends it (masked if sent by a client)."""
    if side is SERVER:
        return client_frame(opcode, payload, **kwargs)
    return frame(opcode, payload, **kwargs)  # type: ignore[arg-type]


def sent_frames(proto: Protocol) -> list[tuple[int, bytes, bool, int]]:
    """Decodes what ``proto`` wants to write; checks masking and that EOF, if
    any, comes last."""
    data = proto.data_to_send()
    if b"" in data:
        assert data.index(b"") == len(data) - 1
    out = b"".join(data)
    frames = []
    while out:
        (f,) = parse_frames(_first_frame(out))
        assert is_masked(out) == (proto.side is CLIENT)
        out = out[len(_first_frame(out)) :]
        frames.append(f)
    return frames


def _first_frame(data: bytes) -> bytes:
    n = data[1] & 0x7F
    pos = 2
    if n == 126:
        (n,) = struct.unpack_from("!H", data, 2)
        pos = 4
    elif n == 127:
        (n,) = struct.unpack_from("!Q", data, 2)
        pos = 10
    if data[1] & 0x80:
        pos += 4
    return data[: pos + n]


def close_code_sent(proto: Protocol) -> int | None:
    """Close code in the close frame that ``proto`` wants to write."""
    closes = [f for f in sent_frames(proto) if f[0] == CLOSE]
    assert len(closes) <= 1
    if not closes:
        return None
    return struct.unpack("!H", closes[0][1][:2])[0]


both_sides = pytest.mark.parametrize("side", [SERVER, CLIENT], ids=["server", "client"])


# ------------------------------------------------------------------ basics


def test_enums() -> None:
    assert [(s.name, s.value) for s in Side] == [("SERVER", 0), ("CLIENT", 1)]
    assert [(s.name, s.value) for s in State] == [
        ("CONNECTING", 0),
        ("OPEN", 1),
        ("CLOSING", 2),
        ("CLOSED", 3),
    ]


@both_sides
def test_attributes(side: Side) -> None:
    proto = Protocol(side)
    assert proto.side is side
    assert proto.state is OPEN
    assert proto.extensions == []
    assert proto.subprotocol is None
    assert proto.handshake_exc is None
    assert proto.close_rcvd is None and proto.close_sent is None and proto.close_rcvd_then_sent is None
    assert proto.close_code is None and proto.close_reason is None
    assert proto.logger.name == f"websockets.{side.name.lower()}"
    assert Protocol(side).id != proto.id


def test_custom_logger() -> None:
    logger = logging.getLogger("test.protocol")
    assert Protocol(SERVER, logger=logger).logger is logger


# ------------------------------------------------------------------ sending


def test_server_sends_exact_bytes() -> None:
    proto = Protocol(SERVER)
    proto.send_text(b"caf\xc3\xa9")
    proto.send_text("café")
    proto.send_binary(b"\x01\x02")
    proto.send_text(b"a", fin=False)
    proto.send_continuation(b"b", fin=False)
    proto.send_continuation(b"c", fin=True)
    proto.send_ping(b"ping")
    proto.send_pong(b"pong")
    assert proto.data_to_send() == [
        b"\x81\x05caf\xc3\xa9",
        b"\x81\x05caf\xc3\xa9",
        b"\x82\x02\x01\x02",
        b"\x01\x01a",
        b"\x00\x01b",
        b"\x80\x01c",
        b"\x89\x04ping",
        b"\x8a\x04pong",
    ]
    assert proto.data_to_send() == []


def test_client_sends_masked_frames() -> None:
    proto = Protocol(CLIENT)
    proto.send_text("café")
    proto.send_binary(b"x" * 70000, fin=False)
    proto.send_continuation(b"", fin=True)
    proto.send_ping(b"")
    proto.send_pong(b"p")
    assert sent_frames(proto) == [
        (TEXT, b"caf\xc3\xa9", True, 0),
        (BINARY, b"x" * 70000, False, 0),
        (CONT, b"", True, 0),
        (PING, b"", True, 0),
        (PONG, b"p", True, 0),
    ]


@both_sides
def test_fragmentation_misuse(side: Side) -> None:
    proto = Protocol(side)
    with pytest.raises(ProtocolError):
        proto.send_continuation(b"", fin=False)
    proto.send_binary(b"", fin=False)
    with pytest.raises(ProtocolError):
        proto.send_text(b"")
    with pytest.raises(ProtocolError):
        proto.send_binary(b"")
    # Control frames may interleave with fragments.
    proto.send_ping(b"")
    proto.send_continuation(b"", fin=True)
    assert [f[0] for f in sent_frames(proto)] == [BINARY, PING, CONT]


@both_sides
def test_control_frame_limits(side: Side) -> None:
    proto = Protocol(side)
    proto.send_ping(b"x" * 125)
    with pytest.raises(ProtocolError):
        proto.send_ping(b"x" * 126)
    with pytest.raises(ProtocolError):
        proto.send_pong(b"x" * 126)
    with pytest.raises(ProtocolError):
        proto.send_close(1000, "x" * 124)
    with pytest.raises(ProtocolError):
        proto.send_close(1006)
    with pytest.raises(ProtocolError):
        proto.send_close(None, "reason")
    assert proto.state is OPEN


def test_send_when_connecting_is_invalid_state() -> None:
    proto = Protocol(SERVER, state=CONNECTING)
    for send in (
        lambda: proto.send_text(b""),
        lambda: proto.send_binary(b""),
        lambda: proto.send_continuation(b"", fin=True),
        lambda: proto.send_ping(b""),
        lambda: proto.send_pong(b""),
        lambda: proto.send_close(),
    ):
        with pytest.raises(InvalidState):
            send()


@both_sides
def test_send_when_closing(side: Side) -> None:
    proto = Protocol(side)
    proto.send_close(1000)
    assert proto.state is CLOSING
    with pytest.raises(InvalidState):
        proto.send_text(b"")
    with pytest.raises(InvalidState):
        proto.send_binary(b"")
    with pytest.raises(InvalidState):
        proto.send_close(1000)
    # Pings and pongs remain allowed while closing.
    proto.send_ping(b"")
    proto.send_pong(b"")
    assert [f[0] for f in sent_frames(proto)] == [CLOSE, PING, PONG]


def test_invalid_state_is_an_assertion_error() -> None:
    proto = Protocol(CLIENT, state=CONNECTING)
    with pytest.raises(AssertionError):
        proto.send_text(b"")


# ------------------------------------------------------------------ receiving


@both_sides
def test_receive_frames(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(
        incoming(side, TEXT, b"caf\xc3", fin=False)
        + incoming(side, CONT, b"\xa9", fin=True)
        + incoming(side, BINARY, b"\x00" * 70000)
        + incoming(side, PONG, b"pong")
    )
    assert proto.events_received() == [
        Frame(Opcode.TEXT, b"caf\xc3", fin=False),
        Frame(Opcode.CONT, b"\xa9"),
        Frame(Opcode.BINARY, b"\x00" * 70000),
        Frame(Opcode.PONG, b"pong"),
    ]
    assert proto.events_received() == []
    assert proto.data_to_send() == []


@both_sides
def test_receive_in_small_chunks(side: Side) -> None:
    proto = Protocol(side)
    data = incoming(side, TEXT, "héllo".encode()) + incoming(side, BINARY, b"z" * 300)
    for i in range(len(data)):
        proto.receive_data(data[i : i + 1])
    assert proto.events_received() == [
        Frame(Opcode.TEXT, "héllo".encode()),
        Frame(Opcode.BINARY, b"z" * 300),
    ]


@both_sides
def test_ping_is_answered(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, PING, b"echo me"))
    assert proto.events_received() == [Frame(Opcode.PING, b"echo me")]
    assert sent_frames(proto) == [(PONG, b"echo me", True, 0)]


@both_sides
def test_ping_in_fragmented_message(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, TEXT, b"a", fin=False) + incoming(side, PING, b"") + incoming(side, CONT, b"b"))
    assert [e.opcode for e in proto.events_received()] == [
        Opcode.TEXT,
        Opcode.PING,
        Opcode.CONT,
    ]
    assert sent_frames(proto) == [(PONG, b"", True, 0)]


def test_ping_while_closing_is_not_answered() -> None:
    proto = Protocol(SERVER)
    proto.send_close(1000)
    proto.data_to_send()
    proto.receive_data(client_frame(PING, b"late"))
    assert proto.events_received() == [Frame(Opcode.PING, b"late")]
    assert proto.data_to_send() == []


# ------------------------------------------------------------------ closing


def test_server_initiates_close() -> None:
    server = Protocol(SERVER)
    server.send_close(1000, "bye")
    assert server.state is CLOSING
    assert server.close_expected()
    assert server.close_sent == Close(1000, "bye")
    assert server.data_to_send() == [frame(CLOSE, close_payload(1000, "bye"))]
    server.receive_data(client_frame(CLOSE, close_payload(1000, "bye")))
    assert server.events_received() == [Frame(Opcode.CLOSE, close_payload(1000, "bye"))]
    # The server closes TCP first.
    assert server.data_to_send() == [b""]
    assert server.state is CLOSING
    assert server.close_code is None
    server.receive_eof()
    assert server.state is CLOSED
    assert not server.close_expected()
    assert server.close_code == 1000
    assert server.close_reason == "bye"
    assert server.close_rcvd_then_sent is False
    exc = server.close_exc
    assert isinstance(exc, ConnectionClosedOK)
    assert exc.rcvd == Close(1000, "bye") and exc.sent == Close(1000, "bye")
    assert exc.rcvd_then_sent is False
    assert exc.__cause__ is None


def test_client_receives_close() -> None:
    client = Protocol(CLIENT)
    client.receive_data(frame(CLOSE, close_payload(1001, "going")))
    assert client.events_received() == [Frame(Opcode.CLOSE, close_payload(1001, "going"))]
    # The client echoes the code, then waits for the server to close TCP.
    assert sent_frames(client) == [(CLOSE, close_payload(1001, "going"), True, 0)]
    assert client.state is CLOSING
    assert client.close_expected()
    client.receive_eof()
    assert client.data_to_send() == [b""]
    assert client.state is CLOSED
    assert client.close_code == 1001
    assert client.close_rcvd_then_sent is True
    assert isinstance(client.close_exc, ConnectionClosedOK)


def test_client_initiates_close() -> None:
    client = Protocol(CLIENT)
    client.send_close()
    assert sent_frames(client) == [(CLOSE, b"", True, 0)]
    assert client.close_sent == Close(1005, "")
    client.receive_data(frame(CLOSE, b""))
    assert client.data_to_send() == []
    client.receive_eof()
    assert client.data_to_send() == [b""]
    assert client.close_code == 1005
    assert client.close_reason == ""
    assert isinstance(client.close_exc, ConnectionClosedOK)


def test_server_receives_close() -> None:
    server = Protocol(SERVER)
    server.receive_data(client_frame(CLOSE, close_payload(3000, "app")))
    assert server.data_to_send() == [frame(CLOSE, close_payload(3000, "app")), b""]
    server.receive_eof()
    assert server.close_code == 3000
    assert server.close_reason == "app"
    exc = server.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd == Close(3000, "app")


@both_sides
def test_data_after_close_is_ignored(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, CLOSE, close_payload(1000)) + incoming(side, TEXT, b"late"))
    assert [e.opcode for e in proto.events_received()] == [Opcode.CLOSE]
    proto.receive_data(incoming(side, BINARY, b"later"))
    assert proto.events_received() == []
    assert proto.parser_exc is None


@both_sides
def test_close_with_error_code(side: Side) -> None:
    proto = Protocol(side)
    proto.send_close(1011, "internal")
    proto.receive_data(incoming(side, CLOSE, close_payload(1011, "internal")))
    proto.receive_eof()
    exc = proto.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert str(exc) == "sent 1011 (internal error) internal; then received 1011 (internal error) internal"


@both_sides
def test_close_exc_before_closed(side: Side) -> None:
    # websockets asserts CLOSED here; ferrows reports the close frames
    # exchanged so far, which its I/O layers raise while closing.
    proto = Protocol(side)
    assert isinstance(proto.close_exc, ConnectionClosedError)
    proto.send_close(1000)
    exc = proto.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd is None and exc.sent is not None and exc.sent.code == 1000


# ------------------------------------------------------------------ EOF


@both_sides
def test_abrupt_eof(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, TEXT, b"partial")[:3])
    proto.receive_eof()
    assert proto.state is CLOSED
    assert proto.close_code == 1006
    assert proto.close_reason == ""
    # No close frame: the network is gone. EOF only if not sent yet.
    assert proto.data_to_send() == [b""]
    exc = proto.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd is None and exc.sent is None
    assert isinstance(exc.__cause__, EOFError)


@both_sides
def test_receive_eof_is_idempotent(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_eof()
    proto.receive_eof()
    assert proto.data_to_send() == [b""]
    assert proto.events_received() == []
    assert proto.state is CLOSED


@both_sides
def test_data_after_eof(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_eof()
    with pytest.raises(EOFError):
        proto.receive_data(b"\x81\x00")


def test_eof_after_close_sent() -> None:
    # The peer vanished during the closing handshake.
    client = Protocol(CLIENT)
    client.send_close(1000)
    client.data_to_send()
    client.receive_eof()
    assert client.state is CLOSED
    assert client.close_code == 1006
    assert client.data_to_send() == [b""]
    exc = client.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent == Close(1000, "") and exc.rcvd is None


# ------------------------------------------------------------------ violations


def check_failure(
    proto: Protocol,
    data: bytes,
    code: int,
    exc_type: type[Exception],
    *,
    events: Sequence[Frame] = (),
) -> None:
    """Feeds ``data``: it must not raise, must fail the connection with
    ``code`` in the close frame, and must leave ``exc_type`` as the cause."""
    proto.receive_data(data)
    assert proto.events_received() == list(events)
    out = proto.data_to_send()
    sent = b"".join(out)
    (close,) = [f for f in parse_frames(_first_frame(sent))]
    assert close[0] == CLOSE
    assert struct.unpack("!H", close[1][:2])[0] == code
    assert (out[-1] == b"") == (proto.side is SERVER)
    assert proto.state is CLOSING
    assert proto.close_sent is not None and proto.close_sent.code == code
    assert isinstance(proto.parser_exc, exc_type)
    # Whatever follows is ignored, and never raises.
    proto.receive_data(incoming(proto.side, TEXT, b"ignored"))
    assert proto.events_received() == []
    proto.receive_eof()
    assert proto.state is CLOSED
    exc = proto.close_exc
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None and exc.sent.code == code
    assert exc.__cause__ is proto.parser_exc


def test_unmasked_client_frame() -> None:
    check_failure(Protocol(SERVER), frame(TEXT, b"hi"), 1002, ProtocolError)


def test_masked_server_frame() -> None:
    check_failure(Protocol(CLIENT), client_frame(TEXT, b"hi"), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("rsv", [0b100, 0b010, 0b001])
def test_reserved_bits(side: Side, rsv: int) -> None:
    check_failure(Protocol(side), incoming(side, BINARY, b"", rsv=rsv), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(side: Side, opcode: int) -> None:
    check_failure(Protocol(side), incoming(side, opcode, b""), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_fragmented_control_frame(side: Side, opcode: int) -> None:
    check_failure(Protocol(side), incoming(side, opcode, b"", fin=False), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_oversized_control_frame(side: Side, opcode: int) -> None:
    check_failure(
        Protocol(side),
        incoming(side, opcode, b"\x03\xe8" + b"x" * 124),
        1002,
        ProtocolError,
    )


@both_sides
def test_unexpected_continuation(side: Side) -> None:
    check_failure(Protocol(side), incoming(side, CONT, b"x"), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_expected_continuation(side: Side, opcode: int) -> None:
    check_failure(
        Protocol(side),
        incoming(side, BINARY, b"a", fin=False) + incoming(side, opcode, b"b"),
        1002,
        ProtocolError,
        events=[Frame(Opcode.BINARY, b"a", fin=False)],
    )


@both_sides
def test_close_in_fragmented_message(side: Side) -> None:
    """A close frame between fragments is a control frame like any other
    (RFC 6455 sections 5.4 and 5.5): it is echoed, the incomplete message is
    dropped, and what follows is ignored, even a valid continuation."""
    proto = Protocol(side)
    proto.receive_data(
        incoming(side, TEXT, b"a", fin=False)
        + incoming(side, CLOSE, close_payload(1000, "bye"))
        + incoming(side, CONT, b"b")
    )
    assert proto.events_received() == [
        Frame(Opcode.TEXT, b"a", fin=False),
        Frame(Opcode.CLOSE, close_payload(1000, "bye")),
    ]
    assert proto.parser_exc is None
    assert proto.close_rcvd == Close(1000, "bye")
    assert proto.state is CLOSING
    data = proto.data_to_send()
    assert (data[-1] == b"") == (side is SERVER)
    (echo,) = parse_frames(b"".join(data))
    assert echo[:2] == (CLOSE, close_payload(1000, "bye"))


@both_sides
def test_close_frame_of_one_byte(side: Side) -> None:
    check_failure(Protocol(side), incoming(side, CLOSE, b"\x03"), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_code(side: Side, code: int) -> None:
    check_failure(Protocol(side), incoming(side, CLOSE, close_payload(code)), 1002, ProtocolError)


@both_sides
@pytest.mark.parametrize("code", [1000, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_code(side: Side, code: int) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, CLOSE, close_payload(code)))
    assert proto.parser_exc is None
    assert proto.close_rcvd == Close(code, "")


@both_sides
def test_invalid_utf8_in_text(side: Side) -> None:
    check_failure(Protocol(side), incoming(side, TEXT, b"caf\xe9"), 1007, UnicodeDecodeError)


@both_sides
def test_invalid_utf8_fails_at_the_bad_fragment(side: Side) -> None:
    proto = Protocol(side)
    proto.receive_data(incoming(side, TEXT, b"ok \xc3", fin=False))
    # A character split across fragments is fine.
    proto.receive_data(incoming(side, CONT, b"\xa9 ok", fin=False))
    assert len(proto.events_received()) == 2
    # The connection fails at this fragment, before the message ends.
    check_failure(proto, incoming(side, CONT, b"\xff", fin=False), 1007, UnicodeDecodeError)


@both_sides
def test_truncated_utf8_at_end_of_message(side: Side) -> None:
    proto = Protocol(side)
    check_failure(
        proto,
        incoming(side, TEXT, b"\xc3", fin=False) + incoming(side, CONT, b""),
        1007,
        UnicodeDecodeError,
        events=[Frame(Opcode.TEXT, b"\xc3", fin=False)],
    )


@both_sides
def test_invalid_utf8_in_close_reason(side: Side) -> None:
    check_failure(Protocol(side), incoming(side, CLOSE, b"\x03\xe8\xff"), 1007, UnicodeDecodeError)


def test_invalid_binary_is_fine() -> None:
    proto = Protocol(SERVER)
    proto.receive_data(client_frame(BINARY, b"\xff"))
    assert proto.events_received() == [Frame(Opcode.BINARY, b"\xff")]


@both_sides
def test_oversized_message_in_one_frame(side: Side) -> None:
    proto = Protocol(side, max_size=1000)
    proto.receive_data(incoming(side, BINARY, b"x" * 1000))
    assert len(proto.events_received()) == 1
    check_failure(proto, incoming(side, BINARY, b"x" * 1001), 1009, PayloadTooBig)


@both_sides
def test_oversized_message_across_fragments(side: Side) -> None:
    proto = Protocol(side, max_size=1000)
    data = incoming(side, TEXT, b"x" * 600, fin=False) + incoming(side, CONT, b"x" * 401)
    check_failure(
        proto,
        data,
        1009,
        PayloadTooBig,
        events=[Frame(Opcode.TEXT, b"x" * 600, fin=False)],
    )


@both_sides
def test_max_size_tuple_and_none(side: Side) -> None:
    proto = Protocol(side, max_size=(10, None))
    check_failure(proto, incoming(side, BINARY, b"x" * 11), 1009, PayloadTooBig)
    proto = Protocol(side, max_size=None)
    proto.receive_data(incoming(side, BINARY, b"x" * (2**20 + 1)))
    assert len(proto.events_received()[0].data) == 2**20 + 1


@both_sides
def test_huge_length_fails_instantly(side: Side) -> None:
    # Only the header arrives: the connection fails without waiting for (or
    # allocating) 2^62 bytes.
    header = incoming(side, BINARY, b"", length=2**62)
    check_failure(Protocol(side), header, 1009, PayloadTooBig)


@both_sides
def test_length_with_most_significant_bit(side: Side) -> None:
    check_failure(Protocol(side), incoming(side, BINARY, b"", length=2**63), 1002, ProtocolError)


@both_sides
def test_too_many_fragments(side: Side) -> None:
    # 4096 fragments (WEBSOCKETS_MAX_FRAGMENTS) make a valid message...
    data = incoming(side, BINARY, b"", fin=False) + incoming(side, CONT, b"", fin=False) * 4095
    ok = Protocol(side)
    ok.receive_data(data[: -len(incoming(side, CONT, b""))] + incoming(side, CONT, b""))
    assert len(ok.events_received()) == 4096
    assert ok.parser_exc is None
    # ... and the 4097th fails it, even when it is the last one.
    proto = Protocol(side)
    proto.receive_data(data)
    assert len(proto.events_received()) == 4096
    check_failure(proto, incoming(side, CONT, b""), 1009, TooManyFragments)


@both_sides
def test_fail(side: Side) -> None:
    proto = Protocol(side)
    proto.fail(1011, "sorry")
    out = proto.data_to_send()
    assert parse_frames(out[0]) == [(CLOSE, close_payload(1011, "sorry"), True, 0)]
    assert (out[-1] == b"") == (side is SERVER)
    assert proto.state is CLOSING
    # Input is no longer parsed.
    proto.receive_data(incoming(side, TEXT, b"x"))
    assert proto.events_received() == []
    proto.receive_eof()
    assert proto.close_code == 1006
    assert isinstance(proto.close_exc, ConnectionClosedError)
    assert proto.close_exc.__cause__ is None


@both_sides
def test_fail_after_close_sent(side: Side) -> None:
    proto = Protocol(side)
    proto.send_close(1000)
    proto.data_to_send()
    proto.fail(1002)
    # No second close frame.
    assert proto.data_to_send() == ([b""] if side is SERVER else [])


# ------------------------------------------------------------------ extensions


def test_extension_round_trip() -> None:
    client, server = connected_pair()
    client.send_text("héllo")
    client.send_binary(b"\x00\x01", fin=False)
    client.send_continuation(b"\x02", fin=True)
    client.send_ping(b"ping")
    wire = b"".join(client.data_to_send())
    server.receive_data(wire)
    assert server.events_received() == [
        Frame(Opcode.TEXT, "héllo".encode()),
        Frame(Opcode.BINARY, b"\x00\x01", fin=False),
        Frame(Opcode.CONT, b"\x02"),
        Frame(Opcode.PING, b"ping"),
    ]
    # The payloads were transformed on the wire and RSV3 was set.
    frames = parse_frames(wire)
    assert frames[0] == (TEXT, bytes(b ^ 42 for b in "héllo".encode()), True, 0b001)
    assert frames[3] == (PING, b"ping", True, 0)
    # Control frames go through extensions too, as in websockets.
    (ext,) = server.extensions
    decoded = [f.opcode for f in ext.decoded]  # type: ignore[attr-defined]
    assert decoded == [Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING]

    server.send_text("réponse")
    server.send_binary(b"skip me")  # sent untransformed, without RSV3
    assert pump(server, client) == [
        Frame(Opcode.PONG, b"ping"),  # answered as soon as the ping arrived
        Frame(Opcode.TEXT, "réponse".encode()),
        Frame(Opcode.BINARY, b"skip me"),
    ]

    client.send_close(1000, "done")
    assert pump(client, server) == [Frame(Opcode.CLOSE, close_payload(1000, "done"))]
    assert pump(server, client) == [Frame(Opcode.CLOSE, close_payload(1000, "done"))]
    assert client.state is CLOSED
    assert isinstance(client.close_exc, ConnectionClosedOK)


def test_extension_leaves_unknown_rsv_bit() -> None:
    _client, server = connected_pair()
    check_failure(server, client_frame(TEXT, b"x", rsv=0b100), 1002, ProtocolError)


def test_extension_invalid_utf8_after_decoding() -> None:
    _client, server = connected_pair()
    # Valid UTF-8 on the wire, invalid once decoded.
    check_failure(
        server,
        client_frame(TEXT, bytes([0xFF ^ 42]), rsv=0b001),
        1007,
        UnicodeDecodeError,
    )


def test_extension_invalid_utf8_at_the_bad_fragment() -> None:
    _client, server = connected_pair()
    server.receive_data(client_frame(TEXT, bytes(b ^ 42 for b in b"a\xc3"), fin=False, rsv=0b001))
    server.receive_data(client_frame(CONT, b"\xa9", fin=False))
    assert len(server.events_received()) == 2
    check_failure(server, client_frame(CONT, b"\xff", fin=False), 1007, UnicodeDecodeError)


def test_extension_message_too_big() -> None:
    _client, server = connected_pair(max_size=10)
    server.receive_data(client_frame(BINARY, b"x" * 6, fin=False))
    assert len(server.events_received()) == 1
    check_failure(server, client_frame(CONT, b"y" * 5), 1009, PayloadTooBig)


def test_extension_decode_raises_max_size() -> None:
    _client, server = connected_pair(max_size=10)
    check_failure(server, client_frame(BINARY, b"y" * 11, rsv=0b001), 1009, PayloadTooBig)


def test_extension_too_many_fragments() -> None:
    _client, server = connected_pair()
    data = client_frame(BINARY, b"", fin=False) + client_frame(CONT, b"", fin=False) * 4096
    check_failure(
        server,
        data,
        1009,
        TooManyFragments,
        events=[Frame(Opcode.BINARY, b"", fin=False)] + [Frame(Opcode.CONT, b"", fin=False)] * 4095,
    )


def test_extension_crash_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    _client, server = connected_pair()
    with caplog.at_level(logging.ERROR, logger="websockets.server"):
        check_failure(server, client_frame(BINARY, b"\x00boom", rsv=0b001), 1011, RuntimeError)
    assert "unexpected exception in extension" in caplog.text


def test_extensions_given_to_protocol_directly() -> None:
    server = Protocol(SERVER, extensions=[XorExtension(1)])
    client = Protocol(CLIENT, extensions=[XorExtension(1)])
    client.send_text("ok")
    assert pump(client, server) == [Frame(Opcode.TEXT, b"ok")]


def test_max_size_pair_limits_each_frame_too():
    """websockets' ``max_size=(message, fragment)``: a frame over the second
    limit fails with 1009 even when the message would fit the first."""
    server = ServerProtocol(state=State.OPEN, max_size=(100, 10))
    assert (server.max_size, server.max_frame_size) == (100, 10)
    client = ClientProtocol("ws://localhost/", state=State.OPEN)
    client.send_binary(b"x" * 10, fin=False)
    client.send_continuation(b"y" * 10, fin=True)
    server.receive_data(b"".join(client.data_to_send()))
    frames = server.events_received()
    assert [len(f.data) for f in frames] == [10, 10]
    client.send_binary(b"z" * 11)
    server.receive_data(b"".join(client.data_to_send()))
    assert server.events_received() == []
    assert isinstance(server.parser_exc, PayloadTooBig)
    close = server.data_to_send()[0]
    assert close[0] == 0x88 and close[2:4] == (1009).to_bytes(2, "big")


def test_close_answered_in_the_middle_of_a_fragmented_message() -> None:
    """A control frame may come between fragments (RFC 6455 sections 5.4 and
    5.5), so a client answers a close frame while sending a fragmented
    message; the server takes that close frame as the normal end of the
    closing handshake, drops the message left incomplete, and both ends
    close with the codes exchanged. (websockets fails such a connection
    with 1002, "incomplete fragmented message".)"""
    server = ServerProtocol(state=OPEN)
    client = ClientProtocol("ws://localhost/", state=OPEN)
    server.send_close(1000)
    client.send_binary(b"ab", fin=False)
    for data in client.data_to_send():
        server.receive_data(data)
    for data in server.data_to_send():
        if data:
            client.receive_data(data)
    for data in client.data_to_send():
        if data:
            server.receive_data(data)
    assert server.parser_exc is None
    assert client.parser_exc is None
    assert [frame.opcode for frame in server.events_received()] == [Opcode.BINARY, Opcode.CLOSE]
    assert server.close_rcvd is not None and server.close_rcvd.code == 1000
    assert client.close_sent is not None and client.close_sent.code == 1000


class Rsv2(Extension):
    """Sets RSV2 on every frame it sends, control frames included, and
    requires it on every frame it receives."""

    name = ExtensionName("x-rsv2")

    def encode(self, frame: Frame) -> Frame:
        assert not frame.rsv2
        return dataclasses.replace(frame, rsv2=True)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if not frame.rsv2:
            raise ProtocolError("expected rsv2")
        return dataclasses.replace(frame, rsv2=False)


@pytest.mark.parametrize("side", [SERVER, CLIENT])
def test_python_extensions_encode_control_frames(side: Side) -> None:
    proto = Protocol(side, extensions=[Rsv2()])
    proto.send_ping(b"")
    proto.send_pong(b"x")
    sent = parse_frames(b"".join(proto.data_to_send()))
    assert [(op, data, rsv) for op, data, _fin, rsv in sent] == [(PING, b"", 0b010), (PONG, b"x", 0b010)]


@pytest.mark.parametrize("side", [SERVER, CLIENT])
def test_python_extensions_decode_control_frames(side: Side) -> None:
    proto = Protocol(side, extensions=[Rsv2()])
    proto.receive_data(incoming(side, PONG, b"", rsv=0b010) + incoming(side, PING, b"p", rsv=0b010))
    assert proto.events_received() == [Frame(Opcode.PONG, b""), Frame(Opcode.PING, b"p")]
    assert proto.parser_exc is None
    # The pong answering the ping went through the extension.
    [(op, data, _fin, rsv)] = parse_frames(b"".join(proto.data_to_send()))
    assert (op, data, rsv) == (PONG, b"p", 0b010)
    # A control frame the extension refuses fails the connection.
    proto.receive_data(incoming(side, PING, b""))
    assert isinstance(proto.parser_exc, ProtocolError) and str(proto.parser_exc) == "expected rsv2"


def test_extensions_assigned_on_an_open_protocol() -> None:
    # websockets' tests set extensions after creating the protocol.
    server = Protocol(SERVER)
    server.extensions = [Rsv2()]
    server.send_ping(b"")
    assert server.data_to_send() == [b"\xa9\x00"]
    server.receive_data(client_frame(PONG, b"", rsv=0b010))
    assert server.events_received() == [Frame(Opcode.PONG, b"")]


def test_bug_in_recv_frame_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    """An exception while handling a received frame fails the connection with
    1011 and no details, and is the parser_exc, as websockets does."""

    class Broken(Protocol):
        def recv_frame(self, frame: Frame) -> None:
            raise RuntimeError("BOOM")

    for side in (SERVER, CLIENT):
        with caplog.at_level(logging.ERROR):
            check_failure(Broken(side), incoming(side, TEXT, b""), 1011, RuntimeError)
        assert "parser failed" in caplog.text


def test_fragment_over_the_limit_with_python_extension() -> None:
    """The wording of websockets' PayloadTooBig on the path where
    extensions run in Python: this frame's size and the message's before."""
    server = Protocol(SERVER, max_size=3, extensions=[XorExtension(1)])
    server.receive_data(client_frame(BINARY, b"ab", fin=False) + client_frame(CONT, b"cd"))
    exc = server.parser_exc
    assert isinstance(exc, PayloadTooBig)
    assert str(exc) == "frame with 2 bytes after reading 2 bytes exceeds limit of 3 bytes"
    close = Close.parse(parse_frames(_first_frame(b"".join(server.data_to_send())))[0][1])
    assert (close.code, close.reason) == (1009, str(exc))
