"""Helpers for the tests of ferrows.asgi: a real uvicorn server on
127.0.0.1 and a free port, in the test's event loop, and small ASGI apps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from ferrows.asgi import WebSocketProtocol

from ..asyncio.utils import MS, TIMEOUT, wait_for

__all__ = ["MS", "TIMEOUT", "connection_of", "echo_app", "port_of", "serving", "uri_of", "wait_for"]


@contextlib.asynccontextmanager
async def serving(app: Any, **settings: Any) -> AsyncIterator[uvicorn.Server]:
    """uvicorn serving ``app`` with ferrows' WebSocket protocol; shut down on
    exit as on Ctrl-C (``should_exit``), which closes open connections.

    ``log_config=None`` keeps uvicorn from reconfiguring logging for the
    whole test process; its loggers still propagate to pytest's capture.
    """
    settings.setdefault("ws", WebSocketProtocol)
    settings.setdefault("lifespan", "off")
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, **settings)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise why
                await asyncio.sleep(MS)
        yield server
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await task


def port_of(server: uvicorn.Server) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


def uri_of(server: uvicorn.Server, path: str = "/", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{port_of(server)}{path}"


def connection_of(server: uvicorn.Server) -> WebSocketProtocol:
    """The server's only WebSocket connection."""
    (connection,) = [c for c in server.server_state.connections if isinstance(c, WebSocketProtocol)]
    return connection


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts, then sends every message back as it came (text or bytes)."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
