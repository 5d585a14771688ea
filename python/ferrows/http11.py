"""HTTP/1.1 messages of the opening handshake, and the limits that apply to them.

The Rust core parses requests and responses; this module holds the values
it produces (:class:`Request`, :class:`Response`), their serialisation, and
the settings read from the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys

from .datastructures import Headers, HeadersLike
from .typing import BytesLike, StatusLike
from .version import __version__

__all__ = [
    "MAX_BODY_SIZE",
    "MAX_LINE_LENGTH",
    "MAX_NUM_HEADERS",
    "SERVER",
    "USER_AGENT",
    "Request",
    "Response",
]

PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"

# Default User-Agent of clients and Server of servers. Deployments that must
# not reveal versions set the environment variables (to an empty string, to
# send nothing).
USER_AGENT = os.environ.get("WEBSOCKETS_USER_AGENT", f"Python/{PYTHON_VERSION} ferrows/{__version__}")
SERVER = os.environ.get("WEBSOCKETS_SERVER", f"Python/{PYTHON_VERSION} ferrows/{__version__}")

# Limits on what a peer may send during the handshake, before anything is
# authenticated. Together they cap the header block near 128 * 8 KiB = 1 MiB.
MAX_NUM_HEADERS = int(os.environ.get("WEBSOCKETS_MAX_NUM_HEADERS", "128"))
# 8 KiB per line is the usual default of HTTP servers and proxies.
MAX_LINE_LENGTH = int(os.environ.get("WEBSOCKETS_MAX_LINE_LENGTH", "8192"))
# A response body is read only to show why a server refused the upgrade.
MAX_BODY_SIZE = int(os.environ.get("WEBSOCKETS_MAX_BODY_SIZE", "1_048_576"))

# RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ). Anything
# else, CR and LF above all, would let a reason phrase inject headers.
_VALID_REASON = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# RFC 9112 §3: method and request-target contain no whitespace or controls.
_VALID_TOKEN = re.compile(r"[\x21-\x7e]+")


def _as_headers(headers: HeadersLike | None) -> Headers:
    """Accept headers in any form, as websockets users pass dicts too."""
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers
    return Headers(headers)


@dataclasses.dataclass
class Request:
    """The client's opening handshake request (RFC 6455 §4.1).

    Args:
        path: Request target: path and optional query, e.g. ``/chat?room=1``.
        headers: Request headers; a mapping or list of pairs is converted
            to :class:`~ferrows.datastructures.Headers`.
        method: Request method; the handshake uses ``GET``.
        protocol: HTTP version; the handshake uses ``HTTP/1.1``.

    Attributes:
        path: See Args.
        headers: See Args; always a :class:`~ferrows.datastructures.Headers`.
        method: See Args.
        protocol: See Args.
    """

    path: str
    headers: Headers
    method: str = "GET"
    protocol: str = "HTTP/1.1"

    def __post_init__(self) -> None:
        self.headers = _as_headers(self.headers)

    def serialize(self) -> bytes:
        """Encode the request as sent on the wire.

        Raises:
            ValueError: If the method, path or protocol is empty or contains
                whitespace or control characters, which would corrupt the
                request line.
            UnicodeEncodeError: If the path isn't ASCII; a URI must be
                percent-encoded first (RFC 3986 §2.1), as
                :func:`~ferrows.uri.parse_uri` does.
        """
        for part in (self.method, self.path, self.protocol):
            if not _VALID_TOKEN.fullmatch(part):
                raise ValueError(f"invalid request line component: {part!r}")
        request_line = f"{self.method} {self.path} {self.protocol}\r\n"
        return request_line.encode("ascii") + self.headers.serialize()


@dataclasses.dataclass(init=False)
class Response:
    """The server's handshake response: 101 to accept, anything else to refuse.

    Both websockets' form and the form of the asyncio-server guide work::

        Response(403, "Forbidden", Headers(), b"Invalid API key")
        Response(403, "Forbidden", b"Invalid API key")

    In the second form the third argument is bytes-like, so it can only be
    the body; the headers are then empty.

    Args:
        status_code: HTTP status, as an :class:`int` or
            :class:`~http.HTTPStatus`.
        reason_phrase: Reason phrase, e.g. ``"Forbidden"``.
        headers: Response headers, in any form that
            :class:`~ferrows.datastructures.Headers` accepts; or the body.
        body: Response body.

    Attributes:
        status_code: See Args.
        reason_phrase: See Args.
        headers: Always a :class:`~ferrows.datastructures.Headers`.
        body: Always :class:`bytes` or :class:`bytearray`.

    Raises:
        TypeError: If the body is given both as the third argument and as
            ``body``.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes | bytearray

    def __init__(
        self,
        status_code: StatusLike,
        reason_phrase: str,
        headers: HeadersLike | BytesLike | None = None,
        body: BytesLike | None = None,
    ) -> None:
        if isinstance(headers, (bytes, bytearray, memoryview)):
            if body is not None:
                raise TypeError("Response() got the body twice: as headers and as body")
            headers, body = None, headers
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = _as_headers(headers)
        if body is None:
            body = b""
        elif isinstance(body, memoryview):
            body = body.tobytes()
        self.body = body

    def serialize(self) -> bytes:
        """Encode the response as sent on the wire.

        A refusal carries a body the client reads to show why it was
        refused. HTTP/1.1 delimits that body with ``Content-Length``
        (RFC 9112 §6.3), so it is added here when missing. The response
        object itself is left unchanged. No length is added to 1xx, 204 and
        304 responses, which have no body (RFC 9110 §8.6), nor next to a
        ``Transfer-Encoding``, which RFC 9112 §6.2 forbids.

        Raises:
            ValueError: If the status code isn't three digits or the reason
                phrase contains CR, LF or other forbidden characters.
        """
        status = int(self.status_code)
        if not 100 <= status <= 999:
            raise ValueError(f"invalid status code: {status}")
        if not _VALID_REASON.fullmatch(self.reason_phrase):
            raise ValueError(f"invalid reason phrase: {self.reason_phrase!r}")
        headers = self.headers
        if (
            not (100 <= status < 200 or status in (204, 304))
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        ):
            headers = headers.copy()
            headers["Content-Length"] = str(len(self.body))
        # ISO-8859-1, like headers, so that a received reason phrase is
        # sent back byte for byte.
        status_line = f"HTTP/1.1 {status} {self.reason_phrase}\r\n"
        return status_line.encode("iso-8859-1") + headers.serialize() + bytes(self.body)
