"""asyncio WebSocket server: :func:`serve`, :class:`Server`,
:class:`ServerConnection`, :func:`broadcast` and :func:`basic_auth`."""

from __future__ import annotations

import asyncio
import http
import re
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any, Self, overload

from .._logging import SERVER_LOGGER, get_logger
from ..auth import HANDLER_ATTRIBUTE, BasicAuth, Credentials, dispatch_basic_auth
from ..datastructures import HeadersLike
from ..exceptions import ConnectionClosed
from ..extensions.base import ServerExtensionFactory
from ..extensions.permessage_deflate import server_extensions
from ..frames import CloseCode
from ..headers import validate_subprotocols
from ..http11 import SERVER, Request, Response
from ..memory import release_after_closes
from ..protocol import CONNECTING, OPEN
from ..server import (
    COMPACT_INTERVAL,
    ServerProtocol,
    add_response_headers,
    compact_idle,
    connection_selector,
)
from ..typing import LoggerLike, Origin, PathLike, StatusLike, Subprotocol
from .connection import Connection, broadcast

__all__ = ["Server", "ServerConnection", "basic_auth", "broadcast", "serve", "unix_serve"]


class ServerConnection(Connection):
    """A server-side WebSocket connection.

    Created by :func:`serve` for each client; the handler receives it once
    the opening handshake succeeded.
    """

    __slots__ = ("_task", "server", "username")

    def __init__(self, protocol: ServerProtocol, server: Server, **kwargs: Any) -> None:
        """Takes the keyword arguments of :class:`~ferrows.asyncio.connection.Connection`."""
        super().__init__(protocol, **kwargs)
        self.server = server
        self.username: str | None = None
        """Username set by :func:`basic_auth` once authenticated."""
        self._task: asyncio.Task[None] | None = None

    def respond(self, status: StatusLike, text: str) -> Response:
        """Builds a plain-text HTTP response, for ``process_request``.

        Example: ``return connection.respond(http.HTTPStatus.FORBIDDEN, "No\\n")``.
        """
        assert isinstance(self.protocol, ServerProtocol)
        return self.protocol.reject(status, text)

    # -------------------------------------------------------- handshake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server._register(self)
        self.server._handshake_started(self)

    def _open_timed_out(self) -> None:
        """Drops a client that did not complete the handshake in time."""
        if self.protocol.state is CONNECTING and not self._lost:
            if self.debug:
                self.logger.debug("! timed out during opening handshake")
            self.transport.abort()

    def _handshake_data(self, data: bytes | memoryview) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()
        if events and self._task is None:
            request = events[0]
            assert isinstance(request, Request)
            self._task = self.loop.create_task(self._run(request))
            # For the server's shutdown to wait for; _run() takes it out
            # (a done callback would cost every connection 140 bytes).
            self.server._tasks.add(self._task)

    async def _run(self, request: Request) -> None:
        try:
            self.request = request
            try:
                response = await self.server._handshake_response(self, request)
                if self._lost:
                    return
                self.response = response
                assert isinstance(self.protocol, ServerProtocol)
                self.protocol.send_response(response)
                self._flush()
            except Exception:
                # E.g. a hook returned something that isn't a Response. Without
                # this, the client would wait for an answer until open_timeout.
                self.logger.error("opening handshake failed", exc_info=True)
                self.transport.abort()
                return
            self.server._handshake_ended(self)
            # 101 opened the connection, even if early frames (a close frame)
            # already moved the state past OPEN. send_response() logged either.
            if response.status_code != 101:
                return
            self._start()
            if self.protocol.extensions:
                # Only these have state for the idle sweep to free.
                self.server._compressing.add(self)
            # The handler runs here rather than in a coroutine of its own: one
            # frame fewer kept by every open connection.
            try:
                await self.server.handler(self)
            except ConnectionClosed:
                # The peer went away: not a bug of the handler, so no traceback.
                if self.debug:
                    self.logger.debug("connection handler ended: connection closed", exc_info=True)
                await self.close()
            except Exception:
                self.logger.error("connection handler failed", exc_info=True)
                await self.close(CloseCode.INTERNAL_ERROR)
            else:
                await self.close()
        finally:
            self.server._tasks.discard(self._task)

    def _on_closed(self) -> None:
        self.server._handshake_ended(self)
        self.server._unregister(self)


ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None] | Response | None]
"""A ``process_request`` hook: a function or a coroutine function."""

