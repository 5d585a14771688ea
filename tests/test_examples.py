"""Runs the programs in examples/ as a user would: each server in its own
process on 127.0.0.1 and a free port, the clients against it, every wait bounded,
and each process stopped by its pid.

The examples are the documentation's runnable code; these tests keep them
working as the API changes.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ferrows.sync.client import connect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(*args: str, stdin: str = "") -> str:
    """Runs an example to completion and returns its standard output."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def server(name: str, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Starts an example server, yields its URI once it listens, then stops it
    with SIGTERM and checks that it exited cleanly."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n") and time.monotonic() < deadline:
                if selector.select(deadline - time.monotonic()):
                    chunk = os.read(proc.stdout.fileno(), 1024)
                    if not chunk:
                        break
                    line += chunk
        assert line.startswith(b"listening on ws://127.0.0.1:"), (line, proc.poll())
        yield line.decode().split()[-1]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        assert b"Traceback" not in stderr, stderr
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_echo_server_with_the_asyncio_client() -> None:
    port = free_port()
    with server("echo_server.py", "--port", str(port)) as uri:
        assert uri == f"ws://127.0.0.1:{port}"
        assert run("client.py", uri, "hello", "café") == "hello\ncafé\n"


def test_echo_server_with_the_threading_client() -> None:
    with server("echo_server.py", env={"PORT": str(free_port())}) as uri:
        assert run("threading_client.py", uri, stdin="one\ntwo three\n") == "one\ntwo three\n"


def test_echo_server_echoes_binary() -> None:
    with server("echo_server.py", "--port", str(free_port())) as uri:
        with connect(uri, open_timeout=TIMEOUT) as websocket:
            websocket.send(b"\x00\xff")
            assert websocket.recv(timeout=TIMEOUT) == b"\x00\xff"


def test_broadcast_server_relays_to_every_client() -> None:
    with server("broadcast_server.py", env={"PORT": str(free_port())}) as uri:
        with connect(uri, open_timeout=TIMEOUT) as first, connect(uri, open_timeout=TIMEOUT) as second:
            assert first.recv(timeout=TIMEOUT) == "you are client 1"
            assert second.recv(timeout=TIMEOUT) == "you are client 2"
            first.send("hi")
            assert first.recv(timeout=TIMEOUT) == "1: hi"
            assert second.recv(timeout=TIMEOUT) == "1: hi"
            second.send("hello")
            assert first.recv(timeout=TIMEOUT) == "2: hello"
            assert second.recv(timeout=TIMEOUT) == "2: hello"


def test_fastapi_app_on_ferrows_asgi() -> None:
    """uvicorn logs its address on stderr and, after its graceful shutdown on
    SIGTERM, re-raises the signal, so the exit status is -SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fastapi_echo.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # until uvicorn listens, bounded by TIMEOUT
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert run("client.py", f"ws://127.0.0.1:{port}", "hello", "café") == "hello\ncafé\n"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGTERM
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        assert b"Traceback" not in stderr, stderr
        assert b'"WebSocket /" [accepted]' in stderr
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()
