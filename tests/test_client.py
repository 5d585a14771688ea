"""Tests for ferrows.client: the client's opening handshake, Sans-I/O, and the
reconnection policy."""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest

from ferrows import _core
from ferrows.client import ClientProtocol, backoff, process_exception
from ferrows.datastructures import Headers
from ferrows.exceptions import (
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    SecurityError,
    StatusLineTooLong,
)
from ferrows.extensions.base import ClientExtensionFactory, Extension
from ferrows.frames import Frame, Opcode
from ferrows.http11 import Request, Response
from ferrows.protocol import CLOSED, CONNECTING, OPEN
from ferrows.typing import ExtensionName, ExtensionParameter, Subprotocol
from ferrows.uri import parse_uri
from frame_utils import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    close_payload,
    frame,
    is_masked,
    parse_frames,
)


def connected_request(client: ClientProtocol) -> Request:
    request = client.connect()
    client.send_request(request)
    return request


def response_bytes(
    client: ClientProtocol,
    *,
    status: str = "101 Switching Protocols",
    **changes: str | None,
) -> bytes:
    """A handshake response for ``client``; ``changes`` as in test_server."""
    headers: dict[str, str] = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": _core.accept_key(client.key),
    }
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    lines = [f"HTTP/1.1 {status}"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_failed(client: ClientProtocol, exc_type: type[Exception]) -> Response | None:
    """The handshake failed with ``exc_type``: EOF is queued, the response
    (if it was parsed) is the only event, and the connection never opens."""
    assert isinstance(client.handshake_exc, exc_type)
    assert client.data_to_send() == [b""]
    events = client.events_received()
    assert len(events) <= 1
    assert client.state is CONNECTING
    assert client.close_expected()
    # Whatever comes next is ignored.
    client.receive_data(frame(TEXT, b"ignored"))
    assert client.events_received() == []
    client.receive_eof()
    assert client.state is CLOSED
    assert client.data_to_send() == []
    return events[0] if events else None  # type: ignore[return-value]


# ------------------------------------------------------------------ request


def test_connect() -> None:
    client = ClientProtocol(parse_uri("ws://example.com/chat?room=1"))
    request = client.connect()
    assert request.method == "GET"
    assert request.path == "/chat?room=1"
    assert request.protocol == "HTTP/1.1"
    assert list(request.headers.raw_items()) == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", client.key),
        ("Sec-WebSocket-Version", "13"),
    ]
    assert len(base64.b64decode(client.key)) == 16
    assert client.state is CONNECTING
    assert client.uri.host == "example.com"


def test_keys_are_random() -> None:
    assert ClientProtocol("ws://h/").key != ClientProtocol("ws://h/").key


def test_send_request() -> None:
    client = ClientProtocol("ws://example.com/")
    connected_request(client)
    assert client.data_to_send() == [
        b"GET / HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        + f"Sec-WebSocket-Key: {client.key}\r\n".encode()
        + b"Sec-WebSocket-Version: 13\r\n\r\n"
    ]


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:8080/", "example.com:8080"),
        ("wss://example.com/", "example.com"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://127.0.0.1:9000/", "127.0.0.1:9000"),
        ("ws://[::1]/", "[::1]"),
        ("ws://[::1]:9000/", "[::1]:9000"),
        ("wss://[2001:db8::1]:8443/", "[2001:db8::1]:8443"),
    ],
)
def test_host_header(uri: str, host: str) -> None:
    assert ClientProtocol(uri).connect().headers["Host"] == host


def test_authorization_from_user_info() -> None:
    request = ClientProtocol("ws://user:pass@example.com/").connect()
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()
    assert request.headers["Host"] == "example.com"


def test_authorization_percent_encoded() -> None:
    request = ClientProtocol("ws://us%65r:p%40ss@example.com/").connect()
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_origin() -> None:
    request = ClientProtocol("ws://example.com/", origin="https://example.com").connect()
    assert request.headers["Origin"] == "https://example.com"
    assert "Origin" not in ClientProtocol("ws://example.com/").connect().headers


def test_subprotocols_offered() -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v2"), Subprotocol("v1")])
    assert client.connect().headers["Sec-WebSocket-Protocol"] == "v2, v1"


class Factory(ClientExtensionFactory):
    """Client factory of a do-nothing extension, for negotiation tests."""

    def __init__(self, name: str, params: Sequence[ExtensionParameter] = (), accept: bool = True) -> None:
        self.name = ExtensionName(name)
        self.params = list(params)
        self.accept = accept
        self.answers: list[list[ExtensionParameter]] = []

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        return self.params

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        self.answers.append(list(params))
        if not self.accept:
            raise NegotiationError(f"{self.name} refuses {params}")
        extension = Extension()
        extension.name = self.name
        return extension


