"""Several server processes on one port: :func:`run`, behind
``python -m ferrows serve MODULE:HANDLER --workers N``.

A ferrows server is one event loop, so it uses about one core. :func:`run`
starts ``workers`` processes that accept connections on the same port and
supervises them:

- Each worker listens with ``SO_REUSEPORT`` where the platform has it, so
  that the kernel spreads new connections over them; elsewhere the parent
  opens one listening socket and every worker inherits it.
- A worker that dies is started again (after a delay that grows while
  workers keep dying young, up to 5 s).
- SIGTERM or SIGINT stops the workers: each closes its connections with 1001
  (going away) and waits for its handlers, for at most ``shutdown_timeout``
  seconds; a worker still running after that is killed. The parent then
  exits with status 0.
- SIGHUP restarts the workers one at a time, each replaced once its
  successor listens, so that the port is never without a listener: a
  rolling restart, for example to load new code.

Workers are new interpreters (``python -m ferrows.supervisor``), not forks,
so the handler is named by its import path, ``"module:attribute"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any

__all__ = ["import_handler", "run"]

# A worker that dies within this many seconds of starting counts as dying
# young: its restart waits, so that a handler failing at import does not spin.
_YOUNG = 1.0
_MAX_RESTART_DELAY = 5.0
_READY = b"r"


def import_handler(spec: str) -> Callable[[Any], Awaitable[None]]:
    """The handler named by ``"module:attribute"`` (dots allowed in both).

    Raises:
        ValueError: If ``spec`` has no ``:`` or either side is empty.
        ImportError: If the module can't be imported.
        AttributeError: If the module has no such attribute.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"handler must be given as MODULE:HANDLER, not {spec!r}")
    value: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        try:
            value = getattr(value, name)
        except AttributeError:
            raise AttributeError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(value):
        raise TypeError(f"{spec} is not callable")
    handler: Callable[[Any], Awaitable[None]] = value
    return handler


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ worker


async def serve_until_stopped(
    handler: Callable[[Any], Awaitable[None]],
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
    shutdown_timeout: float = 10.0,
    ready: Callable[[int], None] | None = None,
    watch_parent: bool = False,
) -> None:
    """Serves until SIGTERM or SIGINT, then closes connections with 1001,
    waiting for handlers at most ``shutdown_timeout`` seconds. Calls
    ``ready(port)`` once listening. With ``watch_parent``, also stops when
    the parent process is gone (a worker whose supervisor was killed)."""
    from .asyncio.server import serve

    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    if sock is not None:
        server = await serve(handler, sock=sock, close_timeout=shutdown_timeout)
    else:
        server = await serve(handler, host, port, reuse_port=reuse_port, close_timeout=shutdown_timeout)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    parent = os.getppid()
    while not stop.done():
        await asyncio.wait([stop], timeout=1.0)
        if watch_parent and os.getppid() != parent:
            break
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), shutdown_timeout)
    except TimeoutError:
        pass


def _worker_main(argv: Sequence[str]) -> int:
    """``python -m ferrows.supervisor SPEC HOST PORT FD READY_FD TIMEOUT``:
    one worker; FD is the inherited listening socket, or -1 to bind with
    ``SO_REUSEPORT``; READY_FD is a pipe the worker writes to once it listens."""
    spec, host, port, fd, ready_fd, timeout = argv
    handler = import_handler(spec)
    sock = socket.socket(fileno=int(fd)) if int(fd) >= 0 else None

    def ready(_: int) -> None:
        os.write(int(ready_fd), _READY)
        os.close(int(ready_fd))

    asyncio.run(
        serve_until_stopped(
            handler,
            host,
            int(port),
            sock=sock,
            reuse_port=sock is None,
            shutdown_timeout=float(timeout),
            ready=ready,
            watch_parent=True,
        )
    )
    return 0


# -------------------------------------------------------------- supervisor


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], ready: int) -> None:
        self.process = process
        self.ready = ready  # read end of the worker's ready pipe
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker listens; False if it died or timed out."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.ready], [], [], min(remaining, 0.5))
            if readable:
                return os.read(self.ready, 1) == _READY
            if self.process.poll() is not None:
                return False
        return False

    def close_pipe(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.ready)


