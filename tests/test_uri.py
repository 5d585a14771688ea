"""Tests for ferrows.uri: parse_uri and WebSocketURI."""

from __future__ import annotations

import pytest
import websockets.uri as wu

from ferrows.exceptions import InvalidURI
from ferrows.uri import WebSocketURI, parse_uri

VALID = [
    ("ws://localhost/", WebSocketURI(False, "localhost", 80, "/", "")),
    ("wss://localhost/", WebSocketURI(True, "localhost", 443, "/", "")),
    ("ws://localhost", WebSocketURI(False, "localhost", 80, "", "")),
    ("ws://localhost:8765/chat", WebSocketURI(False, "localhost", 8765, "/chat", "")),
    ("wss://localhost:443/", WebSocketURI(True, "localhost", 443, "/", "")),
    ("ws://Example.COM/Path", WebSocketURI(False, "example.com", 80, "/Path", "")),
    (
        "ws://localhost/path?query",
        WebSocketURI(False, "localhost", 80, "/path", "query"),
    ),
    (
        "ws://localhost/p;x?a=1&b=2",
        WebSocketURI(False, "localhost", 80, "/p;x", "a=1&b=2"),
    ),
    ("ws://[::1]/", WebSocketURI(False, "::1", 80, "/", "")),
    ("wss://[2001:db8::1]:8443/x", WebSocketURI(True, "2001:db8::1", 8443, "/x", "")),
    ("ws://127.0.0.1:8000/", WebSocketURI(False, "127.0.0.1", 8000, "/", "")),
    (
        "ws://user:pass@localhost/",
        WebSocketURI(False, "localhost", 80, "/", "", "user", "pass"),
    ),
    (
        "ws://user:@localhost/",
        WebSocketURI(False, "localhost", 80, "/", "", "user", ""),
    ),
    (
        "ws://us%3Aer:p%40ss@localhost/",
        WebSocketURI(False, "localhost", 80, "/", "", "us:er", "p@ss"),
    ),
    (
        "ws://caf%C3%A9:pw@localhost/",
        WebSocketURI(False, "localhost", 80, "/", "", "café", "pw"),
    ),
    (
        "ws://localhost/caf%C3%A9",
        WebSocketURI(False, "localhost", 80, "/caf%C3%A9", ""),
    ),
    ("ws://localhost/%41?%42", WebSocketURI(False, "localhost", 80, "/%41", "%42")),
    # IRIs are converted to URIs (RFC 3987 §3.1).
    ("ws://例え.jp/", WebSocketURI(False, "xn--r8jz45g.jp", 80, "/", "")),
    (
        "ws://localhost/café?q=é",
        WebSocketURI(False, "localhost", 80, "/caf%C3%A9", "q=%C3%A9"),
    ),
    (
        "ws://localhost/π/[x]?a=b&c",
        WebSocketURI(False, "localhost", 80, "/%CF%80/[x]", "a=b&c"),
    ),
]


@pytest.mark.parametrize(("uri", "expected"), VALID)
def test_parse_uri(uri: str, expected: WebSocketURI) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(("uri", "expected"), VALID)
def test_parse_uri_like_websockets(uri: str, expected: WebSocketURI) -> None:
    assert vars(wu.parse_uri(uri)) == vars(expected)


def test_explicit_port_zero_is_kept() -> None:
    # websockets replaces port 0 by the default port; ferrows keeps it.
    assert parse_uri("ws://127.0.0.1:0/").port == 0


def test_iri_keeps_existing_escapes() -> None:
    # websockets turns "%C3%A9" into "%25C3%25A9" when the IRI also has a
    # non-ASCII character; ferrows keeps escapes that are already there.
    assert parse_uri("ws://localhost/caf%C3%A9/ü").path == "/caf%C3%A9/%C3%BC"


INVALID = [
    ("http://localhost/", "scheme isn't ws or wss"),
    ("https://localhost/", "scheme isn't ws or wss"),
    ("localhost/", "scheme isn't ws or wss"),
    ("/path", "scheme isn't ws or wss"),
    ("ws:/path", "hostname isn't provided"),
    ("ws:///path", "hostname isn't provided"),
    ("ws://:8080/", "hostname isn't provided"),
    ("ws://localhost/#fragment", "fragment identifier is meaningless"),
    ("ws://user@localhost/", "username provided without password"),
    ("ws://%ff:pw@localhost/", "user information isn't valid UTF-8"),
    ("ws://localhost:port/", "Port could not be cast"),
    ("ws://localhost:99999/", "Port out of range"),
    ("ws://[::1/", "Invalid IPv6 URL"),
]


@pytest.mark.parametrize(("uri", "reason"), INVALID)
def test_parse_uri_invalid(uri: str, reason: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(uri)
    assert info.value.uri == uri
    assert reason in info.value.msg
    assert str(info.value).startswith(f"{uri} isn't a valid URI: ")


def test_parse_uri_invalid_idna() -> None:
    with pytest.raises(InvalidURI, match="IDNA"):
        parse_uri("ws://" + "é" * 64 + ".com/")


@pytest.mark.parametrize(
    ("uri", "resource_name"),
    [
        ("ws://localhost", "/"),
        ("ws://localhost/", "/"),
        ("ws://localhost/path", "/path"),
        ("ws://localhost?q", "/?q"),
        ("ws://localhost/path?a=1&b=2", "/path?a=1&b=2"),
        ("ws://localhost/path?", "/path"),
    ],
)
def test_resource_name(uri: str, resource_name: str) -> None:
    assert parse_uri(uri).resource_name == resource_name == wu.parse_uri(uri).resource_name


def test_user_info() -> None:
    assert parse_uri("ws://localhost/").user_info is None
    assert parse_uri("ws://a:b@localhost/").user_info == ("a", "b")
    assert WebSocketURI(False, "h", 80, "", "", "a", None).user_info is None
