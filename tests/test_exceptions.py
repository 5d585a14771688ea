"""Tests for ferrows.exceptions: tree, constructors, attributes and messages."""

from __future__ import annotations

import http
import pickle
from typing import Any

import pytest
import websockets.datastructures
import websockets.exceptions
import websockets.frames
import websockets.http11

from ferrows import exceptions as ex
from ferrows import frames
from ferrows.datastructures import Headers
from ferrows.frames import Close, CloseCode
from ferrows.http11 import Response

TREE = {
    "ConnectionClosed": "WebSocketException",
    "ConnectionClosedOK": "ConnectionClosed",
    "ConnectionClosedError": "ConnectionClosed",
    "InvalidURI": "WebSocketException",
    "InvalidProxy": "WebSocketException",
    "InvalidHandshake": "WebSocketException",
    "SecurityError": "InvalidHandshake",
    "RequestLineTooLong": "SecurityError",
    "StatusLineTooLong": "SecurityError",
    "HeaderLineTooLong": "SecurityError",
    "TooManyHeaders": "SecurityError",
    "ProxyError": "InvalidHandshake",
    "InvalidProxyMessage": "ProxyError",
    "InvalidProxyStatus": "ProxyError",
    "InvalidMessage": "InvalidHandshake",
    "InvalidMethod": "InvalidHandshake",
    "InvalidProtocol": "InvalidHandshake",
    "InvalidStatus": "InvalidHandshake",
    "InvalidHeader": "InvalidHandshake",
    "InvalidHeaderFormat": "InvalidHeader",
    "InvalidHeaderValue": "InvalidHeader",
    "InvalidOrigin": "InvalidHeader",
    "InvalidUpgrade": "InvalidHeader",
    "NegotiationError": "InvalidHandshake",
    "DuplicateParameter": "NegotiationError",
    "InvalidParameterName": "NegotiationError",
    "InvalidParameterValue": "NegotiationError",
    "ProtocolError": "WebSocketException",
    "PayloadTooBig": "WebSocketException",
    "TooManyFragments": "WebSocketException",
    "InvalidState": "WebSocketException",
    "ConcurrencyError": "WebSocketException",
}


def test_all_lists_every_class() -> None:
    assert set(ex.__all__) == set(TREE) | {"WebSocketException"}
    assert set(ex.__all__) == set(websockets.exceptions.__all__)


@pytest.mark.parametrize(("name", "parent"), sorted(TREE.items()))
def test_tree(name: str, parent: str) -> None:
    cls = getattr(ex, name)
    assert cls.__bases__[0] is getattr(ex, parent)
    # Same shape as websockets 17.
    w_cls = getattr(websockets.exceptions, name)
    assert w_cls.__bases__[0].__name__ == parent


def test_root_and_extra_bases() -> None:
    assert ex.WebSocketException.__bases__ == (Exception,)
    assert ex.InvalidState.__bases__ == (ex.WebSocketException, AssertionError)
    assert ex.ConcurrencyError.__bases__ == (ex.WebSocketException, RuntimeError)
    with pytest.raises(AssertionError):
        raise ex.InvalidState("connection is closed")
    with pytest.raises(RuntimeError):
        raise ex.ConcurrencyError("already receiving")


# ConnectionClosed


def closes(code1: int, reason1: str, code2: int, reason2: str) -> tuple[Any, ...]:
    return (
        Close(code1, reason1),
        Close(code2, reason2),
        websockets.frames.Close(code1, reason1),
        websockets.frames.Close(code2, reason2),
    )


CLOSED_CASES = [
    # (rcvd?, sent?, rcvd_then_sent, expected)
    (True, True, True, "received 1000 (OK); then sent 1000 (OK)"),
    (True, True, False, "sent 1000 (OK); then received 1000 (OK)"),
    (True, False, None, "received 1000 (OK); no close frame sent"),
    (False, True, None, "sent 1000 (OK); no close frame received"),
    (False, False, None, "no close frame received or sent"),
]


