"""The five usage examples of the user's asyncio-server guide, run as written.

Handlers come verbatim from :mod:`seed_examples`; each ``main()`` is rebuilt
here with the guide's arguments, on 127.0.0.1 and port 0 (or a socket in a
temporary directory) instead of localhost:8765, and with a future to stop it
instead of running forever. Each example is driven by ferrows' client and by
the real websockets client, checking what the guide promises.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets as real_websockets
import websockets.exceptions as real_exceptions

import ferrows
import ferrows as websockets  # the guide's code, unchanged, on ferrows
import ferrows.exceptions

from . import seed_examples
from .seed_examples import (
    api_handler,
    chat_handler,
    echo_handler,
    process_request,
    protected_handler,
    unix_handler,
)
from .utils import TIMEOUT, port_of, wait_for


@dataclasses.dataclass
class Driver:
    """A client library driving the examples."""

    name: str
    connect: Any
    unix_connect: Any
    InvalidStatus: type[Exception]
    ConnectionClosed: type[Exception]
    kwargs: dict[str, Any]


DRIVERS = [
    Driver(
        "ferrows",
        ferrows.connect,
        ferrows.unix_connect,
        ferrows.exceptions.InvalidStatus,
        ferrows.exceptions.ConnectionClosed,
        {},
    ),
    # permessage-deflate isn't implemented yet: don't offer it.
    Driver(
        "websockets",
        real_websockets.connect,
        real_websockets.unix_connect,
        real_exceptions.InvalidStatus,
        real_exceptions.ConnectionClosed,
        {"compression": None},
    ),
]


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    return request.param


@contextlib.asynccontextmanager
async def running(main: Any, *args: Any) -> AsyncIterator[Any]:
    """Runs an example's ``main(ready, stop, *args)`` in a task; yields the
    server once it listens, then stops it and waits for it to finish."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    stop: asyncio.Future[None] = loop.create_future()
    task = asyncio.create_task(main(ready, stop, *args))
    try:
        async with asyncio.timeout(TIMEOUT):
            await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # main() failed: raise its exception
        yield ready.result()
    finally:
        stop.set_result(None)
        async with asyncio.timeout(TIMEOUT):
            await task


def uri(server: Any) -> str:
    return f"ws://127.0.0.1:{port_of(server)}/"


# --------------------------------------------------------- Basic Echo Server


async def echo_main(ready: asyncio.Future[Any], stop: asyncio.Future[None]) -> None:
    async with websockets.serve(echo_handler, "127.0.0.1", 0) as server:
        print("WebSocket server started on ws://localhost:8765")
        ready.set_result(server)
        await stop


async def test_echo_example(driver: Driver) -> None:
    async with running(echo_main) as server, asyncio.timeout(TIMEOUT):
        async with driver.connect(uri(server), **driver.kwargs) as ws:
            await ws.send("Hello")
            assert await ws.recv() == "Echo: Hello"
            await ws.send("")
            assert await ws.recv() == "Echo: "
            await ws.send("héllo ☃")
            assert await ws.recv() == "Echo: héllo ☃"
        assert ws.close_code == 1000


# ------------------------------------------------ Chat Server with Broadcasting


async def chat_main(ready: asyncio.Future[Any], stop: asyncio.Future[None]) -> None:
    async with websockets.serve(
        chat_handler,
        "127.0.0.1",
        0,
        ping_interval=30,
        ping_timeout=10,
        max_size=1024 * 10,  # 10KB max message
    ) as server:
        print("Chat server started on ws://localhost:8765")
        ready.set_result(server)
        await stop


async def test_chat_example(driver: Driver) -> None:
    assert not seed_examples.clients
    async with running(chat_main) as server, asyncio.timeout(TIMEOUT):
        async with (
            driver.connect(uri(server), **driver.kwargs) as alice,
            driver.connect(uri(server), **driver.kwargs) as bob,
        ):
            await wait_for(lambda: len(seed_examples.clients) == 2)

            await alice.send(json.dumps({"user": "alice", "message": "hi all"}))
            for ws in (alice, bob):
                received = json.loads(await ws.recv())
                assert received["user"] == "alice"
                assert received["message"] == "hi all"
                assert isinstance(received["timestamp"], float)

            await bob.send(json.dumps({}))
            for ws in (alice, bob):
                assert json.loads(await ws.recv())["user"] == "Anonymous"

            # Invalid JSON: only the sender gets the error.
            await bob.send("not json")
            assert json.loads(await bob.recv()) == {"error": "Invalid JSON format"}
            await alice.send(json.dumps({"user": "alice", "message": "still here"}))
            assert json.loads(await bob.recv())["message"] == "still here"
            assert json.loads(await alice.recv())["message"] == "still here"

            # max_size=10KB: a bigger message closes with 1009.
            await alice.send(json.dumps({"message": "x" * 11000}))
            with pytest.raises(driver.ConnectionClosed):
                await alice.recv()
            assert alice.close_code == 1009
            await wait_for(lambda: len(seed_examples.clients) == 1)
    # Each handler unregistered its client in its finally clause.
    assert not seed_examples.clients


