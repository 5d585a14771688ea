"""Threading WebSocket server: :func:`serve`, :class:`Server`,
:class:`ServerConnection`, :func:`broadcast` and :func:`basic_auth`.

The accepting thread (the one calling :meth:`Server.serve_forever`) starts
one thread per TCP connection. That thread runs TLS, the opening handshake
with the hooks in the same order as the asyncio server, then the handler;
the connection's own reading thread handles the network meanwhile.
"""

from __future__ import annotations

import http
import os
import re
import select
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self, overload

from .._logging import SERVER_LOGGER, get_logger
from ..auth import HANDLER_ATTRIBUTE, BasicAuth, Credentials, dispatch_basic_auth
from ..connection import ssl_context_argument
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
from .utils import Deadline

__all__ = [
    "Server",
    "ServerConnection",
    "basic_auth",
    "broadcast",
    "serve",
    "unix_serve",
]

_HOOK_FAILED = "Failed to open a WebSocket connection.\nSee server log for more information.\n"


class ServerConnection(Connection):
    """A server-side WebSocket connection.

    Created by :func:`serve` for each client; the handler receives it once
    the opening handshake succeeded.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: ServerProtocol,
        server: Server,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | tuple[int | None, int | None] | None = 16,
    ) -> None:
        self.server = server
        self.username: str | None = None
        """Username set by :func:`basic_auth` once authenticated."""
        super().__init__(
            sock,
            protocol,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
        )

    def respond(self, status: StatusLike, text: str) -> Response:
        """Builds a plain-text HTTP response, for ``process_request``.

        Example: ``return connection.respond(http.HTTPStatus.FORBIDDEN, "No\\n")``.
        """
        assert isinstance(self.protocol, ServerProtocol)
        return self.protocol.reject(status, text)

    def _handshake_event_locked(self, event: Any) -> None:
        if isinstance(event, Request) and self.request is None:
            self.request = event
            self._cond.notify_all()

    def _handshake(self, deadline: Deadline) -> bool:
        """Receives the request, runs the hooks and sends the response.

        Returns:
            Whether the connection is open.
        """
        with self._cond:
            while self.request is None and not self._reader_done:
                remaining = deadline.timeout(raise_if_elapsed=False)
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            request = self.request
            ended = self._reader_done
        if request is None:
            # Unless the reader ended first: the protocol logged why.
            if self.debug and not ended:
                self.logger.debug("! timed out during opening handshake")
            self._abort(TimeoutError("timed out while waiting for handshake request"))
            self._wait_closed()
            return False
        response = self.server._handshake_response(self, request)
        protocol = self.protocol
        assert isinstance(protocol, ServerProtocol)
        with self._cond:
            if protocol.state is not CONNECTING:
                return False  # the client went away meanwhile
            self.response = response
            protocol.send_response(response)
            # 101 opened the connection. Decide here, not after writing the
            # response: by then the reading thread may have processed the
            # client's close frame, and a client that closes at once must
            # still get its handler run, as with asyncio.
            opened = response.status_code == 101
            if opened:
                self._start_locked()
                # Frames that arrived with the request were parsed already.
                self._handle_events_locked(protocol.events_received())
            seq, batch = self._submit_locked(self._take_output_locked())
            if protocol.close_expected():
                self._arm_close_timer_locked()
        try:
            self._drain(batch, seq)
        except ConnectionClosed:
            return False
        if not opened:
            # send_response() logged the rejection.
            self._wait_closed()
            return False
        return True


class Server:
    """A threading WebSocket server.

    Created by :func:`serve`. Run :meth:`serve_forever` in a thread and stop
    it with :meth:`shutdown` from another, or use it as a context manager,
    which shuts it down on exit.
    """

    def __init__(
        self,
        socket: socket.socket,
        handler: Callable[[ServerConnection], None],
        logger: LoggerLike | str | None = None,
        *,
        process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
        process_response: Callable[[ServerConnection, Request, Response], Response | None] | None = None,
        server_header: str | None = SERVER,
        extra_headers: HeadersLike | Callable[[ServerConnection, Request], HeadersLike] | None = None,
        open_timeout: float | None = 10,
        connection_factory: Callable[[socket.socket, Server], ServerConnection] | None = None,
    ) -> None:
        self.socket = socket
        """Listening socket."""
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
        self._connection_factory = connection_factory
        self._lock = threading.Lock()
        self._all: set[ServerConnection] = set()
        # Open connections that negotiated an extension: what the idle sweep
        # visits (see _compact).
        self._compressing: set[ServerConnection] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = False
        self._accepting = False
        self._accept_stopped = threading.Event()
        self._closed_since_trim = 0
        self._shutdown_done = threading.Event()
        self.socket_closed = threading.Event()
        """Set once :meth:`shutdown` closed the listening socket, as in websockets:
        code that must not start work during a shutdown can wait for it."""
        self._wakeup_r, self._wakeup_w = _socketpair()

    # ---------------------------------------------------------- properties

    @property
    def connections(self) -> set[ServerConnection]:
        """Open connections (handshake done, not yet closing)."""
        with self._lock:
            return {c for c in self._all if c.protocol.state is OPEN}

    @property
    def websockets(self) -> set[ServerConnection]:
        """Same as :attr:`connections`, under the name of the asyncio
        server in the user's documentation."""
        return self.connections

    def fileno(self) -> int:
        """File descriptor of the listening socket, for ``selectors``."""
        return self.socket.fileno()

    # ----------------------------------------------------------- accepting

    def serve_forever(self) -> None:
        """Accepts connections until :meth:`shutdown` is called from another
        thread; each one is served in its own thread."""
        with self._lock:
            if self._closing:
                return
            self._accepting = True
        try:
            self._log_listening()
            listener = self.socket
            listener.setblocking(False)
            poller = select.poll()
            poller.register(listener.fileno(), select.POLLIN)
            poller.register(self._wakeup_r.fileno(), select.POLLIN)
            wakeup = self._wakeup_r.fileno()
            next_sweep = time.monotonic() + COMPACT_INTERVAL
            while True:
                ready = [fd for fd, _ in poller.poll(max(next_sweep - time.monotonic(), 0) * 1000)]
                if wakeup in ready or self._closing:
                    break
                if time.monotonic() >= next_sweep:
                    self._compact()
                    next_sweep = time.monotonic() + COMPACT_INTERVAL
                if not ready:
                    continue
                try:
                    sock, addr = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError:
                    if self._closing:
                        break
                    raise
                sock.setblocking(True)
                thread = threading.Thread(target=self._conn_thread, args=(sock, addr), daemon=True)
                with self._lock:
                    if self._closing:
                        sock.close()
                        break
                    self._threads.add(thread)
                thread.start()
        finally:
            self._accept_stopped.set()

    def _compact(self) -> None:
        """Sweeps idle connections (see :func:`~ferrows.server.compact_idle`),
        from the accepting thread between two accepts."""
        with self._lock:
            live = len(self._all)
            compressing = list(self._compressing)
            closed, self._closed_since_trim = self._closed_since_trim, 0
        compact_idle(compressing)
        closed = release_after_closes(closed, live)
        with self._lock:
            self._closed_since_trim += closed

    def _log_listening(self) -> None:
        try:
            name = self.socket.getsockname()
        except OSError:  # pragma: no cover
            return
        family = self.socket.family
        if family == socket.AF_INET6:
            self.logger.info("server listening on [%s]:%d", name[0], name[1])
        elif family == socket.AF_INET:
            self.logger.info("server listening on %s:%d", name[0], name[1])
        else:
            self.logger.info("server listening on %s", name)

    def _conn_thread(self, sock: socket.socket, addr: Any) -> None:
        """Serves one TCP connection: TLS, handshake, handler."""
        connection: ServerConnection | None = None
        try:
            deadline = Deadline(self.open_timeout)
            try:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                if isinstance(sock, ssl_module.SSLSocket):
                    remaining = deadline.timeout(raise_if_elapsed=False)
                    sock.settimeout(None if remaining is None else max(0.001, remaining))
                    sock.do_handshake()
                    sock.settimeout(None)
                assert self._connection_factory is not None
                connection = self._connection_factory(sock, self)
            except Exception:
                self.logger.debug("! failed to set up the connection", exc_info=True)
                sock.close()
                return
            with self._lock:
                self._all.add(connection)
            try:
                if connection._handshake(deadline):
                    if connection.protocol.extensions:
                        # Only these have state for the idle sweep to free.
                        with self._lock:
                            self._compressing.add(connection)
                    self._run_handler(connection)
            except Exception:
                self.logger.error("opening handshake failed", exc_info=True)
                connection.close_socket()
        finally:
            with self._lock:
                if connection is not None:
                    self._all.discard(connection)
                    self._compressing.discard(connection)
                    self._closed_since_trim += 1
                self._threads.discard(threading.current_thread())

    def _handshake_response(self, connection: ServerConnection, request: Request) -> Response:
        """Runs the hooks in the asyncio server's order; returns the response."""
        protocol = connection.protocol
        assert isinstance(protocol, ServerProtocol)
        response: Response | None = None
        try:
            for hook in (self._auth, self.process_request):
                if hook is not None:
                    response = hook(connection, request)
                    if response is not None:
                        break
        except Exception as exc:
            response = self._internal_error(protocol, exc, "process_request failed")
        if response is None:
            try:
                response = protocol.accept(request)
                if response.status_code == 101:
                    add_response_headers(
                        response,
                        self.server_header,
                        self.extra_headers,
                        connection,
                        request,
                    )
            except Exception as exc:
                response = self._internal_error(protocol, exc)
        if self.server_header is not None and "Server" not in response.headers:
            response.headers["Server"] = self.server_header
        if self.process_response is not None:
            try:
                result = self.process_response(connection, request, response)
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
        return protocol.reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, _HOOK_FAILED)

    def _run_handler(self, connection: ServerConnection) -> None:
        try:
            self.handler(connection)
        except ConnectionClosed:
            # The peer went away: not a bug of the handler, so no traceback.
            if connection.debug:
                connection.logger.debug("connection handler ended: connection closed", exc_info=True)
            connection.close()
        except Exception:
            connection.logger.error("connection handler failed", exc_info=True)
            connection.close(CloseCode.INTERNAL_ERROR)
        else:
            connection.close()

    # ------------------------------------------------------------- closing

    def shutdown(
        self,
        close_connections: bool = True,
        code: int = CloseCode.GOING_AWAY,
        reason: str = "",
    ) -> None:
        """Stops the server and waits until every connection thread ended.

        Stops accepting; answers 503 to handshakes in progress and drops
        connections that sent no request yet; closes open connections with
        ``code`` unless ``close_connections`` is false, in which case it
        waits for their handlers to return. Idempotent: a second call waits
        for the first to finish.
        """
        with self._lock:
            first = not self._closing
            self._closing = True
            accepting = self._accepting
        if not first:
            self._shutdown_done.wait()
            return
        self.logger.info("server closing")
        try:
            self._wakeup_w.send(b"x")
        except OSError:  # pragma: no cover
            pass
        if accepting:
            self._accept_stopped.wait()
        try:
            self.socket.close()
        except OSError:  # pragma: no cover
            pass
        self.socket_closed.set()
        while True:
            with self._lock:
                threads = list(self._threads)
                connections = list(self._all)
            if not threads:
                break
            for connection in connections:
                state = connection.protocol.state
                if state is CONNECTING and connection.request is None:
                    connection._abort()
                elif state is OPEN and close_connections:
                    connection._start_close(code, reason)
            # Poll: a handshake in progress may open a connection meanwhile.
            threads[0].join(0.05)
        for sock in (self._wakeup_r, self._wakeup_w):
            sock.close()
        self.logger.info("server closed")
        self._shutdown_done.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def _socketpair() -> tuple[socket.socket, socket.socket]:
    """A pair to wake the accepting thread up (closing a socket another
    thread waits on does not wake it reliably)."""
    r, w = socket.socketpair()
    r.setblocking(False)
    return r, w


