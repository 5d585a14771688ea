"""permessage-deflate against a real websockets server over a socket, for
the corners of RFC 7692 negotiation that the in-memory tests cannot show
another implementation agreeing with."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.extensions.permessage_deflate as ws_deflate
import websockets.frames

import ferrows

TIMEOUT = 10.0


class RecordingFactory(ws_deflate.ServerPerMessageDeflateFactory):
    """websockets' server factory, recording RSV1 on the first frame of each
    message the negotiated extension decodes: whether the client compressed."""

    def __init__(self, rsv1: list[bool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rsv1 = rsv1

    def process_request_params(self, params: Any, accepted_extensions: Any) -> Any:
        response, extension = super().process_request_params(params, accepted_extensions)
        decode = extension.decode
        seen = self.rsv1

        def recording_decode(frame: Any, *, max_size: int | None = None) -> Any:
            if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY):
                seen.append(frame.rsv1)
            return decode(frame, max_size=max_size)

        extension.decode = recording_decode
        return response, extension


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("client", ["asyncio", "sync"])
async def test_server_limits_client_window_to_8_bits(client: str) -> None:
    # RFC 7692 section 7.1.2.2: the server may answer client_max_window_bits
    # with 8. zlib cannot compress with 256 bytes of window, so the ferrows
    # client sends uncompressed (RSV1 clear) and inflates the server's
    # compressed messages.
    rsv1: list[bool] = []
    factory = RecordingFactory(rsv1, client_max_window_bits=8)
    messages: list[str | bytes] = ["repeat after me " * 20, b"\x00" * 5000, "é" * 3000, b""]
    async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0, compression=None, extensions=[factory]) as server:
        port = server.sockets[0].getsockname()[1]
        uri = f"ws://127.0.0.1:{port}/"
        if client == "asyncio":
            async with ferrows.connect(uri, open_timeout=TIMEOUT) as ws:
                assert ws.response.headers["Sec-WebSocket-Extensions"] == (
                    "permessage-deflate; client_max_window_bits=8"
                )
                received = []
                for message in messages:
                    await ws.send(message)
                    received.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
        else:

            def run() -> list[str | bytes]:
                from ferrows.sync.client import connect

                with connect(uri, open_timeout=TIMEOUT) as ws:
                    assert ws.response.headers["Sec-WebSocket-Extensions"] == (
                        "permessage-deflate; client_max_window_bits=8"
                    )
                    out = []
                    for message in messages:
                        ws.send(message)
                        out.append(ws.recv(timeout=TIMEOUT))
                    return out

            received = await asyncio.wait_for(asyncio.to_thread(run), TIMEOUT)
    assert received == messages
    assert rsv1 == [False] * len(messages), "the client sent every message uncompressed"


async def test_client_asks_for_8_bit_server_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # A websockets client asks ferrows' server for server_max_window_bits=8:
    # the server accepts and sends uncompressed; the client compresses.
    rsv1: list[bool] = []
    decode = ws_deflate.PerMessageDeflate.decode

    def recording_decode(self: Any, frame: Any, *, max_size: int | None = None) -> Any:
        if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY):
            rsv1.append(frame.rsv1)
        return decode(self, frame, max_size=max_size)

    monkeypatch.setattr(ws_deflate.PerMessageDeflate, "decode", recording_decode)
    async with ferrows.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        factory = ws_deflate.ClientPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=True)
        async with websockets.asyncio.client.connect(
            f"ws://127.0.0.1:{port}/", compression=None, extensions=[factory], open_timeout=TIMEOUT
        ) as ws:
            extensions = ws.response.headers["Sec-WebSocket-Extensions"]
            assert "server_max_window_bits=8" in extensions
            for message in ["repeat after me " * 20, b"\x00" * 5000]:
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == message
    assert rsv1 == [False, False], "the server sent every message uncompressed"
