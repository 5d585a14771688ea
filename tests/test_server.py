"""Tests for ferrows.server: the server's opening handshake, Sans-I/O."""

from __future__ import annotations

import email.utils
import logging
import re
import unittest.mock
from collections.abc import Sequence

import pytest

from ferrows import _core
from ferrows.datastructures import Headers
from ferrows.exceptions import (
    HeaderLineTooLong,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidMethod,
    InvalidOrigin,
    InvalidProtocol,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
    RequestLineTooLong,
    TooManyHeaders,
)
from ferrows.extensions.base import Extension, ServerExtensionFactory
from ferrows.frames import Frame, Opcode
from ferrows.http11 import Request, Response
from ferrows.protocol import CLOSED, CONNECTING, OPEN
from ferrows.server import ServerProtocol
from ferrows.typing import ExtensionName, ExtensionParameter, Subprotocol
from frame_utils import BINARY, CLOSE, PING, TEXT, client_frame, close_payload, frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def make_request(**changes: str | None) -> bytes:
    """A valid handshake request; ``changes`` replace (or, with None, drop)
    headers, spelled with underscores; ``request_line`` replaces the first
    line."""
    request_line = changes.pop("request_line", None) or "GET /chat?x=1 HTTP/1.1"
    headers = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    lines = [request_line] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def receive_request(server: ServerProtocol, data: bytes) -> Request:
    server.receive_data(data)
    (request,) = server.events_received()
    assert isinstance(request, Request)
    return request


def handshake(server: ServerProtocol, data: bytes) -> Response:
    """Runs the handshake for ``data`` and sends the response."""
    request = receive_request(server, data)
    response = server.accept(request)
    server.send_response(response)
    return response


def parse_response(data: bytes) -> tuple[int, Headers, bytes]:
    parser = _core.HttpParser(True)
    parsed = parser.feed(data)
    assert parsed is not None
    _, status, _, headers, body = parsed
    return status, Headers(headers), body


def check_rejected(
    data: bytes,
    status: int,
    exc_type: type[Exception],
    server: ServerProtocol | None = None,
) -> Headers:
    """The request in ``data`` gets an HTTP error ``status``, then EOF."""
    server = server or ServerProtocol()
    response = handshake(server, data)
    assert response.status_code == status
    assert isinstance(server.handshake_exc, exc_type)
    out = server.data_to_send()
    assert out[1:] == [b""]
    code, headers, body = parse_response(out[0])
    assert code == status
    assert headers["Connection"] == "close"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    assert body.startswith(b"Failed to open a WebSocket connection")
    assert server.state is CONNECTING
    assert server.close_expected()
    # Anything the client sends next is ignored.
    server.receive_data(client_frame(TEXT, b"ignored"))
    assert server.events_received() == []
    assert server.data_to_send() == []
    server.receive_eof()
    assert server.state is CLOSED
    return headers


# ------------------------------------------------------------------ accept


def test_accept() -> None:
    server = ServerProtocol()
    request = receive_request(server, make_request())
    assert request.method == "GET"
    assert request.path == "/chat?x=1"
    assert request.protocol == "HTTP/1.1"
    assert request.headers["Host"] == "server.example.com"
    response = server.accept(request)
    assert response.status_code == 101
    assert response.reason_phrase == "Switching Protocols"
    assert response.headers["Upgrade"] == "websocket"
    assert response.headers["Connection"] == "Upgrade"
    assert response.headers["Sec-WebSocket-Accept"] == ACCEPT
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert email.utils.parsedate_to_datetime(response.headers["Date"]) is not None
    assert server.handshake_exc is None
    assert server.state is CONNECTING
    server.send_response(response)
    assert server.state is OPEN
    (out,) = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert f"Sec-WebSocket-Accept: {ACCEPT}\r\n".encode() in out
    assert out.endswith(b"\r\n\r\n")
    assert b"Content-Length" not in out
    # The connection works.
    server.send_text("hi")
    assert server.data_to_send() == [b"\x81\x02hi"]
    server.receive_data(client_frame(TEXT, b"yo"))
    assert server.events_received() == [Frame(Opcode.TEXT, b"yo")]


def test_request_in_chunks() -> None:
    server = ServerProtocol()
    data = make_request()
    for i in range(len(data) - 1):
        server.receive_data(data[i : i + 1])
        assert server.events_received() == []
    server.receive_data(data[-1:])
    assert len(server.events_received()) == 1


