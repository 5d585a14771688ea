"""Parsers and builders for the header values of the opening handshake.

The grammar is RFC 9110's: comma-separated lists of tokens, with parameters
that are tokens or quoted strings (RFC 6455 section 9.1 for extensions).
Parsers raise :exc:`~ferrows.exceptions.InvalidHeaderFormat` with the
position of the first character that does not fit, so that a handshake
failure names exactly what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .exceptions import InvalidHeader, InvalidHeaderFormat, InvalidHeaderValue, InvalidUpgrade
from .typing import ExtensionName, ExtensionParameter, Subprotocol

T = TypeVar("T")

__all__ = [
    "build_authorization_basic",
    "build_extension",
    "build_host",
    "build_subprotocol",
    "build_www_authenticate_basic",
    "check_upgrade",
    "parse_all",
    "parse_authorization_basic",
    "parse_connection",
    "parse_extension",
    "parse_subprotocol",
    "parse_upgrade",
    "single_header",
    "validate_subprotocols",
]

_OWS = re.compile(r"[\t ]*")
_TOKEN = re.compile(r"[-!#$%&\'*+.^_`|~0-9a-zA-Z]+")
_QUOTED = re.compile(r'"(?:[\x09\x20-\x21\x23-\x5b\x5d-\x7e]|\\[\x09\x20-\x7e\x80-\xff])*"')
_UNQUOTE = re.compile(r"\\([\x09\x20-\x7e\x80-\xff])")
# RFC 6455 section 4.1: the value of Upgrade is a list of protocols, each a
# token optionally followed by "/" and a version token.
_PROTOCOL = re.compile(r"[-!#$%&\'*+.^_`|~0-9a-zA-Z]+(?:/[-!#$%&\'*+.^_`|~0-9a-zA-Z]+)?")


def _peek(header: str, pos: int) -> str | None:
    return header[pos] if pos < len(header) else None


def _skip_ows(header: str, pos: int) -> int:
    match = _OWS.match(header, pos)
    assert match is not None
    return match.end()


def _expect(regex: re.Pattern[str], header: str, pos: int, name: str, what: str) -> tuple[str, int]:
    match = regex.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, f"expected {what}", header, pos)
    return match.group(), match.end()


def _parse_list(parse_item: Callable[[str, int, str], tuple[Any, int]], header: str, name: str) -> list[Any]:
    """Parses ``1#item`` (RFC 9110 section 5.6.1).

    Empty elements are skipped, as the RFC requires of recipients, but the
    list must hold at least one item: the WebSocket headers (RFC 6455
    section 4.3, RFC 9110 section 7.6.1 for Connection) are all ``1#``
    lists, so ``""`` and ``", ,"`` are malformed.
    """
    items: list[object] = []
    # Leading empty elements: ", , item", possibly after whitespace.
    pos = _skip_ows(header, 0)
    while _peek(header, pos) == ",":
        pos = _skip_ows(header, pos + 1)
    while True:
        item, pos = parse_item(header, pos, name)
        items.append(item)
        pos = _skip_ows(header, pos)
        if pos == len(header):
            break
        if header[pos] != ",":
            raise InvalidHeaderFormat(name, "expected comma", header, pos)
        # Empty elements: "item, , item" and trailing "item, ,".
        while _peek(header, pos) == ",":
            pos = _skip_ows(header, pos + 1)
        if pos == len(header):
            break
    return items


def _token_item(header: str, pos: int, name: str) -> tuple[object, int]:
    return _expect(_TOKEN, header, pos, name, "token")


def _protocol_item(header: str, pos: int, name: str) -> tuple[object, int]:
    return _expect(_PROTOCOL, header, pos, name, "protocol")


def parse_all(headers: Any, name: str, parse: Callable[[str], list[T]]) -> list[T]:
    """Parses every ``name`` header of ``headers`` and concatenates the
    results: a list-valued header may be split across several lines."""
    return [item for value in headers.get_all(name) for item in parse(value)]


def single_header(headers: Any, name: str) -> str:
    """The one value of a header that must appear exactly once.

    Raises:
        InvalidHeader: If it is missing or repeated.
    """
    from .datastructures import MultipleValuesError

    try:
        return str(headers[name])
    except KeyError:
        raise InvalidHeader(name) from None
    except MultipleValuesError:
        raise InvalidHeader(name, "multiple values") from None


def check_upgrade(headers: Any) -> None:
    """Checks ``Connection: Upgrade`` and ``Upgrade: websocket`` (RFC 6455
    sections 4.1 and 4.2.1), in requests and responses alike. A list of
    several protocols in ``Upgrade`` is refused as ambiguous.

    Raises:
        InvalidUpgrade: If either header is missing or wrong.
    """
    # What clients send, "Connection: Upgrade" and "Upgrade: websocket"
    # (any case), needs no parsing: a single token is its own list.
    connections = headers.get_all("Connection")
    upgrades = headers.get_all("Upgrade")
    if (
        len(connections) == 1
        and len(upgrades) == 1
        and connections[0].lower() == "upgrade"
        and upgrades[0].lower() == "websocket"
    ):
        return
    connection = parse_all(headers, "Connection", parse_connection)
    if not any(value.lower() == "upgrade" for value in connection):
        raise InvalidUpgrade("Connection", ", ".join(connection) if connection else None)
    upgrade = parse_all(headers, "Upgrade", parse_upgrade)
    if not (len(upgrade) == 1 and upgrade[0].lower() == "websocket"):
        raise InvalidUpgrade("Upgrade", ", ".join(upgrade) if upgrade else None)


def parse_connection(header: str) -> list[str]:
    """Parses a ``Connection`` header into its options.

    Raises:
        InvalidHeaderFormat: On invalid syntax.
    """
    return [str(item) for item in _parse_list(_token_item, header, "Connection")]


def parse_upgrade(header: str) -> list[str]:
    """Parses an ``Upgrade`` header into its protocols.

    Raises:
        InvalidHeaderFormat: On invalid syntax.
    """
    return [str(item) for item in _parse_list(_protocol_item, header, "Upgrade")]


def _extension_param(header: str, pos: int, name: str) -> tuple[ExtensionParameter, int]:
    param, pos = _expect(_TOKEN, header, pos, name, "token")
    pos = _skip_ows(header, pos)
    value: str | None = None
    if _peek(header, pos) == "=":
        pos = _skip_ows(header, pos + 1)
        if _peek(header, pos) == '"':
            start = pos
            quoted, pos = _expect(_QUOTED, header, pos, name, "quoted string")
            value = _UNQUOTE.sub(r"\1", quoted[1:-1])
            # RFC 6455 section 9.1: a quoted value must still be a token.
            if _TOKEN.fullmatch(value) is None:
                raise InvalidHeaderFormat(name, "invalid quoted header content", header, start)
        else:
            value, pos = _expect(_TOKEN, header, pos, name, "token")
    return (param, value), pos


def _extension_item(header: str, pos: int, name: str) -> tuple[object, int]:
    ext_name, pos = _expect(_TOKEN, header, pos, name, "token")
    pos = _skip_ows(header, pos)
    params: list[ExtensionParameter] = []
    while _peek(header, pos) == ";":
        pos = _skip_ows(header, pos + 1)
        param, pos = _extension_param(header, pos, name)
        params.append(param)
        pos = _skip_ows(header, pos)
    return (ExtensionName(ext_name), params), pos


def parse_extension(header: str) -> list[tuple[ExtensionName, list[ExtensionParameter]]]:
    """Parses a ``Sec-WebSocket-Extensions`` header.

    Returns:
        A list of ``(name, [(param, value or None), ...])`` in header order.

    Raises:
        InvalidHeaderFormat: On invalid syntax.
    """
    simple = _parse_simple_extension(header)
    if simple is not None:
        return simple
    return _parse_list(_extension_item, header, "Sec-WebSocket-Extensions")


def _parse_simple_extension(header: str) -> list[tuple[ExtensionName, list[ExtensionParameter]]] | None:
    """The common case of :func:`parse_extension`, in a few string splits:
    no quoted values, every piece a token. :obj:`None` otherwise, and the
    full parser then finds the value or reports where the syntax breaks.

    Tokens contain no separator, so splitting on "," then ";" then "=" and
    trimming whitespace yields exactly the pieces the grammar allows.
    """
    if '"' in header:
        return None
    extensions: list[tuple[ExtensionName, list[ExtensionParameter]]] = []
    token = _TOKEN.fullmatch
    for element in header.split(","):
        name, *params = element.split(";")
        name = name.strip(" \t")
        if not name:
            if params or element.strip(" \t"):
                return None
            continue  # An empty list element, which #rule tolerates.
        if token(name) is None:
            return None
        parsed: list[ExtensionParameter] = []
        for param in params:
            key, eq, value = param.partition("=")
            key = key.strip(" \t")
            if token(key) is None:
                return None
            if eq:
                value = value.strip(" \t")
                if token(value) is None:
                    return None
                parsed.append((key, value))
            else:
                parsed.append((key, None))
        extensions.append((ExtensionName(name), parsed))
    # No extension at all: the full parser reports the malformed 1# list.
    return extensions or None


def build_extension(extensions: Sequence[tuple[ExtensionName, Sequence[ExtensionParameter]]]) -> str:
    """Builds a ``Sec-WebSocket-Extensions`` header value."""
    return ", ".join(
        "; ".join([str(name)] + [p if v is None else f"{p}={v}" for p, v in params]) for name, params in extensions
    )


def parse_subprotocol(header: str) -> list[Subprotocol]:
    """Parses a ``Sec-WebSocket-Protocol`` header.

    Raises:
        InvalidHeaderFormat: On invalid syntax.
    """
    items = _parse_list(_token_item, header, "Sec-WebSocket-Protocol")
    return [Subprotocol(str(item)) for item in items]


def build_subprotocol(subprotocols: Sequence[Subprotocol]) -> str:
    """Builds a ``Sec-WebSocket-Protocol`` header value."""
    return ", ".join(subprotocols)


def validate_subprotocols(subprotocols: Sequence[Subprotocol]) -> None:
    """Checks that ``subprotocols`` is a sequence of tokens (RFC 6455 section 4.1).

    Raises:
        TypeError: If it isn't a sequence, or is a string.
        ValueError: If an item is not a valid token.
    """
    if not isinstance(subprotocols, Sequence):
        raise TypeError("subprotocols must be a list")
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a list, not a str")
    for subprotocol in subprotocols:
        if not isinstance(subprotocol, str) or _TOKEN.fullmatch(subprotocol) is None:
            raise ValueError(f"invalid subprotocol: {subprotocol}")


# RFC 9110 section 5.6.4: qdtext and quoted-pair allow HTAB, SP, VCHAR and
# obs-text; no other control character can appear in a quoted string.
_QUOTABLE = re.compile(r"[\x09\x20-\x7e\x80-\xff]*")


def _quoted_string(value: str) -> str:
    if _QUOTABLE.fullmatch(value) is None:
        raise ValueError("invalid characters for quoted-string encoding")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def build_www_authenticate_basic(realm: str) -> str:
    """Builds a ``WWW-Authenticate`` value for Basic auth (RFC 7617 section 2).

    Raises:
        ValueError: If ``realm`` holds a character that a quoted string
            can't carry (a control character other than tab).
    """
    return f'Basic realm={_quoted_string(realm)}, charset="UTF-8"'


# RFC 9110 section 11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" /
# "~" / "+" / "/" ) *"=".
_TOKEN68 = re.compile(r"[A-Za-z0-9-._~+/]+=*")


def parse_authorization_basic(header: str) -> tuple[str, str]:
    """Parses an ``Authorization: Basic`` value into ``(username, password)``.

    The syntax is RFC 9110 section 11.6.2's ``credentials``: the scheme, one
    space, a token68 (RFC 7617 section 2), and nothing else.

    Raises:
        InvalidHeaderFormat: If the value is malformed.
        InvalidHeaderValue: If the scheme is not Basic or the credentials
            aren't base64 of ``username:password``.
    """
    scheme, pos = _expect(_TOKEN, header, 0, "Authorization", "token")
    if scheme.lower() != "basic":
        raise InvalidHeaderValue("Authorization", f"unsupported scheme: {scheme}")
    if _peek(header, pos) != " ":
        raise InvalidHeaderFormat("Authorization", "expected space after scheme", header, pos)
    credentials, pos = _expect(_TOKEN68, header, pos + 1, "Authorization", "token68")
    if pos < len(header):
        raise InvalidHeaderFormat("Authorization", "trailing data", header, pos)
    try:
        decoded = base64.b64decode(credentials.encode("ascii"), validate=True).decode()
    except (UnicodeError, binascii.Error):
        raise InvalidHeaderValue("Authorization", "expected base64-encoded credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise InvalidHeaderValue("Authorization", "expected username:password credentials")
    return username, password


def build_authorization_basic(username: str, password: str) -> str:
    """Builds an ``Authorization: Basic`` value (RFC 7617)."""
    if ":" in username:
        raise ValueError("username must not contain a colon")
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def build_host(host: str, port: int, secure: bool, *, always_include_port: bool = False) -> str:
    """Builds a ``Host`` header value, bracketing IPv6 literals and omitting
    the default port of the scheme."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if always_include_port or port != (443 if secure else 80):
        host = f"{host}:{port}"
    return host
