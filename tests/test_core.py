"""Tests for ferrows._core, the Rust extension module, called directly."""

from __future__ import annotations

import base64
import os

import pytest

from ferrows import _core
from ferrows.exceptions import (
    HeaderLineTooLong,
    InvalidMessage,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
    RequestLineTooLong,
    SecurityError,
    StatusLineTooLong,
    TooManyFragments,
    TooManyHeaders,
)
from frame_utils import (
    BINARY,
    CLOSE,
    CONT,
    MASK,
    PING,
    PONG,
    TEXT,
    client_frame,
    close_payload,
    frame,
    parse_frames,
    xor,
)


def server(**kwargs: object) -> _core.Connection:
    return _core.Connection(False, **kwargs)  # type: ignore[arg-type]


def client(**kwargs: object) -> _core.Connection:
    conn = _core.Connection(True, **kwargs)  # type: ignore[arg-type]
    conn.set_fixed_mask(MASK)
    return conn


# ------------------------------------------------------------------ events


def test_control_events_are_typed() -> None:
    ping, pong, close = _core.PingReceived(b"a"), _core.PongReceived(b"a"), _core.CloseReceived(b"a")
    assert ping == _core.PingReceived(b"a") and ping != pong and pong != close
    assert ping.data == b"a" and _core.PingReceived().data == b""
    assert repr(pong) == "PongReceived(data=b'a')"
    assert hash(ping) == hash(b"a")
    violation = _core.ProtocolViolation(1002)
    assert violation.code == 1002 and violation == _core.ProtocolViolation(1002)
    assert repr(violation) == "ProtocolViolation(code=1002)"


def test_frame_events_are_tuples() -> None:
    conn = server()
    data = (
        client_frame(TEXT, b"caf\xc3\xa9")
        + client_frame(BINARY, b"\x00\xff", fin=False)
        + client_frame(CONT, b"\x01", fin=True)
        + client_frame(PING, b"hi")
        + client_frame(PONG, b"ho")
    )
    assert conn.receive_data(data) == [
        (TEXT, b"caf\xc3\xa9", True, 0),
        (BINARY, b"\x00\xff", False, 0),
        (CONT, b"\x01", True, 0),
        _core.PingReceived(b"hi"),
        _core.PongReceived(b"ho"),
    ]
    # The ping was answered.
    assert conn.data_to_send() == [frame(PONG, b"hi")]


def test_frame_events_of_a_client() -> None:
    conn = client()
    assert conn.receive_data(frame(TEXT, b"Hello")) == [(TEXT, b"Hello", True, 0)]


def test_assembled_events_are_str_and_bytes() -> None:
    conn = server(assemble=True)
    data = (
        client_frame(TEXT, b"caf\xc3", fin=False)
        + client_frame(PING, b"")  # control frames may interleave
        + client_frame(CONT, b"\xa9", fin=True)
        + client_frame(BINARY, b"\x00")
        + client_frame(BINARY, b"", fin=False)
        + client_frame(CONT, b"ab", fin=False)
        + client_frame(CONT, b"c")
        + client_frame(TEXT, b"")
    )
    events = conn.receive_data(data)
    assert events == [_core.PingReceived(b""), "café", b"\x00", b"abc", ""]
    assert [type(e) for e in events[1:]] == [str, bytes, bytes, str]


def test_events_for_any_chunking() -> None:
    data = client_frame(TEXT, b"x" * 300) + client_frame(BINARY, b"y" * 70000) + client_frame(PING, b"p")
    whole = server().receive_data(data)
    for size in (1, 2, 3, 7, 13, 1000):
        conn = server()
        events = []
        for i in range(0, len(data), size):
            events += conn.receive_data(data[i : i + size])
        assert events == whole