def test_case_insensitive_headers() -> None:
    server = ServerProtocol()
    response = handshake(server, make_request(Upgrade="WebSocket", Connection="keep-alive, upgrade"))
    assert response.status_code == 101


def test_repeated_connection_header() -> None:
    data = make_request().replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive\r\nConnection: Upgrade\r\n")
    assert handshake(ServerProtocol(), data).status_code == 101


def test_early_frames_are_processed_after_response() -> None:
    server = ServerProtocol()
    data = make_request() + client_frame(TEXT, b"early") + client_frame(PING, b"p")
    request = receive_request(server, data[:-3])
    server.receive_data(data[-3:])
    # Nothing is parsed before the response.
    assert server.events_received() == []
    server.send_response(server.accept(request))
    assert server.events_received() == [
        Frame(Opcode.TEXT, b"early"),
        Frame(Opcode.PING, b"p"),
    ]
    out = server.data_to_send()
    assert out[0].startswith(b"HTTP/1.1 101 ")
    # The pong comes after the response.
    assert out[1:] == [frame(0xA, b"p")]


def test_early_close_frame() -> None:
    server = ServerProtocol()
    handshake(server, make_request() + client_frame(CLOSE, close_payload(1000)))
    assert server.events_received() == [Frame(Opcode.CLOSE, close_payload(1000))]
    out = server.data_to_send()
    assert out[1:] == [frame(CLOSE, close_payload(1000)), b""]


def test_early_invalid_frame() -> None:
    server = ServerProtocol()
    handshake(server, make_request() + frame(BINARY, b"unmasked"))
    out = server.data_to_send()
    assert out[1] == frame(CLOSE, close_payload(1002, "incorrect masking"))
    assert out[2] == b""


def test_eof_before_request() -> None:
    server = ServerProtocol()
    server.receive_data(make_request()[:20])
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert isinstance(server.handshake_exc.__cause__, EOFError)
    assert server.data_to_send() == [b""]
    assert server.state is CLOSED


def test_eof_without_data() -> None:
    server = ServerProtocol()
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert server.data_to_send() == [b""]
    assert server.events_received() == []


def test_eof_after_request() -> None:
    # The client gave up before the server answered.
    server = ServerProtocol()
    request = receive_request(server, make_request())
    server.receive_eof()
    assert server.state is CLOSED
    assert server.data_to_send() == []
    assert request.path == "/chat?x=1"


def test_send_after_response_refused() -> None:
    server = ServerProtocol()
    check_rejected(make_request(Upgrade=None), 426, InvalidUpgrade, server)
    with pytest.raises(AssertionError):  # InvalidState
        server.send_text("x")


# ------------------------------------------------------------------ rejections


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": None},
        {"Upgrade": "h2c"},
        {"Upgrade": "websocket, h2c"},
        {"Connection": None},
        {"Connection": "keep-alive"},
    ],
)
def test_invalid_upgrade_or_connection(changes: dict[str, str | None]) -> None:
    headers = check_rejected(make_request(**changes), 426, InvalidUpgrade)
    assert headers["Upgrade"] == "websocket"


def test_malformed_connection_header() -> None:
    headers = check_rejected(make_request(Connection="Upgrade;"), 400, InvalidHeader)
    assert "Upgrade" not in headers


@pytest.mark.parametrize("key", [None, "", "not base64!", "c2hvcnQ=", "dGhlIHNhbXBsZSBub25jZQ"])
def test_invalid_key(key: str | None) -> None:
    check_rejected(make_request(Sec_WebSocket_Key=key), 400, InvalidHeader)


def test_duplicated_key() -> None:
    data = make_request().replace(b"\r\n\r\n", f"\r\nSec-WebSocket-Key: {KEY}\r\n\r\n".encode())
    server = ServerProtocol()
    check_rejected(data, 400, InvalidHeader, server)
    assert "multiple values" in str(server.handshake_exc)


@pytest.mark.parametrize("version", ["8", "14", "13, 8"])
def test_unsupported_version(version: str) -> None:
    headers = check_rejected(make_request(Sec_WebSocket_Version=version), 426, InvalidHeaderValue)
    assert headers["Sec-WebSocket-Version"] == "13"


