"""Parsing of ``ws://`` and ``wss://`` URIs (RFC 6455 §3)."""

from __future__ import annotations

import dataclasses
import urllib.parse

from .exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]

# Characters with a meaning in URIs (gen-delims and sub-delims of RFC 3986
# §2.2), plus "%" so that escapes already present stay as they are.
_KEEP = ":/?#[]@!$&'()*+,;=%"


@dataclasses.dataclass
class WebSocketURI:
    """A WebSocket URI, split into the parts a client needs.

    Attributes:
        secure: :obj:`True` for ``wss``, :obj:`False` for ``ws``.
        host: Host name in lower case, IDNA-encoded if it was not ASCII, or
            an IP address; IPv6 addresses come without brackets.
        port: Port, defaulting to 80 for ``ws`` and 443 for ``wss``.
        path: Path, possibly empty.
        query: Query, without the ``?``, possibly empty.
        username: User name from the user information, if any.
        password: Password from the user information, if any.
    """

    secure: bool
    host: str
    port: int
    path: str
    query: str
    username: str | None = None
    password: str | None = None

    @property
    def resource_name(self) -> str:
        """Request target of the handshake: path (``/`` if empty) and query.

        RFC 6455 §3 calls this the "resource name".
        """
        resource_name = self.path or "/"
        if self.query:
            resource_name += "?" + self.query
        return resource_name

    @property
    def user_info(self) -> tuple[str, str] | None:
        """``(username, password)`` for HTTP Basic Auth, or :obj:`None`."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password


def credentials(parts: urllib.parse.SplitResult) -> tuple[str | None, str | None]:
    """The ``user:password@`` of a URI or a proxy URL, percent-decoded.

    Raises:
        ValueError: For a username without a password (urllib accepts
            ``user@host``, which is useless for Basic authentication), or
            user information that is not UTF-8.
    """
    username, password = parts.username, parts.password
    if username is None:
        return None, None
    if password is None:
        raise ValueError("username provided without password")
    try:
        return urllib.parse.unquote(username, errors="strict"), urllib.parse.unquote(password, errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError("user information isn't valid UTF-8") from exc


def idna_host(host: str) -> str:
    """A host name in ASCII, IDNA-encoded (RFC 3490) if it is not ASCII.

    Raises:
        ValueError: If it can't be encoded.
    """
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError("hostname can't be encoded with IDNA") from exc


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and check a WebSocket URI.

    An IRI (a URI with non-ASCII characters) is converted to a URI as RFC
    3987 §3.1 describes: the host is IDNA-encoded and the path and query are
    percent-encoded as UTF-8.

    Args:
        uri: A ``ws://`` or ``wss://`` URI.

    Returns:
        The parts of the URI.

    Raises:
        InvalidURI: If the scheme isn't ``ws`` or ``wss``, if the host is
            missing, if there is a fragment (RFC 6455 §3 forbids them), if
            the port isn't a valid number, if the user information has no
            password or isn't valid percent-encoded UTF-8, or if a non-ASCII
            host can't be IDNA-encoded.
    """
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        # Unbalanced IPv6 brackets, or a port that isn't a number in range.
        raise InvalidURI(uri, str(exc)) from exc
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    host = parts.hostname
    if not host:
        raise InvalidURI(uri, "hostname isn't provided")
    if parts.fragment:
        raise InvalidURI(uri, "fragment identifier is meaningless")

    secure = parts.scheme == "wss"
    if port is None:
        port = 443 if secure else 80
    path, query = parts.path, parts.query

    try:
        username, password = credentials(parts)
        host = idna_host(host)
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from exc
    if not uri.isascii():
        path = urllib.parse.quote(path, safe=_KEEP)
        query = urllib.parse.quote(query, safe=_KEEP)

    return WebSocketURI(secure, host, port, path, query, username, password)
