"""``python -m ferrows serve MODULE:HANDLER --workers N``: the supervisor and
its workers, driven as a user would, in subprocesses stopped by their pid."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ferrows.exceptions import ConnectionClosed
from ferrows.supervisor import import_handler
from ferrows.sync.client import connect
from redis_server import free_port

APP = """\
import asyncio, os

async def handler(websocket):
    await websocket.send(str(os.getpid()))
    async for message in websocket:
        await websocket.send(message)

not_callable = 42
"""


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / "scale_app.py").write_text(textwrap.dedent(APP))
    return tmp_path


class Served:
    """``python -m ferrows serve ...`` with its output read line by line."""

    def __init__(self, app_dir, *args):
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(app_dir), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferrows", "serve", *args, "--port", str(self.port), "--shutdown-timeout", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern, timeout=20.0):
        """The first line matching ``pattern`` among the next ones."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            match = re.fullmatch(pattern, line)
            if match:
                return match

    def pid_answering(self):
        with connect(f"ws://127.0.0.1:{self.port}", open_timeout=10) as websocket:
            return int(websocket.recv(timeout=10))

    def pids_answering(self, wanted, tries=100):
        """Connects until every pid of ``wanted`` answered (the kernel
        spreads connections over the workers by hash)."""
        seen = set()
        for _ in range(tries):
            seen.add(self.pid_answering())
            if wanted <= seen:
                return seen
        return seen

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def served(app_dir):
    started = []

    def start(*args):
        started.append(Served(app_dir, *args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_two_workers_restart_reload_and_stop(served):
    server = served("scale_app:handler", "--workers", "2")
    pids = {int(server.expect(r"Worker (\d+) ready\.")[1]) for _ in range(2)}
    server.expect(rf"Serving scale_app:handler on ws://127.0.0.1:{server.port} with 2 workers .*")
    assert server.pids_answering(pids) == pids

    # A worker killed is replaced.
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    server.expect(rf"Worker {victim} exited with signal 9; restarting( in [0-9.]+ s)?\.")
    replacement = int(server.expect(r"Worker (\d+) ready\.")[1])
    pids = pids - {victim} | {replacement}
    assert server.pids_answering(pids) == pids

    # SIGHUP: each worker replaced once its successor listens.
    server.process.send_signal(signal.SIGHUP)
    server.expect("Restarting workers one at a time.")
    new = set()
    for _ in range(2):
        match = server.expect(r"Worker (\d+) ready; stopping worker (\d+)\.")
        new.add(int(match[1]))
        assert int(match[2]) in pids
    assert server.pids_answering(new) == new

    # SIGTERM: every connection, on either worker, is closed with 1001.
    clients, answered = [], set()
    for _ in range(100):
        client = connect(f"ws://127.0.0.1:{server.port}", open_timeout=10)
        clients.append(client)
        answered.add(int(client.recv(timeout=10)))
        if answered == new and len(clients) >= 4:
            break
    assert answered == new
    server.process.send_signal(signal.SIGTERM)
    try:
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=10)
            assert closed.value.rcvd.code == 1001
    finally:
        for client in clients:
            client.close()
    assert server.process.wait(timeout=15) == 0
    server.expect("Server stopped.")


def test_one_worker_in_process_closes_with_1001(served):
    server = served("scale_app:handler")
    server.expect(rf"Serving scale_app:handler on ws://127.0.0.1:{server.port} \(Ctrl-C to stop\)\.")
    client = connect(f"ws://127.0.0.1:{server.port}", open_timeout=10)
    try:
        assert int(client.recv(timeout=10)) == server.process.pid
        client.send("ping?")
        assert client.recv(timeout=10) == "ping?"
        server.process.send_signal(signal.SIGINT)
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd.code == 1001
    finally:
        client.close()
    assert server.process.wait(timeout=15) == 0


def test_demo_echo_with_workers(served):
    server = served("--workers", "2")
    server.expect(r"Serving ferrows.__main__:_echo on ws://127.0.0.1:\d+ with 2 workers .*")
    with connect(f"ws://127.0.0.1:{server.port}", open_timeout=10) as websocket:
        websocket.send("echo")
        assert websocket.recv(timeout=10) == "echo"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["no_such_module_here:handler", "--workers", "2"],
            1,
            "cannot load no_such_module_here:handler: No module named",
        ),
        (["scale_app:missing"], 1, "module 'scale_app' has no attribute 'missing'"),
        (["scale_app:not_callable"], 1, "scale_app:not_callable is not callable"),
        (["scale_app"], 1, "handler must be given as MODULE:HANDLER, not 'scale_app'"),
        (["scale_app:handler", "--workers", "0"], 2, "--workers must be at least 1, not 0"),
    ],
)
def test_bad_arguments(served, args, status, message):
    server = served(*args)
    assert server.process.wait(timeout=15) == status
    assert message in server.process.stderr.read()


def test_port_in_use(served, app_dir):
    first = served("scale_app:handler")
    first.expect(r"Serving .*")
    env = dict(os.environ, PYTHONPATH=str(app_dir))
    result = subprocess.run(
        [sys.executable, "-m", "ferrows", "serve", "scale_app:handler", "--workers", "2", "--port", str(first.port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}:" in result.stderr


def test_import_handler_with_dotted_attribute():
    assert import_handler("ferrows.supervisor:import_handler") is import_handler
    assert import_handler("os.path:join.__call__") is not None