def test_missing_version() -> None:
    check_rejected(make_request(Sec_WebSocket_Version=None), 400, InvalidHeader)


@pytest.mark.parametrize("host", [None, ""])
def test_missing_or_empty_host(host: str | None) -> None:
    """RFC 6455 section 4.2.1, item 2 and RFC 9112 section 3.2: 400."""
    server = ServerProtocol()
    check_rejected(make_request(Host=host), 400, InvalidHeader, server)
    assert "Host" in str(server.handshake_exc)


def test_duplicated_host() -> None:
    server = ServerProtocol()
    data = make_request().replace(b"\r\n\r\n", b"\r\nHost: evil.example.com\r\n\r\n")
    check_rejected(data, 400, InvalidHeader, server)
    assert "multiple values" in str(server.handshake_exc)


def test_post() -> None:
    server = ServerProtocol()
    headers = check_rejected(make_request(request_line="POST / HTTP/1.1"), 405, InvalidMethod, server)
    assert headers["Allow"] == "GET"
    assert server.handshake_exc.method == "POST"  # type: ignore[union-attr]


def test_http_1_0() -> None:
    server = ServerProtocol()
    check_rejected(make_request(request_line="GET / HTTP/1.0"), 505, InvalidProtocol, server)
    assert server.handshake_exc.protocol == "HTTP/1.0"  # type: ignore[union-attr]


def test_reject_carries_reason() -> None:
    server = ServerProtocol()
    response = handshake(server, make_request(Upgrade=None))
    assert response.body == (
        b"Failed to open a WebSocket connection: missing Upgrade header.\n\n"
        b"You cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n"
    )


# ------------------------------------------------------------------ origins


@pytest.mark.parametrize(
    ("origins", "origin", "ok"),
    [
        (None, None, True),
        (None, "https://evil.example", True),
        (["https://good.example"], "https://good.example", True),
        (["https://good.example"], "https://evil.example", False),
        (["https://good.example"], "https://GOOD.example", False),
        (["https://good.example"], None, False),
        ([None], None, True),
        ([None], "https://good.example", False),
        (
            [re.compile(r"https://[a-z]+\.good\.example")],
            "https://app.good.example",
            True,
        ),
        (
            [re.compile(r"https://[a-z]+\.good\.example")],
            "https://app.good.example.evil",
            False,
        ),
        ([re.compile(r"https://[a-z]+\.good\.example")], None, False),
        ([None, "https://good.example"], "https://good.example", True),
        ([], "https://good.example", False),
    ],
)
def test_origins(origins: list[str | re.Pattern[str] | None] | None, origin: str | None, ok: bool) -> None:
    server = ServerProtocol(origins=origins)
    data = make_request(Origin=origin) if origin is not None else make_request()
    if ok:
        assert handshake(server, data).status_code == 101
        assert server.origin == origin  # type: ignore[attr-defined]
    else:
        check_rejected(data, 403, InvalidOrigin, server)


def test_multiple_origins() -> None:
    data = make_request(Origin="https://a.example").replace(b"\r\n\r\n", b"\r\nOrigin: https://b.example\r\n\r\n")
    check_rejected(data, 400, InvalidHeader, ServerProtocol(origins=["https://a.example"]))


# ------------------------------------------------------------------ HTTP limits


def test_request_line_too_long() -> None:
    server = ServerProtocol()
    server.receive_data(b"GET /" + b"a" * 8200)
    # No request event: the response was written, then EOF.
    assert server.events_received() == []
    assert isinstance(server.handshake_exc, RequestLineTooLong)
    out = server.data_to_send()
    assert out[1:] == [b""]
    status, _headers, body = parse_response(out[0])
    assert status == 414
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    # Later bytes are ignored.
    server.receive_data(b"a" * 100)
    assert server.data_to_send() == []
    server.receive_eof()
    assert server.state is CLOSED


def test_header_line_too_long() -> None:
    server = ServerProtocol()
    server.receive_data(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 8200 + b"\r\n\r\n")
    assert isinstance(server.handshake_exc, HeaderLineTooLong)
    assert parse_response(server.data_to_send()[0])[0] == 431


def test_too_many_headers() -> None:
    server = ServerProtocol()
    server.receive_data(make_request().replace(b"\r\n\r\n", b"\r\n" + b"X-Header: value\r\n" * 1000 + b"\r\n"))
    assert isinstance(server.handshake_exc, TooManyHeaders)
    out = server.data_to_send()
    assert parse_response(out[0])[0] == 431
    assert out[1:] == [b""]


