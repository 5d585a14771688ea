"""``gunicorn -k ferrows.gunicorn.Worker module:handler``: gunicorn started in
a subprocess, talked to with a ferrows client, stopped by its pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ferrows.exceptions import ConnectionClosed
from ferrows.sync.client import connect
from redis_server import free_port

APP = """\
import os

async def handler(websocket):
    await websocket.send(f"{os.getpid()} {websocket.request.path}")
    async for message in websocket:
        await websocket.send(message)
"""


@pytest.fixture
def gunicorn(tmp_path):
    (tmp_path / "gunicorn_app.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn",
            "-k", "ferrows.gunicorn.Worker",
            "-w", "2",
            "-b", f"127.0.0.1:{port}",
            "--graceful-timeout", "5",
            "--timeout", "4",
            "--chdir", str(tmp_path),
            "gunicorn_app:handler",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )  # fmt: skip
    try:
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


def connect_when_up(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect(f"ws://127.0.0.1:{port}/chat", open_timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_gunicorn_serves_the_handler_and_stops_with_1001(gunicorn):
    port, process = gunicorn
    clients = [connect_when_up(port) for _ in range(4)]
    try:
        pids = set()
        for client in clients:
            pid, path = client.recv(timeout=10).split()
            assert path == "/chat"
            pids.add(int(pid))
            client.send("héllo")
            assert client.recv(timeout=10) == "héllo"
        assert process.pid not in pids  # workers answer, not the arbiter
        # Longer than gunicorn's --timeout: the heartbeat keeps workers alive.
        time.sleep(4.5)
        clients[0].send("still there")
        assert clients[0].recv(timeout=10) == "still there"
        process.send_signal(signal.SIGTERM)
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=10)
            assert closed.value.rcvd.code == 1001
    finally:
        for client in clients:
            client.close()
    assert process.wait(timeout=15) == 0
    _, err = process.communicate(timeout=10)
    assert "Booting worker with pid" in err
    assert "Traceback" not in err
