"""ferrows.asgi against hostile and slow peers: bad frames, sizes, keepalive,
and flow control both ways, with a peer written by hand where ferrows' and
websockets' clients would behave."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

import ferrows
from ferrows.asgi import protocol as asgi_protocol
from ferrows.asyncio.wheel import wheel_for
from ferrows.connection import WRITE_LINGER
from frame_utils import BINARY, CLOSE, PING, PONG, TEXT, client_frame, close_payload, frame

from ..asyncio.utils import handshake_request, parse_close, raw_connect, read_frame, recording_writes
from .utils import MS, TIMEOUT, connection_of, echo_app, port_of, serving, uri_of, wait_for


def recording_app(events: list[Any]) -> Any:
    """Accepts, then records every message it receives until the disconnect."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            events.append(message)
            if message["type"] == "websocket.disconnect":
                return

    return app


async def read_close(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Skips data frames and pings up to the server's close frame."""
    while True:
        _, opcode, payload = await read_frame(reader)
        if opcode == CLOSE:
            return parse_close(payload)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(TEXT, b"unmasked"), 1002),  # RFC 6455 5.1: clients mask
        (client_frame(TEXT, b"\xc3\x28"), 1007),  # invalid UTF-8
        (client_frame(0x3, b""), 1002),  # reserved opcode
        (client_frame(PING, b"x" * 126), 1002),  # control frame over 125 bytes
        (client_frame(BINARY, b"y" * 1001), 1009),  # over ws_max_size
        (client_frame(TEXT, b"z" * 600, fin=False) + client_frame(0x0, b"z" * 600), 1009),
    ],
    ids=["unmasked", "utf-8", "opcode", "long-ping", "too-big", "too-big-fragmented"],
)
async def test_bad_frames(data: bytes, code: int) -> None:
    """The connection fails with the violation's code; the message before it
    still reaches the application, then the disconnect with that code."""
    events: list[Any] = []
    async with serving(recording_app(events), ws_max_size=1000) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        writer.write(client_frame(TEXT, b"before") + data)
        assert (await read_close(reader))[0] == code
        assert await reader.read() == b""  # then the server closes TCP
        writer.close()
        await wait_for(lambda: len(events) == 2)
    assert events[0] == {"type": "websocket.receive", "text": "before"}
    assert events[1]["type"] == "websocket.disconnect"
    assert events[1]["code"] == code


async def test_frames_sent_before_accept_wait_for_it() -> None:
    """Frames that arrive after the request, before the application accepts,
    are delivered once it does. (Bytes in the same read as the request are
    uvicorn's HTTP protocol's: it hands over the request alone.)"""
    events: list[Any] = []
    accept = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await accept.wait()
        await recording_app(events)(scope, _connected(receive), send)

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(handshake_request(port_of(server)))
        await asyncio.sleep(0.05)
        writer.write(client_frame(TEXT, b"early"))
        await asyncio.sleep(0.05)
        writer.write(client_frame(BINARY, b"later") + client_frame(CLOSE, close_payload(1000)))
        await asyncio.sleep(0.05)
        accept.set()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert await read_close(reader) == (1000, "")
        writer.close()
        await wait_for(lambda: len(events) == 3)
    assert events == [
        {"type": "websocket.receive", "text": "early"},
        {"type": "websocket.receive", "bytes": b"later"},
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
    ]


def _connected(receive: Any) -> Any:
    """A ``receive`` whose first message is ``websocket.connect`` again, for
    an app that took it already."""
    sent = False

    async def again() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "websocket.connect"}
        return await receive()

    return again


async def test_data_after_the_close_is_ignored() -> None:
    events: list[Any] = []
    async with serving(recording_app(events)) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            connection = connection_of(server)
        await wait_for(lambda: events)
        connection.data_received(client_frame(PONG, b""))  # after connection_lost
        assert connection.transport.is_closing()
    assert events == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    assert ws.close_code == 1000


