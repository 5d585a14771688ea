"""The HTTP side of an ASGI WebSocket: the connection scope built from the
upgrade request, and the responses that refuse it.

Kept apart from the protocol class so that what an application sees (the
scope) and what a client receives instead of a WebSocket (403, 500, the
application's own response) can be read in one place.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from .. import _core
from ..datastructures import Headers
from ..http11 import Request, Response

__all__ = ["AcceptResponse", "accept_head", "build_scope", "denial_response", "error_response", "status_phrase"]

ASGI_SPEC_VERSION = "2.4"
"""The ASGI WebSocket specification version this implementation follows:
2.4 has the reason of ``websocket.close`` and ``websocket.disconnect``, and
the Denial Response extension that ``extensions`` announces."""


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status, empty for a code without one."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def build_scope(
    request: Request,
    *,
    asgi_version: str,
    scheme: str,
    server: Any,
    client: Any,
    root_path: str,
    subprotocols: Sequence[str],
    state: dict[str, Any],
) -> dict[str, Any]:
    """The ``websocket`` connection scope of an upgrade request.

    ``path`` is the percent-decoded path after ``root_path``, ``raw_path``
    the path as received; header names are lower-cased as the specification
    asks, and names and values are the bytes received (the parser decodes
    them as ISO-8859-1, so encoding them back gives those bytes). ``state``
    is a shallow copy of the lifespan state, as uvicorn gives every
    connection.
    """
    target, _, query = request.path.partition("?")
    packed = request.headers._source
    if packed is not None:
        # The headers as parsed, unchanged: converted by the core in one call.
        headers = _core.scope_headers(packed)
    else:
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.raw_items()
        ]
    return {
        "type": "websocket",
        "asgi": {"version": asgi_version, "spec_version": ASGI_SPEC_VERSION},
        "http_version": "1.1",
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + unquote(target),
        "raw_path": (root_path + target).encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "subprotocols": list(subprotocols),
        "state": state.copy(),
        "extensions": {"websocket.http.response": {}},
    }


def asgi_headers(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI header pairs (bytes) as the strings of a :class:`Headers`."""
    return [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in pairs]


def add_defaults(headers: Headers, defaults: Iterable[tuple[bytes, bytes]]) -> None:
    """Adds uvicorn's default headers (``server``, ``date``, ``--header``)
    that the response does not set itself."""
    for name, value in asgi_headers(defaults):
        if name not in headers:
            headers[name] = value


class AcceptResponse(Response):
    """The 101 the core built, with its head already on the wire's form:
    :meth:`serialize` returns it, so ``ServerProtocol.send_response()`` opens
    the connection without the 101 going through :class:`Headers` a second
    time. :attr:`headers` are the core's (for its debug log)."""

    def __init__(self, response: Response, head: bytes) -> None:
        super().__init__(response.status_code, response.reason_phrase, response.headers)
        self.head = head

    def serialize(self) -> bytes:
        return self.head


def accept_head(
    response: Response,
    defaults: Iterable[tuple[bytes, bytes]],
    headers: Iterable[tuple[bytes, bytes]] | None,
    subprotocol: str | None,
) -> bytes:
    """The head of the 101 for ``websocket.accept``: the core's headers but
    ``Date`` (uvicorn's default headers carry it), uvicorn's default headers
    (its own settings, written as they are), then the application's headers
    and subprotocol, checked, since a CR or LF there would inject headers.

    Raises:
        InvalidHeaderValue: For an application's header value HTTP forbids.
        ValueError: For an application's header name that isn't a token.
    """
    wire: tuple[str, bytes] | None = getattr(response, "_wire", None)
    if wire is not None and response.headers._source is wire[0] and wire[0].startswith("Date\0"):
        # The core's 101, unchanged: its bytes without the Date line and
        # the empty line.
        head = wire[1]
        parts = [_STATUS_LINE, head[head.index(b"\r\n", len(_STATUS_LINE)) + 2 : -2]]
    else:
        parts = [_STATUS_LINE]
        parts += [
            f"{name}: {value}\r\n".encode("latin-1") for name, value in response.headers.raw_items() if name != "Date"
        ]
    for name, value in defaults:
        parts += (name, b": ", value, b"\r\n")
    if headers or subprotocol:
        extra = Headers()
        for key, text in asgi_headers(headers or ()):
            extra[key.lower()] = text
        if subprotocol:
            extra["Sec-WebSocket-Protocol"] = subprotocol
        parts.append(extra.serialize())
    else:
        parts.append(b"\r\n")
    return b"".join(parts)


_STATUS_LINE = b"HTTP/1.1 101 Switching Protocols\r\n"


def error_response(defaults: Iterable[tuple[bytes, bytes]]) -> Response:
    """The 500 that answers an upgrade when the application failed before
    accepting it, with uvicorn's body and headers."""
    body = b"Internal Server Error"
    headers = Headers(
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("connection", "close"),
            ("content-length", str(len(body))),
        ]
    )
    add_defaults(headers, defaults)
    return Response(500, "Internal Server Error", headers, body)


def denial_response(
    status: int,
    headers: Headers,
    defaults: Iterable[tuple[bytes, bytes]],
    body: bytes = b"",
) -> Response:
    """The application's response to the upgrade (Denial Response extension),
    completed with what HTTP/1.1 needs and the application left out: the
    connection closes after it, and it is plain text unless it says
    otherwise. ``Content-Length`` is added by :meth:`Response.serialize`
    unless the application delimits the body itself."""
    headers = headers.copy()
    if "connection" not in headers:
        headers["connection"] = "close"
    if "content-type" not in headers:
        headers["content-type"] = "text/plain; charset=utf-8"
    add_defaults(headers, defaults)
    return Response(status, status_phrase(status), headers, body)
