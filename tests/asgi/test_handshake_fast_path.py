"""The ASGI handshake on the core's one-call path: the scope's headers and
the 101 are the same as those built from unpacked headers."""

from __future__ import annotations

import copy

import pytest

from ferrows.asgi.http import accept_head, build_scope
from ferrows.asgi.protocol import _DEFLATE, _Handshake
from ferrows.datastructures import Headers
from ferrows.http11 import Request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="

REQUESTS = [
    b"GET /a%20b?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: example.com\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
    b"SEC-WEBSOCKET-KEY: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Protocol: chat, v2\r\nCookie: a=\xe9\r\ncookie: b=2\r\n\r\n",
]

DEFAULTS = [(b"server", b"uvicorn"), (b"date", b"Wed, 02 Dec 2026 15:00:00 GMT")]


def accepted(data: bytes) -> tuple[_Handshake, Request, object]:
    protocol = _Handshake(extensions=_DEFLATE)
    protocol.receive_data(data)
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    return protocol, request, protocol.accept(request)


@pytest.mark.parametrize("data", REQUESTS)
@pytest.mark.parametrize(
    ("headers", "subprotocol"), [(None, None), ([(b"X-App", b"1"), (b"set-cookie", b"s=1")], "chat")]
)
def test_scope_and_101_equal_the_unpacked_path(
    data: bytes, headers: list[tuple[bytes, bytes]] | None, subprotocol: str | None
) -> None:
    protocol, request, response = accepted(data)
    assert request.headers._pairs is None
    unpacked = copy.deepcopy(request)
    unpacked.headers = Headers(list(request.headers.raw_items()))
    assert unpacked.headers._source is None
    kwargs = dict(asgi_version="3.0", scheme="ws", server=None, client=None, root_path="/r", subprotocols=(), state={})
    assert build_scope(request, **kwargs) == build_scope(unpacked, **kwargs)  # type: ignore[arg-type]
    assert build_scope(request, **kwargs)["headers"][-1][0].islower()  # type: ignore[arg-type]

    fast = accept_head(response, DEFAULTS, headers, subprotocol)  # type: ignore[arg-type]
    copied = copy.copy(response)
    copied.headers = Headers(list(response.headers.raw_items()))  # type: ignore[attr-defined]
    slow = accept_head(copied, DEFAULTS, headers, subprotocol)  # type: ignore[arg-type]
    assert fast == slow
    assert b"Date:" not in fast and b"\r\ndate: Wed, 02 Dec" in fast
    assert fast.startswith(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
    assert fast.endswith(b"\r\n\r\n")
    if b"deflate" in data:
        assert protocol.extensions and b"Sec-WebSocket-Extensions: permessage-deflate" in fast
    assert protocol.offered == (["chat", "v2"] if b"Protocol" in data else [])