async def test_keepalive_pings_and_survives() -> None:
    async with serving(echo_app, ws_ping_interval=20 * MS, ws_ping_timeout=TIMEOUT) as server:
        async with ferrows.connect(uri_of(server), ping_interval=None) as ws, asyncio.timeout(TIMEOUT):
            connection = connection_of(server)
            await wait_for(lambda: connection.latency > 0)
            await asyncio.sleep(60 * MS)  # several pings, each answered
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_keepalive_without_timeout_keeps_pinging() -> None:
    async with serving(echo_app, ws_ping_interval=10 * MS, ws_ping_timeout=None) as server:
        async with asyncio.timeout(TIMEOUT):
            reader, writer, _ = await raw_connect(port_of(server))
            for _ in range(3):  # pings come although none is answered
                _, opcode, _ = await read_frame(reader)
                assert opcode == PING
            writer.close()


async def test_keepalive_timeout_is_1011() -> None:
    events: list[Any] = []
    async with serving(recording_app(events), ws_ping_interval=10 * MS, ws_ping_timeout=30 * MS) as server:
        async with asyncio.timeout(TIMEOUT):
            reader, writer, _ = await raw_connect(port_of(server))  # never answers pings
            assert await read_close(reader) == (1011, "keepalive ping timeout")
            writer.close()
            await wait_for(lambda: events)
    assert events == [{"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}]


async def test_keepalive_runs_on_the_shared_timers() -> None:
    """Connections wait for their next ping on the loop's shared timers, not
    on a loop timer each: connections opened together share a slot; an
    answered ping puts the connection back for the next one, and a closed
    connection leaves the timers."""
    async with serving(echo_app, ws_ping_interval=200 * MS, ws_ping_timeout=TIMEOUT) as server:
        async with asyncio.timeout(TIMEOUT):
            clients = [await ferrows.connect(uri_of(server), ping_interval=None) for _ in range(3)]
            await wait_for(lambda: len(server.server_state.connections) == 3)
            connections = list(server.server_state.connections)
            wheel = wheel_for(asyncio.get_running_loop())
            slots = {connection.ping_timer for connection in connections}
            assert None not in slots
            assert slots <= set(wheel.slots)
            assert len(slots) <= 2  # the same slot, unless they straddle two
            await wait_for(lambda: all(connection.latency > 0 for connection in connections))
            # Pong received: back on the timers for the next ping.
            await wait_for(lambda: all(connection.ping_timer in wheel.slots for connection in connections))
            for client in clients:
                await client.close()
            await wait_for(lambda: all(connection.ping_timer is None for connection in connections))


@pytest.mark.parametrize("interval", [None, 0.0])
async def test_keepalive_disabled(interval: float | None) -> None:
    async with serving(echo_app, ws_ping_interval=interval) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server), ping_interval=None):
            assert connection_of(server).ping_timer is None


