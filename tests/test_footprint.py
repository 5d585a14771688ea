"""What an open connection keeps, on both I/O layers and both sides: its
objects hold their state in slots (no instance dictionary appears while it
runs), and the handshake's headers are packed once the handshake is over,
yet read back exactly as they were received."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import ferrows
import ferrows.sync.client
from ferrows import Headers

from .asyncio.utils import TIMEOUT, serving, uri_of
from .sync.utils import serving as sync_serving
from .sync.utils import uri_of as sync_uri_of

EXTRA = {"X-Token": "a b:c", "X-Empty": ""}


def without_dict(obj: Any) -> bool:
    """No attribute outside the slots was set on ``obj`` (asking for its
    ``__dict__`` creates an empty one, which is harmless here)."""
    return vars(obj) == {}


def check_open(connection: Any) -> dict[str, Any]:
    """What a test learns of an open connection, read while it is open."""
    found = {
        "slots": without_dict(connection) and without_dict(connection.protocol),
        "packed": [connection.request.headers._packed is not None, connection.response.headers._packed is not None],
    }
    # Reading them unpacks them, unchanged.
    found["request"] = list(connection.request.headers.raw_items())
    found["response"] = dict(connection.response.headers)
    return found


def expect(found: dict[str, Any], slotted: bool = True) -> None:
    # The threading connections keep their state in a __dict__; only their
    # protocol is slotted, and their headers packed.
    assert found["slots"] is slotted
    assert found["packed"] == [True, True]
    assert ("X-Token", "a b:c") in found["request"]
    assert ("X-Empty", "") in found["request"]
    assert found["response"]["upgrade"] == "websocket"


def test_asyncio_server_and_client() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ferrows.ServerConnection) -> None:
        await ws.recv()
        seen.update(check_open(ws))
        await ws.send("done")

    async def main() -> dict[str, Any]:
        async with serving(handler) as server, ferrows.connect(uri_of(server), additional_headers=EXTRA) as ws:
            await ws.send("go")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "done"
            return check_open(ws)

    client = asyncio.run(main())
    expect(seen)
    expect(client)


def test_sync_server_and_client() -> None:
    seen: dict[str, Any] = {}
    done = threading.Event()

    def handler(ws: Any) -> None:
        ws.recv()
        seen.update(check_open(ws))
        done.set()
        ws.send("done")

    with (
        sync_serving(handler) as server,
        ferrows.sync.client.connect(sync_uri_of(server), additional_headers=EXTRA) as ws,
    ):
        ws.send("go")
        assert ws.recv(timeout=TIMEOUT) == "done"
        client = check_open(ws)
    assert done.is_set()
    expect(seen, slotted=False)
    expect(client, slotted=False)
    assert without_dict(ws.protocol)


def test_packed_headers_behave_as_unpacked() -> None:
    pairs = [("Host", "example.com"), ("Cookie", "a=1"), ("cookie", "b=2"), ("X-Empty", "")]
    packed = Headers._trusted(list(pairs))
    packed._pack()
    assert packed._packed is not None
    assert packed == Headers(pairs)
    packed._pack()
    assert packed.get_all("COOKIE") == ["a=1", "b=2"]
    packed._pack()
    assert str(packed) == str(Headers(pairs))
    packed._pack()
    copy = packed.copy()
    assert list(copy.raw_items()) == pairs
    packed._pack()
    del packed["cookie"]
    assert list(packed.raw_items()) == [("Host", "example.com"), ("X-Empty", "")]
    packed._pack()
    packed["X-New"] = "1"
    assert packed["x-new"] == "1" and len(packed) == 3
    packed._pack()
    packed.clear()
    assert list(packed.raw_items()) == [] and packed._packed is None


def test_headers_that_cannot_be_packed_stay_as_they_are() -> None:
    # set_insecure() trusts its caller; a NUL would break the packed form.
    headers = Headers()
    headers.set_insecure("X-Odd", "a\0b")
    headers._pack()
    assert headers._packed is None
    assert headers["x-odd"] == "a\0b"
    empty = Headers()
    empty._pack()
    assert list(empty.raw_items()) == [] and len(empty) == 0
