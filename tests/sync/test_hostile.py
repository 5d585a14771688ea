"""Hostile handshakes against the threading server: the same requests as
tests/asyncio/test_hostile.py get the same answers, in bounded time, with
no traceback in the logs."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from ..asyncio.test_hostile import HANDSHAKE_CASES, case_bytes, check_response, request
from .utils import MS, TIMEOUT, echo, serving, uri_of


def port_of(server: Any) -> int:
    return int(uri_of(server).rsplit(":", 1)[1].rstrip("/"))


def exchange(port: int, data: bytes) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        start = time.monotonic()
        sock.sendall(data)
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            response = b"<reset>"
        return response, time.monotonic() - start


@pytest.mark.parametrize(
    ("data", "status", "headers"),
    [pytest.param(data, status, headers, id=name) for name, data, status, headers in HANDSHAKE_CASES],
)
def test_hostile_handshake(data: bytes, status: int | None, headers: dict[str, str], no_tracebacks: None) -> None:
    handled: list[Any] = []
    with serving(handled.append, open_timeout=TIMEOUT) as server:
        response, elapsed = exchange(port_of(server), case_bytes(data))
        check_response(response, status, headers)
        assert elapsed < 1.0
    assert handled == []


def test_client_dripping_bytes_is_dropped_at_open_timeout(no_tracebacks: None) -> None:
    open_timeout = 200 * MS
    with serving(echo, open_timeout=open_timeout) as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=TIMEOUT) as sock:
            sock.settimeout(20 * MS)
            start = time.monotonic()
            closed_at = None
            for byte in request():
                try:
                    sock.sendall(bytes([byte]))
                    chunk = sock.recv(1)
                except TimeoutError:
                    continue
                except ConnectionError:
                    chunk = b""
                assert chunk == b""
                closed_at = time.monotonic() - start
                break
        assert closed_at is not None, "the whole request went through"
        assert open_timeout * 0.8 <= closed_at < open_timeout + 0.5