def test_extensions_offered() -> None:
    client = ClientProtocol(
        "ws://h/",
        extensions=[Factory("x-a", [("p", None), ("q", "1")]), Factory("x-b")],
    )
    assert client.connect().headers["Sec-WebSocket-Extensions"] == "x-a; p; q=1, x-b"


def test_invalid_uri() -> None:
    with pytest.raises(InvalidURI):
        ClientProtocol("http://example.com/")


# ------------------------------------------------------------------ response


def test_accepted() -> None:
    client = ClientProtocol("ws://example.com/")
    connected_request(client)
    client.data_to_send()
    client.receive_data(response_bytes(client, Date="Mon, 01 Jan 2024 00:00:00 GMT"))
    (response,) = client.events_received()
    assert isinstance(response, Response)
    assert response.status_code == 101
    assert response.reason_phrase == "Switching Protocols"
    assert response.headers["Date"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert client.state is OPEN
    assert client.handshake_exc is None
    assert client.extensions == []
    assert client.subprotocol is None
    assert client.data_to_send() == []
    client.send_text("hello")
    (out,) = client.data_to_send()
    assert is_masked(out)
    assert parse_frames(out) == [(TEXT, b"hello", True, 0)]


def test_response_in_arbitrary_chunks() -> None:
    rng = random.Random(42)
    for _ in range(20):
        client = ClientProtocol("ws://example.com/")
        data = response_bytes(client) + frame(TEXT, b"first") + frame(PING, b"p")
        cuts = sorted(rng.sample(range(1, len(data)), 5))
        for start, end in itertools.pairwise([0, *cuts, len(data)]):
            client.receive_data(data[start:end])
        events = client.events_received()
        assert [type(e) for e in events] == [Response, Frame, Frame]
        assert events[1:] == [Frame(Opcode.TEXT, b"first"), Frame(Opcode.PING, b"p")]
        assert client.state is OPEN


def test_frames_in_the_same_chunk_as_the_response() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(response_bytes(client) + frame(TEXT, b"hi") + frame(PING, b"p") + frame(CLOSE, b""))
    events = client.events_received()
    assert events[1:] == [
        Frame(Opcode.TEXT, b"hi"),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CLOSE, b""),
    ]
    assert [f[0] for f in parse_frames(b"".join(client.data_to_send()))] == [
        PONG,
        CLOSE,
    ]


def test_invalid_frame_in_the_same_chunk_as_the_response() -> None:
    client = ClientProtocol("ws://example.com/")
    # Servers don't mask.
    masked = bytes([0x81, 0x82]) + b"\x00\x00\x00\x00hi"
    client.receive_data(response_bytes(client) + masked)
    assert len(client.events_received()) == 1
    (close,) = parse_frames(b"".join(client.data_to_send()))
    assert close[0] == CLOSE and close[1][:2] == b"\x03\xea"


def test_wrong_accept() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(response_bytes(client, Sec_WebSocket_Accept=_core.accept_key(_core.generate_key())))
    check_failed(client, InvalidHeaderValue)


def test_missing_accept() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(response_bytes(client, Sec_WebSocket_Accept=None))
    check_failed(client, InvalidHeader)


def test_duplicated_accept() -> None:
    client = ClientProtocol("ws://example.com/")
    accept = _core.accept_key(client.key)
    client.receive_data(
        response_bytes(client).replace(b"\r\n\r\n", f"\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
    )
    check_failed(client, InvalidHeader)
    assert "multiple values" in str(client.handshake_exc)


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": None},
        {"Upgrade": "h2c"},
        {"Connection": None},
        {"Connection": "close"},
    ],
)
def test_invalid_upgrade(changes: dict[str, str | None]) -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(response_bytes(client, **changes))
    check_failed(client, InvalidUpgrade)


def test_rejected_with_body() -> None:
    client = ClientProtocol("ws://example.com/")
    body = b"Invalid API key\n"
    client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n" + body[:5])
    assert client.events_received() == []
    client.receive_data(body[5:])
    response = check_failed(client, InvalidStatus)
    assert response is not None
    assert response.status_code == 403
    assert response.body == body
    assert client.handshake_exc.response.body == body  # type: ignore[union-attr]
    assert str(client.handshake_exc) == "server rejected WebSocket connection: HTTP 403"


def test_rejected_with_body_until_eof() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(b"HTTP/1.1 503 Service Unavailable\r\n\r\nback soon")
    assert client.events_received() == []
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.response.body == b"back soon"
    assert client.state is CLOSED
    assert client.data_to_send() == [b""]


def test_response_body_too_large() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(b"HTTP/1.1 500 Oops\r\nContent-Length: 2000000\r\n\r\n")
    check_failed(client, InvalidMessage)
    assert isinstance(client.handshake_exc.__cause__, SecurityError)


