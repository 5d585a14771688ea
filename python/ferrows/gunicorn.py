"""A gunicorn worker class that serves a ferrows handler:
``gunicorn -k ferrows.gunicorn.Worker module:handler``.

For deployments that already run gunicorn (its process management, its
configuration files, its hooks). The application gunicorn loads is the
connection handler itself, ``async def handler(websocket)``, as
:func:`~ferrows.asyncio.server.serve` takes it; each worker runs one asyncio
event loop serving gunicorn's listening sockets.

gunicorn's signals keep their meaning: SIGTERM (and SIGINT, SIGQUIT) stop the
worker, which closes its connections with 1001 (going away) and waits for its
handlers for at most ``--graceful-timeout`` seconds; the worker tells the
arbiter it is alive every ``--timeout / 2`` seconds, and stops if the arbiter
is gone. gunicorn is an optional dependency: ``pip install "ferrows[gunicorn]"``.
"""

from __future__ import annotations

import asyncio
import os
import signal

from gunicorn.sock import ssl_context  # type: ignore[import-untyped]
from gunicorn.workers.base import Worker as _BaseWorker  # type: ignore[import-untyped]

from .asyncio.server import Server, serve

__all__ = ["Worker"]


class Worker(_BaseWorker):  # type: ignore[misc]
    """gunicorn worker running a ferrows server on the arbiter's sockets."""

    def run(self) -> None:
        """Serves until stopped. gunicorn's own handlers exit at once on
        SIGINT and SIGQUIT; the event loop's, set here, replace them (and
        SIGTERM's) with a graceful stop; SIGUSR1 (reopen logs) stays gunicorn's."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            self.alive = False
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, request_stop)
        graceful: float = self.cfg.graceful_timeout
        # gunicorn's --certfile/--keyfile make its sockets TLS ones.
        tls = ssl_context(self.cfg) if self.cfg.is_ssl else None
        servers: list[Server] = []
        for listener in self.sockets:
            servers.append(await serve(self.wsgi, sock=listener.sock, ssl=tls, close_timeout=graceful))
        heartbeat = max(self.timeout / 2, 0.1) if self.timeout else 1.0
        while self.alive and not stop.done():
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            await asyncio.wait([stop], timeout=heartbeat)
        for server in servers:
            server.close()
        try:
            await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in servers)), graceful)
        except TimeoutError:
            self.log.warning("connections still open after %s s: closing anyway", graceful)