ProcessResponse = Callable[[ServerConnection, Request, Response], Awaitable[Response | None] | Response | None]
"""A ``process_response`` hook: a function or a coroutine function."""


class Server:
    """A WebSocket server: listening sockets and the connections they accept.

    Created by :func:`serve`. Close it with :meth:`close` then
    :meth:`wait_closed`, or use it as an async context manager.
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Awaitable[None]],
        *,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = SERVER,
        extra_headers: HeadersLike | Callable[[ServerConnection, Request], HeadersLike] | None = None,
        open_timeout: float | None = 10,
        logger: LoggerLike | str | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.handler = handler
        # The seed's @basic_auth decorator leaves its check on the handler;
        # it runs before the user's process_request.
        self._auth = getattr(handler, HANDLER_ATTRIBUTE, None)
        self.process_request = process_request
        self.process_response = process_response
        self.server_header = server_header
        self.extra_headers = extra_headers
        self.open_timeout = open_timeout
        self.logger: LoggerLike = get_logger(logger, SERVER_LOGGER)
        self.server: asyncio.Server | None = None
        self._handlers: set[ServerConnection] = set()
        # Open connections that negotiated an extension (compression): the
        # idle sweep visits these only, so that idle plain connections cost
        # no CPU at all.
        self._compressing: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed_waiter: asyncio.Future[None] = self.loop.create_future()
        self._close_task: asyncio.Task[None] | None = None
        self._compact_handle: asyncio.TimerHandle | None = None
        self._closed_since_trim = 0
        # Connections in the opening handshake and their deadlines, in the
        # order they came, with one timer for the earliest: see
        # _handshake_started().
        self._connecting: dict[ServerConnection, float] = {}
        self._open_timer: asyncio.TimerHandle | None = None
        self._open_last = 0.0
        self._open_unordered = False

    def wrap(self, server: asyncio.Server) -> None:
        """Attaches the listening :class:`asyncio.Server`."""
        self.server = server
        self._compact_handle = self.loop.call_later(COMPACT_INTERVAL, self._compact)
        for sock in server.sockets:
            name = sock.getsockname()
            if sock.family == socket.AF_INET6:
                self.logger.info("server listening on [%s]:%d", name[0], name[1])
            elif sock.family == socket.AF_INET:
                self.logger.info("server listening on %s:%d", name[0], name[1])
            else:
                self.logger.info("server listening on %s", name)

    def _compact(self) -> None:
        """Sweeps idle connections (see :func:`~ferrows.server.compact_idle`)."""
        compact_idle(self._compressing)
        self._closed_since_trim = release_after_closes(self._closed_since_trim, len(self._handlers))
        if not self._closing:
            self._compact_handle = self.loop.call_later(COMPACT_INTERVAL, self._compact)

    # ---------------------------------------------------- connections

    def _register(self, connection: ServerConnection) -> None:
        self._handlers.add(connection)

    def _unregister(self, connection: ServerConnection) -> None:
        self._handlers.discard(connection)
        self._compressing.discard(connection)
        self._closed_since_trim += 1

    def _handshake_started(self, connection: ServerConnection) -> None:
        """Gives ``connection`` until ``open_timeout`` from now to complete
        the opening handshake.

        One timer serves every connection rather than one each: every
        connection of a server has the same timeout, so deadlines come in
        the order connections do, and the timer is armed for the earliest
        one. A connection that completes its handshake leaves the table; when
        the timer fires, the connections past their deadline are dropped and
        the timer is armed for the next deadline.
        """
        timeout = self.open_timeout
        if timeout is None:
            return
        deadline = self.loop.time() + timeout
        if deadline < self._open_last:
            # open_timeout was lowered: deadlines are no longer in order.
            self._open_unordered = True
        self._open_last = deadline
        self._connecting[connection] = deadline
        timer = self._open_timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._open_timer = self.loop.call_at(deadline, self._open_timeouts)

    def _handshake_ended(self, connection: ServerConnection) -> None:
        """The handshake of ``connection`` is over, or it is gone."""
        self._connecting.pop(connection, None)

    def _open_timeouts(self) -> None:
        """Drops the connections whose handshake outlived its deadline."""
        self._open_timer = None
        now = self.loop.time()
        connecting = self._connecting
        if self._open_unordered:
            expired = [c for c, deadline in connecting.items() if deadline <= now]
            self._connecting = connecting = dict(sorted(connecting.items(), key=lambda item: item[1]))
            self._open_unordered = False
        else:
            expired = []
            for c, deadline in connecting.items():
                if deadline > now:
                    break
                expired.append(c)
        for c in expired:
            del connecting[c]
            c._open_timed_out()
        if connecting:
            self._open_timer = self.loop.call_at(next(iter(connecting.values())), self._open_timeouts)

    @property
    def connections(self) -> set[ServerConnection]:
        """Open connections (handshake done, not yet closing)."""
        return {c for c in self._handlers if c.protocol.state is OPEN}

    @property
    def websockets(self) -> set[ServerConnection]:
        """Same as :attr:`connections`, under the name the user's
        documentation uses."""
        return self.connections

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """Listening sockets."""
        if self.server is None:
            return ()
        return tuple(self.server.sockets)

    async def _handshake_response(self, connection: ServerConnection, request: Request) -> Response:
        """Runs the hooks in order and returns the response to send."""
        protocol = connection.protocol
        assert isinstance(protocol, ServerProtocol)
        response: Response | None = None
        try:
            hooks = [hook for hook in (self._auth, self.process_request) if hook is not None]
            for hook in hooks:
                result = hook(connection, request)
                if isinstance(result, Awaitable):
                    result = await result
                if result is not None:
                    response = result
                    break
        except Exception as exc:
            response = self._internal_error(protocol, exc, "process_request failed")
        with_server = False
        if response is None:
            # A failing extra_headers callable must not leave the client
            # waiting for an answer: it gets a 500 like a failing hook.
            try:
                if self.extra_headers is None:
                    # The 101 with its Server header, built by the core in
                    # one call for a plain request.
                    response = protocol._accept(request, self.server_header)
                    with_server = response.status_code == 101
                else:
                    response = protocol.accept(request)
                    if response.status_code == 101:
                        self._add_headers(connection, request, response)
            except Exception as exc:
                response = self._internal_error(protocol, exc)
        if not with_server and self.server_header is not None and "Server" not in response.headers:
            response.headers["Server"] = self.server_header
        if self.process_response is not None:
            try:
                result = self.process_response(connection, request, response)
                if isinstance(result, Awaitable):
                    result = await result
                if result is not None:
                    response = result
            except Exception as exc:
                response = self._internal_error(protocol, exc, "process_response failed")
        if self._closing and response.status_code == 101:
            response = protocol.reject(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server is shutting down.\n")
            if self.server_header is not None:
                response.headers["Server"] = self.server_header
        return response

    def _internal_error(
        self, protocol: ServerProtocol, exc: Exception, what: str = "opening handshake failed"
    ) -> Response:
        """Logs a failure of user code during the handshake, with
        websockets' words for its hooks; returns a 500."""
        protocol.handshake_exc = exc
        protocol.logger.error(what, exc_info=True)
        return protocol.reject(
            http.HTTPStatus.INTERNAL_SERVER_ERROR,
            "Failed to open a WebSocket connection.\nSee server log for more information.\n",
        )

    def _add_headers(self, connection: ServerConnection, request: Request, response: Response) -> None:
        """``Server`` first, then ``extra_headers``, each replacing headers of
        the same name, so that ``extra_headers={"Server": ...}`` wins."""
        add_response_headers(response, self.server_header, self.extra_headers, connection, request)

    # -------------------------------------------------------- closing

    def close(self, close_connections: bool = True, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Stops listening and closes connections, without waiting.

        Handshakes in progress are answered with 503; open connections are
        closed with ``code`` (1001 by default). Idempotent.
        """
        if self._close_task is None:
            self._closing = True
            self._close_task = self.loop.create_task(self._close(close_connections, code, reason))

    async def _close(self, close_connections: bool, code: int, reason: str) -> None:
        self.logger.info("server closing")
        if self._compact_handle is not None:
            self._compact_handle.cancel()
        if self.server is not None:
            self.server.close()
        # Let connections accepted just before close() start their handshake.
        await asyncio.sleep(0)
        if close_connections:
            closers = [c.close(code, reason) for c in self._handlers if c.protocol.state is OPEN]
            if closers:
                await asyncio.gather(*closers, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        # Connections still in the handshake are bounded by open_timeout.
        while self._handlers:
            waiters = [c.connection_lost_waiter for c in list(self._handlers)]
            await asyncio.gather(*waiters, return_exceptions=True)
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        self.logger.info("server closed")
        if not self._closed_waiter.done():
            self._closed_waiter.set_result(None)

    async def wait_closed(self) -> None:
        """Waits until the server is closed and every handler has returned."""
        await asyncio.shield(self._closed_waiter)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        return self.loop

    def is_serving(self) -> bool:
        """True while the server accepts connections."""
        return self.server is not None and self.server.is_serving()

    async def start_serving(self) -> None:
        """Starts accepting connections (with ``start_serving=False``)."""
        assert self.server is not None
        await self.server.start_serving()

    async def serve_forever(self) -> None:
        """Accepts connections until :meth:`close` is called, then returns
        once the server is closed, as websockets' does; cancelling it closes
        the server too, then raises :exc:`asyncio.CancelledError`.

        It waits for the close itself rather than for the event loop's
        ``serve_forever()``, which uvloop does not end on ``close()``.
        """
        assert self.server is not None
        try:
            await self.server.start_serving()
            await self.wait_closed()
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


class serve:
    """Starts a WebSocket server; awaitable and an async context manager.

    ``async with serve(handler, "localhost", 8765) as server: ...`` or
    ``server = await serve(...)``.

    Args:
        handler: ``async def handler(connection)``, run for each connection
            after the handshake; returning closes with 1000, raising logs the
            error and closes with 1011.
        host: Address to listen on; with ``port``, for
            :meth:`~asyncio.loop.create_server`.
        port: Port; 0 picks a free one.
        origins: Acceptable ``Origin`` values (see
            :class:`~ferrows.server.ServerProtocol`).
        extensions: Server extension factories.
        subprotocols: Supported subprotocols, in order of preference.
        select_subprotocol: Custom subprotocol selection.
        compression: ``"deflate"`` (default) or :obj:`None`.
        extra_headers: Headers added to the 101 response, or a function
            ``f(connection, request)`` returning them.
        process_request: ``f(connection, request)``, sync or async; returning
            a :class:`~ferrows.http11.Response` sends it instead.
        process_response: ``f(connection, request, response)``, sync or
            async; may modify the response or return a replacement.
        server_header: ``Server`` header value; :obj:`None` omits it.
        open_timeout: Seconds to complete the handshake; :obj:`None` for no
            limit.
        ping_interval: Seconds between keepalive pings; :obj:`None` disables.
        ping_timeout: Seconds to wait for a pong before closing with 1011.
        close_timeout: Seconds for the closing handshake before aborting.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        max_queue: High-water mark of unread messages (or ``(high, low)``);
            reading pauses above it.
        read_limit: High-water mark, in bytes, of unread received messages;
            reading pauses above it too.
        write_limit: High-water mark of the write buffer (or ``(high,
            low)``); ``send()`` waits for it to drain above it.
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.server")``.
        create_connection: :class:`ServerConnection` subclass to use.
        kwargs: Passed to :meth:`~asyncio.loop.create_server` (``ssl``,
            ``sock``, ``reuse_port``, ``backlog``...).

    Raises:
        ValueError: For an unsupported ``compression`` or invalid
            ``subprotocols``.
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Awaitable[None]],
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        origins: Sequence[Origin | re.Pattern[str] | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        subprotocols: Sequence[Subprotocol] | None = None,
        select_subprotocol: Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None] | None = None,
        compression: str | None = "deflate",
        extra_headers: HeadersLike | Callable[[ServerConnection, Request], HeadersLike] | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = SERVER,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        max_queue: int | tuple[int | None, int | None] | None = 32,
        read_limit: int | None = 2**16,
        write_limit: int | tuple[int, int | None] = 2**16,
        logger: LoggerLike | str | None = None,
        create_connection: type[ServerConnection] | None = None,
        **kwargs: Any,
    ) -> None:
        if subprotocols is not None:
            validate_subprotocols(subprotocols)
        extensions = server_extensions(compression, extensions)
        if create_connection is None:
            create_connection = ServerConnection

        self._handler = handler
        self._server_kwargs = dict(
            process_request=process_request,
            process_response=process_response,
            server_header=server_header,
            extra_headers=extra_headers,
            open_timeout=open_timeout,
            logger=logger,
        )
        unix = kwargs.pop("unix", False)
        path = kwargs.pop("path", None)
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", open_timeout)
            kwargs.setdefault("ssl_shutdown_timeout", close_timeout)

        def factory() -> ServerConnection:
            # select_subprotocol gets the connection, as in websockets, not
            # the protocol the Sans-I/O layer calls it with.
            holder: list[ServerConnection] = []
            protocol_select = None if select_subprotocol is None else connection_selector(select_subprotocol, holder)
            protocol = ServerProtocol(
                origins=origins,
                extensions=extensions,
                subprotocols=subprotocols,
                select_subprotocol=protocol_select,
                max_size=max_size,
                logger=logger if logger is not None else self.server.logger,
            )
            protocol.server_header = server_header
            connection = create_connection(
                protocol,
                self.server,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                close_timeout=close_timeout,
                max_queue=max_queue,
                read_limit=read_limit,
                write_limit=write_limit,
            )
            holder.append(connection)
            return connection

        self._factory = factory
        self._unix = unix
        self._path = path
        self._host = host
        self._port = port
        self._kwargs = kwargs
        self.server: Server = None  # type: ignore[assignment]

    async def _create(self) -> Server:
        self.server = Server(self._handler, **self._server_kwargs)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        if self._unix:
            listener = await loop.create_unix_server(self._factory, self._path, **self._kwargs)
        else:
            listener = await loop.create_server(self._factory, self._host, self._port, **self._kwargs)
        self.server.wrap(listener)
        return self.server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    __iter__ = __await__

    async def __aenter__(self) -> Server:
        return await self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.close()
        await self.server.wait_closed()


