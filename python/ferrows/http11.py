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
import warnings
from collections.abc import Callable, Generator

from .datastructures import Headers, HeadersLike
from .exceptions import (
    HeaderLineTooLong,
    RequestLineTooLong,
    SecurityError,
    StatusLineTooLong,
    TooManyHeaders,
)
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

# What websockets' parsers take to read: a generator-based coroutine that
# returns one LF-terminated line (``StreamReader.read_line``), ...
ReadLine = Callable[[int, type[Exception]], Generator[None, None, bytes | bytearray]]
# ... exactly n bytes (``StreamReader.read_exact``), or everything up to EOF
# (``StreamReader.read_to_eof``).
ReadExact = Callable[[int], Generator[None, None, bytes | bytearray]]
ReadToEOF = Callable[[int, type[Exception]], Generator[None, None, bytes | bytearray]]

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
# RFC 9110 §5.1 and §5.5: field-name = token; field-value = *( VCHAR / SP /
# HTAB / obs-text ), surrounding whitespace already stripped.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]*")


def _show(value: bytes | bytearray) -> str:
    """Bytes from the network, shown in an error message without failing on them."""
    return bytes(value).decode(errors="backslashreplace")


def _parse_line(read_line: ReadLine, too_long: type[Exception]) -> Generator[None, None, bytes]:
    """Read one CRLF-terminated line, without the CRLF (RFC 9112 §2.2).

    Raises:
        EOFError: If the stream ends first, or the line ends with a bare LF.
        SecurityError: ``too_long``, if the line exceeds ``MAX_LINE_LENGTH``.
    """
    line = yield from read_line(MAX_LINE_LENGTH, too_long)
    if not line.endswith(b"\r\n"):
        raise EOFError("line without CRLF")
    return bytes(line[:-2])


def parse_headers(read_line: ReadLine) -> Generator[None, None, Headers]:
    """Read header lines up to the empty line, as a generator-based coroutine.

    Values are decoded as ISO-8859-1, so that any byte RFC 9110 allows
    (obs-text included) survives a round trip.

    Args:
        read_line: Generator-based coroutine returning one LF-terminated
            line, such as :meth:`~ferrows.streams.StreamReader.read_line`.

    Raises:
        EOFError: If the stream ends before the empty line.
        HeaderLineTooLong: If a line exceeds ``MAX_LINE_LENGTH``.
        TooManyHeaders: If there are more than ``MAX_NUM_HEADERS`` lines.
        ValueError: If a line isn't ``name: value`` with a valid name and value.
    """
    headers = Headers()
    for _ in range(MAX_NUM_HEADERS + 1):
        try:
            line = yield from _parse_line(read_line, HeaderLineTooLong)
        except EOFError as exc:
            raise EOFError("connection closed while reading HTTP headers") from exc
        if not line:
            return headers
        raw_name, colon, raw_value = line.partition(b":")
        if not colon:
            raise ValueError(f"invalid HTTP header line: {_show(line)}")
        if not _FIELD_NAME.fullmatch(raw_name):
            raise ValueError(f"invalid HTTP header name: {_show(raw_name)}")
        raw_value = raw_value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(raw_value):
            raise ValueError(f"invalid HTTP header value: {_show(raw_value)}")
        headers.set_insecure(raw_name.decode("ascii"), raw_value.decode("iso-8859-1"))
    raise TooManyHeaders(f"expected no more than {MAX_NUM_HEADERS} headers")


