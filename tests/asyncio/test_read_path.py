"""The asyncio read path: connections are ``BufferedProtocol`` objects that
read into one buffer per thread, so a read allocates nothing per chunk and
whatever a read leaves unfinished (a partial frame, the start of a long
message) must survive the next read overwriting that buffer. Real sockets
and real peers throughout, on both loops (see conftest)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any

import pytest
import trustme
import websockets.asyncio.client

import ferrows
import ferrows.asyncio.connection as connection_module
from ferrows.asyncio.server import ServerConnection
from ferrows.utils import accept_key

from ..frame_utils import BINARY, TEXT, client_frame
from .utils import TIMEOUT, echo, handshake_request, port_of, serving, uri_of, wait_for


async def test_connections_read_into_the_shared_buffer() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as one, ferrows.connect(uri_of(server)) as two:
            await wait_for(lambda: len(server.connections) == 2)
            first, second = server.connections
            assert isinstance(first, asyncio.BufferedProtocol)
            # One buffer for every connection of the thread, the clients' too.
            views = {id(c.get_buffer(-1).obj) for c in (first, second, one, two)}
            assert len(views) == 1
            assert len(first.get_buffer(-1)) == connection_module.READ_BUFFER_SIZE


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000, 65536])
async def test_frames_in_any_chunking_survive_the_buffer_being_reused(chunk: int) -> None:
    """Two clients interleave their bytes, ``chunk`` bytes at a time, so each
    read of one connection overwrites the other's last read in the shared
    buffer; every message arrives intact on both."""
    loop = asyncio.get_running_loop()
    received: dict[int, list[Any]] = {0: [], 1: []}
    count = 3

    async def handler(ws: ServerConnection) -> None:
        index = int(ws.request.path.strip("/"))
        for _ in range(count):
            received[index].append(await ws.recv())

    async with serving(handler, compression=None, max_size=None) as server, asyncio.timeout(4 * TIMEOUT):
        socks = []
        for index in range(2):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port_of(server)))
            await loop.sock_sendall(sock, handshake_request(port_of(server), f"/{index}"))
            response = b""
            while b"\r\n\r\n" not in response:
                response += await loop.sock_recv(sock, 4096)
            socks.append(sock)
        messages = {index: [os.urandom(300_000), "héllo wörld " * 50, os.urandom(10)] for index in range(2)}
        streams = {
            index: b"".join(
                client_frame(TEXT if isinstance(m, str) else BINARY, m.encode() if isinstance(m, str) else m)
                for m in messages[index]
            )
            for index in range(2)
        }
        sizes = [len(s) for s in streams.values()]
        limit = min(max(sizes), 64 * chunk) if chunk < 1000 else max(sizes)
        # Small chunks: interleave the first bytes only, then send the rest at once.
        for offset in range(0, limit, chunk):
            for index, sock in enumerate(socks):
                piece = streams[index][offset : offset + chunk]
                if piece:
                    await loop.sock_sendall(sock, piece)
            await asyncio.sleep(0)
        for index, sock in enumerate(socks):
            await loop.sock_sendall(sock, streams[index][limit:])
        await wait_for(lambda: all(len(r) == count for r in received.values()), 4 * TIMEOUT)
        assert received == messages
        for sock in socks:
            sock.close()


async def test_a_message_larger_than_the_buffer_arrives_whole() -> None:
    size = 3 * connection_module.READ_BUFFER_SIZE + 12345
    payload = os.urandom(size)
    async with serving(echo, max_size=None) as server, asyncio.timeout(4 * TIMEOUT):
        async with websockets.asyncio.client.connect(uri_of(server), max_size=None) as client:
            await client.send(payload)
            assert await client.recv() == payload
        async with ferrows.connect(uri_of(server), max_size=None, compression=None) as client:
            await client.send(payload)
            assert await client.recv() == payload


async def test_tls_and_unix_sockets_read_through_it(tmp_path: Any) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    big = os.urandom(700_000)
    async with serving(echo, ssl=server_context, max_size=None) as server, asyncio.timeout(4 * TIMEOUT):
        async with ferrows.connect(uri_of(server, scheme="wss"), ssl=client_context, max_size=None) as client:
            for message in ["small", big]:
                await client.send(message)
                assert await client.recv() == message
    path = str(tmp_path / "ws.sock")
    unix = await ferrows.unix_serve(echo, path, max_size=None)
    try:
        async with asyncio.timeout(4 * TIMEOUT), ferrows.unix_connect(path, max_size=None) as client:
            for message in ["small", big]:
                await client.send(message)
                assert await client.recv() == message
    finally:
        unix.close()
        await unix.wait_closed()


async def test_reading_pauses_and_resumes_under_backpressure() -> None:
    """The application does not read: past max_queue the transport stops
    reading into the buffer; once it reads, reading resumes and every
    message comes in order."""
    release = asyncio.Event()
    got: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        await release.wait()
        async for message in ws:
            got.append(message)
            if len(got) == 200:
                await ws.send("done")

    async with serving(handler, max_queue=4, compression=None) as server, asyncio.timeout(4 * TIMEOUT):
        async with ferrows.connect(uri_of(server)) as client:
            for i in range(200):
                await client.send(f"m{i}")
            await wait_for(lambda: len(server.connections) == 1)
            (connection,) = server.connections
            await wait_for(lambda: connection._reading_paused)
            release.set()
            assert await client.recv() == "done"
    assert got == [f"m{i}" for i in range(200)]


async def test_server_frames_split_across_reads_on_the_client() -> None:
    """The client side of the read path: a raw server writes a frame byte by
    byte, and the ferrows client assembles it."""
    done = asyncio.Event()

    async def raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
        )
        frame = b"\x81\x05hello"
        for byte in frame:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)
        _, opcode, _ = await read_frame_masked(reader)
        assert opcode == 8
        done.set()
        writer.close()

    server = await asyncio.start_server(raw, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncio.timeout(TIMEOUT):
            client = await ferrows.connect(f"ws://127.0.0.1:{port}", compression=None)
            assert await client.recv() == "hello"
            await client.close()
            await done.wait()
    finally:
        server.close()
        await server.wait_closed()


async def read_frame_masked(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    mask = await reader.readexactly(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
    return bool(b0 & 0x80), b0 & 0x0F, data
