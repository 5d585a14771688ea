"""Tests for ferrows.headers: parsers and builders of handshake header values."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferrows.exceptions import InvalidHeaderFormat, InvalidHeaderValue
from ferrows.headers import (
    _extension_item,
    _parse_list,
    _parse_simple_extension,
    build_authorization_basic,
    build_extension,
    build_host,
    build_subprotocol,
    build_www_authenticate_basic,
    parse_authorization_basic,
    parse_connection,
    parse_extension,
    parse_subprotocol,
    parse_upgrade,
    validate_subprotocols,
)
from ferrows.typing import ExtensionName, Subprotocol

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)


# ------------------------------------------------------------------ Connection


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        ("keep-alive,Upgrade", ["keep-alive", "Upgrade"]),
        ("keep-alive ,\tUpgrade", ["keep-alive", "Upgrade"]),
        # Empty elements are tolerated (RFC 9110 section 5.6.1).
        (", Upgrade", ["Upgrade"]),
        (" , Upgrade ,, ", ["Upgrade"]),
        ("Upgrade,", ["Upgrade"]),
        ("a, , b", ["a", "b"]),
    ],
)
def test_parse_connection(header: str, parsed: list[str]) -> None:
    assert parse_connection(header) == parsed


@pytest.mark.parametrize(
    ("header", "pos"),
    [
        ("Upgrade;", 7),
        ("Up grade", 3),
        ('"Upgrade"', 0),
        ("a, /b", 3),
        ("keep-alive, Upgrade\x00", 19),
    ],
)
def test_parse_connection_invalid(header: str, pos: int) -> None:
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_connection(header)
    exc = raised.value
    assert exc.name == "Connection"
    assert exc.header == header
    assert exc.pos == pos
    assert str(exc).startswith("invalid Connection header: ")


# ------------------------------------------------------------------ Upgrade


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("websocket", ["websocket"]),
        ("WebSocket", ["WebSocket"]),
        ("HTTP/2.0, SHTTP/1.3, IRC/6.9", ["HTTP/2.0", "SHTTP/1.3", "IRC/6.9"]),
        ("websocket/13", ["websocket/13"]),
    ],
)
def test_parse_upgrade(header: str, parsed: list[str]) -> None:
    assert parse_upgrade(header) == parsed


@pytest.mark.parametrize("header", ["websocket/", "/1", "websocket/1/2", "web socket", "websocket;"])
def test_parse_upgrade_invalid(header: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_upgrade(header)
    assert raised.value.name == "Upgrade"


# ------------------------------------------------------------------ Sec-WebSocket-Extensions


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("permessage-deflate", [("permessage-deflate", [])]),
        (
            "permessage-deflate; client_max_window_bits",
            [("permessage-deflate", [("client_max_window_bits", None)])],
        ),
        (
            "permessage-deflate; client_max_window_bits=10; server_no_context_takeover, permessage-deflate",
            [
                (
                    "permessage-deflate",
                    [
                        ("client_max_window_bits", "10"),
                        ("server_no_context_takeover", None),
                    ],
                ),
                ("permessage-deflate", []),
            ],
        ),
        ('x; p="1"', [("x", [("p", "1")])]),
        ('x; p="\\1"', [("x", [("p", "1")])]),
        ("x ;p = 1 ; q", [("x", [("p", "1"), ("q", None)])]),
        (",a,,b,", [("a", []), ("b", [])]),
    ],
)
def test_parse_extension(header: str, parsed: list[tuple[str, list[tuple[str, str | None]]]]) -> None:
    assert parse_extension(header) == parsed


@pytest.mark.parametrize(
    "header",
    [
        "x; =1",  # missing name
        "x; p=",  # missing value
        'x; p="1',  # unterminated quoted string
        'x; p="a b"',  # quoted value that isn't a token (RFC 6455 section 9.1)
        'x; p=""',  # empty quoted value
        "x y",
        "x; p=1 2",
        ";p",
        "x;",
    ],
)
def test_parse_extension_invalid(header: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_extension(header)
    assert raised.value.name == "Sec-WebSocket-Extensions"
    assert 0 <= raised.value.pos <= len(header)


def test_build_extension() -> None:
    assert build_extension([]) == ""
    assert (
        build_extension(
            [
                (
                    ExtensionName("permessage-deflate"),
                    [
                        ("client_max_window_bits", None),
                        ("server_max_window_bits", "12"),
                    ],
                ),
                (ExtensionName("x-other"), []),
            ]
        )
        == "permessage-deflate; client_max_window_bits; server_max_window_bits=12, x-other"
    )


@given(
    st.lists(
        st.tuples(tokens, st.lists(st.tuples(tokens, st.none() | tokens), max_size=3)),
        min_size=1,
        max_size=4,
    )
)
def test_extension_round_trip(
    extensions: list[tuple[str, list[tuple[str, str | None]]]],
) -> None:
    assert parse_extension(build_extension(extensions)) == extensions  # type: ignore[arg-type]


@given(st.text(alphabet='ab-_1 \t,;="\\\x0b', max_size=30))
def test_extension_fast_path_agrees_with_the_grammar(header: str) -> None:
    """Whatever the common-case splitter accepts, the full parser parses the
    same way; what it declines is left to the full parser."""
    simple = _parse_simple_extension(header)
    try:
        full = _parse_list(_extension_item, header, "Sec-WebSocket-Extensions")
    except InvalidHeaderFormat:
        assert simple is None
    else:
        assert simple is None or simple == full


def test_extension_fast_path_takes_browser_offers() -> None:
    offer = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"
    assert _parse_simple_extension(offer) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("x-webkit-deflate-frame", []),
    ]
    assert _parse_simple_extension('x; p="1"') is None


# ------------------------------------------------------------------ Sec-WebSocket-Protocol


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("chat", ["chat"]),
        ("chat, superchat", ["chat", "superchat"]),
        ("chat,superchat", ["chat", "superchat"]),
        ("v1.json.example.com", ["v1.json.example.com"]),
    ],
)
def test_parse_subprotocol(header: str, parsed: list[str]) -> None:
    assert parse_subprotocol(header) == parsed


@pytest.mark.parametrize("header", ["chat superchat", "a;b", '"chat"', "chat/1"])
def test_parse_subprotocol_invalid(header: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_subprotocol(header)
    assert raised.value.name == "Sec-WebSocket-Protocol"


@given(st.lists(tokens, min_size=1, max_size=5))
def test_subprotocol_round_trip(subprotocols: list[str]) -> None:
    header = build_subprotocol([Subprotocol(s) for s in subprotocols])
    assert parse_subprotocol(header) == subprotocols


def test_validate_subprotocols() -> None:
    validate_subprotocols([Subprotocol("chat"), Subprotocol("v2.chat")])
    validate_subprotocols([])
    with pytest.raises(TypeError):
        validate_subprotocols("chat")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        validate_subprotocols([Subprotocol("two words")])
    with pytest.raises(ValueError):
        validate_subprotocols([Subprotocol("")])
    with pytest.raises(ValueError):
        validate_subprotocols([42])  # type: ignore[list-item]


# ------------------------------------------------------------------ Authorization


def test_build_authorization_basic() -> None:
    # RFC 7617 section 2.
    assert build_authorization_basic("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert build_authorization_basic("user", "pâss") == "Basic " + base64.b64encode("user:pâss".encode()).decode()
    assert build_authorization_basic("user", "a:b") == "Basic " + base64.b64encode(b"user:a:b").decode()
    with pytest.raises(ValueError):
        build_authorization_basic("us:er", "pass")


def test_parse_authorization_basic() -> None:
    assert parse_authorization_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == (
        "Aladdin",
        "open sesame",
    )
    assert parse_authorization_basic("basic dXNlcjphOmI=") == ("user", "a:b")
    assert parse_authorization_basic("Basic Og==") == ("", "")


@given(
    st.text(min_size=0, max_size=10).filter(lambda s: ":" not in s),
    st.text(max_size=10),
)
def test_authorization_round_trip(username: str, password: str) -> None:
    assert parse_authorization_basic(build_authorization_basic(username, password)) == (
        username,
        password,
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Digest x=1",
        "dXNlcjpwYXNz",
        "Basic dXNlcg==",  # no colon
        "Basic /w==",  # not UTF-8
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ",  # bad padding
    ],
)
def test_parse_authorization_unsupported_scheme(header: str) -> None:
    with pytest.raises(InvalidHeaderValue):
        parse_authorization_basic(header)


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",  # not base64
        "Basic",  # no credentials
        "// Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",  # scheme isn't a token
        "Basic\tQWxhZGRpbjpvcGVuIHNlc2FtZQ==",  # RFC 9110 11.6.2: one space
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== //",  # trailing data
    ],
)
def test_parse_authorization_malformed(header: str) -> None:
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_authorization_basic(header)
    assert raised.value.name == "Authorization"


@pytest.mark.parametrize(
    ("parse", "header"),
    [
        (parse_connection, ""),
        (parse_connection, " , ,"),
        (parse_upgrade, ""),
        (parse_extension, ""),
        (parse_extension, ",\t,"),
        (parse_subprotocol, ""),
        (parse_subprotocol, ",\t,"),
    ],
)
def test_empty_lists_are_malformed(parse: Any, header: str) -> None:
    # The WebSocket headers are 1# lists: at least one element.
    with pytest.raises(InvalidHeaderFormat):
        parse(header)


def test_validate_subprotocols_refuses_non_sequences() -> None:
    with pytest.raises(TypeError, match=r"^subprotocols must be a list$"):
        validate_subprotocols({"sip": None})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        validate_subprotocols("sip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^invalid subprotocol: a b$"):
        validate_subprotocols([Subprotocol("a b")])
    validate_subprotocols((Subprotocol("sip"),))


@pytest.mark.parametrize("realm", ["\u0007", "a\r\nX-Injected: 1", "\x00"])
def test_build_www_authenticate_basic_refuses_control_characters(realm: str) -> None:
    # RFC 9110 5.6.4: a quoted string carries no control character but tab.
    with pytest.raises(ValueError, match=r"^invalid characters for quoted-string encoding$"):
        build_www_authenticate_basic(realm)
    assert build_www_authenticate_basic("a\tb") == 'Basic realm="a\tb", charset="UTF-8"'


def test_build_www_authenticate_basic() -> None:
    assert build_www_authenticate_basic("Private") == 'Basic realm="Private", charset="UTF-8"'
    assert build_www_authenticate_basic('my "realm"\\') == 'Basic realm="my \\"realm\\"\\\\", charset="UTF-8"'


# ------------------------------------------------------------------ Host


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("example.com", 8080, False, "example.com:8080"),
        ("192.0.2.1", 80, False, "192.0.2.1"),
        ("::1", 80, False, "[::1]"),
        ("::1", 8080, False, "[::1]:8080"),
        ("[::1]", 8443, True, "[::1]:8443"),
    ],
)
def test_build_host(host: str, port: int, secure: bool, expected: str) -> None:
    assert build_host(host, port, secure) == expected


def test_build_host_always_include_port() -> None:
    assert build_host("example.com", 80, False, always_include_port=True) == "example.com:80"
    assert build_host("::1", 443, True, always_include_port=True) == "[::1]:443"


@pytest.mark.parametrize(
    "header",
    ["", ",\t,", "foo;", "foo; bar;", "foo; bar=", 'foo; bar="baz', "foo, bar, baz=quux; quuux", 'foo; bar=" "'],
)
def test_parse_extension_errors_read_as_websockets(header: str) -> None:
    # Applications match on these messages; they are websockets' words.
    import websockets.exceptions
    import websockets.headers

    with pytest.raises(websockets.exceptions.InvalidHeaderFormat) as expected:
        websockets.headers.parse_extension(header)
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_extension(header)
    assert str(raised.value) == str(expected.value)
