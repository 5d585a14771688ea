"""The asyncio server's handshake: the 101 built by the core in one call,
the Request and Response objects the hooks and handlers see, and the one
timer that enforces ``open_timeout`` for every connection."""

from __future__ import annotations

import asyncio
import time
import unittest.mock
from typing import Any

import pytest

from ferrows import Request, Response
from ferrows.asyncio.server import ServerConnection

from .utils import MS, TIMEOUT, echo, handshake_request, port_of, serving, wait_for

DATE = "Wed, 02 Dec 2026 15:00:00 GMT"

OFFERS = [
    "",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    "sec-websocket-extensions: permessage-deflate; server_max_window_bits=10\r\n"
    "SEC-WEBSOCKET-PROTOCOL: chat, v2\r\nX-Dup: 1\r\nx-dup: 2\r\n",
]


async def upgrade(port: int, headers: str = "") -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request(port, "/path?q=1", headers).replace(b"Sec-WebSocket-Key: ", b"sec-websocket-key: "))
    head = await reader.readuntil(b"\r\n\r\n")
    return head, writer


def fixed_key(head: bytes) -> bytes:
    """The head without the accept value, which depends on the random key."""
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Sec-WebSocket-Accept: ")]
    return b"\r\n".join(lines)


@pytest.fixture(autouse=True)
def fixed_date() -> Any:
    with unittest.mock.patch("email.utils.formatdate", return_value=DATE):
        yield


@pytest.mark.parametrize("offer", OFFERS)
async def test_101_is_the_same_as_the_full_path(offer: str) -> None:
    """The core's 101 and the one built with extra_headers (the full path,
    through Headers) are byte for byte the same, and so are the request and
    the response the handler sees."""
    seen: list[tuple[Request, Response, list[tuple[str, str]]]] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None and ws.response is not None
        seen.append((ws.request, ws.response, list(ws.request.headers.raw_items())))

    heads = []
    subprotocols = ["v2", "chat"] if "PROTOCOL" in offer else None
    for extra in (None, []):
        async with serving(handler, subprotocols=subprotocols, extra_headers=extra) as server:
            head, writer = await upgrade(port_of(server), offer)
            heads.append(fixed_key(head))
            writer.close()
            await wait_for(lambda: len(seen) == len(heads))
    assert heads[0] == heads[1]
    assert heads[0].startswith(b"HTTP/1.1 101 Switching Protocols\r\nDate: " + DATE.encode() + b"\r\n")
    assert b"\r\nServer: Python/" in heads[0]
    (fast_request, fast_response, fast_pairs), (slow_request, slow_response, slow_pairs) = seen
    # The same request but for the port and the key, which differ.
    varying = {"host", "sec-websocket-key"}
    assert [(n, v) for n, v in fast_pairs if n.lower() not in varying] == [
        (n, v) for n, v in slow_pairs if n.lower() not in varying
    ]
    assert [n for n, _ in fast_pairs] == [n for n, _ in slow_pairs]
    assert fast_request.path == slow_request.path == "/path?q=1"
    names = [name for name, _ in fast_response.headers.raw_items()]
    assert names == [name for name, _ in slow_response.headers.raw_items()]
    assert names[-1] == "Server"


async def test_hooks_get_full_objects_and_changes_are_sent() -> None:
    """process_request reads the request, process_response changes the 101:
    the change is on the wire, after the core's headers."""
    requests: list[Request] = []

    def process_request(connection: ServerConnection, request: Request) -> None:
        requests.append(request)
        assert request.headers["x-dup"] == "1"
        assert request.headers.get_all("Sec-WebSocket-Key")

    def process_response(connection: ServerConnection, request: Request, response: Response) -> None:
        assert request is requests[0]
        assert response.status_code == 101
        assert response.headers["Server"].startswith("Python/")
        response.headers["X-Added"] = "yes"

    async with serving(echo, process_request=process_request, process_response=process_response) as server:
        head, writer = await upgrade(port_of(server), "X-Dup: 1\r\n")
        writer.close()
    assert head.endswith(b"\r\nX-Added: yes\r\n\r\n")
    assert b"Sec-WebSocket-Accept: " in head


async def test_process_response_may_replace_the_101() -> None:
    def process_response(connection: ServerConnection, request: Request, response: Response) -> Response:
        return connection.respond(403, "no\n")

    async with serving(echo, process_response=process_response) as server:
        head, writer = await upgrade(port_of(server))
        writer.close()
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")


async def test_open_timeout_shared_timer_drops_each_at_its_deadline() -> None:
    """Silent clients that came at different times are each dropped at
    their own deadline, while those that complete the handshake stay."""
    timeout = 100 * MS
    async with serving(echo, open_timeout=timeout) as server, asyncio.timeout(TIMEOUT):
        port = port_of(server)
        start = time.monotonic()
        first = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(40 * MS)
        second = await asyncio.open_connection("127.0.0.1", port)
        head, writer = await upgrade(port)
        assert head.startswith(b"HTTP/1.1 101 ")
        closed_at = []
        for reader, _ in (first, second):
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass
            closed_at.append(time.monotonic() - start)
        assert timeout * 0.8 <= closed_at[0] < timeout + 0.5
        assert closed_at[1] >= 40 * MS + timeout * 0.8
        # The upgraded client was not dropped.
        assert len(server.connections) == 1
        assert not server._connecting
        writer.close()
        for _, w in (first, second):
            w.close()
    assert server._open_timer is None


async def test_open_timeout_lowered_while_clients_wait() -> None:
    async with serving(echo, open_timeout=TIMEOUT) as server, asyncio.timeout(TIMEOUT):
        port = port_of(server)
        slow = await asyncio.open_connection("127.0.0.1", port)
        await wait_for(lambda: len(server._connecting) == 1)
        server.open_timeout = 50 * MS
        start = time.monotonic()
        fast = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await fast[0].read() == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < TIMEOUT / 2
        # The first client keeps its own, longer deadline.
        assert len(server._connecting) == 1
        for _, writer in (slow, fast):
            writer.close()


async def test_no_open_timeout() -> None:
    async with serving(echo, open_timeout=None) as server, asyncio.timeout(TIMEOUT):
        _, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        await wait_for(lambda: len(server._handlers) == 1)
        assert not server._connecting and server._open_timer is None
        writer.close()