def test_request_with_body() -> None:
    server = ServerProtocol()
    server.receive_data(make_request(Content_Length="5") + b"hello")
    assert server.events_received() == []
    assert isinstance(server.handshake_exc, InvalidHandshake)
    out = server.data_to_send()
    assert parse_response(out[0])[0] == 400
    assert out[1:] == [b""]


# Start of a TLS 1.3 ClientHello: record header, handshake header, version,
# then random bytes. A client that speaks TLS to a ws:// server sends this.
CLIENT_HELLO = bytes.fromhex(
    "160301020001000 1fc0303".replace(" ", "")
    + "6b0aa3d5bd1c7e2a0e8e3d9c5f1a4b2c7d8e9f0a1b2c3d4e5f60718293a4b5c6"
    + "20e1f2a3b4c5d6e7f80910111213141516171819"
)


def test_tls_client_hello_with_newline() -> None:
    # A 0x0a byte without CR in front: not HTTP, refused at once.
    assert b"\n" in CLIENT_HELLO
    server = ServerProtocol()
    server.receive_data(CLIENT_HELLO)
    assert server.events_received() == []
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert str(server.handshake_exc) == "did not receive a valid HTTP request"
    assert server.handshake_exc.__cause__ is not None
    # No HTTP response to something that isn't HTTP: only EOF.
    assert server.data_to_send() == [b""]
    server.receive_data(b"more garbage")
    server.receive_eof()
    assert server.data_to_send() == []
    assert server.state is CLOSED


def test_garbage_then_eof() -> None:
    server = ServerProtocol()
    server.receive_data(b"\x16\x03\x01\x00\xff\x01\x00\x00\xfb\x03\x03")
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert server.data_to_send() == [b""]
    assert server.events_received() == []


def test_invalid_request_line() -> None:
    server = ServerProtocol()
    server.receive_data(b"GARBAGE\r\n\r\n")
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert server.data_to_send() == [b""]


# ------------------------------------------------------------------ subprotocols


def test_no_subprotocols() -> None:
    server = ServerProtocol()
    response = handshake(server, make_request(Sec_WebSocket_Protocol="chat"))
    assert response.status_code == 101
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert server.subprotocol is None


def test_default_subprotocol_selection() -> None:
    # The server's order of preference wins.
    server = ServerProtocol(subprotocols=[Subprotocol("v2"), Subprotocol("v1")])
    response = handshake(server, make_request(Sec_WebSocket_Protocol="v1, v2"))
    assert response.headers["Sec-WebSocket-Protocol"] == "v2"
    assert server.subprotocol == "v2"


def test_subprotocols_in_several_headers() -> None:
    data = make_request(Sec_WebSocket_Protocol="a").replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: v1\r\n\r\n")
    server = ServerProtocol(subprotocols=[Subprotocol("v1")])
    assert handshake(server, data).headers["Sec-WebSocket-Protocol"] == "v1"


@pytest.mark.parametrize("offer", [None, "v3", "v3, v4"])
def test_no_matching_subprotocol(offer: str | None) -> None:
    server = ServerProtocol(subprotocols=[Subprotocol("v1"), Subprotocol("v2")])
    data = make_request(Sec_WebSocket_Protocol=offer) if offer else make_request()
    check_rejected(data, 400, NegotiationError, server)