@pytest.mark.parametrize(("has_rcvd", "has_sent", "order", "expected"), CLOSED_CASES)
@pytest.mark.parametrize("cls_name", ["ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError"])
def test_connection_closed_str(
    cls_name: str, has_rcvd: bool, has_sent: bool, order: bool | None, expected: str
) -> None:
    rcvd, sent, w_rcvd, w_sent = closes(1000, "", 1000, "")
    exc = getattr(ex, cls_name)(rcvd if has_rcvd else None, sent if has_sent else None, order)
    w_exc = getattr(websockets.exceptions, cls_name)(w_rcvd if has_rcvd else None, w_sent if has_sent else None, order)
    assert str(exc) == expected == str(w_exc)
    assert exc.rcvd == (rcvd if has_rcvd else None)
    assert exc.sent == (sent if has_sent else None)
    assert exc.rcvd_then_sent is order


@pytest.mark.parametrize(
    ("rcvd", "sent", "expected"),
    [
        (
            (1011, "keepalive ping timeout"),
            None,
            "received 1011 (internal error) keepalive ping timeout; no close frame sent",
        ),
        (
            None,
            (1011, "keepalive ping timeout"),
            "sent 1011 (internal error) keepalive ping timeout; no close frame received",
        ),
        ((4000, "app"), None, "received 4000 (private use) app; no close frame sent"),
        ((3003, ""), None, "received 3003 (registered); no close frame sent"),
        ((1001, "bye"), None, "received 1001 (going away) bye; no close frame sent"),
    ],
)
def test_connection_closed_str_codes(rcvd: tuple[int, str] | None, sent: tuple[int, str] | None, expected: str) -> None:
    def mk(module: Any, pair: tuple[int, str] | None) -> Any:
        return None if pair is None else module.Close(*pair)

    exc = ex.ConnectionClosedError(mk(frames, rcvd), mk(frames, sent))
    w_exc = websockets.exceptions.ConnectionClosedError(mk(websockets.frames, rcvd), mk(websockets.frames, sent))
    assert str(exc) == expected == str(w_exc)


def test_connection_closed_defaults() -> None:
    # API.md §9 DEC: rcvd and sent default to None.
    exc = ex.ConnectionClosed()
    assert exc.rcvd is None and exc.sent is None and exc.rcvd_then_sent is None
    assert str(exc) == "no close frame received or sent"
    assert str(ex.ConnectionClosedOK(rcvd=Close(1000, ""))) == "received 1000 (OK); no close frame sent"


def test_connection_closed_both_without_order() -> None:
    # websockets asserts here; ferrows still produces a message.
    exc = ex.ConnectionClosed(Close(1000, ""), Close(1001, ""))
    assert str(exc) == "received 1000 (OK); sent 1001 (going away)"


def test_connection_closed_code_reason_deprecated() -> None:
    # websockets' exact wording: code that filters warnings matches on it.
    exc = ex.ConnectionClosedOK(Close(1000, "bye"), Close(1000, "bye"), True)
    with pytest.warns(DeprecationWarning) as caught:
        assert exc.code == 1000
    assert str(caught[0].message) == (
        "ConnectionClosed.code is deprecated; use Protocol.close_code or ConnectionClosed.rcvd.code"
    )
    with pytest.warns(DeprecationWarning) as caught:
        assert exc.reason == "bye"
    assert str(caught[0].message) == (
        "ConnectionClosed.reason is deprecated; use Protocol.close_reason or ConnectionClosed.rcvd.reason"
    )


def test_connection_closed_code_reason_without_rcvd() -> None:
    exc = ex.ConnectionClosedError(None, Close(1011, "oops"))
    with pytest.warns(DeprecationWarning):
        code = exc.code
    assert code == 1006 and code is CloseCode.ABNORMAL_CLOSURE
    with pytest.warns(DeprecationWarning):
        assert exc.reason == ""


# Other exceptions, compared with websockets for the same arguments.

W_RESPONSE = websockets.http11.Response(403, "Forbidden", websockets.datastructures.Headers(), b"")
RESPONSE = Response(403, "Forbidden", Headers(), b"")