@pytest.mark.parametrize("size", [65_535, 65_536, 1 << 20])
@pytest.mark.parametrize("step", [7_000, 65_536, 262_144])
def test_large_binary_messages_in_any_chunking(size: int, step: int) -> None:
    """From 64 KiB, a single-frame binary message is unmasked straight into
    the bytes object returned; chunks of 64 KiB and more are processed
    without the GIL, which the core takes back to create that object."""
    payload = os.urandom(size)
    ends = [
        (server(assemble=True, max_size=None), client_frame(BINARY, payload) + client_frame(PING, b"p")),
        (client(assemble=True, max_size=None), frame(BINARY, payload) + frame(PING, b"p")),
    ]
    for conn, data in ends:
        events: list[object] = []
        for i in range(0, len(data), step):
            events += conn.receive_data(data[i : i + step])
        assert events == [payload, _core.PingReceived(b"p")]
        assert type(events[0]) is bytes


def test_receive_data_accepts_buffers() -> None:
    data = client_frame(BINARY, b"abc")
    assert server().receive_data(bytearray(data)) == [(BINARY, b"abc", True, 0)]
    assert server().receive_data(memoryview(data)) == [(BINARY, b"abc", True, 0)]
    with pytest.raises(TypeError):
        server().receive_data(42)  # type: ignore[arg-type]


def test_close_event_and_reply_on_server() -> None:
    conn = server()
    payload = close_payload(1000, "bye")
    assert conn.receive_data(client_frame(CLOSE, payload)) == [_core.CloseReceived(payload)]
    # Echo of the close frame, then EOF: the server closes TCP first.
    assert conn.data_to_send() == [frame(CLOSE, payload), b""]
    assert conn.data_to_send() == []
    assert conn.state == 2
    assert conn.close_rcvd == (1000, "bye")
    assert conn.close_sent == (1000, "bye")
    assert conn.close_rcvd_then_sent is True
    assert conn.eof_sent
    conn.receive_eof()
    assert conn.state == 3
    assert conn.parser_exc is None


def test_close_event_and_reply_on_client() -> None:
    conn = client()
    conn.receive_data(frame(CLOSE, b""))
    # The client waits for the server to close TCP.
    assert conn.data_to_send() == [client_frame(CLOSE, b"")]
    assert conn.close_rcvd == (1005, "")
    assert not conn.eof_sent
    assert conn.receive_eof() == []
    assert conn.data_to_send() == [b""]
    assert conn.state == 3


# ------------------------------------------------------------------ sending


def test_send_returns_exact_server_bytes() -> None:
    conn = server()
    assert conn.send_text("Hello") == b"\x81\x05Hello"
    assert conn.send_text(b"caf\xc3\xa9") == b"\x81\x05caf\xc3\xa9"
    assert conn.send_binary(b"\x00\x01", fin=False) == b"\x02\x02\x00\x01"
    assert conn.send_continuation(b"\x02", fin=False) == b"\x00\x01\x02"
    assert conn.send_continuation(b"", fin=True) == b"\x80\x00"
    assert conn.send_ping(b"Hello") == b"\x89\x05Hello"
    assert conn.send_pong("Hello") == b"\x8a\x05Hello"
    assert conn.send_binary(bytearray(b"x")) == b"\x82\x01x"
    assert conn.send_close(1001, "bye") == b"\x88\x05\x03\xe9bye"
    # Sending never queues: the bytes were returned.
    assert conn.data_to_send() == []