# ---------------------------------------------------------- Authenticated Server


async def auth_main(ready: asyncio.Future[Any], stop: asyncio.Future[None]) -> None:
    async with websockets.serve(
        protected_handler, "127.0.0.1", 0, extra_headers={"Server": "MyWebSocketServer/1.0"}
    ) as server:
        print("Protected server started on ws://localhost:8765")
        print("Use Authorization: Basic YWRtaW46c2VjcmV0MTIz")
        ready.set_result(server)
        await stop


def test_auth_example_credentials() -> None:
    assert base64.b64decode("YWRtaW46c2VjcmV0MTIz") == b"admin:secret123"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"root:secret123").decode()},
        {"Authorization": "Bearer YWRtaW46c2VjcmV0MTIz"},
        {"Authorization": "Basic !!!"},
    ],
    ids=["missing", "bad-password", "bad-user", "not-basic", "malformed"],
)
async def test_auth_example_rejects(driver: Driver, headers: dict[str, str] | None) -> None:
    async with running(auth_main) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(driver.InvalidStatus) as raised:
            async with driver.connect(uri(server), additional_headers=headers, **driver.kwargs):
                pass
        response = raised.value.response
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Basic realm="WebSocket"')
        # extra_headers apply to the 101 response only.
        assert response.headers.get_all("Server") != ["MyWebSocketServer/1.0"]
        assert len(response.headers.get_all("Server")) == 1
        assert server.connections == set()


async def test_auth_example_accepts(driver: Driver) -> None:
    headers = {"Authorization": "Basic YWRtaW46c2VjcmV0MTIz"}
    async with running(auth_main) as server, asyncio.timeout(TIMEOUT):
        async with driver.connect(uri(server), additional_headers=headers, **driver.kwargs) as ws:
            assert ws.response.headers.get_all("Server") == ["MyWebSocketServer/1.0"]
            assert await ws.recv() == "Welcome! You are authenticated."
            await ws.send("STATUS")
            assert await ws.recv() == "Server is running normally"
            await ws.send("hello")
            assert await ws.recv() == "Received: hello"
            (connection,) = server.connections
            assert connection.username == "admin"


async def test_auth_example_uri_credentials(driver: Driver) -> None:
    async with running(auth_main) as server, asyncio.timeout(TIMEOUT):
        url = f"ws://admin:secret123@127.0.0.1:{port_of(server)}/"
        async with driver.connect(url, **driver.kwargs) as ws:
            assert await ws.recv() == "Welcome! You are authenticated."


# ------------------------------------------- Server with Custom Request Processing


async def api_main(ready: asyncio.Future[Any], stop: asyncio.Future[None]) -> None:
    async with websockets.serve(
        api_handler, "127.0.0.1", 0, process_request=process_request, compression="deflate"
    ) as server:
        print("API server started on ws://localhost:8765")
        ready.set_result(server)
        await stop


@pytest.mark.parametrize("headers", [None, {"X-API-Key": "wrong"}], ids=["missing", "wrong"])
async def test_process_request_example_rejects(driver: Driver, headers: dict[str, str] | None) -> None:
    async with running(api_main) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(driver.InvalidStatus) as raised:
            async with driver.connect(uri(server), additional_headers=headers, **driver.kwargs):
                pass
        response = raised.value.response
        assert response.status_code == 403
        assert response.reason_phrase == "Forbidden"
        assert response.body == b"Invalid API key"
        assert "403" in str(raised.value)


async def test_process_request_example_accepts(driver: Driver) -> None:
    async with running(api_main) as server, asyncio.timeout(TIMEOUT):
        headers = {"X-API-Key": "valid-api-key"}
        async with driver.connect(uri(server), additional_headers=headers, **driver.kwargs) as ws:
            assert await ws.recv() == "API connection established"
            await ws.send("GET /users")
            assert json.loads(await ws.recv()) == {"status": "success", "data": "..."}
            await ws.send("DELETE /users")
            assert json.loads(await ws.recv()) == {"error": "Unknown command"}


# ----------------------------------------------------- Unix Domain Socket Server


async def unix_main(ready: asyncio.Future[Any], stop: asyncio.Future[None], socket_path: str) -> None:
    # Remove existing socket file
    if os.path.exists(socket_path):
        os.unlink(socket_path)

    async with websockets.unix_serve(unix_handler, socket_path) as server:
        print(f"Unix WebSocket server started on {socket_path}")
        ready.set_result(server)
        await stop


async def test_unix_example(driver: Driver) -> None:
    with tempfile.TemporaryDirectory() as directory:
        socket_path = os.path.join(directory, "websocket.sock")
        # A stale file, as the example expects to find after a crash.
        open(socket_path, "w").close()
        async with running(unix_main, socket_path) as server, asyncio.timeout(TIMEOUT):
            assert server.sockets[0].getsockname() == socket_path
            async with driver.unix_connect(socket_path, **driver.kwargs) as ws:
                assert await ws.recv() == "Connected via Unix socket"
                await ws.send("ping")
                assert await ws.recv() == "Unix echo: ping"
                (connection,) = server.connections
                assert connection.local_address == socket_path
