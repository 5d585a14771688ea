"""recv_streaming() of the threading layer over real sockets: each fragment
reaches the application as it arrives, before the peer sent the next one,
compressed or not; max_size bounds the whole message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websockets.exceptions
import websockets.sync.client

from ferrows.exceptions import ConnectionClosedError

from .utils import TIMEOUT, serving, uri_of


@pytest.mark.parametrize("compression", ["deflate", None])
def test_fragments_arrive_before_the_last_is_sent(compression: str | None) -> None:
    gate = threading.Event()
    received: list[Any] = []

    def handler(ws: Any) -> None:
        for fragment in ws.recv_streaming():
            received.append(fragment)
            gate.set()  # the peer sends the rest only now
        received.append(ws.recv(TIMEOUT))
        ws.send("done")

    def fragments() -> Iterator[str]:
        yield "😀 first, "
        assert gate.wait(TIMEOUT)
        yield "last"

    with serving(handler, compression=compression) as server:
        with websockets.sync.client.connect(uri_of(server), compression=compression) as client:
            client.send(fragments())
            client.send([b"whole ", b"message"])
            assert client.recv(TIMEOUT) == "done"
    assert received == ["😀 first, ", "last", "", b"whole message"]


def test_max_size_bounds_the_whole_message() -> None:
    outcome: list[Any] = []

    def handler(ws: Any) -> None:
        try:
            for fragment in ws.recv_streaming():
                outcome.append(fragment)
        except ConnectionClosedError as exc:
            outcome.append(exc.sent.code if exc.sent else None)

    with serving(handler, max_size=10) as server:
        with websockets.sync.client.connect(uri_of(server)) as client:
            # The server may fail the connection before the client has sent
            # its final (empty) fragment: then send() raises, else recv().
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                client.send([b"12345678", b"90ab"])
                client.recv(TIMEOUT)
    assert outcome == [b"12345678", 1009]
