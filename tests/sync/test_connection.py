"""The threading connection (ferrows.sync.connection), between ferrows'
threading server and client: messages, concurrency, flow control, pings,
keepalive and closing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ferrows.connection import COALESCE_LIMIT
from ferrows.exceptions import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from ferrows.protocol import State
from ferrows.sync import connect
from ferrows.sync.connection import _coalesce

from .utils import MS, TIMEOUT, assert_each_thread_in_order, echo, raw_server, serving, uri_of

COMPRESSION = pytest.mark.parametrize("compression", ["deflate", None])


@COMPRESSION
def test_echo_text_binary_and_decode(compression: str | None) -> None:
    with serving(echo, compression=compression) as server:
        with connect(uri_of(server), compression=compression) as ws:
            ws.send("café")
            assert ws.recv(TIMEOUT) == "café"
            ws.send(b"\x00\xff")
            assert ws.recv(TIMEOUT) == b"\x00\xff"
            ws.send("text")
            assert ws.recv(TIMEOUT, decode=False) == b"text"
            ws.send(b"bin")
            assert ws.recv(TIMEOUT, decode=True) == "bin"
            ws.send(bytearray(b"ba"))
            assert ws.recv(TIMEOUT) == b"ba"
            ws.send(memoryview(b"mv"))
            assert ws.recv(TIMEOUT) == b"mv"
            ws.send(b"forced", text=True)
            assert ws.recv(TIMEOUT) == "forced"
            ws.send("forced", text=False)
            assert ws.recv(TIMEOUT) == b"forced"
            big = bytes(range(256)) * 1024  # 256 KiB: the core releases the GIL
            ws.send(big)
            assert ws.recv(TIMEOUT) == big
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000


def test_recv_streaming_yields_whole_message() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        ws.send(["fr", "ag", "ments"])
        assert "".join(ws.recv_streaming()) == "fragments"


@COMPRESSION
def test_fragmented_send(compression: str | None) -> None:
    with serving(echo, compression=compression) as server:
        with connect(uri_of(server), compression=compression) as ws:
            ws.send(["a", "b", "c"])
            assert ws.recv(TIMEOUT) == "abc"
            ws.send([b"a", bytearray(b"b"), memoryview(b"c")])
            assert ws.recv(TIMEOUT) == b"abc"
            ws.send(iter(["x", "y"]), text=False)
            assert ws.recv(TIMEOUT) == b"xy"
            ws.send([])  # nothing sent
            ws.send("after")
            assert ws.recv(TIMEOUT) == "after"


def test_send_rejects_dict_and_other_types() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        with pytest.raises(TypeError):
            ws.send({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ws.send(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ws.send([1, 2])  # type: ignore[list-item]
        ws.send("still usable")
        assert ws.recv(TIMEOUT) == "still usable"


def test_mixed_fragment_types_fail_the_connection() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        with pytest.raises(TypeError):
            ws.send(["a", b"b"])  # type: ignore[list-item]
        with pytest.raises(ConnectionClosedError) as raised:
            ws.recv(TIMEOUT)
        assert raised.value.sent is not None and raised.value.sent.code == 1011


@COMPRESSION
def test_concurrent_senders_never_interleave(compression: str | None) -> None:
    """8 threads × 200 messages on one connection, some large: every message
    arrives whole, and each thread's in order."""
    threads_count, per_thread = 8, 200
    received: list[Any] = []
    done = threading.Event()

    def collect(ws: Any) -> None:
        for message in ws:
            received.append(message)
            if len(received) == threads_count * per_thread:
                done.set()

    def payload(tid: int, i: int) -> str:
        size = 70_000 if i % 50 == 7 else (i * 37) % 500
        return f"{tid}:{i}:" + chr(ord("a") + tid) * size

    with serving(collect, compression=compression) as server:
        with connect(uri_of(server), compression=compression) as ws:
            errors: list[BaseException] = []

            def sender(tid: int) -> None:
                try:
                    for i in range(per_thread):
                        ws.send(payload(tid, i))
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            senders = [threading.Thread(target=sender, args=(tid,)) for tid in range(threads_count)]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join(TIMEOUT * 4)
            assert not any(thread.is_alive() for thread in senders)
            assert errors == []
            assert done.wait(TIMEOUT)
    assert len(received) == threads_count * per_thread
    last = [-1] * threads_count
    for message in received:
        tid_text, i_text, _body = message.split(":", 2)
        tid, i = int(tid_text), int(i_text)
        assert message == payload(tid, i)
        assert i == last[tid] + 1
        last[tid] = i