def test_custom_select_subprotocol() -> None:
    calls = []

    def select(protocol: ServerProtocol, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        calls.append((protocol, list(subprotocols)))
        return subprotocols[-1] if subprotocols else None

    server = ServerProtocol(subprotocols=[Subprotocol("unused")], select_subprotocol=select)
    response = handshake(server, make_request(Sec_WebSocket_Protocol="a, b, c"))
    assert response.headers["Sec-WebSocket-Protocol"] == "c"
    assert calls == [(server, ["a", "b", "c"])]

    server = ServerProtocol(select_subprotocol=select)
    response = handshake(server, make_request())
    assert response.status_code == 101
    assert "Sec-WebSocket-Protocol" not in response.headers


def test_select_subprotocol_raises(caplog: pytest.LogCaptureFixture) -> None:
    def select(protocol: ServerProtocol, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        raise RuntimeError("bug")

    server = ServerProtocol(select_subprotocol=select)
    with caplog.at_level(logging.ERROR, logger="websockets.server"):
        response = handshake(server, make_request(Sec_WebSocket_Protocol="a"))
    assert response.status_code == 500
    assert isinstance(server.handshake_exc, RuntimeError)
    assert b"See server log" in response.body
    assert "opening handshake failed" in caplog.text


def test_select_subprotocol_negotiation_error() -> None:
    def select(protocol: ServerProtocol, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        raise NegotiationError("nope")

    check_rejected(make_request(), 400, NegotiationError, ServerProtocol(select_subprotocol=select))


def test_malformed_subprotocol_header() -> None:
    server = ServerProtocol(subprotocols=[Subprotocol("v1")])
    check_rejected(make_request(Sec_WebSocket_Protocol="v1 v2"), 400, InvalidHeader, server)


# ------------------------------------------------------------------ reject


def test_reject() -> None:
    server = ServerProtocol()
    response = server.reject(404, "Not here.\n")
    assert response.status_code == 404
    assert response.reason_phrase == "Not Found"
    assert response.body == b"Not here.\n"
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Connection"] == "close"
    assert email.utils.parsedate_to_datetime(response.headers["Date"]) is not None
    server.send_response(response)
    out = server.data_to_send()
    assert out[0].startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert out[0].endswith(b"\r\n\r\nNot here.\n")
    assert out[1:] == [b""]
    assert isinstance(server.handshake_exc, InvalidStatus)
    assert server.handshake_exc.response is response


def test_reject_non_ascii_text() -> None:
    response = ServerProtocol().reject(403, "Interdit : accès refusé\n")
    assert response.body == "Interdit : accès refusé\n".encode()
    assert response.headers["Content-Length"] == str(len(response.body))


def test_reject_unknown_status() -> None:
    with pytest.raises(ValueError):
        ServerProtocol().reject(799, "")


def test_send_custom_response() -> None:
    # An application may answer a plain HTTP request itself.
    server = ServerProtocol()
    receive_request(server, make_request(Upgrade=None))
    server.send_response(Response(200, "OK", Headers({"Content-Type": "text/plain"}), b"healthy\n"))
    out = server.data_to_send()
    assert out[0] == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nhealthy\n"
    assert out[1:] == [b""]


# ------------------------------------------------------------------ extensions


class Factory(ServerExtensionFactory):
    """Server factory of a do-nothing extension, for negotiation tests."""

    def __init__(self, name: str, accept: bool = True) -> None:
        self.name = ExtensionName(name)
        self.accept = accept
        self.offers: list[list[ExtensionParameter]] = []

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        self.offers.append(list(params))
        if not self.accept or ("refuse", None) in params:
            raise NegotiationError("declined")
        extension = Extension()
        extension.name = self.name
        return [("n", str(len(accepted_extensions)))], extension


def test_extensions_accepted_in_client_order() -> None:
    a, b = Factory("x-a"), Factory("x-b")
    server = ServerProtocol(extensions=[a, b])
    response = handshake(server, make_request(Sec_WebSocket_Extensions="x-b; p=1, x-unknown, x-a"))
    assert response.headers["Sec-WebSocket-Extensions"] == "x-b; n=0, x-a; n=1"
    assert [e.name for e in server.extensions] == ["x-b", "x-a"]
    assert b.offers == [[("p", "1")]]


def test_extension_offer_declined() -> None:
    server = ServerProtocol(extensions=[Factory("x-a", accept=False)])
    response = handshake(server, make_request(Sec_WebSocket_Extensions="x-a"))
    assert response.status_code == 101
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert server.extensions == []


def test_extension_fallback_offer() -> None:
    # The client offers x-a twice; the first offer is declined.
    factory = Factory("x-a")
    server = ServerProtocol(extensions=[factory])
    response = handshake(server, make_request(Sec_WebSocket_Extensions="x-a; refuse, x-a; ok"))
    assert response.headers["Sec-WebSocket-Extensions"] == "x-a; n=0"
    assert factory.offers == [[("refuse", None)], [("ok", None)]]


def test_extension_accepted_once() -> None:
    factory = Factory("x-a")
    server = ServerProtocol(extensions=[factory])
    response = handshake(server, make_request(Sec_WebSocket_Extensions="x-a, x-a"))
    assert response.headers["Sec-WebSocket-Extensions"] == "x-a; n=0"
    assert len(server.extensions) == 1


def test_extensions_ignored_without_factories() -> None:
    server = ServerProtocol()
    response = handshake(server, make_request(Sec_WebSocket_Extensions="permessage-deflate"))
    assert "Sec-WebSocket-Extensions" not in response.headers


def test_malformed_extension_header() -> None:
    server = ServerProtocol(extensions=[Factory("x-a")])
    check_rejected(
        make_request(Sec_WebSocket_Extensions='x-a; p="a b"'),
        400,
        InvalidHeader,
        server,
    )


# ------------------------------------------------------- websockets' wording


def test_invalid_key_says_why_as_websockets_does() -> None:
    server = ServerProtocol()
    check_rejected(make_request(Sec_WebSocket_Key="<not Base64 data>"), 400, InvalidHeaderValue, server)
    exc = server.handshake_exc
    assert str(exc) == "invalid Sec-WebSocket-Key header: <not Base64 data>"
    assert str(exc.__cause__) == "Only base64 data is allowed"
    # Base64 of the wrong length has no decoding error to chain.
    server = ServerProtocol()
    check_rejected(make_request(Sec_WebSocket_Key="c2hvcnQ="), 400, InvalidHeaderValue, server)
    assert server.handshake_exc.__cause__ is None


@pytest.mark.parametrize(
    ("data", "cause", "message"),
    [
        (b"", EOFError, "connection closed while reading HTTP request line"),
        (b"GET /te", EOFError, "connection closed while reading HTTP request line"),
        (b"GET /test HTTP/1.1\r\n", EOFError, "connection closed while reading HTTP headers"),
    ],
)
def test_eof_says_what_it_interrupted(data: bytes, cause: type[Exception], message: str) -> None:
    server = ServerProtocol()
    server.receive_data(data)
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert str(server.handshake_exc) == "did not receive a valid HTTP request"
    assert type(server.handshake_exc.__cause__) is cause
    assert str(server.handshake_exc.__cause__) == message


def test_request_line_not_http_refused_once_complete() -> None:
    # Refused when the line ends, without waiting for headers that a peer
    # speaking another protocol never sends.
    server = ServerProtocol()
    server.receive_data(b"HELO relay.invalid\r\n")
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert type(server.handshake_exc.__cause__) is ValueError
    assert str(server.handshake_exc.__cause__) == "invalid HTTP request line: HELO relay.invalid"
    # Closed without an HTTP answer, which it would not understand.
    assert server.data_to_send() == [b""]
    server.receive_data(b"MAIL FROM: <alice@invalid>\r\n")
    assert server.data_to_send() == []


@pytest.mark.parametrize(
    ("data", "exc_type", "status", "message"),
    [
        (
            b"GET /" + b"a" * 8186 + b" HTTP/1.1\r\n\r\n",
            RequestLineTooLong,
            414,
            "read 8202 bytes, expected no more than 8192 bytes",
        ),
        (
            b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 8192 + b"\r\n\r\n",
            HeaderLineTooLong,
            431,
            "read 8202 bytes, expected no more than 8192 bytes",
        ),
        (
            b"GET / HTTP/1.1\r\n" + b"X-Foo: bar\r\n" * 129 + b"\r\n",
            TooManyHeaders,
            431,
            "expected no more than 128 headers",
        ),
    ],
)
def test_limits_worded_as_websockets(data: bytes, exc_type: type[Exception], status: int, message: str) -> None:
    server = ServerProtocol()
    server.receive_data(data)
    assert type(server.handshake_exc) is exc_type
    assert str(server.handshake_exc) == message
    out = server.data_to_send()
    code, _headers, body = parse_response(out[0])
    assert (code, body) == (status, f"Failed to open a WebSocket connection: {message}.\n".encode())


def test_date_from_a_replaced_formatdate() -> None:
    # A fixed date, as tests patch it, is used at once, not a cached one.
    handshake(ServerProtocol(), make_request())
    fixed = "Thu, 02 Jan 2020 03:04:05 GMT"
    with unittest.mock.patch("email.utils.formatdate", return_value=fixed):
        response = handshake(ServerProtocol(), make_request())
    assert response.headers["Date"] == fixed
    response = handshake(ServerProtocol(), make_request())
    assert response.headers["Date"] != fixed