def _read_body(
    status_code: int,
    headers: Headers,
    read_line: ReadLine,
    read_exact: ReadExact,
    read_to_eof: ReadToEOF,
) -> Generator[None, None, bytes]:
    """Read a response body as RFC 9112 §6.3 delimits it, within ``MAX_BODY_SIZE``."""
    # RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content.
    if 100 <= status_code < 200 or status_code in (204, 304):
        return b""
    coding = headers.get("Transfer-Encoding")
    if coding is not None:
        if coding != "chunked":
            raise NotImplementedError(f"transfer coding {coding} isn't supported")
        # RFC 9112 §7.1: hex size [; extensions] CRLF, data CRLF, ..., 0 CRLF,
        # trailer section.
        body = b""
        while True:
            size_line = yield from _parse_line(read_line, SecurityError)
            raw_size = size_line.split(b";", 1)[0]
            # 15 hex digits already exceed any limit; don't build huge ints.
            if len(raw_size) > 15:
                raise SecurityError(f"chunk too large: 0x{_show(raw_size)} bytes")
            size = int(raw_size, 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY_SIZE:
                raise SecurityError(f"chunk too large: {size} bytes after {len(body)} bytes")
            body += yield from read_exact(size)
            if (yield from read_exact(2)) != b"\r\n":
                raise ValueError("chunk without CRLF")
        yield from parse_headers(read_line)
        return body
    raw_length = headers.get("Content-Length")
    if raw_length is not None:
        # 18 digits fit in 64 bits; anything longer is too large anyway.
        if len(raw_length) > 18:
            raise SecurityError(f"body too large: {raw_length} bytes")
        length = int(raw_length)
        if length > MAX_BODY_SIZE:
            raise SecurityError(f"body too large: {length} bytes")
        return bytes((yield from read_exact(length)))
    return bytes((yield from read_to_eof(MAX_BODY_SIZE, SecurityError)))


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
    # websockets' field of the same name, kept so that dataclasses.replace()
    # and keyword construction written for websockets work; see exception.
    _exception: Exception | None = None

    def __post_init__(self) -> None:
        self.headers = _as_headers(self.headers)

    @property
    def exception(self) -> Exception | None:
        """Deprecated by websockets 10.3: the server protocol's ``handshake_exc`` replaces it."""
        warnings.warn(
            "Request.exception is deprecated; use ServerProtocol.handshake_exc instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._exception

    @classmethod
    def parse(cls, read_line: ReadLine) -> Generator[None, None, Request]:
        """Read a handshake request, as a generator-based coroutine (websockets' convention).

        ferrows' servers parse requests in the Rust core; this serves code
        that drives websockets' Sans-I/O parsers by hand, e.g. with a
        :class:`~ferrows.streams.StreamReader`. The path is neither decoded
        nor validated. The body, which a handshake request doesn't have,
        isn't read.

        Args:
            read_line: Generator-based coroutine returning one LF-terminated
                line, such as :meth:`~ferrows.streams.StreamReader.read_line`.

        Raises:
            EOFError: If the stream ends before the end of the headers.
            RequestLineTooLong: If the request line is too long.
            HeaderLineTooLong: If a header line is too long.
            TooManyHeaders: If there are too many headers.
            UnicodeDecodeError: If the method or path isn't ASCII.
            ValueError: If the request is malformed or has a body.
            NotImplementedError: If the request uses a transfer coding.
        """
        try:
            request_line = yield from _parse_line(read_line, RequestLineTooLong)
        except EOFError as exc:
            raise EOFError("connection closed while reading HTTP request line") from exc
        parts = request_line.split(b" ", 2)
        if len(parts) != 3:
            raise ValueError(f"invalid HTTP request line: {_show(request_line)}")
        raw_method, raw_path, raw_protocol = parts
        if raw_protocol not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise ValueError(f"unsupported protocol; expected HTTP/1.1 or HTTP/1.0: {_show(request_line)}")
        method = raw_method.decode("ascii")
        path = raw_path.decode("ascii")
        protocol = raw_protocol.decode("ascii")
        headers = yield from parse_headers(read_line)
        # RFC 6455 §4.1: the handshake is a GET without content.
        if "Transfer-Encoding" in headers:
            raise NotImplementedError("transfer codings aren't supported")
        if "Content-Length" in headers and int(headers["Content-Length"]) != 0:
            raise ValueError("unsupported request body")
        return cls(path, headers, method, protocol)

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
    # websockets' field of the same name; see Request._exception.
    _exception: Exception | None = None

    def __init__(
        self,
        status_code: StatusLike,
        reason_phrase: str,
        headers: HeadersLike | BytesLike | None = None,
        body: BytesLike | None = None,
        _exception: Exception | None = None,
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
        self._exception = _exception
        # The 101 the core built: the packed headers it came with and its
        # bytes on the wire, valid while the headers are those (see
        # serialize()). Not a field: it takes no part in equality or repr.
        self._wire: tuple[str, bytes] | None = None

    @property
    def exception(self) -> Exception | None:
        """Deprecated by websockets 10.3: the client protocol's ``handshake_exc`` replaces it."""
        warnings.warn(
            "Response.exception is deprecated; use ClientProtocol.handshake_exc instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._exception

    @classmethod
    def parse(
        cls,
        read_line: ReadLine,
        read_exact: ReadExact,
        read_to_eof: ReadToEOF,
        proxy: bool = False,
    ) -> Generator[None, None, Response]:
        """Read a handshake response, as a generator-based coroutine (websockets' convention).

        ferrows' clients parse responses in the Rust core; this serves code
        that drives websockets' Sans-I/O parsers by hand.

        Args:
            read_line: Returns one LF-terminated line.
            read_exact: Returns exactly the bytes asked for.
            read_to_eof: Returns everything until the end of the stream.
            proxy: Whether this answers a ``CONNECT`` to a proxy: HTTP/1.0
                is accepted and no body is read.

        Raises:
            EOFError: If the stream ends before the end of the response.
            StatusLineTooLong: If the status line is too long.
            HeaderLineTooLong: If a header line is too long.
            TooManyHeaders: If there are too many headers.
            SecurityError: If the body exceeds ``MAX_BODY_SIZE``.
            ValueError: If the response is malformed.
            NotImplementedError: If the body uses a transfer coding other
                than ``chunked``.
        """
        try:
            status_line = yield from _parse_line(read_line, StatusLineTooLong)
        except EOFError as exc:
            raise EOFError("connection closed while reading HTTP status line") from exc
        parts = status_line.split(b" ", 2)
        if len(parts) != 3:
            raise ValueError(f"invalid HTTP status line: {_show(status_line)}")
        protocol, raw_status, raw_reason = parts
        if proxy:
            # Some proxies still answer in HTTP/1.0.
            if protocol not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise ValueError(f"unsupported protocol; expected HTTP/1.1 or HTTP/1.0: {_show(status_line)}")
        elif protocol != b"HTTP/1.1":
            raise ValueError(f"unsupported protocol; expected HTTP/1.1: {_show(status_line)}")
        try:
            status_code = int(raw_status)
        except ValueError:
            raise ValueError(f"invalid status code; expected integer; got {_show(raw_status)}") from None
        if not 100 <= status_code < 600:
            raise ValueError(f"invalid status code; expected 100\u2013599; got {_show(raw_status)}")
        if not _FIELD_VALUE.fullmatch(raw_reason):
            raise ValueError(f"invalid HTTP reason phrase: {_show(raw_reason)}")
        reason = raw_reason.decode("iso-8859-1")
        headers = yield from parse_headers(read_line)
        body = b"" if proxy else (yield from _read_body(status_code, headers, read_line, read_exact, read_to_eof))
        return cls(status_code, reason, headers, body)

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
        # getattr: a subclass may not call this class's __init__.
        wire: tuple[str, bytes] | None = getattr(self, "_wire", None)
        if (
            wire is not None
            and self.headers._source is wire[0]
            and self.status_code == 101
            and self.reason_phrase == "Switching Protocols"
            and not self.body
        ):
            # The core's bytes for these very headers, status and body.
            return wire[1]
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
