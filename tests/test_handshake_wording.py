"""Opening handshakes that are not HTTP, on every I/O layer: refused as
soon as the start line is complete, with websockets' exceptions and words."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import ferrows
import ferrows.sync.client
from ferrows.exceptions import InvalidMessage

from .hostile_peer import LAYERS, LOOPS, TIMEOUT, ferrows_server


@pytest.mark.parametrize("layer", LAYERS)
def test_server_refuses_a_request_line_that_is_not_http(layer: str) -> None:
    with ferrows_server(layer) as port, socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        start = time.monotonic()
        # A line and no headers: the server must not wait for them (its
        # open_timeout is 10 s).
        sock.sendall(b"HELO relay.invalid\r\n")
        assert sock.recv(4096) == b"", "closed without an HTTP answer"
        assert time.monotonic() - start < 2.0


@contextlib.contextmanager
def junk_server(junk: bytes) -> Iterator[int]:
    """A server that answers one client's request with ``junk``, then waits
    for the client to close; with no junk, it closes at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            if not junk:
                return
            conn.sendall(junk)
            while conn.recv(4096):
                pass

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(3 * TIMEOUT)
        listener.close()
        assert not thread.is_alive()


def connect(layer: str, port: int) -> None:
    uri = f"ws://127.0.0.1:{port}"
    if layer == "sync":
        with ferrows.sync.client.connect(uri, open_timeout=TIMEOUT):
            pass
        return

    async def main() -> None:
        async with ferrows.connect(uri, open_timeout=TIMEOUT):
            pass

    with asyncio.Runner(loop_factory=LOOPS[layer]) as runner:
        runner.run(main())


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(
    ("junk", "message"),
    [
        (
            b"220 smtp.invalid ESMTP Postfix\r\n",
            "unsupported protocol; expected HTTP/1.1: 220 smtp.invalid ESMTP Postfix",
        ),
        (b"220 smtp.invalid\r\n", "invalid HTTP status line: 220 smtp.invalid"),
    ],
)
def test_client_refuses_a_response_that_is_not_http(layer: str, junk: bytes, message: str) -> None:
    with junk_server(junk) as port, pytest.raises(InvalidMessage) as raised:
        connect(layer, port)
    assert str(raised.value) == "did not receive a valid HTTP response"
    assert type(raised.value.__cause__) is ValueError
    assert str(raised.value.__cause__) == message


@pytest.mark.parametrize("layer", LAYERS)
def test_client_reports_eof_before_the_status_line(layer: str) -> None:
    # The server closes right after the request, answering nothing.
    with junk_server(b"") as port, pytest.raises(InvalidMessage) as raised:
        connect(layer, port)
    assert type(raised.value.__cause__) is EOFError
    assert str(raised.value.__cause__) == "connection closed while reading HTTP status line"
