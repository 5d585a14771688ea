"""Tests for ferrows.http11: Request, Response and the environment settings."""

from __future__ import annotations

import http
import os
import subprocess
import sys

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