def test_send_during_another_threads_fragmented_send_raises() -> None:
    """As websockets: a fragmented message holds the send side, and another
    thread's send raises ConcurrencyError rather than waiting; the message in
    progress is unharmed, and sending works again once it is complete."""
    chunk_sent = threading.Event()
    resume = threading.Event()

    def chunks() -> Any:
        yield "frag"
        chunk_sent.set()
        assert resume.wait(TIMEOUT)
        yield "ment"

    with serving(echo) as server, connect(uri_of(server)) as ws:
        sender = threading.Thread(target=ws.send, args=(chunks(),))
        sender.start()
        assert chunk_sent.wait(TIMEOUT)
        with pytest.raises(ConcurrencyError):
            ws.send("interloper")
        with pytest.raises(ConcurrencyError):
            ws.send(["another", "fragmented"])
        resume.set()
        sender.join(TIMEOUT)
        assert ws.recv(TIMEOUT) == "fragment"
        ws.send("after")
        assert ws.recv(TIMEOUT) == "after"


def test_server_threads_sending_large_bytes_never_interleave() -> None:
    """A server writes large bytes payloads apart from their header: with 4
    threads sending at once, small and large messages still arrive whole and
    each thread's in order."""
    threads_count, per_thread = 4, 40

    def payload(tid: int, i: int) -> bytes:
        size = 100_000 if i % 3 == 0 else 10 + i
        return bytes([tid, i]) * (size // 2)

    def handler(ws: Any) -> None:
        senders = [
            threading.Thread(target=lambda tid=tid: [ws.send(payload(tid, i)) for i in range(per_thread)])
            for tid in range(threads_count)
        ]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(TIMEOUT * 4)
        ws.recv(TIMEOUT)

    with serving(handler, compression=None) as server:
        with connect(uri_of(server), compression=None, max_size=None) as ws:
            received = [ws.recv(TIMEOUT) for _ in range(threads_count * per_thread)]
            ws.send("done")
    assert_each_thread_in_order(received, threads_count, payload)


def test_coalesce_joins_small_chunks_only() -> None:
    big = b"x" * COALESCE_LIMIT
    assert _coalesce([b"a"]) == [b"a"]
    assert _coalesce([b"a", b"b", big, b"c", b"", b"d", b"e"]) == [b"ab", big, b"c", b"", b"de"]
    # The large chunk is the very object given, not a copy.
    assert _coalesce([b"a", big])[1] is big


def test_concurrent_recv_raises_concurrency_error() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        result: list[Any] = []
        first = threading.Thread(target=lambda: result.append(ws.recv(TIMEOUT)))
        first.start()
        deadline = time.monotonic() + TIMEOUT
        while not ws.recv_messages.get_in_progress and time.monotonic() < deadline:
            time.sleep(MS)
        with pytest.raises(ConcurrencyError):
            ws.recv(TIMEOUT)
        ws.send("unblock")
        first.join(TIMEOUT)
        assert result == ["unblock"]


def test_recv_timeout_and_poll() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=50 * MS)
        assert 40 * MS <= time.monotonic() - start < TIMEOUT
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        ws.send("late")
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                assert ws.recv(timeout=0) == "late"
                break
            except TimeoutError:
                assert time.monotonic() < deadline
                time.sleep(MS)
        # A timed-out recv loses nothing and leaves recv usable.
        ws.send("next")
        assert ws.recv(TIMEOUT) == "next"


def test_ping_pong_and_latency() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        assert ws.latency == 0.0
        assert ws.ping().wait(TIMEOUT)
        assert ws.latency > 0
        assert ws.ping("text payload").wait(TIMEOUT)
        ws.pong(b"unsolicited")
        waiting = ws.ping(b"same")
        with pytest.raises(ConcurrencyError):
            # Only while the first is pending: it may already be answered.
            if not waiting.is_set():
                ws.ping(b"same")
            else:
                raise ConcurrencyError("answered already")
        assert waiting.wait(TIMEOUT)


