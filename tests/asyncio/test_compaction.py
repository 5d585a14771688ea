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


async def test_the_sweep_visits_only_connections_with_compression(monkeypatch):
    """Idle connections without an extension cost no CPU: the periodic
    sweep never visits them, and a compressed one leaves its list on close."""
    monkeypatch.setattr(server_module, "COMPACT_INTERVAL", 0.01)
    swept: list[set] = []
    real = server_module.compact_idle

    def recording(connections):
        swept.append(set(connections))
        return real(connections)

    monkeypatch.setattr(server_module, "compact_idle", recording)
    async with ferrows.serve(echo, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with ferrows.connect(uri, compression=None), ferrows.connect(uri, compression=None):
            async with websockets.connect(uri) as compressed:
                await compressed.send("hello")
                assert await asyncio.wait_for(compressed.recv(), 5) == "hello"
                (deflating,) = [c for c in server.connections if c.protocol.extensions]
                swept.clear()
                await asyncio.sleep(0.05)
                assert swept and all(visited == {deflating} for visited in swept)
            async with asyncio.timeout(5):
                while server._compressing:
                    await asyncio.sleep(0.01)
            swept.clear()
            await asyncio.sleep(0.05)
            assert swept and all(visited == set() for visited in swept)
