"""Starlette and FastAPI applications, unchanged, on uvicorn with ferrows'
WebSocket protocol, driven by the websockets client and by ferrows' client."""

from __future__ import annotations

import asyncio
from typing import Any

import fastapi
import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import ferrows

from .utils import TIMEOUT, serving, uri_of, wait_for

CLIENTS = ["ferrows", "websockets"]
CLOSED = (ferrows.ConnectionClosed, websockets.ConnectionClosed)
REFUSED = (ferrows.InvalidStatus, websockets.InvalidStatus)
disconnects: list[int] = []


def connect(client: str, uri: str, **kwargs: Any) -> Any:
    kwargs.setdefault("max_size", 8 * 2**20)
    module: Any = ferrows if client == "ferrows" else websockets
    return module.connect(uri, **kwargs)


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                disconnects.append(message["code"])
                return
            if message.get("text") == "close please":
                await websocket.close(4002, "as asked")
                return
            if message.get("text") == "raise":
                raise RuntimeError("handler bug")
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:  # pragma: no cover - receive() returns it above
        disconnects.append(exc.code)


async def starlette_denied(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("members only", status_code=403))


starlette_app = Starlette(routes=[WebSocketRoute("/echo", starlette_echo), WebSocketRoute("/denied", starlette_denied)])

fastapi_app = fastapi.FastAPI()


@fastapi_app.websocket("/echo")
async def fastapi_echo(websocket: fastapi.WebSocket, token: str | None = None) -> None:
    if token != "secret":
        raise fastapi.WebSocketException(code=1008)  # before accept: 403
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_text()
            if data == "raise":
                raise RuntimeError("handler bug")
            await websocket.send_json({"echo": data})
    except fastapi.WebSocketDisconnect as exc:
        disconnects.append(exc.code)


@pytest.fixture(autouse=True)
def clear_disconnects() -> None:
    disconnects.clear()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("compression", ["deflate", None])
async def test_starlette_echo(client: str, compression: str | None) -> None:
    async with serving(starlette_app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server, "/echo"), compression=compression, subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert [e.name for e in ws.protocol.extensions] == (["permessage-deflate"] if compression else [])
            for message in ["text", b"bytes", b"\x02" * 4 * 2**20, "é" * 2**20]:
                await ws.send(message)
                assert await ws.recv() == message
            await ws.close(4001, "client done")
        await wait_for(lambda: disconnects)
    assert disconnects == [4001]


@pytest.mark.parametrize("client", CLIENTS)
async def test_starlette_close_and_errors(client: str) -> None:
    async with serving(starlette_app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server, "/echo")) as ws:
            await ws.send("close please")
            with pytest.raises(CLOSED):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4002, "as asked")
        async with connect(client, uri_of(server, "/echo")) as ws:
            await ws.send("raise")
            with pytest.raises(CLOSED):
                await ws.recv()
        assert ws.close_code == 1011


@pytest.mark.parametrize("client", CLIENTS)
async def test_starlette_denial_response(client: str) -> None:
    async with serving(starlette_app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(REFUSED) as exc_info:
            async with connect(client, uri_of(server, "/denied")):
                pass
    response = exc_info.value.response
    assert response.status_code == 403
    assert response.body == b"members only"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_starlette_client_disappears() -> None:
    async with serving(starlette_app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/echo")) as ws:
            await ws.send("one")
            await ws.recv()
            ws.transport.abort()
        await wait_for(lambda: disconnects)
    assert disconnects == [1006]


async def test_starlette_shutdown_with_connections_open() -> None:
    async with asyncio.timeout(TIMEOUT):
        async with serving(starlette_app) as server:
            sockets = [await websockets.connect(uri_of(server, "/echo")) for _ in range(3)]
        for ws in sockets:
            with pytest.raises(CLOSED):
                await ws.recv()
            assert ws.close_code == 1012
    assert disconnects == [1012] * 3


@pytest.mark.parametrize("client", CLIENTS)
async def test_fastapi(client: str) -> None:
    async with serving(fastapi_app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(REFUSED) as exc_info:
            async with connect(client, uri_of(server, "/echo")):
                pass
        assert exc_info.value.response.status_code == 403
        async with connect(client, uri_of(server, "/echo?token=secret")) as ws:
            await ws.send("hi")
            assert await ws.recv() == '{"echo":"hi"}'
        await wait_for(lambda: disconnects)
        assert disconnects == [1000]
        async with connect(client, uri_of(server, "/echo?token=secret")) as ws:
            await ws.send("raise")
            with pytest.raises(CLOSED):
                await ws.recv()
        assert ws.close_code == 1011