def test_send_length_encodings() -> None:
    conn = server()
    assert conn.send_binary(b"a" * 125)[:2] == b"\x82\x7d"
    assert conn.send_binary(b"a" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert conn.send_binary(b"a" * 65535)[:4] == b"\x82\x7e\xff\xff"
    out = conn.send_binary(b"a" * 65536)
    assert out[:10] == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
    assert len(out) == 10 + 65536


def test_send_header_starts_a_frame_the_caller_completes() -> None:
    conn = server()
    payload = os.urandom(70_000)
    header = conn.send_header(BINARY, len(payload), True)
    assert header is not None
    assert header + payload == frame(BINARY, payload)
    # The frame counts as sent: fragmentation state follows it.
    header = conn.send_header(BINARY, 3, False)
    assert header == b"\x02\x03"
    with pytest.raises(ProtocolError):
        conn.send_header(BINARY, 3, True)
    assert conn.send_header(CONT, 0, True) == b"\x80\x00"
    conn.send_close(1000)
    with pytest.raises(InvalidState):
        conn.send_header(BINARY, 1, True)


def test_send_header_declines_what_it_cannot_send_as_is() -> None:
    # Clients must mask the payload: the caller goes through send_binary.
    conn = client()
    assert conn.send_header(BINARY, 10, True) is None
    assert not conn.sending_fragments
    assert conn.send_binary(b"abc") == client_frame(BINARY, b"abc")
    # Extensions transform the payload.
    conn = server(extra_rsv=0b100)
    conn.enable_deflate(False, False, 15, 15)
    assert conn.send_header(BINARY, 10, True) is None
    # Output waiting in the core goes first.
    conn = server()
    conn.receive_data(client_frame(PING, b"x"))
    assert conn.send_header(BINARY, 10, True) is None
    assert conn.data_to_send() == [b"\x8a\x01x"]
    assert conn.send_header(BINARY, 1, True) == b"\x82\x01"


def test_send_close_without_code() -> None:
    conn = server()
    assert conn.send_close() == b"\x88\x00"
    assert conn.close_sent == (1005, "")


def test_send_returns_masked_client_bytes() -> None:
    conn = client()
    # RFC 6455 section 5.7: a single-frame masked text message.
    assert conn.send_text("Hello") == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert conn.send_ping(b"") == b"\x89\x80" + MASK
    assert conn.send_binary(b"a" * 200) == client_frame(BINARY, b"a" * 200)


def test_random_masks_differ() -> None:
    conn = _core.Connection(True)
    keys = {conn.send_binary(b"")[2:6] for _ in range(20)}
    assert len(keys) > 1


def test_send_errors() -> None:
    conn = server()
    with pytest.raises(ProtocolError):
        conn.send_continuation(b"", fin=True)
    conn.send_text(b"a", fin=False)
    assert conn.sending_fragments
    with pytest.raises(ProtocolError):
        conn.send_binary(b"b")
    with pytest.raises(ProtocolError):
        conn.send_ping(b"x" * 126)
    with pytest.raises(ProtocolError):
        conn.send_close(1005)
    with pytest.raises(ProtocolError):
        conn.send_close(None, "reason without a code")
    with pytest.raises(ProtocolError):
        conn.send_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        conn.send_frame(3, b"", True, 0)
    conn.send_continuation(b"", fin=True)
    conn.send_close(1000)
    with pytest.raises(InvalidState):
        conn.send_text(b"late")
    with pytest.raises(InvalidState):
        conn.send_close(1000)
    # Pings and pongs remain allowed while closing.
    assert conn.send_ping(b"") == b"\x89\x00"
    conn.receive_data(client_frame(CLOSE, close_payload(1000)))
    conn.receive_eof()
    with pytest.raises(InvalidState):
        conn.send_pong(b"")


def test_send_frame_with_rsv() -> None:
    conn = server(extra_rsv=0b100)
    assert conn.send_frame(TEXT, b"x", True, 0b100) == b"\xc1\x01x"


def test_fail() -> None:
    conn = server()
    conn.fail(1011, "oops")
    assert conn.data_to_send() == [frame(CLOSE, close_payload(1011, "oops")), b""]
    assert conn.state == 2
    assert conn.close_expected()
    # Input is ignored after failing.
    assert conn.receive_data(client_frame(TEXT, b"ignored")) == []
    assert conn.parser_exc is None


def test_fail_1006_sends_no_close_frame() -> None:
    conn = client()
    conn.fail(1006)
    assert conn.data_to_send() == []
    assert conn.close_sent is None


def test_close_expected() -> None:
    conn = client()
    assert not conn.close_expected()
    conn.send_close(1000)
    assert conn.close_expected()
    conn.receive_data(frame(CLOSE, close_payload(1000)))
    assert conn.close_rcvd_then_sent is False
    conn.receive_eof()
    assert not conn.close_expected()


# ------------------------------------------------------------------ failures


def failure(conn: _core.Connection, data: bytes) -> tuple[Exception | None, int | None, list[bytes]]:
    events = conn.receive_data(data)
    assert isinstance(events[-1], _core.ProtocolViolation)
    assert events[-1].code == conn.failure_code
    return conn.parser_exc, conn.failure_code, conn.data_to_send()


def test_protocol_error_1002() -> None:
    exc, code, out = failure(server(), frame(TEXT, b"unmasked"))
    assert isinstance(exc, ProtocolError)
    assert code == 1002
    assert parse_frames(out[0])[0][1][:2] == b"\x03\xea"
    assert out[1] == b""


def test_invalid_utf8_1007() -> None:
    exc, code, out = failure(server(), client_frame(TEXT, b"ok\xff"))
    assert isinstance(exc, UnicodeDecodeError)
    assert code == 1007
    assert parse_frames(out[0])[0][1][:2] == b"\x03\xef"


def test_invalid_utf8_in_close_reason_1007() -> None:
    exc, code, _ = failure(server(), client_frame(CLOSE, b"\x03\xe8\xff"))
    assert isinstance(exc, UnicodeDecodeError)
    assert code == 1007


def test_payload_too_big_1009() -> None:
    exc, code, out = failure(server(max_size=10), client_frame(BINARY, b"x" * 11))
    assert isinstance(exc, PayloadTooBig)
    assert code == 1009
    assert parse_frames(out[0])[0][1][:2] == b"\x03\xf1"


def test_too_many_fragments_1009() -> None:
    conn = server(max_fragments=3)
    data = client_frame(TEXT, b"a", fin=False) + client_frame(CONT, b"b", fin=False)
    assert len(conn.receive_data(data)) == 2
    exc, code, _ = failure(conn, client_frame(CONT, b"c", fin=False) + client_frame(CONT, b"d"))
    assert isinstance(exc, TooManyFragments)
    assert code == 1009


def test_max_fragments_none() -> None:
    conn = server(max_fragments=None, assemble=True)
    data = client_frame(BINARY, b"", fin=False) + client_frame(CONT, b"x", fin=False) * 5000 + client_frame(CONT, b"")
    assert conn.receive_data(data) == [b"x" * 5000]


def test_abrupt_eof() -> None:
    conn = server()
    conn.receive_data(client_frame(TEXT, b"abc")[:4])
    assert conn.receive_eof() == [_core.ProtocolViolation(1006)]
    assert isinstance(conn.parser_exc, EOFError)
    assert conn.failure_code == 1006
    # No close frame after 1006: the network is gone.
    assert conn.data_to_send() == [b""]
    assert conn.state == 3
    with pytest.raises(EOFError):
        conn.receive_data(b"x")
    # Idempotent.
    assert conn.receive_eof() == []


def test_max_size_setter() -> None:
    conn = server(max_size=None)
    assert conn.max_size is None
    conn.max_size = 4
    assert conn.max_size == 4
    exc, _code, _ = failure(conn, client_frame(BINARY, b"12345"))
    assert isinstance(exc, PayloadTooBig)


def test_extra_rsv_and_check_text() -> None:
    conn = server(extra_rsv=0b111, check_text=False)
    # Bytes that only an extension above the core can make sense of.
    assert conn.receive_data(client_frame(TEXT, b"\xff", rsv=0b100)) == [(TEXT, b"\xff", True, 0b100)]
    # Control frames too: they come as frames, with their bits, for the
    # extensions to decode (websockets runs them through extensions).
    assert conn.receive_data(client_frame(PING, b"p", rsv=0b010)) == [(PING, b"p", True, 0b010)]
    # Bits no extension above the core was given stay a violation.
    conn = server(extra_rsv=0b001)
    exc, _code, _ = failure(conn, client_frame(PING, b"", rsv=0b100))
    assert isinstance(exc, ProtocolError)
    assert str(exc) == "reserved bits must be 0: RSV1"
    # Without extensions above the core, none at all.
    exc, _code, _ = failure(server(), client_frame(PONG, b"", rsv=0b001))
    assert isinstance(exc, ProtocolError)


def test_check_text_off_never_yields_invalid_str() -> None:
    """Whole text messages are str, so they are UTF-8 even when per-frame
    validation is off: invalid text fails with 1007 instead of panicking."""
    conn = _core.Connection(True, assemble=True, check_text=False)
    exc, code, out = failure(conn, b"\x81\x02\xff\xfe")
    assert code == 1007
    assert isinstance(exc, UnicodeDecodeError)
    assert parse_frames(out[0])[0][1][:2] == (1007).to_bytes(2, "big")
    conn = client(assemble=True, check_text=False)
    euro = "€".encode()
    assert conn.receive_data(frame(TEXT, euro[:1], fin=False) + frame(CONT, euro[1:])) == ["€"]


def test_text_fails_inside_a_frame_read_in_pieces() -> None:
    """The read carrying the bad byte fails the connection, before the rest
    of the frame arrives (RFC 6455 section 8.1)."""
    data = client_frame(TEXT, b"ok \xff" + b"a" * 500)
    conn = server()
    assert conn.receive_data(data[:20]) == [_core.ProtocolViolation(1007)]
    assert conn.failure_code == 1007
    assert conn.receive_data(data[20:]) == []


def test_close_between_fragments_is_answered_normally() -> None:
    conn = server()
    data = client_frame(TEXT, b"a", fin=False) + client_frame(CLOSE, close_payload(1000)) + client_frame(CONT, b"b")
    assert conn.receive_data(data) == [(TEXT, b"a", False, 0), _core.CloseReceived(close_payload(1000))]
    assert conn.parser_exc is None
    assert conn.data_to_send() == [frame(CLOSE, close_payload(1000)), b""]


# ------------------------------------------------------------------ deferred failure


def test_defer_failure_is_off_by_default() -> None:
    conn = server()
    exc, code, out = failure(conn, client_frame(TEXT, b"hi") + frame(TEXT, b"unmasked"))
    assert isinstance(exc, ProtocolError) and code == 1002
    assert out[-1] == b""
    assert conn.state == 2
    assert conn.fail_pending() is False


@pytest.mark.parametrize("assemble", [False, True])
def test_defer_failure_orders_answers_before_the_close_frame(assemble: bool) -> None:
    conn = server(defer_failure=True, assemble=assemble)
    data = client_frame(TEXT, b"question") + frame(TEXT, b"unmasked") + client_frame(PING, b"after")
    events = conn.receive_data(data)
    message = "question" if assemble else (TEXT, b"question", True, 0)
    assert events == [message, _core.ProtocolViolation(1002)]
    assert isinstance(conn.parser_exc, ProtocolError)
    assert conn.failure_code == 1002
    # Nothing written yet, not even a pong for the ping after the bad frame,
    # and the connection is still open for the answer.
    assert conn.data_to_send() == []
    assert conn.state == 1
    assert conn.close_sent is None
    assert conn.receive_data(client_frame(PING, b"later")) == []
    answer = conn.send_text("answer")
    assert conn.fail_pending() is True
    assert conn.state == 2
    out = conn.data_to_send()
    assert out[-1] == b""
    (close,) = parse_frames(out[0])
    assert close[:2] == (CLOSE, close_payload(1002, str(conn.parser_exc)))
    assert conn.close_sent == (1002, str(conn.parser_exc))
    assert parse_frames(answer) == [(TEXT, b"answer", True, 0)]
    assert conn.fail_pending() is False
    assert conn.data_to_send() == []


def test_deferred_failure_of_a_client() -> None:
    conn = client(defer_failure=True)
    assert conn.receive_data(frame(PING, b"p") + frame(TEXT, b"\xff")) == [
        _core.PingReceived(b"p"),
        _core.ProtocolViolation(1007),
    ]
    assert conn.failure_code == 1007
    assert isinstance(conn.parser_exc, UnicodeDecodeError)
    # The ping before the violation is answered as usual.
    assert [f[:2] for f in parse_frames(b"".join(conn.data_to_send()))] == [(PONG, b"p")]
    assert conn.fail_pending() is True
    out = conn.data_to_send()
    assert len(out) == 1, "a client waits for the server to close TCP"
    assert parse_frames(out[0])[0][1][:2] == (1007).to_bytes(2, "big")


def test_fail_pending_without_or_after_the_failure() -> None:
    conn = server(defer_failure=True)
    assert conn.fail_pending() is False
    assert conn.receive_data(client_frame(TEXT, b"fine")) == [(TEXT, b"fine", True, 0)]
    assert conn.fail_pending() is False
    assert conn.data_to_send() == []
    # The application's own failure replaces the pending one.
    conn.receive_data(client_frame(CLOSE, b"\x03"))
    conn.fail(1011, "handler crashed")
    assert conn.fail_pending() is False
    out = conn.data_to_send()
    assert parse_frames(out[0])[0][1] == close_payload(1011, "handler crashed")
    assert isinstance(conn.parser_exc, ProtocolError)


def test_eof_after_a_deferred_failure_keeps_it() -> None:
    conn = server(defer_failure=True)
    conn.receive_data(frame(TEXT, b"unmasked"))
    assert conn.receive_eof() == []
    assert isinstance(conn.parser_exc, ProtocolError)
    assert conn.failure_code == 1002
    assert conn.state == 3
    assert conn.fail_pending() is False
    # No close frame to a peer that is gone; the server closes its side.
    assert conn.data_to_send() == [b""]


# ------------------------------------------------------------------ HTTP

REQUEST = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def test_http_request() -> None:
    parser = _core.HttpParser(False)
    assert parser.feed(REQUEST + b"\x81\x80") == (
        "GET",
        "/chat?room=1",
        "HTTP/1.1",
        [("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade")],
    )
    assert parser.take_remaining() == b"\x81\x80"
    assert parser.take_remaining() == b""


def test_http_request_byte_by_byte() -> None:
    parser = _core.HttpParser(False)
    results = [parser.feed(REQUEST[i : i + 1]) for i in range(len(REQUEST))]
    assert results[:-1] == [None] * (len(REQUEST) - 1)
    assert results[-1] is not None and results[-1][1] == "/chat?room=1"


def test_http_request_keeps_bytes_fed_after_completion() -> None:
    parser = _core.HttpParser(False)
    parser.feed(REQUEST)
    assert parser.feed(b"early") is None
    assert parser.take_remaining() == b"early"


def test_http_response_101() -> None:
    parser = _core.HttpParser(True)
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00"
    assert parser.feed(data) == (
        "HTTP/1.1",
        101,
        "Switching Protocols",
        [("Upgrade", "websocket")],
        b"",
    )
    assert parser.take_remaining() == b"\x81\x00"


def test_http_response_body_with_content_length() -> None:
    parser = _core.HttpParser(True)
    assert parser.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nno") is None
    assert parser.feed(b"pe!!") == (
        "HTTP/1.1",
        403,
        "Forbidden",
        [("Content-Length", "5")],
        b"nope!",
    )
    assert parser.take_remaining() == b"!"


def test_http_response_body_until_eof() -> None:
    parser = _core.HttpParser(True)
    assert parser.feed(b"HTTP/1.1 500 Oops\r\n\r\nsome") is None
    assert parser.feed(b" body") is None
    assert parser.feed_eof() == ("HTTP/1.1", 500, "Oops", [], b"some body")


def test_http_response_body_too_large() -> None:
    parser = _core.HttpParser(True, max_body=4)
    with pytest.raises(SecurityError):
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")


def test_http_eof_before_end() -> None:
    parser = _core.HttpParser(False)
    assert parser.feed(REQUEST[:-2]) is None
    with pytest.raises(EOFError):
        parser.feed_eof()


@pytest.mark.parametrize(
    ("data", "exc_type", "status"),
    [
        (b"GET /" + b"a" * 8192, RequestLineTooLong, 414),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 8192, HeaderLineTooLong, 431),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 129, TooManyHeaders, 431),
    ],
)
def test_http_request_limits(data: bytes, exc_type: type[Exception], status: int) -> None:
    parser = _core.HttpParser(False)
    with pytest.raises(exc_type) as raised:
        parser.feed(data)
    assert raised.value.status == status  # type: ignore[attr-defined]


