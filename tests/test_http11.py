"""Tests for ferrows.http11: Request, Response and the environment settings."""

from __future__ import annotations

import http
import os
import subprocess
import sys
from typing import Any

import pytest
import websockets.datastructures as wd
import websockets.http11 as wh

from ferrows import http11
from ferrows.datastructures import Headers
from ferrows.http11 import Request, Response
from ferrows.version import __version__


def test_defaults() -> None:
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"Python/{python} ferrows/{__version__}" == http11.USER_AGENT
    assert f"Python/{python} ferrows/{__version__}" == http11.SERVER
    assert http11.MAX_NUM_HEADERS == 128
    assert http11.MAX_LINE_LENGTH == 8192
    assert http11.MAX_BODY_SIZE == 1024 * 1024


def test_environment() -> None:
    # In a subprocess: reloading the module here would give other modules'
    # tests a second, different Request class.
    code = (
        "from ferrows import http11 as h; "
        "print(repr((h.USER_AGENT, h.SERVER, h.MAX_NUM_HEADERS, h.MAX_LINE_LENGTH, h.MAX_BODY_SIZE)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "WEBSOCKETS_USER_AGENT": "my-client",
        "WEBSOCKETS_SERVER": "",
        "WEBSOCKETS_MAX_NUM_HEADERS": "10",
        "WEBSOCKETS_MAX_LINE_LENGTH": "100",
        "WEBSOCKETS_MAX_BODY_SIZE": "1000",
    }
    output = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert output.stdout.strip() == repr(("my-client", "", 10, 100, 1000))


def test_version_matches_cargo() -> None:
    import pathlib
    import re

    cargo = pathlib.Path(__file__).parent.parent / "Cargo.toml"
    match = re.search(r'^version = "([^"]+)"', cargo.read_text(), re.MULTILINE)
    assert match is not None and match.group(1) == __version__


# Request


def test_request_fields() -> None:
    request = Request("/chat?room=1", Headers(Host="example.com"))
    assert request.path == "/chat?room=1"
    assert request.headers == Headers(Host="example.com")
    assert request.method == "GET"
    assert request.protocol == "HTTP/1.1"
    assert Request("/", Headers(), "GET", "HTTP/1.1") == Request("/", Headers())


def test_request_converts_headers() -> None:
    request = Request("/", {"Host": "example.com"})  # type: ignore[arg-type]
    assert isinstance(request.headers, Headers)
    assert request.headers["host"] == "example.com"
    assert isinstance(Request("/", [("Host", "h")]).headers, Headers)  # type: ignore[arg-type]


def test_request_serialize() -> None:
    items = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
    ]
    request = Request("/chat?room=1", Headers(items))
    expected = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    assert request.serialize() == expected
    assert wh.Request("/chat?room=1", wd.Headers(items)).serialize() == expected


@pytest.mark.parametrize(
    "request_",
    [
        Request("/a b", Headers()),
        Request("/a\r\nX: y", Headers()),
        Request("", Headers()),
        Request("/", Headers(), method="G ET"),
    ],
)
def test_request_serialize_rejects_bad_line(request_: Request) -> None:
    with pytest.raises(ValueError, match="invalid request line"):
        request_.serialize()


# Response


def test_response_websockets_form() -> None:
    headers = Headers([("X-Reason", "nope")])
    response = Response(403, "Forbidden", headers, b"Invalid API key")
    assert response.status_code == 403
    assert response.reason_phrase == "Forbidden"
    assert response.headers is headers
    assert response.body == b"Invalid API key"
    assert Response(403, "Forbidden", headers) == Response(403, "Forbidden", headers, b"")
    kw = Response(status_code=403, reason_phrase="Forbidden", headers=headers, body=b"x")
    assert kw == Response(403, "Forbidden", headers, b"x")


def test_response_seed_form() -> None:
    # API.md §13: the seed passes the body as third positional argument.
    response = Response(403, "Forbidden", b"Invalid API key")
    assert response.body == b"Invalid API key"
    assert isinstance(response.headers, Headers)
    assert list(response.headers.raw_items()) == []


