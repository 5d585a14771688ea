"""The error boundary: every error of the Rust core, as the Python class and
attributes the binding raises (rust/python/errors.rs).

One test per core error: each ``Violation`` of the peer (reported in
``parser_exc``), each misuse of the sending API, and each handshake parse
error of ``HttpParser``.
"""

from __future__ import annotations

import pickle
import struct
import zlib

import pytest

from ferrows import _core
from ferrows.exceptions import (
    HeaderLineTooLong,
    InvalidMessage,
    InvalidProtocol,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
    RequestLineTooLong,
    SecurityError,
    StatusLineTooLong,
    TooManyFragments,
    TooManyHeaders,
)
from frame_utils import BINARY, CLOSE, CONT, MASK, PING, PONG, TEXT, client_frame, close_payload, frame


def server(**kwargs: object) -> _core.Connection:
    return _core.Connection(False, **kwargs)  # type: ignore[arg-type]


def client() -> _core.Connection:
    conn = _core.Connection(True)
    conn.set_fixed_mask(MASK)
    return conn


def failure(conn: _core.Connection, data: bytes) -> tuple[Exception, int | None]:
    """Feeds bytes that violate the protocol; returns the exception and the
    close code the connection failed with."""
    events = conn.receive_data(data)
    assert isinstance(events[-1], _core.ProtocolViolation)
    assert events[-1].code == conn.failure_code
    exc = conn.parser_exc
    assert exc is not None
    return exc, conn.failure_code


def close_reason_sent(conn: _core.Connection) -> tuple[int, str]:
    """Code and reason of the close frame a server connection sent."""
    out = b"".join(conn.data_to_send())
    assert out[0] == 0x88 and out[1] < 126, out
    payload = out[2 : 2 + out[1]]
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def protocol_error(conn: _core.Connection, data: bytes, message: str) -> None:
    exc, code = failure(conn, data)
    assert type(exc) is ProtocolError
    assert str(exc) == message
    assert exc.args == (message,)
    # The close reason is the exception's text, as websockets sends it.
    assert close_reason_sent(conn) == (1002, message)
    assert code == 1002


# ------------------------------------------------------------- violations


def test_reserved_bits() -> None:
    protocol_error(server(), client_frame(TEXT, b"x", rsv=0b110), "reserved bits must be 0: RSV1, RSV2")


def test_reserved_opcode() -> None:
    # websockets' wording, without the opcode: users match on the text.
    protocol_error(server(), client_frame(0x3, b"x"), "invalid opcode")
    protocol_error(server(), client_frame(0xF, b"x"), "invalid opcode")


def test_fragmented_control_frame() -> None:
    protocol_error(server(), client_frame(PING, b"x", fin=False), "fragmented control frame")


def test_control_frame_too_long() -> None:
    protocol_error(server(), client_frame(PING, b"x" * 126), "control frame too long: 126 bytes")


def test_unmasked_frame() -> None:
    protocol_error(server(), frame(TEXT, b"x"), "incorrect masking")


def test_masked_frame() -> None:
    exc, code = failure(client(), frame(TEXT, b"x", mask=MASK))
    assert (type(exc), str(exc), code) == (ProtocolError, "incorrect masking", 1002)


def test_invalid_length() -> None:
    # A 64-bit length with its most significant bit set (RFC 6455 §5.2).
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 2**63) + MASK
    protocol_error(server(), head, "invalid payload length")


def test_unexpected_continuation() -> None:
    protocol_error(server(), client_frame(CONT, b"x"), "unexpected continuation frame")


def test_expected_continuation() -> None:
    data = client_frame(TEXT, b"a", fin=False) + client_frame(BINARY, b"b")
    protocol_error(server(), data, "expected a continuation frame")


def test_close_frame_too_short() -> None:
    protocol_error(server(), client_frame(CLOSE, b"\x03"), "close frame too short")


def test_invalid_close_code() -> None:
    protocol_error(server(), client_frame(CLOSE, close_payload(1005)), "invalid status code 1005")


