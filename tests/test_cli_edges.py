"""Rough edges of the command line: signals during the demo server's
shutdown, failure messages without text, and ``ferrows serve --help``.
Subprocesses, as a user runs them (see test_main.py)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from .test_main import free_port, wait_for_port

TIMEOUT = 10.0


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    deadline = time.monotonic() + TIMEOUT
    while marker not in data:
        assert time.monotonic() < deadline, data
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data


def open_websocket(port: int) -> tuple[socket.socket, bytes]:
    """A hand-written client: it completes the handshake, then answers
    nothing until told to, which holds the server's shutdown open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = read_until(sock, b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, rest


def test_second_sigint_during_shutdown_is_harmless() -> None:
    """The first SIGINT starts the shutdown (the server sends 1001); a
    second one, and a SIGTERM, while the server waits for the client's
    close frame, neither print an error nor stop the shutdown short."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ferrows", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port)
        sock, rest = open_websocket(port)
        with sock:
            os.kill(server.pid, signal.SIGINT)
            # Close frame, 1001 (going away): the shutdown is under way.
            data = read_until(sock, struct.pack("!H", 1001), rest)
            assert data[0] == 0x88, data
            os.kill(server.pid, signal.SIGINT)
            os.kill(server.pid, signal.SIGTERM)
            time.sleep(0.2)  # let the server's loop handle both signals
            assert server.poll() is None  # still waiting for the close frame
            mask = os.urandom(4)
            payload = struct.pack("!H", 1001)
            sock.sendall(
                bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            )
            # As a client does: wait for the server's end of the TCP
            # connection, then close ours (else the server waits for it
            # until its close timeout, as long as this test's own).
            sock.settimeout(TIMEOUT)
            while sock.recv(4096):
                pass
        out, err = server.communicate(timeout=TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=TIMEOUT)
    assert server.returncode == 0, err
    assert err == ""
    assert "Server stopped." in out


def test_serve_help_documents_options_and_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ferrows", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "FERROWS_DEMO_PORT": "9999"},
    )
    assert result.returncode == 0
    text = result.stdout
    for option in ("--host HOST", "--port PORT"):
        assert option in text
    assert "(default: 127.0.0.1)" in text
    assert "(default: 9999)" in text  # the environment's default, shown as such
    for variable in ("FERROWS_DEMO_HOST", "FERROWS_DEMO_PORT", "WEBSOCKETS_SERVER"):
        assert variable in text


def test_serve_honours_its_environment_variables() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ferrows", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FERROWS_DEMO_HOST": "127.0.0.1", "FERROWS_DEMO_PORT": str(port)},
    )
    try:
        wait_for_port(port)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=TIMEOUT)
    assert f"Echo server on ws://127.0.0.1:{port}" in out, err


def test_failure_without_a_message_names_the_exception() -> None:
    """``Failed to connect to wss://...: .`` said nothing: an exception
    with an empty message is shown by its type."""
    from ferrows.__main__ import _reason

    assert _reason(TimeoutError()) == "TimeoutError"
    assert _reason(ConnectionResetError()) == "ConnectionResetError"
    assert _reason(OSError("no route")) == "no route"


def test_connection_refused_is_reported_with_its_reason() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "ferrows", f"ws://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 1
    line = result.stdout.strip()
    assert line.startswith(f"Failed to connect to ws://127.0.0.1:{port}: ")
    assert not line.endswith(": .")