def test_ping_ack_on_close() -> None:
    with raw_server("ignore") as (port, _):
        ws = connect(f"ws://127.0.0.1:{port}", ping_interval=None, close_timeout=100 * MS)
        acked = ws.ping(ack_on_close=True)
        not_acked = ws.ping()
        ws.close()
        assert acked.wait(TIMEOUT)
        assert not not_acked.is_set()


def test_keepalive_keeps_connection_open() -> None:
    with serving(echo) as server:
        with connect(uri_of(server), ping_interval=20 * MS, ping_timeout=TIMEOUT) as ws:
            time.sleep(150 * MS)
            assert ws.latency > 0
            ws.send("alive")
            assert ws.recv(TIMEOUT) == "alive"


def test_keepalive_timeout_closes_with_1011() -> None:
    with raw_server("ignore") as (port, received):
        ws = connect(
            f"ws://127.0.0.1:{port}",
            ping_interval=30 * MS,
            ping_timeout=60 * MS,
            close_timeout=100 * MS,
        )
        with pytest.raises(ConnectionClosedError) as raised:
            ws.recv(TIMEOUT)
        assert raised.value.sent is not None
        assert raised.value.sent.code == 1011
        assert raised.value.sent.reason == "keepalive ping timeout"
        assert ws.wait_closed(TIMEOUT)
    # The peer saw at least the ping and the close frame.
    assert len(b"".join(received)) >= 2 * 6


def test_close_timeout_aborts_when_peer_ignores_close() -> None:
    with raw_server("ignore") as (port, _):
        ws = connect(f"ws://127.0.0.1:{port}", ping_interval=None, close_timeout=100 * MS)
        start = time.monotonic()
        ws.close()
        assert 80 * MS <= time.monotonic() - start < TIMEOUT
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            ws.send("too late")


def test_flow_control_pauses_reading_and_loses_nothing() -> None:
    count = 200
    # 1 KiB each: more than one read of the socket (64 KiB) can carry, so
    # the reader must pause before the end even if the server wrote them
    # all before the client read any.
    padding = "x" * 1024

    def producer(ws: Any) -> None:
        for i in range(count):
            ws.send(f"{i}{padding}")
        ws.recv()  # wait for the client to finish

    with serving(producer) as server:
        with connect(uri_of(server), max_queue=(8, 2)) as ws:
            deadline = time.monotonic() + TIMEOUT
            while not ws.recv_messages.paused and time.monotonic() < deadline:
                time.sleep(MS)
            assert ws.recv_messages.paused
            # Paused: the reader stopped at the high-water mark, give or take
            # what one read of the socket carried.
            queued = len(ws.recv_messages.frames)
            time.sleep(20 * MS)
            assert len(ws.recv_messages.frames) == queued < count
            assert [ws.recv(TIMEOUT) for _ in range(count)] == [f"{i}{padding}" for i in range(count)]
            ws.send("done")


def test_unbounded_queue() -> None:
    def producer(ws: Any) -> None:
        for i in range(100):
            ws.send(f"{i}")
        ws.recv()

    with serving(producer) as server, connect(uri_of(server), max_queue=None) as ws:
        deadline = time.monotonic() + TIMEOUT
        while len(ws.recv_messages.frames) < 100 and time.monotonic() < deadline:
            time.sleep(MS)
        assert len(ws.recv_messages.frames) == 100
        assert not ws.recv_messages.paused
        assert [ws.recv(TIMEOUT) for _ in range(100)] == [f"{i}" for i in range(100)]
        ws.send("done")


def test_iteration_ends_quietly_on_normal_closure() -> None:
    def two_then_close(ws: Any) -> None:
        ws.send("1")
        ws.send("2")
        ws.close(1001)

    with serving(two_then_close) as server, connect(uri_of(server)) as ws:
        assert list(ws) == ["1", "2"]
        assert ws.close_code == 1001


