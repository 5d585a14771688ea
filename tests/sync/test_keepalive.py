"""websockets' keepalive surface on the threading layer: start_keepalive()
and keepalive_thread; and its failure semantics: a socket object's own
methods are called (a wrapper works), unexpected protocol errors close the
connection, a failed handshake ends the reading thread at once."""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any
from unittest.mock import Mock, patch

import pytest

from ferrows.exceptions import ConnectionClosedError
from ferrows.protocol import CONNECTING, SERVER, Protocol
from ferrows.sync.connection import Connection
from frame_utils import PING, client_frame, parse_frames

from .utils import TIMEOUT

MS = 0.001


def pair(**kwargs: Any) -> tuple[Connection, socket.socket]:
    """A server connection over a socketpair, and the raw socket of its peer."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(TIMEOUT)
    return Connection(ours, Protocol(SERVER), **kwargs), theirs


def test_keepalive_thread_pings_and_times_out() -> None:
    connection, peer = pair(ping_interval=None, close_timeout=TIMEOUT)
    connection.start_keepalive()
    assert connection.keepalive_thread is None, "no interval, no thread"
    connection.ping_interval, connection.ping_timeout = 5 * MS, 5 * MS
    with patch("random.getrandbits", side_effect=itertools.count(1918987876)):
        connection.start_keepalive()
        frames = parse_frames(peer.recv(65536))
    assert frames[0][:2] == (PING, b"rand")
    # No pong: the thread fails the connection with 1011 and ends.
    while not any(f[0] == 8 for f in frames):
        frames += parse_frames(peer.recv(65536))
    assert frames[-1][1][:2] == (1011).to_bytes(2, "big")
    assert connection.keepalive_thread is not None
    connection.keepalive_thread.join(TIMEOUT)
    assert not connection.keepalive_thread.is_alive()
    peer.close()
    connection.close_socket()


def test_keepalive_thread_ends_with_the_connection() -> None:
    connection, peer = pair(ping_interval=None)
    connection.ping_interval = 1.0
    connection.start_keepalive()
    assert connection.keepalive_thread is not None and connection.keepalive_thread.is_alive()
    peer.close()
    connection.close_socket()
    connection.keepalive_thread.join(TIMEOUT)
    assert not connection.keepalive_thread.is_alive()


def test_a_wrapped_socket_failing_to_write() -> None:
    """The socket's own methods are called: a wrapper's failure is the cause."""
    connection, peer = pair()
    connection.socket = Mock(wraps=connection.socket)
    connection.socket.sendall.side_effect = BrokenPipeError
    with pytest.raises(ConnectionClosedError) as raised:
        connection.pong()
    assert isinstance(raised.value.__cause__, BrokenPipeError)
    peer.close()


def test_unexpected_errors_close_the_connection() -> None:
    connection, peer = pair()
    with patch.object(Protocol, "send_text", side_effect=AssertionError):
        with pytest.raises(ConnectionClosedError) as raised:
            connection.send("text")
    assert isinstance(raised.value.__cause__, AssertionError)
    peer.close()
    connection, peer = pair()
    with patch.object(Protocol, "events_received", side_effect=AssertionError):
        peer.sendall(client_frame(1, b"hi"))
        with pytest.raises(ConnectionClosedError) as raised:
            connection.recv(TIMEOUT)
    assert isinstance(raised.value.__cause__, AssertionError)
    peer.close()


def test_failed_handshake_ends_the_reading_thread_at_once() -> None:
    ours, theirs = socket.socketpair()
    protocol = Protocol(SERVER, state=CONNECTING)
    protocol.send_eof()
    connection = Connection(ours, protocol, close_timeout=TIMEOUT)
    start = time.monotonic()
    theirs.sendall(b"\x00")
    connection.recv_events_thread.join(TIMEOUT)
    assert not connection.recv_events_thread.is_alive()
    assert time.monotonic() - start < TIMEOUT / 2
    theirs.close()
    connection.close_socket()