def test_eof_during_handshake() -> None:
    client = ClientProtocol("ws://example.com/")
    connected_request(client)
    client.data_to_send()
    client.receive_data(response_bytes(client)[:30])
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert isinstance(client.handshake_exc.__cause__, EOFError)
    assert client.state is CLOSED
    assert client.data_to_send() == [b""]
    assert client.events_received() == []
    assert process_exception(client.handshake_exc) is None


def test_eof_without_response() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_eof()
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert client.data_to_send() == [b""]


def test_not_http() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    check_failed(client, InvalidMessage)
    assert str(client.handshake_exc) == "did not receive a valid HTTP response"
    assert client.handshake_exc.__cause__ is not None


def test_subprotocol_accepted() -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v1"), Subprotocol("v2")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol="v2"))
    assert client.state is OPEN
    assert client.subprotocol == "v2"


def test_subprotocol_not_offered() -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v1")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol="v2"))
    check_failed(client, NegotiationError)


def test_subprotocol_without_offer() -> None:
    client = ClientProtocol("ws://h/")
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol="v1"))
    check_failed(client, NegotiationError)


def test_several_subprotocols() -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v1"), Subprotocol("v2")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol="v1, v2"))
    check_failed(client, InvalidHeader)


def test_malformed_subprotocol() -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v1")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol="v1;"))
    check_failed(client, InvalidHeaderFormat)


def test_extension_accepted() -> None:
    a, b = Factory("x-a"), Factory("x-b")
    client = ClientProtocol("ws://h/", extensions=[a, b])
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-b; k=v"))
    assert client.state is OPEN
    assert [e.name for e in client.extensions] == ["x-b"]
    assert b.answers == [[("k", "v")]]
    assert a.answers == []