async def test_reading_pauses_above_max_queue() -> None:
    """While the application does not receive, the server stops reading
    after ``ws_max_queue`` messages: the client's writes back up instead of
    the server's memory; then every message arrives, in order."""
    received: list[bytes] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait()
        while len(received) < count:
            received.append((await receive())["bytes"])

    count, size = 400, 16 * 1024
    async with serving(app, ws_max_queue=4) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server), compression=None, write_limit=size) as ws:
            sender = asyncio.create_task(_send_all(ws, count, size))
            connection = connection_of(server)
            await wait_for(lambda: connection._reading_paused)
            await asyncio.sleep(0.1)
            assert not connection.transport.is_reading()
            # Bounded: what one read can hold beyond the limit, not the 6 MiB sent.
            assert connection._queued_bytes <= 4 * size + 2**16
            assert not sender.done()  # the client is held back
            go.set()
            await sender
            await wait_for(lambda: len(received) == count)
    assert received == [i.to_bytes(4, "big") * (size // 4) for i in range(count)]


async def _send_all(ws: Any, count: int, size: int) -> None:
    for i in range(count):
        await ws.send(i.to_bytes(4, "big") * (size // 4))


async def test_send_waits_for_the_write_buffer() -> None:
    """``websocket.send`` waits while the client does not read: the
    application's sends stall instead of the server's buffer growing."""
    sent: list[int] = []
    size = 256 * 1024

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(200):
            await send({"type": "websocket.send", "bytes": bytes([i % 256]) * size})
            sent.append(i)
        await send({"type": "websocket.close"})

    async with serving(app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        await asyncio.sleep(0.2)  # not reading: the app must stall
        connection = connection_of(server)
        assert len(sent) < 100, "50 MiB would be buffered"
        assert connection.transport.get_write_buffer_size() <= 2**16 + size
        for i in range(200):
            _, opcode, payload = await read_frame(reader)
            assert (opcode, payload) == (BINARY, bytes([i % 256]) * size)
        assert await read_close(reader) == (1000, "")
        writer.close()
    assert len(sent) == 200


async def test_pongs_held_while_the_client_does_not_read() -> None:
    """A client flooding pings without reading gets one pong for the latest
    once the buffer drains, not one per ping."""
    size = 32 * 2**20  # more than the kernel's buffers take on loopback

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"\x00" * size})
        await receive()

    async with serving(app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        connection = connection_of(server)
        await wait_for(lambda: connection._writing_paused)
        for i in range(50):
            writer.write(client_frame(PING, struct.pack("!I", i)))
        await asyncio.sleep(0.1)
        assert connection._writing_paused
        pongs = []
        assert (await read_frame(reader))[1] == BINARY
        writer.write(client_frame(CLOSE, close_payload(1000)))
        while (frame_ := await read_frame(reader))[1] != CLOSE:
            if frame_[1] == PONG:
                pongs.append(frame_[2])
        writer.close()
    assert 1 <= len(pongs) < 50
    assert pongs[-1] == struct.pack("!I", 49)


async def test_early_frames_are_bounded() -> None:
    """A client that floods frames before the application accepts gets its
    reading paused above 64 KiB; all of it arrives once accepted."""
    events: list[Any] = []
    accept = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await accept.wait()
        await recording_app(events)(scope, _connected(receive), send)

    count, size = 100, 8192
    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(handshake_request(port_of(server)))
        await asyncio.sleep(0.05)
        for i in range(count):
            writer.write(client_frame(BINARY, bytes([i]) * size))
        connection = connection_of(server)
        await wait_for(lambda: connection._reading_paused)
        assert connection._early_size <= 2**16 + 2**18  # a read or so past the limit
        accept.set()
        await reader.readuntil(b"\r\n\r\n")
        await wait_for(lambda: len(events) == count)
        writer.close()
        await wait_for(lambda: len(events) == count + 1)
    assert [e.get("bytes") for e in events[:count]] == [bytes([i]) * size for i in range(count)]


async def test_close_resumes_paused_reading() -> None:
    """Closing while reading is paused (the app did not receive) resumes it,
    so that the client's close frame arrives: no wait for close_timeout."""
    paused = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await paused.wait()
        await send({"type": "websocket.close", "code": 4003})

    async with serving(app, ws_max_queue=1) as server, asyncio.timeout(1):
        async with ferrows.connect(uri_of(server)) as ws:
            for _ in range(3):
                await ws.send("unread")
            await wait_for(lambda: connection_of(server)._reading_paused)
            paused.set()
            await ws.wait_closed()
    assert ws.close_code == 4003


async def test_messages_after_the_app_closed_are_dropped() -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4004})
        await asyncio.sleep(0.1)
        events.append(await receive())

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        assert await read_close(reader) == (4004, "")
        writer.write(client_frame(TEXT, b"crossed the close") + client_frame(PONG, b"unsolicited"))
        writer.write(client_frame(CLOSE, close_payload(4004)))
        assert await reader.read() == b""
        writer.close()
        await wait_for(lambda: events)
    assert events == [{"type": "websocket.disconnect", "code": 4004, "reason": ""}]


async def test_close_timeout_when_the_client_does_not_answer() -> None:
    closed = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await closed.wait()
        await send({"type": "websocket.close"})

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        connection = connection_of(server)
        connection.close_timeout = 0.05
        closed.set()
        assert await read_close(reader) == (1000, "")
        assert await reader.read() == b""  # no answer from us: closed anyway
        writer.close()
        await wait_for(lambda: connection.close_timer is None)


async def test_abort_when_the_buffer_cannot_drain() -> None:
    """Shutting down with a client that reads nothing: the transport is
    aborted after close_timeout instead of waiting for its buffer forever."""
    big = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"\x00" * 32 * 2**20})
        big.set()
        await receive()

    async with asyncio.timeout(TIMEOUT):
        async with serving(app, ws_per_message_deflate=False) as server:
            _reader, writer, _ = await raw_connect(port_of(server))
            await big.wait()
            connection = connection_of(server)
            connection.close_timeout = 0.05
        assert connection.transport.is_closing()
        assert server.server_state.connections == set()
        writer.close()


