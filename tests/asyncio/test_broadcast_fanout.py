"""broadcast()'s fast path: one frame written to every idle socket in one
call (``_core.send_to_all``), the transports taking over what a socket does
not take. Real sockets and real peers throughout; the fast path is observed
by counting the calls to the real ``send_to_all``."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from typing import Any

import pytest
import trustme
import websockets.asyncio.client

import ferrows
import ferrows.asyncio.connection as connection_module
from ferrows import broadcast
from ferrows.exceptions import ConnectionClosed
from ferrows.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from .utils import MS, TIMEOUT, handshake_request, port_of, read_frame, serving, uri_of, wait_for


@pytest.fixture
def fanout_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(sockets, bytes) of each call to the real send_to_all."""
    calls: list[tuple[int, int]] = []
    real = connection_module.send_to_all

    def counting(fds: list[int], data: bytes) -> list[tuple[int, int]]:
        calls.append((len(fds), len(data)))
        return real(fds, data)

    monkeypatch.setattr(connection_module, "send_to_all", counting)
    return calls


async def idle(ws: Any) -> None:
    await ws.wait_closed()


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_one_call_reaches_every_client_in_order(compression: str | None, fanout_calls: Any) -> None:
    """ferrows and websockets clients alike get every message, in order;
    each broadcast of a shared frame that finds the sockets idle is one call
    for all of them."""
    async with serving(idle, compression=compression) as server, asyncio.timeout(TIMEOUT):
        clients = [await ferrows.connect(uri_of(server), compression=compression) for _ in range(10)]
        clients += [await websockets.asyncio.client.connect(uri_of(server), compression=compression) for _ in range(10)]
        await wait_for(lambda: len(server.connections) == 20)
        messages = [f"tick {i}" for i in range(30)] + [bytes([i]) * 100 for i in range(30)]
        for message in messages:
            broadcast(server.connections, message)
            await asyncio.sleep(0)  # one broadcast per loop iteration
        for client in clients:
            assert [await client.recv() for _ in messages] == messages
        if compression is None:
            assert [n for n, _ in fanout_calls] == [20] * len(messages)
        else:
            # With context takeover (the default), each connection compresses
            # against its own history: no frame to share.
            assert fanout_calls == []
        for client in clients:
            await client.close()


async def test_compressed_frames_without_context_takeover_are_shared(fanout_calls: Any) -> None:
    """Compressed without context, the frame is the same for every client:
    compressed once, written in one call, inflated by real peers."""
    factory = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    async with serving(idle, compression=None, extensions=[factory]) as server, asyncio.timeout(TIMEOUT):
        clients = [await ferrows.connect(uri_of(server)) for _ in range(3)]
        clients += [await websockets.asyncio.client.connect(uri_of(server)) for _ in range(3)]
        await wait_for(lambda: len(server.connections) == 6)
        message = "compressible " * 200
        broadcast(server.connections, message)
        for client in clients:
            assert await client.recv() == message
            await client.close()
        ((count, size),) = fanout_calls
        assert count == 6 and size < len(message) // 10


async def test_unix_socket_connections_use_it(fanout_calls: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")
    server = await ferrows.unix_serve(idle, path, compression=None)
    try:
        async with asyncio.timeout(TIMEOUT), ferrows.unix_connect(path) as client:
            await wait_for(lambda: len(server.connections) == 1)
            broadcast(server.connections, "over unix")
            assert await client.recv() == "over unix"
            assert fanout_calls == [(1, len(b"\x81\x09over unix"))]
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_connections_go_through_their_transport(fanout_calls: Any) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serving(idle, ssl=server_context) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, scheme="wss"), ssl=client_context) as client:
            await wait_for(lambda: len(server.connections) == 1)
            broadcast(server.connections, "encrypted")
            assert await client.recv() == "encrypted"
    assert fanout_calls == []