def test_extension_not_offered() -> None:
    client = ClientProtocol("ws://h/", extensions=[Factory("x-a")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-other"))
    check_failed(client, NegotiationError)


def test_extension_without_offer() -> None:
    client = ClientProtocol("ws://h/")
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-a"))
    check_failed(client, NegotiationError)


def test_extension_refused_by_factory() -> None:
    client = ClientProtocol("ws://h/", extensions=[Factory("x-a", accept=False)])
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-a; bad"))
    check_failed(client, NegotiationError)
    # websockets' words, then why the factory refused.
    assert str(client.handshake_exc) == (
        "Unsupported extension: name = x-a, params = [('bad', None)]: x-a refuses [('bad', None)]"
    )


def test_permessage_deflate_refusal_names_the_parameter() -> None:
    from ferrows.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    client = ClientProtocol("ws://h/", extensions=[ClientPerMessageDeflateFactory()])
    client.receive_data(
        response_bytes(client, Sec_WebSocket_Extensions="permessage-deflate; server_max_window_bits=16")
    )
    check_failed(client, NegotiationError)
    assert "server_max_window_bits" in str(client.handshake_exc)


def test_extension_second_factory_accepts() -> None:
    # Two offers of the same extension: the first factory that agrees wins.
    first, second = Factory("x-a", accept=False), Factory("x-a")
    client = ClientProtocol("ws://h/", extensions=[first, second])
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-a"))
    assert client.state is OPEN
    assert first.answers == [[]] and second.answers == [[]]


def test_malformed_extension_header() -> None:
    client = ClientProtocol("ws://h/", extensions=[Factory("x-a")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Extensions="x-a; =1"))
    check_failed(client, InvalidHeaderFormat)


# ------------------------------------------------------------------ closing after the handshake


def test_close_after_handshake() -> None:
    client = ClientProtocol("ws://h/")
    client.receive_data(response_bytes(client))
    client.events_received()
    client.send_close(1000, "bye")
    assert parse_frames(b"".join(client.data_to_send())) == [(CLOSE, close_payload(1000, "bye"), True, 0)]
    client.receive_data(frame(CLOSE, close_payload(1000, "bye")))
    # The client waits for the server to close TCP first.
    assert client.data_to_send() == []
    client.receive_eof()
    assert client.data_to_send() == [b""]
    assert client.state is CLOSED
    assert client.close_code == 1000


# ------------------------------------------------------------------ backoff


def test_backoff_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.5)
    delays = list(itertools.islice(backoff(initial_delay=4, min_delay=1, max_delay=10, factor=2), 8))
    assert delays == [2.0, 1, 2, 4, 8, 10, 10, 10]


def test_backoff_defaults() -> None:
    delays = list(itertools.islice(backoff(), 20))
    assert 0 <= delays[0] <= 5
    assert delays[1] == 3.1
    assert delays[2] == pytest.approx(3.1 * 1.618)
    assert all(a <= b for a, b in itertools.pairwise(delays[1:]))
    assert delays[-1] == 90.0
    assert max(delays) == 90.0


def test_backoff_first_delay_is_random() -> None:
    firsts = {next(backoff()) for _ in range(10)}
    assert len(firsts) > 1


# ------------------------------------------------------------------ process_exception


def response(status: int) -> Response:
    return Response(status, "", Headers())


@pytest.mark.parametrize(
    "exc",
    [
        OSError("connection refused"),
        ConnectionResetError(),
        TimeoutError(),
        InvalidStatus(response(500)),
        InvalidStatus(response(502)),
        InvalidStatus(response(503)),
        InvalidStatus(response(504)),
    ],
)
def test_process_exception_retries(exc: Exception) -> None:
    assert process_exception(exc) is None


def test_process_exception_retries_eof_during_handshake() -> None:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = EOFError("connection closed")
    assert process_exception(exc) is None


@pytest.mark.parametrize(
    "exc",
    [
        InvalidStatus(response(403)),
        InvalidStatus(response(404)),
        InvalidStatus(response(501)),
        InvalidMessage("did not receive a valid HTTP response"),
        InvalidHeaderValue("Sec-WebSocket-Accept", "x"),
        NegotiationError("nope"),
        ValueError("bug"),
    ],
)
def test_process_exception_raises(exc: Exception) -> None:
    assert process_exception(exc) is exc


@pytest.mark.parametrize("value", ["", ", ,"])
def test_empty_subprotocol(value: str) -> None:
    client = ClientProtocol("ws://h/", subprotocols=[Subprotocol("v1")])
    client.receive_data(response_bytes(client, Sec_WebSocket_Protocol=value))
    check_failed(client, InvalidHeader)


def _redirect(location: str) -> Any:
    from ferrows.exceptions import InvalidStatus

    response = Response(302, "Found", Headers([("Location", location)]), b"")
    return InvalidStatus(response)


@pytest.mark.parametrize(
    ("uri", "location", "target", "error", "message"),
    [
        ("ws://invalid/", "/", "sock", ValueError, "cannot follow redirect to ws://invalid/ with a preexisting socket"),
        (
            "ws://localhost/",
            "ws://other/",
            "unix",
            ValueError,
            "cannot follow cross-origin redirect to ws://other/ with a Unix socket",
        ),
        (
            "ws://overridden/",
            "ws://other/",
            "host",
            ValueError,
            "cannot follow cross-origin redirect to ws://other/ with an explicit host or port",
        ),
        ("wss://h/", "ws://h:8080/", None, SecurityError, "cannot follow redirect to non-secure URI ws://h:8080/"),
    ],
)
def test_redirect_refusals_say_where_to(uri: str, location: str, target: str | None, error: type, message: str) -> None:
    """websockets' words, which name the redirect's target."""
    from ferrows.client import process_redirect
    from ferrows.uri import parse_uri

    with pytest.raises(error) as raised:
        process_redirect(parse_uri(uri), _redirect(location), None, target=target)
    assert str(raised.value) == message


def test_same_origin_redirect_with_a_unix_socket_is_followed() -> None:
    from ferrows.client import process_redirect
    from ferrows.uri import parse_uri

    new, _, location = process_redirect(parse_uri("ws://localhost/a"), _redirect("/b"), None, target="unix")
    assert location == "ws://localhost/b" and new.path == "/b"


# ------------------------------------------------------- websockets' wording


@pytest.mark.parametrize(
    ("data", "cause", "message"),
    [
        (b"", EOFError, "connection closed while reading HTTP status line"),
        (b"HTTP/1.1 101 Switching Protocols\r\n", EOFError, "connection closed while reading HTTP headers"),
        (b"220 smtp.invalid\r\n", ValueError, "invalid HTTP status line: 220 smtp.invalid"),
        (
            b"220 smtp.invalid ESMTP Postfix\r\n",
            ValueError,
            "unsupported protocol; expected HTTP/1.1: 220 smtp.invalid ESMTP Postfix",
        ),
    ],
)
def test_invalid_response_worded_as_websockets(data: bytes, cause: type[Exception], message: str) -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(data)
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert str(client.handshake_exc) == "did not receive a valid HTTP response"
    assert type(client.handshake_exc.__cause__) is cause
    assert str(client.handshake_exc.__cause__) == message


def test_status_line_too_long_is_the_handshake_exc() -> None:
    client = ClientProtocol("ws://example.com/")
    client.receive_data(b"HTTP/1.1 " + b"a" * 8191 + b"\r\n\r\n")
    assert type(client.handshake_exc) is StatusLineTooLong
    assert str(client.handshake_exc) == "read 8202 bytes, expected no more than 8192 bytes"
    assert client.data_to_send() == [b""]