async def test_client_disconnected_ends_the_app_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """An app that lets ``ClientDisconnected`` propagate is not an error."""
    ended = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await receive()
            await send({"type": "websocket.send", "text": "to nobody"})
        finally:
            ended.set()

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)):
            pass
        await ended.wait()
    assert not [r for r in caplog.records if r.levelno >= 40]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock that bounds how long answers are held (WRITE_LINGER), as a
    list whose one item the test moves; it stands still unless moved."""
    now = [0.0]
    monkeypatch.setattr(asgi_protocol, "_monotonic", lambda: now[0])
    return now


async def test_answers_to_a_burst_are_written_together(clock: list[float]) -> None:
    """50 messages in one read, each echoed by the app: the echoes go out in
    a few writes, in order, not in 50."""
    async with serving(echo_app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        await asyncio.sleep(0.05)
        connection = connection_of(server)
        writes = recording_writes(connection)
        writer.write(b"".join(client_frame(BINARY, i.to_bytes(2, "big")) for i in range(50)))
        for i in range(50):
            assert await read_frame(reader) == (True, BINARY, i.to_bytes(2, "big"))
        assert len(writes) < 10
        writer.close()


async def test_answers_to_a_read_go_out_in_one_write(clock: list[float]) -> None:
    """The answer to the last message of a read goes out with the answers
    held before it, in the same write: one write per read, the echoes in
    order and all flushed (two writes, the held ones then the last, cost
    the client a second read)."""
    async with serving(echo_app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        await asyncio.sleep(0.05)
        connection = connection_of(server)
        writes = recording_writes(connection)
        reads: list[int] = []
        data_received = connection.data_received

        def counting(data: bytes) -> None:
            reads.append(len(data))
            data_received(data)

        connection.data_received = counting  # type: ignore[method-assign]
        for burst in range(3):
            payloads = [bytes([burst, i]) for i in range(20)]
            writer.write(b"".join(client_frame(BINARY, p) for p in payloads))
            for p in payloads:
                assert await read_frame(reader) == (True, BINARY, p)
        expected = b"".join(b"\x82\x02" + bytes([burst, i]) for burst in range(3) for i in range(20))
        assert b"".join(writes) == expected
        assert len(writes) == len(reads)
        assert connection._corked is None
        writer.close()


async def test_held_answers_go_out_once_the_first_waited_write_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers held for one write go out once the first has waited
    WRITE_LINGER, so the client works on them while the app makes the
    rest: here the clock moves by 0.6 of it at each reading, and the
    echoes of a read of 20 messages go out two by two, in order."""
    calls = [0]

    def ticking() -> float:
        calls[0] += 1
        return calls[0] * WRITE_LINGER * 0.6

    monkeypatch.setattr(asgi_protocol, "_monotonic", ticking)
    async with serving(echo_app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        await asyncio.sleep(0.05)
        connection = connection_of(server)
        writes = recording_writes(connection)
        writer.write(b"".join(client_frame(BINARY, bytes([i])) for i in range(20)))
        for i in range(20):
            assert await read_frame(reader) == (True, BINARY, bytes([i]))
        assert writes == [b"\x82\x01" + bytes([i]) + b"\x82\x01" + bytes([i + 1]) for i in range(0, 20, 2)]
        writer.close()


async def test_held_answers_are_bounded() -> None:
    """An app answering one message of a burst with many small sends that
    never wait: held frames go out past 16 KiB instead of piling up, so the
    write buffer's high-water mark sees them."""
    most_held: list[int] = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the others of the burst stay queued
        connection = connection_of(server)
        for _ in range(20_000):  # 2 MB
            await send({"type": "websocket.send", "bytes": b"\x00" * 100})
            most_held[0] = max(most_held[0], connection._corked_size)
        await send({"type": "websocket.close"})

    async with serving(app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        writer.write(b"".join(client_frame(BINARY, b"go") for _ in range(10)))
        count = 0
        while (await read_frame(reader))[1] == BINARY:
            count += 1
        writer.close()
    assert count == 20_000
    assert 0 < most_held[0] < 2**14