@pytest.mark.parametrize("body", [bytearray(b"abc"), memoryview(b"abc")])
def test_response_seed_form_bytes_like(body: bytearray | memoryview) -> None:
    response = Response(400, "Bad Request", body)
    assert response.body == b"abc"
    assert isinstance(response.body, (bytes, bytearray))
    assert list(response.headers.raw_items()) == []


def test_response_body_twice() -> None:
    with pytest.raises(TypeError, match="body twice"):
        Response(403, "Forbidden", b"a", body=b"b")
    with pytest.raises(TypeError):
        Response(403, "Forbidden", b"a", b"b")


def test_response_defaults() -> None:
    response = Response(101, "Switching Protocols")
    assert list(response.headers.raw_items()) == []
    assert response.body == b""


def test_response_converts_headers() -> None:
    response = Response(200, "OK", {"Content-Type": "text/plain"})
    assert isinstance(response.headers, Headers)
    assert response.headers["content-type"] == "text/plain"
    assert Response(200, "OK", [("A", "1")]).headers == Headers(A="1")


def test_response_http_status() -> None:
    response = Response(http.HTTPStatus.FORBIDDEN, "Forbidden", b"no")
    assert response.status_code == 403
    assert response.serialize().startswith(b"HTTP/1.1 403 Forbidden\r\n")


def test_response_repr_and_eq() -> None:
    assert "status_code=403" in repr(Response(403, "Forbidden", b"x"))
    assert Response(403, "Forbidden", b"x") != Response(403, "Forbidden", b"y")


def test_response_serialize_101() -> None:
    items = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ]
    response = Response(101, "Switching Protocols", Headers(items))
    expected = (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert response.serialize() == expected
    assert wh.Response(101, "Switching Protocols", wd.Headers(items)).serialize() == expected


def test_response_serialize_adds_content_length() -> None:
    response = Response(403, "Forbidden", b"Invalid API key")
    assert response.serialize() == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 15\r\n\r\nInvalid API key"
    # The response object is not modified.
    assert "Content-Length" not in response.headers


def test_response_serialize_empty_body_gets_zero_length() -> None:
    response = Response(500, "Internal Server Error", Headers(Server="x"))
    assert response.serialize() == b"HTTP/1.1 500 Internal Server Error\r\nServer: x\r\nContent-Length: 0\r\n\r\n"


def test_response_serialize_keeps_given_length() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("content-length", "2")])
    response = Response(404, "Not Found", headers, b"no")
    assert response.serialize() == b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\ncontent-length: 2\r\n\r\nno"
    assert response.serialize() == wh.Response(404, "Not Found", wd.Headers(headers.raw_items()), b"no").serialize()


@pytest.mark.parametrize("status", [100, 101, 103, 204, 304])
def test_response_serialize_no_length_without_body(status: int) -> None:
    assert b"Content-Length" not in Response(status, "X").serialize()


def test_response_serialize_no_length_with_transfer_encoding() -> None:
    response = Response(200, "OK", Headers([("Transfer-Encoding", "chunked")]), b"0\r\n\r\n")
    assert b"Content-Length" not in response.serialize()


def test_response_serialize_latin1_reason() -> None:
    assert Response(200, "D\xe9j\xe0 vu", b"").serialize().startswith(b"HTTP/1.1 200 D\xe9j\xe0 vu\r\n")


@pytest.mark.parametrize("reason", ["Bad\r\nX-Injected: 1", "a\nb", "nul\x00"])
def test_response_serialize_rejects_bad_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="invalid reason phrase"):
        Response(400, reason).serialize()


@pytest.mark.parametrize("status", [0, 99, 1000])
def test_response_serialize_rejects_bad_status(status: int) -> None:
    with pytest.raises(ValueError, match="invalid status code"):
        Response(status, "X").serialize()


def _run(gen: Any) -> Any:
    with pytest.raises(StopIteration) as raised:
        next(gen)
    return raised.value.value


def _reader(data: bytes, eof: bool = True) -> Any:
    from ferrows.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def test_request_parse() -> None:
    reader = _reader(b"GET /chat HTTP/1.1\r\nHost: example.com\r\nX-Name: caf\xe9\r\nUpgrade: websocket\r\n\r\n")
    request = _run(Request.parse(reader.read_line))
    assert (request.method, request.path, request.protocol) == ("GET", "/chat", "HTTP/1.1")
    assert request.headers["Upgrade"] == "websocket"