SAME_STR_CASES: list[tuple[str, tuple[Any, ...], str]] = [
    (
        "InvalidURI",
        ("http://x", "scheme isn't ws or wss"),
        "http://x isn't a valid URI: scheme isn't ws or wss",
    ),
    (
        "InvalidProxy",
        ("ftp://p", "scheme isn't http"),
        "ftp://p isn't a valid proxy: scheme isn't http",
    ),
    ("InvalidMethod", ("POST",), "unsupported HTTP method: POST"),
    ("InvalidProtocol", ("HTTP/1.0",), "unsupported HTTP version: HTTP/1.0"),
    ("InvalidHeader", ("Upgrade",), "missing Upgrade header"),
    ("InvalidHeader", ("Upgrade", ""), "empty Upgrade header"),
    ("InvalidHeader", ("Upgrade", "h2c"), "invalid Upgrade header: h2c"),
    (
        "InvalidHeaderValue",
        ("Sec-WebSocket-Key", "x"),
        "invalid Sec-WebSocket-Key header: x",
    ),
    ("InvalidUpgrade", ("Connection", "close"), "invalid Connection header: close"),
    (
        "InvalidHeaderFormat",
        ("Sec-WebSocket-Protocol", "expected token", "a,,", 2),
        "invalid Sec-WebSocket-Protocol header: expected token at 2 in a,,",
    ),
    ("InvalidOrigin", (None,), "missing Origin header"),
    ("InvalidOrigin", ("https://evil",), "invalid Origin header: https://evil"),
    (
        "DuplicateParameter",
        ("server_max_window_bits",),
        "duplicate parameter: server_max_window_bits",
    ),
    ("InvalidParameterName", ("foo",), "invalid parameter name: foo"),
    ("InvalidParameterValue", ("bits", None), "missing value for parameter bits"),
    ("InvalidParameterValue", ("bits", ""), "empty value for parameter bits"),
    ("InvalidParameterValue", ("bits", "99"), "invalid value for parameter bits: 99"),
    (
        "PayloadTooBig",
        (2000, 1000),
        "frame with 2000 bytes exceeds limit of 1000 bytes",
    ),
    ("PayloadTooBig", (None, 1000), "frame exceeds limit of 1000 bytes"),
    (
        "PayloadTooBig",
        (600, 1000, 500),
        "frame with 600 bytes after reading 500 bytes exceeds limit of 1500 bytes",
    ),
    ("TooManyFragments", (4096,), "fragmented message exceeds limit of 4096 frames"),
    (
        "InvalidMessage",
        ("did not receive a valid HTTP request",),
        "did not receive a valid HTTP request",
    ),
    ("ProtocolError", ("invalid opcode",), "invalid opcode"),
    ("SecurityError", ("body too large",), "body too large"),
    ("InvalidState", ("closed",), "closed"),
    ("ConcurrencyError", ("busy",), "busy"),
]


@pytest.mark.parametrize(("name", "args", "expected"), SAME_STR_CASES)
def test_str_same_as_websockets(name: str, args: tuple[Any, ...], expected: str) -> None:
    assert str(getattr(ex, name)(*args)) == expected
    assert str(getattr(websockets.exceptions, name)(*args)) == expected


def test_status_exceptions() -> None:
    for name, text in [
        ("InvalidStatus", "server rejected WebSocket connection: HTTP 403"),
        ("InvalidProxyStatus", "proxy rejected connection: HTTP 403"),
    ]:
        exc = getattr(ex, name)(RESPONSE)
        assert exc.response is RESPONSE
        assert str(exc) == text == str(getattr(websockets.exceptions, name)(W_RESPONSE))
    exc = ex.InvalidStatus(Response(http.HTTPStatus.NOT_FOUND, "Not Found"))
    assert str(exc) == "server rejected WebSocket connection: HTTP 404"


def test_attributes() -> None:
    assert ex.InvalidURI("u", "m").uri == "u"
    assert ex.InvalidURI("u", "m").msg == "m"
    assert ex.InvalidProxy("p", "m").proxy == "p"
    assert ex.InvalidMethod("PUT").method == "PUT"
    assert ex.InvalidProtocol("HTTP/2").protocol == "HTTP/2"
    header = ex.InvalidHeader("Host", "x")
    assert (header.name, header.value) == ("Host", "x")
    fmt = ex.InvalidHeaderFormat("N", "expected token", "h", 3)
    assert (fmt.name, fmt.value) == ("N", "expected token at 3 in h")
    assert (fmt.error, fmt.header, fmt.pos) == ("expected token", "h", 3)
    origin = ex.InvalidOrigin("o")
    assert (origin.name, origin.value) == ("Origin", "o")
    assert ex.DuplicateParameter("a").name == "a"
    assert ex.InvalidParameterName("a").name == "a"
    assert (
        ex.InvalidParameterValue("a", "b").name,
        ex.InvalidParameterValue("a", "b").value,
    ) == ("a", "b")
    assert ex.TooManyFragments(7).max_fragments == 7