@pytest.mark.parametrize(
    ("frames", "data"),
    [
        pytest.param([b"ok\xff"], b"ok\xff", id="invalid start byte"),
        pytest.param([b"caf\xc3\x28"], b"caf\xc3\x28", id="invalid continuation byte"),
        pytest.param([b"ab\xed\xa0\x80"], b"ab\xed\xa0\x80", id="surrogate"),
        pytest.param([b"abc\xe2\x82"], b"abc\xe2\x82", id="unexpected end of data"),
        # Begun in one frame, broken in the next: reported with the bytes
        # carried over, as decoding the message would find them.
        pytest.param([b"ab\xe2\x82", b"x!"], b"\xe2\x82x!", id="across frames"),
        pytest.param([b"\xf0\x9d", b"\x84"], b"\xf0\x9d\x84", id="truncated across frames"),
        pytest.param([b"\xe2\x82\xac", b"\xac ok"], b"\xac ok", id="after a complete character"),
    ],
)
def test_invalid_utf8(frames: list[bytes], data: bytes) -> None:
    conn = server()
    wire = b"".join(
        client_frame(TEXT if i == 0 else CONT, payload, fin=i == len(frames) - 1) for i, payload in enumerate(frames)
    )
    exc, code = failure(conn, wire)
    assert code == 1007
    assert type(exc) is UnicodeDecodeError
    # What Python itself reports for the same bytes: the real bytes, the
    # span of the invalid sequence and CPython's wording.
    with pytest.raises(UnicodeDecodeError) as expected:
        data.decode()
    assert exc.encoding == "utf-8"
    assert exc.object == data
    assert (exc.start, exc.end, exc.reason) == (expected.value.start, expected.value.end, expected.value.reason)
    # The close reason as websockets builds it from the exception.
    assert close_reason_sent(conn) == (1007, f"{exc.reason} at position {exc.start}")


def test_invalid_utf8_in_close_reason() -> None:
    exc, code = failure(server(), client_frame(CLOSE, b"\x03\xe8ab\xff"))
    assert code == 1007
    assert type(exc) is UnicodeDecodeError
    # Positions count from the start of the reason, like websockets'
    # ``data[2:].decode()``.
    assert (exc.object, exc.start, exc.end, exc.reason) == (b"ab\xff", 2, 3, "invalid start byte")


def test_invalid_utf8_in_close_reason_close_frame() -> None:
    conn = server()
    exc, _ = failure(conn, client_frame(CLOSE, b"\x03\xe8\xff\xff"))
    assert str(exc) == "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    assert close_reason_sent(conn) == (1007, "invalid start byte at position 0")


def test_message_too_big() -> None:
    conn = server(max_size=10)
    exc, code = failure(conn, client_frame(BINARY, b"x" * 11))
    assert type(exc) is PayloadTooBig
    assert (exc.size, exc.max_size, exc.current_size) == (11, 10, None)
    assert code == 1009
    assert str(exc) == "frame with 11 bytes exceeds limit of 10 bytes"
    assert close_reason_sent(conn) == (1009, str(exc))


def test_fragment_too_big() -> None:
    # websockets' account: this frame's size, and what the message held.
    conn = server(max_size=3)
    exc, _code = failure(conn, client_frame(BINARY, b"ab", fin=False) + client_frame(CONT, b"cd"))
    assert type(exc) is PayloadTooBig
    assert (exc.size, exc.max_size, exc.current_size) == (2, 3, 2)
    assert str(exc) == "frame with 2 bytes after reading 2 bytes exceeds limit of 3 bytes"
    assert close_reason_sent(conn) == (1009, str(exc))


def test_frame_inflated_past_the_limit() -> None:
    # Inflating stops at the limit, before the frame's size is known.
    conn = server(max_size=1000)
    conn.enable_deflate(False, False, 15, 15)
    compressed = zlib.compressobj(wbits=-15)
    payload = compressed.compress(b"\0" * 5000) + compressed.flush(zlib.Z_SYNC_FLUSH)
    exc, _code = failure(conn, client_frame(BINARY, payload[:-4], rsv=0b100))
    assert type(exc) is PayloadTooBig
    assert (exc.size, exc.max_size, exc.current_size) == (None, 1000, None)
    assert str(exc) == "frame exceeds limit of 1000 bytes"
    assert close_reason_sent(conn) == (1009, str(exc))


def test_too_many_fragments() -> None:
    data = b"".join(client_frame(TEXT if i == 0 else CONT, b"x", fin=False) for i in range(3))
    exc, code = failure(server(max_fragments=2), data)
    assert type(exc) is TooManyFragments
    assert exc.max_fragments == 2
    assert exc.args == (2,)
    assert code == 1009


