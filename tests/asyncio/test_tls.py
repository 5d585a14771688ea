"""TLS: wss:// with a certificate made for 127.0.0.1 by trustme."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
import websockets

import ferrows

from .utils import TIMEOUT, echo, port_of, serving


@pytest.fixture(scope="module")
def contexts() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """Server and client contexts; the client trusts only the test CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    yield server_context, client_context


def wss_uri(server: Any) -> str:
    return f"wss://127.0.0.1:{port_of(server)}/"


async def test_ferrows_client(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = contexts
    async with serving(echo, ssl=server_context) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(wss_uri(server), ssl=client_context) as ws:
            assert ws.transport.get_extra_info("ssl_object") is not None
            for message in ["secure", b"\x00" * 100_000, "é" * 70_000]:
                await ws.send(message)
                assert await ws.recv() == message
            (server_side,) = server.connections
            assert server_side.transport.get_extra_info("ssl_object") is not None
        assert ws.close_code == 1000


async def test_websockets_client(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = contexts
    async with serving(echo, ssl=server_context) as server, asyncio.timeout(TIMEOUT):
        async with websockets.connect(wss_uri(server), ssl=client_context, compression=None) as ws:
            for message in ["secure", b"\x01" * 100_000]:
                await ws.send(message)
                assert await ws.recv() == message
        assert ws.close_code == 1000


async def test_ferrows_client_to_websockets_server(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = contexts
    async with asyncio.timeout(TIMEOUT):
        async with websockets.serve(echo, "127.0.0.1", 0, ssl=server_context, compression=None) as server:
            async with ferrows.connect(wss_uri(server), ssl=client_context) as ws:
                await ws.send("secure")
                assert await ws.recv() == "secure"


async def test_server_closes_tls_connections(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """TLS cannot half-close: the closing handshake must still finish."""
    server_context, client_context = contexts
    async with asyncio.timeout(TIMEOUT):
        server = await ferrows.serve(echo, "127.0.0.1", 0, ssl=server_context)
        async with ferrows.connect(wss_uri(server), ssl=client_context) as ws:
            server.close()
            with pytest.raises(ferrows.ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
        await server.wait_closed()


async def test_untrusted_certificate(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, _ = contexts
    async with serving(echo, ssl=server_context) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(ssl.SSLCertVerificationError):
            await ferrows.connect(wss_uri(server))


async def test_ssl_with_ws_uri(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    _, client_context = contexts
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(ValueError):
            await ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/", ssl=client_context)
        with pytest.raises(ValueError):
            await ferrows.connect(wss_uri(server), ssl=None)
