"""Idle connections give back their compression state and resume correctly.

The server sweeps its connections periodically; a connection that exchanged
no message since the previous sweep drops its zlib streams and keeps only the
last window of bytes. The next message must still decode on a peer that kept
its full history: here the real websockets client, with context takeover.
"""

from __future__ import annotations

import asyncio

import websockets

import ferrows
import ferrows.asyncio.server as server_module

TEXT = "the quick brown fox jumps over the lazy dog; " * 50


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def test_messages_survive_compaction_both_ways(monkeypatch):
    monkeypatch.setattr(server_module, "COMPACT_INTERVAL", 0.01)
    async with ferrows.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as client:
            assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
            for i in range(6):
                message = f"{i}: {TEXT}"
                await client.send(message)
                assert await asyncio.wait_for(client.recv(), 5) == message
                # Long enough for two sweeps: both streams are dropped.
                await asyncio.sleep(0.05)