def test_extension_rejected_the_frame() -> None:
    conn = server()
    conn.enable_deflate(False, False, 15, 15)
    exc, code = failure(conn, client_frame(TEXT, b"\xff\xff\xff\xff", rsv=0b100))
    assert type(exc) is ProtocolError
    assert str(exc) == "decompression failed: invalid deflate data"
    assert code == 1002


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (client_frame(TEXT, b"a", fin=False), "unexpected end of stream"),
        (b"", "unexpected end of stream"),
        # websockets counts the part of the frame being read: the first two
        # bytes, the extended length, the masking key, the payload.
        (b"\x81", "stream ends after 1 bytes, expected 2 bytes"),
        (b"\x82\xfe\x01", "stream ends after 1 bytes, expected 2 bytes"),
        (b"\x82\xff\x00\x00\x00", "stream ends after 3 bytes, expected 8 bytes"),
        (b"\x82\x84\x00\x00", "stream ends after 2 bytes, expected 4 bytes"),
        (client_frame(BINARY, b"abcd")[:-1], "stream ends after 3 bytes, expected 4 bytes"),
    ],
)
def test_unexpected_eof(data: bytes, message: str) -> None:
    conn = server()
    conn.receive_data(data)
    conn.receive_eof()
    assert type(conn.parser_exc) is EOFError
    assert str(conn.parser_exc) == message
    assert conn.failure_code == 1006


# ------------------------------------------------------------ send errors


def test_send_in_wrong_state() -> None:
    conn = server()
    conn.send_close(1000)
    with pytest.raises(InvalidState) as raised:
        conn.send_text(b"late")
    assert type(raised.value) is InvalidState
    assert str(raised.value) == "connection is closing"
    assert isinstance(raised.value, AssertionError)


@pytest.mark.parametrize(
    ("send", "message"),
    [
        (lambda c: c.send_continuation(b"x", True), "unexpected continuation frame"),
        (lambda c: c.send_close(1005), "invalid status code 1005"),
        (lambda c: c.send_close(None, "why"), "cannot send a reason without a code"),
        (lambda c: c.send_ping(b"x" * 126), "control frame too long: 126 bytes"),
        (lambda c: (c.send_text(b"a", False), c.send_binary(b"b")), "expected a continuation frame"),
        (lambda c: c.send_frame(PING, b"x" * 126, True, 0b010), "control frame too long: 126 bytes"),
        (lambda c: c.send_close(1000, "x" * 124), "close reason too long: 124 bytes"),
    ],
)
def test_send_protocol_error(send: object, message: str) -> None:
    conn = server()
    with pytest.raises(ProtocolError) as raised:
        send(conn)  # type: ignore[operator]
    assert type(raised.value) is ProtocolError
    assert raised.value.args == (message,)


def test_send_frame_with_rsv() -> None:
    # Extensions above the core set RSV bits on control frames too.
    conn = server(extra_rsv=0b010)
    assert conn.send_frame(PING, b"", True, 0b010) == b"\xa9\x00"
    assert conn.send_frame(PONG, b"x", True, 0b010) == b"\xaa\x01x"
    # Close frames are checked by send_close, which they must go through.
    with pytest.raises(ValueError):
        conn.send_frame(CLOSE, b"", True, 0)


# ------------------------------------------------------ handshake parsing


def parse(data: bytes, *, response: bool = False, eof: bool = False, **limits: int) -> BaseException:
    parser = _core.HttpParser(response, **limits)
    # Any exception: each test checks the class.
    with pytest.raises(Exception) as raised:
        parser.feed(data)
        if eof:
            parser.feed_eof()
    return raised.value


@pytest.mark.parametrize(
    ("data", "response", "cls", "limit", "status"),
    [
        (b"GET /" + b"a" * 100, False, RequestLineTooLong, 64, 414),
        (b"HTTP/1.1 200 " + b"O" * 100, True, StatusLineTooLong, 64, None),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 100, False, HeaderLineTooLong, 64, 431),
    ],
)
def test_line_too_long(data: bytes, response: bool, cls: type[SecurityError], limit: int, status: int | None) -> None:
    exc = parse(data, response=response, max_line=limit)
    assert type(exc) is cls
    assert exc.limit == limit  # type: ignore[attr-defined]
    assert exc.status == status  # type: ignore[attr-defined]
    # websockets' wording: the bytes of the line read so far.
    read = len(data) - data.rfind(b"\n") - 1
    assert str(exc) == f"read {read} bytes, expected no more than {limit} bytes"


@pytest.mark.parametrize(
    ("data", "response", "cls"),
    [
        # A complete line counts its CRLF, as websockets counts it.
        (b"GET /" + b"a" * 8186 + b" HTTP/1.1\r\n\r\n", False, RequestLineTooLong),
        (b"HTTP/1.1 " + b"a" * 8191 + b"\r\n\r\n", True, StatusLineTooLong),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 8192 + b"\r\n\r\n", False, HeaderLineTooLong),
    ],
)
def test_complete_line_too_long(data: bytes, response: bool, cls: type[SecurityError]) -> None:
    exc = parse(data, response=response)
    assert type(exc) is cls
    assert str(exc) == "read 8202 bytes, expected no more than 8192 bytes"


