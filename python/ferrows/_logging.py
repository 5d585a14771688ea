"""Where ferrows logs.

ferrows logs to the ``websockets.client`` and ``websockets.server`` loggers,
the names websockets uses (its asyncio and threading layers too: there is no
``websockets.asyncio.*`` logger), not to ``ferrows.*``. ferrows is meant to replace
websockets with ``import ferrows as websockets`` and nothing else: the logging
configuration an application wrote for websockets (a level on
``"websockets"``, a handler on ``"websockets.server"``, the
:class:`~logging.NullHandler` websockets' guide suggests to silence it) must
keep applying unchanged. Logging to ``ferrows.*`` would bypass all of it
silently; logging to both would print every record twice through
propagation to the root logger. An application that wants ferrows' records
apart passes ``logger=`` to :func:`~ferrows.asyncio.server.serve` or
:func:`~ferrows.asyncio.client.connect`.

``logger=`` takes a :class:`~logging.Logger` or a
:class:`~logging.LoggerAdapter`, as in websockets, or a logger name. Each
connection wraps it in a :class:`~logging.LoggerAdapter` whose ``extra`` is
``{"websocket": connection}``, so that records (and an application's own
adapter, in its ``process()``) can tell which connection they are about.

The records and their levels are websockets': ERROR for exceptions of the
application's code (handler, ``process_request``, ``process_response``);
WARNING for skipped broadcasts; INFO for a server starting and stopping and
for each connection opening (``connection open``), refused (``connection
rejected`` after :meth:`~ferrows.server.ServerProtocol.accept`, ``HTTP
response sent`` for a response of ``process_request``) and closing
(``connection closed``); DEBUG for the handshake's lines and headers, every
frame, state change and EOF, keepalive pings, and failures handled without
the application (a request that isn't HTTP, a limit exceeded). DEBUG
records cost nothing unless DEBUG was enabled when the connection was
created: that is checked once, as in websockets.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping

from .typing import LoggerLike

__all__ = ["CLIENT_LOGGER", "SERVER_LOGGER", "ConnectionLogger", "connection_logger", "get_logger"]

CLIENT_LOGGER = "websockets.client"
"""Name of the default logger of clients."""

SERVER_LOGGER = "websockets.server"
"""Name of the default logger of servers."""


def get_logger(logger: LoggerLike | str | None, default: str) -> LoggerLike:
    """The logger to use for ``logger=``: itself, the logger of that name,
    or the ``default`` one for :obj:`None`."""
    if logger is None:
        return logging.getLogger(default)
    if isinstance(logger, str):
        return logging.getLogger(logger)
    return logger


class ConnectionLogger(logging.LoggerAdapter[LoggerLike]):
    """A connection's logger: ``extra`` is ``{"websocket": connection}``.

    It holds the connection by weak reference: a strong one would be a
    reference cycle (connection, logger, connection), and closed connections
    must be freed by reference counting rather than wait for the cyclic
    garbage collector.
    """

    def __init__(self, logger: LoggerLike, connection: object) -> None:
        super().__init__(logger)
        self._connection = weakref.ref(connection)

    @property
    def extra(self) -> Mapping[str, object]:
        """What records carry: the connection, as ``websocket``."""
        return {"websocket": self._connection()}

    @extra.setter
    def extra(self, value: Mapping[str, object] | None) -> None:
        """Set by :class:`~logging.LoggerAdapter` itself: ignored."""


def connection_logger(logger: LoggerLike, connection: object) -> ConnectionLogger:
    """``logger`` carrying ``connection`` as the records' ``websocket``
    attribute, as websockets' connections do."""
    return ConnectionLogger(logger, connection)