async def test_a_full_socket_gets_the_rest_through_its_transport(fanout_calls: Any) -> None:
    """A client that stops reading: its socket takes part of a frame, the
    transport buffers the rest, and the following broadcasts queue behind it
    (not written directly past it). Once the client reads, every message
    arrives whole and in order."""
    async with serving(idle, compression=None) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(handshake_request(port_of(server)))
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.pause_reading()
        await wait_for(lambda: len(server.connections) == 1)
        (connection,) = server.connections
        sent: list[bytes] = []
        for i in range(2000):
            message = bytes([i % 251]) * 16384
            broadcast(server.connections, message)
            sent.append(message)
            await asyncio.sleep(0)
            if connection.transport.get_write_buffer_size():
                break
        assert connection.transport.get_write_buffer_size(), "the socket never filled up"
        calls_when_full = len(fanout_calls)
        for i in range(5):
            message = b"after %d" % i
            broadcast(server.connections, message)
            sent.append(message)
            await asyncio.sleep(0)
        # Queued behind the buffered bytes, not written to the socket.
        assert len(fanout_calls) == calls_when_full
        writer.transport.resume_reading()
        received = []
        for _ in sent:
            fin, opcode, payload = await read_frame(reader)
            assert fin and opcode == 2
            received.append(payload)
        assert received == sent
        writer.close()


async def test_a_reset_peer_is_closed_and_reported(fanout_calls: Any) -> None:
    """The socket refuses the frame (the peer reset): the transport meets
    the error, the connection closes, and raise_exceptions reports it or the
    next broadcast skips it."""
    loop = asyncio.get_running_loop()
    async with serving(idle, compression=None) as server, asyncio.timeout(TIMEOUT):
        healthy = await ferrows.connect(uri_of(server))
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port_of(server)))
        await loop.sock_sendall(sock, handshake_request(port_of(server)))
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(sock, 4096)
        await wait_for(lambda: len(server.connections) == 2)
        # A reset the server has not read yet.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        await asyncio.sleep(20 * MS)
        for i in range(3):
            try:
                broadcast(server.connections, f"m{i}", raise_exceptions=True)
            except ExceptionGroup as group:
                assert all(isinstance(e.__cause__, (OSError, ConnectionClosed)) for e in group.exceptions)
            await asyncio.sleep(MS)
        assert [await healthy.recv() for _ in range(3)] == ["m0", "m1", "m2"]
        await wait_for(lambda: len(server.connections) == 1)
        await healthy.close()


def test_send_to_all_reports_what_sockets_did_not_take() -> None:
    """The core call itself: full writes are not reported, a full socket's
    partial write and an invalid descriptor are."""
    from ferrows import _core

    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with a, b, c, d:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = b"x" * 1_000_000
        small = b"hello"
        assert _core.send_to_all([a.fileno()], small) == []
        assert b.recv(10) == small
        short = _core.send_to_all([a.fileno(), c.fileno(), -1], data)
        indexes = [index for index, _ in short]
        assert indexes == [0, 1, 2]
        assert all(0 <= taken < len(data) for _, taken in short)
        assert short[2] == (2, 0)
        assert _core.send_to_all([a.fileno()], b"") == []


async def test_broadcasts_held_in_one_iteration_are_written_in_one_call(fanout_calls: Any) -> None:
    """Several broadcasts in one loop iteration (a hub relaying a burst read
    from Redis): the first is written at once, the rest held and written at
    the end of the iteration in one call per set of connections holding
    the same frames."""
    async with serving(idle, compression=None) as server, asyncio.timeout(TIMEOUT):
        clients = [await ferrows.connect(uri_of(server), compression=None) for _ in range(6)]
        await wait_for(lambda: len(server.connections) == 6)
        by_port = {c.remote_address[1]: c for c in server.connections}
        conns = [by_port[c.local_address[1]] for c in clients]
        broadcast(conns, "m0")
        broadcast(conns, "m1")
        broadcast(conns, "m2")
        broadcast(conns[:2], "only two")
        assert fanout_calls == [(6, 4)]
        await asyncio.sleep(0)
        # m1 and m2 (4 + 4 bytes) to four; m1, m2 and "only two" to two.
        assert sorted(fanout_calls[1:]) == [(2, 18), (4, 8)]
        for i, client in enumerate(clients):
            expected = ["m0", "m1", "m2"] + (["only two"] if i < 2 else [])
            assert [await client.recv() for _ in expected] == expected
        for client in clients:
            await client.close()