def test_too_many_headers() -> None:
    exc = parse(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n", max_headers=2)
    assert type(exc) is TooManyHeaders
    assert (exc.limit, exc.status) == (2, 431)
    assert str(exc) == "expected no more than 2 headers"


def test_body_too_large() -> None:
    exc = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", response=True, max_body=10)
    assert type(exc) is SecurityError
    assert exc.status == 413
    assert str(exc) == "body too large: over 10 bytes"


def test_unsupported_protocol() -> None:
    # A request's version is checked by the server, a response's by the
    # parser, which words it as websockets' does.
    exc = parse(b"HTTP/1.0 200 OK\r\n\r\n", response=True)
    assert type(exc) is ValueError
    assert str(exc) == "unsupported protocol; expected HTTP/1.1: HTTP/1.0 200 OK"


@pytest.mark.parametrize(
    ("data", "response", "message"),
    [
        (b"GET / HTTP/1.1\nHost: x\n\n", False, "invalid HTTP line"),
        (b"GET /\r\n\r\n", False, "invalid HTTP request line: GET /"),
        (b"HTTP/1.1 2OO OK\r\n\r\n", True, "invalid HTTP status line: HTTP/1.1 2OO OK"),
        # Refused once the start line is complete, before any header.
        (b"HELO relay.invalid\r\n", False, "invalid HTTP request line: HELO relay.invalid"),
        (b"220 smtp.invalid\r\n", True, "invalid HTTP status line: 220 smtp.invalid"),
        (
            b"220 smtp.invalid ESMTP Postfix\r\n",
            True,
            "unsupported protocol; expected HTTP/1.1: 220 smtp.invalid ESMTP Postfix",
        ),
    ],
)
def test_not_http(data: bytes, response: bool, message: str) -> None:
    # Garbage: the ValueError of websockets' parser, without a status: a
    # server closes the connection without answering.
    exc = parse(data, response=response)
    assert type(exc) is ValueError
    assert not hasattr(exc, "status")
    assert str(exc).startswith(message)


@pytest.mark.parametrize(
    ("data", "message", "status"),
    [
        (b"GET / HTTP/1.1\r\nnot a header\r\n\r\n", "invalid HTTP header line: not a header", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "unsupported request body", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer codings aren't supported", 501),
    ],
)
def test_invalid_request(data: bytes, message: str, status: int) -> None:
    exc = parse(data)
    assert type(exc) is InvalidMessage
    assert exc.status == status
    assert str(exc) == message


def test_invalid_content_length() -> None:
    exc = parse(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", response=True)
    assert type(exc) is InvalidMessage
    assert exc.status == 400
    assert str(exc) == "invalid Content-Length: ten"


@pytest.mark.parametrize(
    ("data", "response", "part"),
    [
        (b"", False, "HTTP request line"),
        (b"GET / HTTP/1.1\r\n", False, "HTTP headers"),
        (b"", True, "HTTP status line"),
        (b"HTTP/1.1 101 Switching Protocols\r\n", True, "HTTP headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", True, "HTTP response body"),
    ],
)
def test_eof_in_handshake(data: bytes, response: bool, part: str) -> None:
    parser = _core.HttpParser(response)
    parser.feed(data)
    with pytest.raises(EOFError) as raised:
        parser.feed_eof()
    assert str(raised.value) == f"connection closed while reading {part}"


# ------------------------------------------------------------ the classes


def test_status_is_declared() -> None:
    # A declared attribute, not one the binding adds: every exception the
    # handshake parser raises has it, None unless the failure implies one.
    assert InvalidMessage.status is None
    assert InvalidMessage("x").status is None
    assert InvalidMessage("x", status=400).status == 400
    assert SecurityError("x", status=413).status == 413
    assert RequestLineTooLong(8192).status == 414
    assert InvalidProtocol("HTTP/1.0").status == 505


def test_status_survives_pickle() -> None:
    exc = parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is InvalidMessage
    assert (copy.args, copy.status) == (exc.args, 501)


def test_classes_are_looked_up_once() -> None:
    # The binding keeps the classes it imported: replacing the module's
    # attribute afterwards does not change what it raises.
    import ferrows.exceptions as module

    failure(server(), frame(TEXT, b"x"))
    original = module.ProtocolError
    try:
        module.ProtocolError = type("Other", (Exception,), {})  # type: ignore[misc]
        exc, _ = failure(server(), frame(TEXT, b"x"))
    finally:
        module.ProtocolError = original  # type: ignore[misc]
    assert type(exc) is ProtocolError
