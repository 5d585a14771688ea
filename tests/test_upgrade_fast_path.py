"""The one-call handshake path of ServerProtocol: the core parses and checks
a plain upgrade request and builds the 101, and the headers stay packed until
read. Everything it produces must equal what the full path produces."""

from __future__ import annotations

import unittest.mock
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrows import _core
from ferrows.datastructures import Headers
from ferrows.exceptions import InvalidHeaderValue, InvalidOrigin
from ferrows.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from ferrows.http11 import Request, Response
from ferrows.server import ServerProtocol
from ferrows.typing import Subprotocol
from xor_extension import ServerXorFactory, XorExtension

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
DATE = "Wed, 02 Dec 2026 15:00:00 GMT"


def request_bytes(*headers: tuple[str, str], target: str = "/chat?room=1") -> bytes:
    lines = [f"GET {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


PLAIN = (
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)

REQUESTS = {
    "plain": request_bytes(*PLAIN),
    "deflate offer": request_bytes(*PLAIN, ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")),
    "several deflate offers": request_bytes(
        *PLAIN,
        ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10, permessage-deflate"),
        ("Sec-WebSocket-Extensions", "x-unknown; a=1"),
    ),
    "deflate offer declined": request_bytes(
        *PLAIN, ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=20, permessage-deflate")
    ),
    "subprotocols": request_bytes(
        *PLAIN, ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Protocol", "v2")
    ),
    "odd casing": request_bytes(
        ("hOST", "example.com"),
        ("UPGRADE", "WebSocket"),
        ("connection", "keep-alive, UPGRADE"),
        ("sec-websocket-key", KEY),
        ("SEC-WEBSOCKET-VERSION", "13"),
        ("sec-websocket-extensions", "permessage-deflate"),
        ("Origin", "https://example.com"),
    ),
    "duplicate headers": request_bytes(
        *PLAIN,
        ("X-Forwarded-For", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
        ("Cookie", "a=1"),
        ("Cookie", "b=\xe9"),
        ("Connection", "keep-alive"),
    ),
}


class SlowProtocol(ServerProtocol):
    """The full path: an overridden hook disables the core's shortcut."""

    def process_request(self, request: Request) -> tuple[str, str | None, str | None]:
        return super().process_request(request)


def old_request(data: bytes) -> Request:
    """The request as the parser's tuples built it before the fast path."""
    parsed = _core.HttpParser(False).feed(data)
    assert parsed is not None
    method, path, protocol, pairs = parsed
    return Request(path, Headers(pairs), method=method, protocol=protocol)  # type: ignore[arg-type]


def handshake(cls: type[ServerProtocol], data: bytes, **kwargs: Any) -> tuple[ServerProtocol, Request, Response]:
    protocol = cls(**kwargs)
    protocol.receive_data(data)
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    response = protocol.accept(request)
    return protocol, request, response


def settings_of(extensions: Sequence[Any]) -> list[tuple[Any, ...]]:
    assert all(type(extension) is PerMessageDeflate for extension in extensions)
    return [tuple(sorted(vars(extension).items())) for extension in extensions]


@pytest.fixture(autouse=True)
def fixed_date() -> Any:
    with unittest.mock.patch("email.utils.formatdate", return_value=DATE):
        yield


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("subprotocols", [None, ["v2", "chat"]])
def test_fast_path_equals_full_path(name: str, subprotocols: list[Subprotocol] | None) -> None:
    data = REQUESTS[name]
    kwargs: dict[str, Any] = {
        "extensions": [ServerPerMessageDeflateFactory()],
        "subprotocols": subprotocols,
        "origins": ["https://example.com", None],
    }
    fast, fast_request, fast_response = handshake(ServerProtocol, data, **kwargs)
    slow, slow_request, slow_response = handshake(SlowProtocol, data, **kwargs)
    if subprotocols is not None and name != "subprotocols":
        # No offer: both refuse the same way.
        assert fast_response.status_code == slow_response.status_code == 400
        assert fast_response.serialize() == slow_response.serialize()
        assert str(fast.handshake_exc) == str(slow.handshake_exc)
        return
    # The shortcut was taken: the request's headers were never split.
    assert fast_request.headers._pairs is None
    assert fast_response.headers._pairs is None
    assert fast._upgrade is not None and slow._upgrade is not None

    assert fast_request == slow_request == old_request(data)
    assert list(fast_request.headers.raw_items()) == list(old_request(data).headers.raw_items())
    assert fast_response == slow_response
    assert list(fast_response.headers.raw_items()) == list(slow_response.headers.raw_items())
    assert fast_response.serialize() == slow_response.serialize()
    assert fast_response.serialize().startswith(b"HTTP/1.1 101 Switching Protocols\r\nDate: " + DATE.encode())
    assert (fast.origin, fast.subprotocol) == (slow.origin, slow.subprotocol)
    assert settings_of(fast.extensions) == settings_of(slow.extensions)
    assert fast.handshake_exc is slow.handshake_exc is None

    fast.send_response(fast_response)
    slow.send_response(slow_response)
    assert fast.data_to_send() == slow.data_to_send()
    assert fast._upgrade is None and fast_response._wire is None
    # Still packed after the handshake, and still equal when read.
    assert fast_request.headers._pairs is None
    assert fast_request == old_request(data)


def test_negotiated_extensions_are_per_connection() -> None:
    factory = ServerPerMessageDeflateFactory(server_max_window_bits=11)
    data = REQUESTS["deflate offer"]
    first, _, response = handshake(ServerProtocol, data, extensions=[factory])
    second, _, _ = handshake(ServerProtocol, data, extensions=[factory])
    [one], [two] = first.extensions, second.extensions
    assert one is not two
    assert settings_of([one]) == settings_of([two])
    assert response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; server_max_window_bits=11"
    # Another factory, other settings: not the first factory's answer.
    other = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    _, _, response = handshake(ServerProtocol, data, extensions=[other])
    assert response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; server_no_context_takeover"
    # A factory changed after a negotiation answers with its new settings.
    factory.server_max_window_bits = 9
    _, _, response = handshake(ServerProtocol, data, extensions=[factory])
    assert "server_max_window_bits=9" in response.headers["Sec-WebSocket-Extensions"]


def test_request_changed_before_accept_takes_the_full_path() -> None:
    protocol = ServerProtocol()
    protocol.receive_data(REQUESTS["plain"])
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    # Read: unchanged, the shortcut still holds.
    assert request.headers["Sec-WebSocket-Key"] == KEY
    assert protocol._upgrade_info(request) is not None
    # Changed: the full checks run on the new headers.
    del request.headers["Sec-WebSocket-Version"]
    assert protocol._upgrade_info(request) is None
    response = protocol.accept(request)
    assert response.status_code == 400
    assert b"missing Sec-WebSocket-Version header" in response.body


def test_other_request_takes_the_full_path() -> None:
    protocol = ServerProtocol()
    protocol.receive_data(REQUESTS["plain"])
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    other = old_request(REQUESTS["plain"])
    assert protocol._upgrade_info(other) is None
    assert protocol.accept(other).serialize() == ServerProtocol().accept(other).serialize()


def test_overridden_checks_are_honoured() -> None:
    class NoOrigin(ServerProtocol):
        def process_origin(self, headers: Headers) -> None:
            raise InvalidOrigin(headers.get("Origin"))

    class Negotiating(ServerProtocol):
        def process_extensions(self, headers: Headers) -> tuple[str | None, list[Any]]:
            return "x-custom", []

    _, _, response = handshake(NoOrigin, REQUESTS["odd casing"])
    assert response.status_code == 403
    _, _, response = handshake(Negotiating, REQUESTS["deflate offer"])
    assert response.headers["Sec-WebSocket-Extensions"] == "x-custom"

    protocol = ServerProtocol()
    protocol.process_origin = lambda headers: "replaced"  # type: ignore[method-assign,assignment,return-value]
    protocol.receive_data(REQUESTS["plain"])
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    assert protocol._upgrade_info(request) is None
    protocol.accept(request)
    assert protocol.origin == "replaced"


def test_select_subprotocol_runs_once_with_the_offers() -> None:
    calls: list[Sequence[str]] = []

    def select(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        calls.append(list(offered))
        return Subprotocol("superchat")

    _, _, response = handshake(ServerProtocol, REQUESTS["subprotocols"], select_subprotocol=select)
    assert calls == [["chat", "superchat", "v2"]]
    assert response.headers["Sec-WebSocket-Protocol"] == "superchat"


def test_invalid_subprotocol_or_server_header_raises_as_before() -> None:
    def select(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol:
        return Subprotocol("bad\r\nX-Injected: 1")

    for cls in (ServerProtocol, SlowProtocol):
        with pytest.raises(InvalidHeaderValue):
            handshake(cls, REQUESTS["subprotocols"], select_subprotocol=select)
        protocol = cls()
        protocol.receive_data(REQUESTS["plain"])
        [request] = protocol.events_received()
        assert isinstance(request, Request)
        with pytest.raises(InvalidHeaderValue):
            protocol._accept(request, "ferrows\n")


def test_server_header_ends_the_101() -> None:
    for cls in (ServerProtocol, SlowProtocol):
        protocol = cls()
        protocol.receive_data(REQUESTS["plain"])
        [request] = protocol.events_received()
        assert isinstance(request, Request)
        response = protocol._accept(request, "ferrows caf\xe9")
        assert list(response.headers.raw_items()) == [
            ("Date", DATE),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", ACCEPT),
            ("Server", "ferrows caf\xe9"),
        ]
        assert response.serialize().endswith(b"Server: ferrows caf\xe9\r\n\r\n")


def test_response_changed_before_sending_is_serialized_again() -> None:
    _, _, response = handshake(ServerProtocol, REQUESTS["plain"])
    original = response.serialize()
    response.headers["X-Extra"] = "1"
    assert response.serialize() == original[:-2] + b"X-Extra: 1\r\n\r\n"
    _, _, response = handshake(ServerProtocol, REQUESTS["plain"])
    response.reason_phrase = "Switching"
    assert response.serialize().startswith(b"HTTP/1.1 101 Switching\r\n")
    _, _, response = handshake(ServerProtocol, REQUESTS["plain"])
    response.status_code = 403
    response.body = b"no"
    data = response.serialize()
    assert data.startswith(b"HTTP/1.1 403 Switching Protocols\r\n") and data.endswith(b"\r\n\r\nno")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (PLAIN[:3] + PLAIN[4:], 400),  # no key
        ((*PLAIN[:4], ("Sec-WebSocket-Version", "8")), 426),
        ((*PLAIN, ("Origin", "a"), ("Origin", "b")), 400),
        ((*PLAIN, ("Upgrade", "h2c")), 426),
        ((*PLAIN, ("Sec-WebSocket-Protocol", "chat;v=1")), 400),
        # Valid, written in a way the core leaves to the full parser.
        ((*PLAIN, ("Sec-WebSocket-Protocol", "chat, , v2")), 101),
        ((*PLAIN[:2], ("Connection", "Upgrade,"), *PLAIN[3:]), 101),
    ],
)
def test_other_requests_take_the_full_path(headers: tuple[tuple[str, str], ...], status: int) -> None:
    fast, _, fast_response = handshake(ServerProtocol, request_bytes(*headers))
    slow, _, slow_response = handshake(SlowProtocol, request_bytes(*headers))
    assert fast._upgrade is None
    assert fast_response.status_code == slow_response.status_code == status
    assert fast_response.serialize() == slow_response.serialize()
    assert repr(fast.handshake_exc) == repr(slow.handshake_exc)


def test_headers_from_packed() -> None:
    headers = Headers._from_packed("Host\0example.com\0X-A\0 1\0x-a\x002")
    assert headers._pairs is None and headers._source is not None
    assert headers == Headers([("Host", "example.com"), ("X-A", " 1"), ("x-a", "2")])
    assert headers.get_all("x-A") == [" 1", "2"]
    source = headers._source
    headers._pack()
    assert headers._source is source and headers._packed is source
    headers["Y"] = "z"
    assert headers._source is None
    assert Headers._from_packed("") == Headers()
    for change in ("clear", "del"):
        other = Headers._from_packed("A\x001")
        other.clear() if change == "clear" else other.__delitem__("A")
        assert other._source is None and len(other) == 0


def test_core_functions() -> None:
    built = _core.upgrade_response(ACCEPT, None, None, None)
    assert built is not None
    head, packed = built
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert packed == f"Upgrade\0websocket\0Connection\0Upgrade\0Sec-WebSocket-Accept\0{ACCEPT}"
    assert _core.upgrade_response(ACCEPT, None, None, None, [("Bad Name", "x")]) is None
    assert _core.upgrade_response(ACCEPT, None, None, "\u0100", []) is None
    assert _core.scope_headers("Host\0example.com\0COOKIE\0b=\xe9") == [
        (b"host", b"example.com"),
        (b"cookie", b"b=\xe9"),
    ]
    assert _core.scope_headers("") == []
    parsed = _core.HttpParser(False).feed_upgrade(REQUESTS["plain"] + b"\x81\x80")
    assert parsed is not None
    assert parsed[:5] == (
        "GET",
        "/chat?room=1",
        "HTTP/1.1",
        "Host\0example.com\0Upgrade\0websocket\0Connection\0Upgrade\0"
        f"Sec-WebSocket-Key\0{KEY}\0Sec-WebSocket-Version\x0013",
        b"\x81\x80",
    )
    assert parsed[5] == (ACCEPT, None, (), [])
    parsed = _core.HttpParser(False).feed_upgrade(REQUESTS["deflate offer"].replace(b"13", b"8"))
    assert parsed is not None and parsed[5] is None


def recase(name: str, pattern: int) -> str:
    return "".join(c.upper() if (pattern >> (i % 16)) & 1 else c.lower() for i, c in enumerate(name))


@st.composite
def upgrade_requests(draw: st.DrawFn) -> bytes:
    """Upgrade requests as clients write them and as they should not: any
    case, repeated and missing headers, lists with odd spacing."""
    headers: list[tuple[str, str]] = []
    # Mostly valid, so that both paths are well exercised.
    required = [
        ("Host", st.sampled_from(["example.com"] * 8 + ["", "a:1"])),
        ("Upgrade", st.sampled_from(["websocket"] * 4 + ["WebSocket"] * 4 + ["websocket, h2c", "h2c"])),
        ("Connection", st.sampled_from(["Upgrade"] * 4 + ["keep-alive, Upgrade"] * 4 + ["upgrade,", "close", "a b"])),
        ("Sec-WebSocket-Key", st.sampled_from([KEY] * 8 + ["AAAAAAAAAAAAAAAAAAAAAA==", "short"])),
        ("Sec-WebSocket-Version", st.sampled_from(["13"] * 9 + ["8"])),
    ]
    optional = [
        ("Origin", st.sampled_from(["https://example.com", "https://other.example"])),
        (
            "Sec-WebSocket-Extensions",
            st.sampled_from(
                [
                    "permessage-deflate",
                    "permessage-deflate; client_max_window_bits",
                    "permessage-deflate; server_max_window_bits=9; client_no_context_takeover",
                    "permessage-deflate; server_max_window_bits=99",
                    "x-other, permessage-deflate",
                    'permessage-deflate; client_max_window_bits="10"',
                ]
            ),
        ),
        ("Sec-WebSocket-Protocol", st.sampled_from(["chat", "chat,v2", "v2 ,\tchat", "chat, , v2", "", "a;b"])),
        ("X-Dup", st.sampled_from(["1", "caf\xe9"])),
    ]
    for name, values in required:
        for _ in range(draw(st.sampled_from([1] * 30 + [0, 2]))):
            headers.append((name, draw(values)))
    for name, values in optional:
        for _ in range(draw(st.integers(0, 2))):
            headers.append((name, draw(values)))
    order = draw(st.permutations(range(len(headers))))
    patterns = draw(st.lists(st.integers(0, 0xFFFF), min_size=len(headers), max_size=len(headers)))
    return request_bytes(*[(recase(headers[i][0], p), headers[i][1]) for i, p in zip(order, patterns, strict=True)])


@settings(max_examples=300, deadline=None)
@given(
    data=upgrade_requests(),
    subprotocols=st.sampled_from([None, ["v2", "chat"]]),
    origins=st.sampled_from([None, ["https://example.com", None]]),
)
def test_fast_path_equals_full_path_for_any_request(
    data: bytes, subprotocols: list[Subprotocol] | None, origins: list[str | None] | None
) -> None:
    kwargs: dict[str, Any] = {
        "extensions": [ServerPerMessageDeflateFactory()],
        "subprotocols": subprotocols,
        "origins": origins,
    }
    fast, fast_request, fast_response = handshake(ServerProtocol, data, **kwargs)
    slow, slow_request, slow_response = handshake(SlowProtocol, data, **kwargs)
    assert fast_request == slow_request == old_request(data)
    assert fast_response == slow_response
    assert fast_response.serialize() == slow_response.serialize()
    assert repr(fast.handshake_exc) == repr(slow.handshake_exc)
    # origin is set once the origin was checked.
    assert getattr(fast, "origin", "unset") == getattr(slow, "origin", "unset")
    assert fast.subprotocol == slow.subprotocol
    assert settings_of(fast.extensions) == settings_of(slow.extensions)


class OddXorFactory(ServerXorFactory):
    """Answers with a parameter value the core does not write: the 101 is
    then built the full way, with the value as the factory gave it."""

    def process_request_params(self, params: Any, accepted_extensions: Any) -> Any:
        _, extension = super().process_request_params(params, accepted_extensions)
        return [("key", "7\x7f")], extension


def test_other_factories_and_values_the_core_refuses() -> None:
    data = request_bytes(*PLAIN, ("Sec-WebSocket-Extensions", "x-xor; key=7"))
    for factories in ([ServerXorFactory()], [ServerXorFactory(), ServerPerMessageDeflateFactory()], [OddXorFactory()]):
        fast, _, fast_response = handshake(ServerProtocol, data, extensions=factories)
        slow, _, slow_response = handshake(SlowProtocol, data, extensions=factories)
        assert fast_response.serialize() == slow_response.serialize()
        assert [type(e) for e in fast.extensions] == [type(e) for e in slow.extensions] == [XorExtension]
    assert b"Sec-WebSocket-Extensions: x-xor; key=7\x7f\r\n" in fast_response.serialize()
    assert fast_response._wire is None