@pytest.mark.parametrize(
    ("data", "exc", "message"),
    [
        (b"", EOFError, "connection closed while reading HTTP request line"),
        (b"GET /\r\n\r\n", ValueError, "invalid HTTP request line: GET /"),
        (b"GET / HTTP/2.0\r\n\r\n", ValueError, "unsupported protocol; expected HTTP/1.1 or HTTP/1.0: GET / HTTP/2.0"),
        (b"GET / HTTP/1.1\r\nOops\r\n\r\n", ValueError, "invalid HTTP header line: Oops"),
        (b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", ValueError, "unsupported request body"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", EOFError, "connection closed while reading HTTP headers"),
    ],
)
def test_request_parse_errors_as_websockets(data: bytes, exc: type[Exception], message: str) -> None:
    from websockets.streams import StreamReader as ReferenceReader

    with pytest.raises(exc) as raised:
        _run(Request.parse(_reader(data).read_line))
    assert str(raised.value) == message
    reference = ReferenceReader()
    reference.feed_data(data)
    reference.feed_eof()
    with pytest.raises(exc) as expected:
        _run(wh.Request.parse(reference.read_line))
    assert str(expected.value) == message


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello+", b"hello"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n", b"hello!"),
        (b"HTTP/1.1 200 OK\r\n\r\nto eof", b"to eof"),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", b""),
    ],
)
def test_response_parse_bodies(data: bytes, body: bytes) -> None:
    reader = _reader(data)
    response = _run(Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof))
    assert response.body == body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.0 400 Bad Request\r\n\r\n", "unsupported protocol; expected HTTP/1.1: HTTP/1.0 400 Bad Request"),
        (b"HTTP/1.1 OMG Bad\r\n\r\n", "invalid status code; expected integer; got OMG"),
        (b"HTTP/1.1 007 Bond\r\n\r\n", "invalid status code; expected 100\u2013599; got 007"),
        (b"HTTP/1.1 200 \x7f\r\n\r\n", "invalid HTTP reason phrase: \x7f"),
        (b"Hello!\r\n", "invalid HTTP status line: Hello!"),
    ],
)
def test_response_parse_errors(data: bytes, message: str) -> None:
    reader = _reader(data)
    with pytest.raises(ValueError) as raised:
        _run(Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof))
    assert str(raised.value) == message


def test_response_parse_limits() -> None:
    from ferrows.exceptions import SecurityError, TooManyHeaders

    reader = _reader(b"HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n")
    with pytest.raises(SecurityError, match=r"^body too large: 1234567890123456789 bytes$"):
        _run(Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof))
    reader = _reader(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: compress\r\n\r\n")
    with pytest.raises(NotImplementedError, match=r"^transfer coding compress isn't supported$"):
        _run(Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof))
    # A proxy's answer to CONNECT may be HTTP/1.0 and its body isn't read.
    reader = _reader(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    response = _run(Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof, proxy=True))
    assert response.body == b""
    reader = _reader(b"x: y\r\n" * 129 + b"\r\n")
    with pytest.raises(TooManyHeaders, match=r"^expected no more than 128 headers$"):
        _run(http11.parse_headers(reader.read_line))
    reader = _reader(b"x: y\n\r\n")
    with pytest.raises(EOFError):
        _run(http11.parse_headers(reader.read_line))


def test_exception_field_as_websockets() -> None:
    # websockets' Request and Response carry an _exception field; code
    # written for websockets passes it to replace() and to the constructor.
    import dataclasses

    response = Response(200, "OK", Headers())
    assert dataclasses.replace(response, _exception=None) == response
    failed = Response(200, "OK", Headers(), b"", _exception=ValueError("bad"))
    assert failed != response
    assert repr(Request("/", Headers())) == repr(wh.Request("/", wd.Headers()))
    with pytest.warns(DeprecationWarning, match="use ClientProtocol.handshake_exc instead"):
        assert isinstance(failed.exception, ValueError)
    with pytest.warns(DeprecationWarning, match="use ServerProtocol.handshake_exc instead"):
        assert Request("/", Headers()).exception is None