def test_iteration_raises_on_error_closure() -> None:
    def fail(ws: Any) -> None:
        ws.send("1")
        ws.close(4000, "app error")

    with serving(fail) as server, connect(uri_of(server)) as ws:
        with pytest.raises(ConnectionClosedError) as raised:
            list(ws)
        assert raised.value.rcvd is not None and raised.value.rcvd.code == 4000


def test_close_is_idempotent_and_send_after_close_raises() -> None:
    with serving(echo) as server:
        ws = connect(uri_of(server))
        ws.close()
        ws.close()
        assert ws.closed
        with pytest.raises(ConnectionClosedOK):
            ws.send("x")
        with pytest.raises(ConnectionClosedOK):
            ws.recv()
        with pytest.raises(ConnectionClosedOK):
            ws.ping()


def test_context_manager_closes_with_1011_on_exception() -> None:
    codes: list[int | None] = []

    def handler(ws: Any) -> None:
        try:
            ws.recv()
        except ConnectionClosedError as exc:
            codes.append(exc.rcvd.code if exc.rcvd else None)

    with serving(handler) as server:
        with pytest.raises(RuntimeError), connect(uri_of(server)):
            raise RuntimeError("boom")
        deadline = time.monotonic() + TIMEOUT
        while not codes and time.monotonic() < deadline:
            time.sleep(MS)
    assert codes == [1011]


def test_properties() -> None:
    with serving(echo, subprotocols=["chat"]) as server:
        with connect(uri_of(server, "/path?q=1"), subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.state is State.OPEN
            assert not ws.closed
            assert ws.close_code is None and ws.close_reason is None
            assert ws.local_address[0] == "127.0.0.1"
            assert ws.remote_address == ("127.0.0.1", server.socket.getsockname()[1])
            assert ws.request is not None and ws.request.path == "/path?q=1"
            assert ws.response is not None and ws.response.status_code == 101
            assert ws.request_headers is ws.request.headers
            assert ws.response_headers is ws.response.headers
            assert ws.id is not None
            assert ws.logger.name == "websockets.client"
        assert ws.close_reason == ""


def test_decode_invalid_utf8_fails_with_1007() -> None:
    def handler(ws: Any) -> None:
        ws.send(b"\xff\xfe")
        ws.recv()

    with serving(handler) as server, connect(uri_of(server)) as ws:
        with pytest.raises(ConnectionClosedError) as raised:
            ws.recv(TIMEOUT, decode=True)
        assert raised.value.sent is not None and raised.value.sent.code == 1007
        assert isinstance(raised.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize("data", [[], {}, 42])
def test_ping_and_pong_refuse_other_types(data: Any) -> None:
    """As websockets: a payload is a str or bytes-like, nothing else."""
    with serving(echo) as server, connect(uri_of(server)) as ws:
        with pytest.raises(TypeError):
            ws.ping(data)
        with pytest.raises(TypeError):
            ws.pong(data)
        assert ws.state is State.OPEN


def test_close_timeout_is_the_cause() -> None:
    """A peer that never answers the close frame: close() gives up after
    close_timeout, and the exception's cause is the TimeoutError."""
    with raw_server("ignore") as (port, _received):
        ws = connect(f"ws://127.0.0.1:{port}/", close_timeout=50 * MS)
        ws.close()
        with pytest.raises(ConnectionClosedError) as raised:
            ws.recv(TIMEOUT)
    assert str(raised.value) == "sent 1000 (OK); no close frame received"
    assert isinstance(raised.value.__cause__, TimeoutError)


def test_recv_streaming_during_recv_names_itself() -> None:
    with serving(echo) as server, connect(uri_of(server)) as ws:
        receiver = threading.Thread(target=lambda: ws.recv(TIMEOUT))
        receiver.start()
        deadline = time.monotonic() + TIMEOUT
        while not ws.recv_messages.get_in_progress and time.monotonic() < deadline:
            time.sleep(MS)
        with pytest.raises(ConcurrencyError, match="cannot call recv_streaming while"):
            list(ws.recv_streaming())
        ws.send("wake up")
        receiver.join(TIMEOUT)