def test_http_limits_are_checked_as_bytes_arrive() -> None:
    # An endless request line is refused once it passes the limit, without
    # waiting for its end.
    parser = _core.HttpParser(False, max_line=16)
    assert parser.feed(b"GET /" + b"a" * 11) is None
    with pytest.raises(RequestLineTooLong):
        parser.feed(b"a")


def test_http_limits_are_configurable() -> None:
    parser = _core.HttpParser(False, max_headers=2)
    assert parser.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n") is not None
    with pytest.raises(TooManyHeaders):
        _core.HttpParser(False, max_headers=2).feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")


def test_http_status_line_too_long() -> None:
    with pytest.raises(StatusLineTooLong):
        _core.HttpParser(True).feed(b"HTTP/1.1 200 " + b"O" * 8192)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
        (b"GET / HTTP/1.1\r\nnot a header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ],
)
def test_http_invalid_request(data: bytes, status: int | None) -> None:
    with pytest.raises(InvalidMessage) as raised:
        _core.HttpParser(False).feed(data)
    assert raised.value.status == status  # type: ignore[attr-defined]


def test_http_not_http() -> None:
    # Not HTTP at all: the ValueError of websockets' parser, no status.
    with pytest.raises(ValueError, match="line without CRLF"):
        _core.HttpParser(False).feed(b"GET / HTTP/1.1\nHost: x\n\n")