@pytest.mark.parametrize(
    ("name", "limit", "expected"),
    [
        ("RequestLineTooLong", 8192, "request line too long: limit is 8192 bytes"),
        ("StatusLineTooLong", 8192, "status line too long: limit is 8192 bytes"),
        ("HeaderLineTooLong", 4096, "header line too long: limit is 4096 bytes"),
        ("TooManyHeaders", 128, "expected no more than 128 headers"),
        ("RequestLineTooLong", None, "request line too long"),
        ("StatusLineTooLong", None, "status line too long"),
        ("HeaderLineTooLong", None, "header line too long"),
        ("TooManyHeaders", None, "too many headers"),
    ],
)
def test_limit_exceptions(name: str, limit: int | None, expected: str) -> None:
    exc: Any = getattr(ex, name)(limit) if limit is not None else getattr(ex, name)()
    assert exc.limit == limit
    assert isinstance(exc, ex.SecurityError)
    assert str(exc) == expected


@pytest.mark.parametrize("name", ["RequestLineTooLong", "StatusLineTooLong", "HeaderLineTooLong"])
def test_line_limit_exceptions_with_bytes_read(name: str) -> None:
    # What the handshake parser raises, in websockets' words.
    exc: Any = getattr(ex, name)(8192, 8202)
    assert (exc.limit, exc.read) == (8192, 8202)
    assert str(exc) == "read 8202 bytes, expected no more than 8192 bytes"
    copy = pickle.loads(pickle.dumps(exc))
    assert (type(copy), copy.limit, copy.read, str(copy)) == (type(exc), 8192, 8202, str(exc))


@pytest.mark.parametrize(
    "name",
    ["RequestLineTooLong", "StatusLineTooLong", "HeaderLineTooLong", "TooManyHeaders"],
)
def test_limit_exceptions_accept_message(name: str) -> None:
    # websockets raises these with a free-form message.
    exc = getattr(ex, name)("expected no more than 128 headers")
    assert exc.limit is None
    assert str(exc) == "expected no more than 128 headers"


def test_payload_too_big_set_current_size() -> None:
    exc = ex.PayloadTooBig(600, 1000)
    assert (exc.size, exc.max_size, exc.current_size) == (600, 1000, None)
    exc.set_current_size(None)
    assert exc.current_size is None
    exc.set_current_size(500)
    assert (exc.max_size, exc.current_size) == (1500, 500)  # type: ignore[comparison-overlap]
    assert str(exc) == "frame with 600 bytes after reading 500 bytes exceeds limit of 1500 bytes"
    with pytest.raises(ValueError, match="already set"):
        exc.set_current_size(1)


def test_payload_too_big_needs_max_size() -> None:
    with pytest.raises(TypeError):
        ex.PayloadTooBig(10)


def test_payload_too_big_message_deprecated() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        exc = ex.PayloadTooBig("too big")
    assert str(exc) == "too big"
    assert str(caught[0].message) == "PayloadTooBig(message) is deprecated; change to PayloadTooBig(size, max_size)"


PICKLE_CASES: list[Any] = [
    ex.ConnectionClosedOK(Close(1000, "bye"), Close(1000, "bye"), True),
    ex.ConnectionClosedError(None, Close(1011, "keepalive ping timeout")),
    ex.InvalidURI("http://x", "scheme isn't ws or wss"),
    ex.InvalidProxy("p", "m"),
    ex.RequestLineTooLong(8192),
    ex.TooManyHeaders(128),
    ex.InvalidStatus(RESPONSE),
    ex.InvalidProxyStatus(RESPONSE),
    ex.InvalidMethod("POST"),
    ex.InvalidProtocol("HTTP/1.0"),
    ex.InvalidHeader("Upgrade"),
    ex.InvalidHeaderFormat("N", "expected token", "h", 3),
    ex.InvalidHeaderValue("Sec-WebSocket-Key", "x"),
    ex.InvalidOrigin("https://evil"),
    ex.DuplicateParameter("a"),
    ex.InvalidParameterName("a"),
    ex.InvalidParameterValue("a", "b"),
    ex.PayloadTooBig(600, 1000, 500),
    ex.TooManyFragments(4096),
    ex.InvalidState("closed"),
]


@pytest.mark.parametrize("exc", PICKLE_CASES, ids=lambda e: type(e).__name__)
def test_pickle(exc: Exception) -> None:
    # multiprocessing sends exceptions between processes with pickle.
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert vars(copy) == vars(exc)