def serve(
    handler: Callable[[ServerConnection], None],
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    ssl: ssl_module.SSLContext | None = None,
    origins: Sequence[Origin | re.Pattern[str] | None] | None = None,
    extensions: Sequence[ServerExtensionFactory] | None = None,
    subprotocols: Sequence[Subprotocol] | None = None,
    select_subprotocol: Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None] | None = None,
    compression: str | None = "deflate",
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
    process_response: Callable[[ServerConnection, Request, Response], Response | None] | None = None,
    server_header: str | None = SERVER,
    extra_headers: HeadersLike | Callable[[ServerConnection, Request], HeadersLike] | None = None,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | tuple[int | None, int | None] | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    logger: LoggerLike | str | None = None,
    create_connection: type[ServerConnection] | None = None,
    **kwargs: Any,
) -> Server:
    """Creates a threading WebSocket server; see :class:`Server`.

    ``with serve(handler, "localhost", 8765) as server: server.serve_forever()``

    Args:
        handler: ``def handler(connection)``, run in its own thread for each
            connection after the handshake; returning closes with 1000,
            raising logs the error and closes with 1011.
        host: Address to listen on.
        port: Port; 0 picks a free one.
        sock: Listening socket to use instead of ``host`` and ``port``.
        ssl: TLS context for ``wss://``.
        origins: Acceptable ``Origin`` values (see
            :class:`~ferrows.server.ServerProtocol`).
        extensions: Server extension factories.
        subprotocols: Supported subprotocols, in order of preference.
        select_subprotocol: ``f(connection, offered)`` choosing one.
        compression: ``"deflate"`` (default) or :obj:`None`.
        process_request: ``f(connection, request)``; returning a
            :class:`~ferrows.http11.Response` sends it instead.
        process_response: ``f(connection, request, response)``; may modify
            the response or return a replacement.
        server_header: ``Server`` header value; :obj:`None` omits it.
        extra_headers: Headers set on the 101 response, or a function
            ``f(connection, request)`` returning them.
        open_timeout: Seconds for TLS and the handshake request; :obj:`None`
            for no limit.
        ping_interval: Seconds between keepalive pings; :obj:`None` disables.
        ping_timeout: Seconds to wait for a pong before closing with 1011.
        close_timeout: Seconds for the closing handshake before aborting.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        max_queue: High-water mark of unread messages (or ``(high, low)``).
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.server")``.
        create_connection: :class:`ServerConnection` subclass to use.
        kwargs: Passed to :func:`socket.create_server` (``family``,
            ``backlog``, ``reuse_port``...).

    Raises:
        ValueError: For an unsupported ``compression``, invalid
            ``subprotocols``, or ``sock`` with ``host``/``port``.
        OSError: If the address cannot be bound.
    """
    if subprotocols is not None:
        validate_subprotocols(subprotocols)
    extensions = server_extensions(compression, extensions)
    if create_connection is None:
        create_connection = ServerConnection
    if "ssl_context" in kwargs:
        ssl_context_argument(kwargs)
        ssl = kwargs.pop("ssl", ssl) if ssl is None else ssl
    unix: bool = kwargs.pop("unix", False)
    path: Any = kwargs.pop("path", None)
    if sock is None:
        if unix:
            if path is None:
                raise ValueError("missing path argument")
            kwargs.setdefault("family", socket.AF_UNIX)
            sock = socket.create_server(os.fspath(path), **kwargs)
        else:
            sock = socket.create_server(("" if host is None else host, 0 if port is None else port), **kwargs)
    else:
        for name, value in (("host", host), ("port", port), ("path", path)):
            if value is not None:
                raise ValueError(f"{name} is incompatible with sock")
    if ssl is not None:
        sock = ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    factory = create_connection

    def connection_factory(conn_sock: socket.socket, server: Server) -> ServerConnection:
        holder: list[ServerConnection] = []
        protocol_select = connection_selector(select_subprotocol, holder)
        protocol = ServerProtocol(
            origins=origins,
            extensions=extensions,
            subprotocols=subprotocols,
            select_subprotocol=protocol_select,
            max_size=max_size,
            logger=logger if logger is not None else server.logger,
        )
        protocol.server_header = server_header
        connection = factory(
            conn_sock,
            protocol,
            server,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
        )
        holder.append(connection)
        return connection

    return Server(
        sock,
        handler,
        logger,
        process_request=process_request,
        process_response=process_response,
        server_header=server_header,
        extra_headers=extra_headers,
        open_timeout=open_timeout,
        connection_factory=connection_factory,
    )


def unix_serve(handler: Callable[[ServerConnection], None], path: PathLike | None = None, **kwargs: Any) -> Server:
    """Creates a threading WebSocket server on a Unix socket; see :func:`serve`.

    Args:
        handler: Connection handler.
        path: Filesystem path of the socket.
    """
    return serve(handler, unix=True, path=path, **kwargs)


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
    ``process_request`` hook; ``f`` is a plain function here.

    Wrong or missing credentials get 401 with ``WWW-Authenticate``; success
    sets ``connection.username``.
    """
    return dispatch_basic_auth(args, kwargs, allow_async=False)


def __getattr__(name: str) -> Any:
    """``WebSocketServer``: websockets' deprecated name of :class:`Server`."""
    if name == "WebSocketServer":
        import warnings

        warnings.warn("WebSocketServer was renamed to Server", DeprecationWarning, stacklevel=2)
        return Server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