def test_http_request_with_empty_body() -> None:
    parser = _core.HttpParser(False)
    assert parser.feed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == (
        "GET",
        "/",
        "HTTP/1.1",
        [("Content-Length", "0")],
    )


def test_http_invalid_protocol() -> None:
    # As websockets' parser says it, with the whole status line.
    with pytest.raises(ValueError) as raised:
        _core.HttpParser(True).feed(b"HTTP/2.0 101 Switching Protocols\r\n\r\n")
    assert str(raised.value) == "unsupported protocol; expected HTTP/1.1: HTTP/2.0 101 Switching Protocols"


# ------------------------------------------------------------------ keys, masks


def test_accept_key_rfc_example() -> None:
    # RFC 6455 section 1.3.
    assert _core.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_generate_key() -> None:
    keys = {_core.generate_key() for _ in range(10)}
    assert len(keys) == 10
    for key in keys:
        assert len(base64.b64decode(key)) == 16
        assert _core.is_valid_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "abc",
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZWU=",
        "!" * 24,
    ],
)
def test_is_valid_key_rejects(key: str) -> None:
    assert not _core.is_valid_key(key)


def test_apply_mask_rfc_example() -> None:
    assert _core.apply_mask(b"Hello", MASK) == b"\x7f\x9f\x4d\x51\x58"
    assert _core.apply_mask(b"\x7f\x9f\x4d\x51\x58", MASK) == b"Hello"


def test_apply_mask_matches_plain_xor_at_every_length() -> None:
    data = os.urandom(300)
    key = os.urandom(4)
    for n in range(0, 300, 7):
        assert _core.apply_mask(data[:n], key) == xor(data[:n], key)
        assert _core.apply_mask(memoryview(data)[n:], key) == xor(data[n:], key)


def test_apply_mask_rejects_bad_key() -> None:
    with pytest.raises(ValueError):
        _core.apply_mask(b"abc", b"ab")