def unix_serve(
    handler: Callable[[ServerConnection], Awaitable[None]],
    path: PathLike | None = None,
    **kwargs: Any,
) -> serve:
    """Starts a WebSocket server on a Unix socket; see :func:`serve`.

    Args:
        handler: Connection handler.
        path: Filesystem path of the socket.
    """
    return serve(handler, unix=True, path=path, **kwargs)


@overload
def basic_auth(
    realm: str = ...,
    credentials: None = ...,
    *,
    check_credentials: Callable[[str, str], Awaitable[bool]],
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]: ...


@overload
def basic_auth(
    realm: str = ...,
    credentials: Credentials | None = ...,
    check_credentials: Callable[[str, str], bool] | None = ...,
) -> Callable[[ServerConnection, Request], Response | None]: ...


@overload
def basic_auth(username: str, password: str, realm: str = ...) -> BasicAuth: ...


def basic_auth(*args: Any, **kwargs: Any) -> Any:
    """HTTP Basic Authentication, in either form.

    ``@basic_auth("admin", "secret", realm="WebSocket")`` decorates a
    handler (and also works as ``process_request=basic_auth("u", "p")``);
    ``basic_auth(realm="...", credentials=(u, p) or [(u, p), ...])`` or
    ``basic_auth(realm="...", check_credentials=f)`` returns a
    ``process_request`` hook, where ``f`` may be async.

    Wrong or missing credentials get 401 with ``WWW-Authenticate``; success
    sets ``connection.username``.
    """
    return dispatch_basic_auth(args, kwargs, allow_async=True)