class _Supervisor:
    def __init__(self, spec: str, host: str, port: int, workers: int, shutdown_timeout: float) -> None:
        self.spec = spec
        self.host = host
        self.shutdown_timeout = shutdown_timeout
        self.count = workers
        self.workers: list[_Worker] = []
        self.stopping = False
        self.reloading = False
        self.young_deaths = 0
        # With SO_REUSEPORT, a bound socket that never listens holds the
        # port (and resolves port 0) while workers bind their own.
        self.shared = not hasattr(socket, "SO_REUSEPORT")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if not self.shared:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((host, port))
        if self.shared:
            self.sock.listen(1024)
            self.sock.set_inheritable(True)
        self.port: int = self.sock.getsockname()[1]

    def spawn(self) -> _Worker:
        read, write = os.pipe()
        fd = self.sock.fileno() if self.shared else -1
        command = [
            sys.executable,
            "-m",
            "ferrows.supervisor",
            self.spec,
            self.host,
            str(self.port),
            str(fd),
            str(write),
            str(self.shutdown_timeout),
        ]
        pass_fds = (write, fd) if self.shared else (write,)
        process = subprocess.Popen(command, pass_fds=pass_fds)
        os.close(write)
        return _Worker(process, read)

    def stop_worker(self, worker: _Worker) -> None:
        """SIGTERM, then SIGKILL once the shutdown timeout (and a margin
        for the interpreter's exit) has passed."""
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(self.shutdown_timeout + 2)
        except subprocess.TimeoutExpired:
            _print(f"Worker {worker.pid} did not stop in time; killing it.")
            worker.process.kill()
            worker.process.wait(10)
        worker.close_pipe()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reloading = True
        else:
            self.stopping = True

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            for _ in range(self.count):
                self.workers.append(self.spawn())
            for worker in self.workers:
                if worker.wait_ready(30):
                    _print(f"Worker {worker.pid} ready.")
            _print(
                f"Serving {self.spec} on ws://{self.host}:{self.port} with {self.count} workers "
                f"(SIGTERM or Ctrl-C stops, SIGHUP restarts them)."
            )
            while not self.stopping:
                if self.reloading:
                    self.reloading = False
                    self.rolling_restart()
                self.replace_dead()
                time.sleep(0.1)
            _print("Stopping workers.")
            for worker in self.workers:
                if worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGTERM)
            for worker in self.workers:
                self.stop_worker(worker)
            _print("Server stopped.")
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self.workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait(10)
            self.sock.close()

    def replace_dead(self) -> None:
        for index, worker in enumerate(self.workers):
            status = worker.process.poll()
            if status is None or self.stopping:
                continue
            worker.close_pipe()
            how = f"signal {-status}" if status < 0 else f"status {status}"
            if time.monotonic() - worker.started < _YOUNG:
                self.young_deaths += 1
                delay = min(0.1 * 2**self.young_deaths, _MAX_RESTART_DELAY)
                _print(f"Worker {worker.pid} exited with {how}; restarting in {delay:.1f} s.")
                time.sleep(delay)
            else:
                self.young_deaths = 0
                _print(f"Worker {worker.pid} exited with {how}; restarting.")
            self.workers[index] = new = self.spawn()
            if new.wait_ready(30):
                _print(f"Worker {new.pid} ready.")

    def rolling_restart(self) -> None:
        _print("Restarting workers one at a time.")
        for index, old in enumerate(list(self.workers)):
            if self.stopping:
                return
            new = self.spawn()
            if not new.wait_ready(30):
                _print(f"Worker {new.pid} did not start; keeping worker {old.pid}.")
                self.stop_worker(new)
                continue
            self.workers[index] = new
            _print(f"Worker {new.pid} ready; stopping worker {old.pid}.")
            self.stop_worker(old)


def run(
    handler: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    workers: int = 1,
    shutdown_timeout: float = 10.0,
) -> int:
    """Serves ``handler`` on ``host:port`` until SIGTERM or SIGINT; returns
    the exit status (0 after a clean stop).

    With ``workers=1`` the server runs in this process; with more, in that
    many supervised worker processes (see this module's docstring).

    Args:
        handler: Import path of the connection handler, ``"module:handler"``.
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.
        workers: Number of server processes.
        shutdown_timeout: Seconds a stopping server waits for its
            connections to close (with 1001) and handlers to return.

    Raises:
        ValueError: If ``workers`` is below 1 or ``handler`` is malformed.
        ImportError: If the handler's module can't be imported.
        OSError: If the address can't be bound (in use, not local).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    # Import in the parent too: a typo fails here once, not in each worker.
    callable_handler = import_handler(handler)
    if workers == 1:

        def ready(bound: int) -> None:
            _print(f"Serving {handler} on ws://{host}:{bound} (Ctrl-C to stop).")

        asyncio.run(serve_until_stopped(callable_handler, host, port, shutdown_timeout=shutdown_timeout, ready=ready))
        _print("Server stopped.")
        return 0
    return _Supervisor(handler, host, port, workers, shutdown_timeout).run()


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
