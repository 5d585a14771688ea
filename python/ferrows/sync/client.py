"""Threading WebSocket client: :func:`connect`, :func:`unix_connect`,
:class:`reconnect`, :func:`unix_reconnect` and :class:`ClientConnection`."""

from __future__ import annotations

import os
import socket
import ssl as ssl_module
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, overload

from .._logging import CLIENT_LOGGER, get_logger
from ..client import (
    MAX_REDIRECTS,
    ClientProtocol,
    backoff,
    process_exception,
    process_redirect,
)
from ..connection import ssl_context_argument
from ..datastructures import HeadersLike
from ..exceptions import InvalidStatus, SecurityError
from ..extensions.base import ClientExtensionFactory
from ..extensions.permessage_deflate import client_extensions
from ..headers import validate_subprotocols
from ..http11 import USER_AGENT, Response
from ..proxy import connect_proxy_sync, select_proxy
from ..typing import LoggerLike, Origin, PathLike, Subprotocol
from ..uri import WebSocketURI, parse_uri
from .connection import Connection
from .utils import Deadline

__all__ = ["ClientConnection", "connect", "reconnect", "unix_connect", "unix_reconnect"]


class ClientConnection(Connection):
    """A client-side WebSocket connection, returned by :func:`connect`."""

    # Reading starts once the handshake request is written. A TLS 1.3
    # server sends session tickets right after its handshake: a reading
    # thread started earlier processed them inside the SSL object while this
    # thread wrote the request through the same object, which OpenSSL does
    # not allow, and now and then the request never arrived.
    _read_at_init = False

    def _handshake_event_locked(self, event: Any) -> None:
        if isinstance(event, Response) and self.response is None:
            self.response = event
            if self.protocol.handshake_exc is None:
                # Messages parsed with the response follow in this batch,
                # even if a close frame among them moved the state on.
                self._start_locked()
            self._cond.notify_all()

    def _handshake(
        self,
        additional_headers: HeadersLike | None,
        user_agent_header: str | None,
        deadline: Deadline,
    ) -> None:
        """Sends the request and waits for the response.

        Raises:
            InvalidHandshake: If the server refused or answered nonsense.
            TimeoutError: If the deadline passed.
        """
        protocol = self.protocol
        assert isinstance(protocol, ClientProtocol)
        with self._cond:
            request = protocol.connect()
            if additional_headers is not None:
                request.headers.update(additional_headers)
            if user_agent_header is not None and "User-Agent" not in request.headers:
                request.headers["User-Agent"] = user_agent_header
            self.request = request
            protocol.send_request(request)
            seq, batch = self._submit_locked(self._take_output_locked())
        try:
            self._drain(batch, seq)
        finally:
            self._start_reading()
        with self._cond:
            while self.response is None and not self._reader_done:
                self._cond.wait(deadline.timeout())
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if self.response is None:
            raise self._closed_exception()


class reconnect:
    """Connects to a WebSocket server, with :meth:`connect` or ``with``, or
    reconnects forever: ``for websocket in reconnect(uri): ...``.

    Iterating retries each failure that ``process_exception`` deems
    temporary, after a delay from ``reconnect_delays`` (exponential backoff
    by default); the connection is closed after each iteration. Arguments
    are those of :func:`connect`, plus:

    Args:
        process_exception: Returns :obj:`None` to retry after an exception,
            or the exception to raise.
        reconnect_delays: Returns an iterator of delays, in seconds.
    """

    def __init__(
        self,
        uri: str,
        *,
        sock: socket.socket | None = None,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: Origin | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[Subprotocol] | None = None,
        compression: str | None = "deflate",
        additional_headers: HeadersLike | None = None,
        user_agent_header: str | None = USER_AGENT,
        proxy: str | bool | None = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        proxy_server_hostname: str | None = None,
        proxy_headers: HeadersLike | None = None,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        reconnect_delays: Callable[[], Generator[float]] = backoff,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        logger: LoggerLike | str | None = None,
        create_connection: type[ClientConnection] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("unix") and kwargs.get("path") is not None and sock is not None:
            raise ValueError("path is incompatible with sock")
        self.uri = uri
        self.wsuri = parse_uri(uri)
        if not self.wsuri.secure and ssl is not None:
            raise ValueError("ssl argument is incompatible with a ws:// URI")
        if subprotocols is not None:
            validate_subprotocols(subprotocols)
        extensions = client_extensions(compression, extensions)
        self.sock = sock
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.origin = origin
        self.extensions = extensions
        self.subprotocols = subprotocols
        self.additional_headers = additional_headers
        self.user_agent_header = user_agent_header
        self.proxy = proxy
        self.proxy_ssl = proxy_ssl
        self.proxy_server_hostname = proxy_server_hostname
        self.proxy_headers = proxy_headers
        self.process_exception = process_exception
        self.open_timeout = open_timeout
        self.reconnect_delays = reconnect_delays
        self.max_size = max_size
        self.logger: LoggerLike = get_logger(logger, CLIENT_LOGGER)
        self.create_connection = create_connection or ClientConnection
        self.connection_kwargs: dict[str, Any] = dict(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
        )
        self.unix: bool = kwargs.pop("unix", False)
        self.path: Any = kwargs.pop("path", None)
        self.kwargs = kwargs
        self.connection: ClientConnection | None = None

    # ---------------------------------------------------------- connecting

    def connect(self) -> ClientConnection:
        """Opens a connection, following redirects, within ``open_timeout``.

        Raises:
            InvalidURI: If a redirect goes to an invalid URI.
            InvalidHandshake: If the handshake fails.
            TimeoutError: If it takes longer than ``open_timeout``.
            OSError: If the TCP connection fails.
        """
        deadline = Deadline(self.open_timeout, message=_HANDSHAKE_TIMEOUT)
        wsuri = self.wsuri
        headers = self.additional_headers
        try:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    return self._connect_once(wsuri, headers, deadline)
                except InvalidStatus as exc:
                    target = "sock" if self.sock is not None else "unix" if self.unix else None
                    wsuri, headers, location = process_redirect(wsuri, exc, headers, target=target)
                    self.logger.info("redirecting to %s", location)
            raise SecurityError(f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError as exc:
            if str(exc) == _HANDSHAKE_TIMEOUT:
                raise  # websockets' words for a response that never came
            raise TimeoutError("timed out during opening handshake") from exc

    def _connect_once(self, wsuri: WebSocketURI, headers: HeadersLike | None, deadline: Deadline) -> ClientConnection:
        sock = self._open_socket(wsuri, deadline)
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            if wsuri.secure:
                context = self.ssl if self.ssl is not None else ssl_module.create_default_context()
                server_hostname = self.server_hostname if self.server_hostname is not None else wsuri.host
                sock.settimeout(deadline.timeout())
                sock = context.wrap_socket(sock, server_hostname=server_hostname)
            sock.settimeout(None)
            protocol = ClientProtocol(
                wsuri,
                origin=self.origin,
                extensions=self.extensions,
                subprotocols=self.subprotocols,
                max_size=self.max_size,
                logger=self.logger,
            )
            connection = self.create_connection(sock, protocol, **self.connection_kwargs)
        except BaseException:
            sock.close()
            raise
        try:
            connection._handshake(headers, self.user_agent_header, deadline)
        except BaseException:
            connection.close_socket()
            raise
        return connection

    def _open_socket(self, wsuri: WebSocketURI, deadline: Deadline) -> socket.socket:
        if self.sock is not None:
            return self.sock
        if self.unix:
            if self.path is None:
                raise ValueError("missing path argument")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(deadline.timeout())
                sock.connect(os.fspath(self.path))
            except BaseException:
                sock.close()
                raise
            return sock
        kwargs = dict(self.kwargs)
        proxy = select_proxy(self.proxy, wsuri, kwargs)
        if proxy is not None:
            return connect_proxy_sync(
                proxy,
                wsuri,
                deadline,
                user_agent_header=self.user_agent_header,
                proxy_headers=self.proxy_headers,
                proxy_ssl=self.proxy_ssl,
                proxy_server_hostname=self.proxy_server_hostname,
                **kwargs,
            )
        kwargs.setdefault("address", (wsuri.host, wsuri.port))
        kwargs.setdefault("timeout", deadline.timeout())
        return socket.create_connection(**kwargs)

    # ----------------------------------------------------------- protocols

    def __enter__(self) -> ClientConnection:
        if self.connection is not None:
            raise RuntimeError("connect() isn't reentrant")
        self.connection = self.connect()
        return self.connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self.connection = self.connection, None
        assert connection is not None
        connection.__exit__(exc_type, exc_value, traceback)

    def __iter__(self) -> Iterator[ClientConnection]:
        delays: Iterator[float] | None = None
        while True:
            try:
                connection = self.connect()
            except Exception as exc:
                try:
                    new_exc = self.process_exception(exc)
                except Exception as raised:
                    new_exc = raised
                if new_exc is exc:
                    raise
                if new_exc is not None:
                    raise new_exc from exc
                if delays is None:
                    delays = iter(self.reconnect_delays())
                delay = next(delays)
                self.logger.info(
                    "connect failed; reconnecting in %.1f seconds: %s",
                    delay,
                    traceback.format_exception_only(type(exc), exc)[0].strip(),
                )
                time.sleep(delay)
                continue
            delays = None
            try:
                yield connection
            finally:
                connection.close()


_HANDSHAKE_TIMEOUT = "timed out while waiting for handshake response"


# The overloads spell out the keyword arguments, as websockets' do, so that
# a type checker checks them; the implementation passes them on unchanged.
# ``legacy=False`` alone returns a :class:`reconnect`.
@overload
def connect(
    uri: str,
    *,
    sock: socket.socket | None = ...,
    ssl: ssl_module.SSLContext | None = ...,
    server_hostname: str | None = ...,
    origin: Origin | None = ...,
    extensions: Sequence[ClientExtensionFactory] | None = ...,
    subprotocols: Sequence[Subprotocol] | None = ...,
    compression: str | None = ...,
    additional_headers: HeadersLike | None = ...,
    user_agent_header: str | None = ...,
    proxy: str | bool | None = ...,
    proxy_ssl: ssl_module.SSLContext | None = ...,
    proxy_server_hostname: str | None = ...,
    proxy_headers: HeadersLike | None = ...,
    open_timeout: float | None = ...,
    ping_interval: float | None = ...,
    ping_timeout: float | None = ...,
    close_timeout: float | None = ...,
    max_size: int | tuple[int | None, int | None] | None = ...,
    max_queue: int | tuple[int | None, int | None] | None = ...,
    logger: LoggerLike | str | None = ...,
    create_connection: type[ClientConnection] | None = ...,
    legacy: Literal[True] | None = ...,
    **kwargs: Any,
) -> ClientConnection: ...


@overload
def connect(
    uri: str,
    *,
    sock: socket.socket | None = ...,
    ssl: ssl_module.SSLContext | None = ...,
    server_hostname: str | None = ...,
    origin: Origin | None = ...,
    extensions: Sequence[ClientExtensionFactory] | None = ...,
    subprotocols: Sequence[Subprotocol] | None = ...,
    compression: str | None = ...,
    additional_headers: HeadersLike | None = ...,
    user_agent_header: str | None = ...,
    proxy: str | bool | None = ...,
    proxy_ssl: ssl_module.SSLContext | None = ...,
    proxy_server_hostname: str | None = ...,
    proxy_headers: HeadersLike | None = ...,
    open_timeout: float | None = ...,
    ping_interval: float | None = ...,
    ping_timeout: float | None = ...,
    close_timeout: float | None = ...,
    max_size: int | tuple[int | None, int | None] | None = ...,
    max_queue: int | tuple[int | None, int | None] | None = ...,
    logger: LoggerLike | str | None = ...,
    create_connection: type[ClientConnection] | None = ...,
    legacy: Literal[False],
    **kwargs: Any,
) -> reconnect: ...


def connect(uri: str, *, legacy: bool | None = None, **kwargs: Any) -> ClientConnection | reconnect:
    """Connects to a WebSocket server; returns a :class:`ClientConnection`.

    ``with connect("ws://localhost:8765") as websocket: ...`` closes the
    connection on exit; otherwise, close it yourself.

    Args:
        uri: ``ws://`` or ``wss://`` URI; ``user:pass@`` adds Basic auth.
        sock: Connected socket to use instead of opening one.
        ssl: TLS context for ``wss://`` (default: the system's).
        server_hostname: Host name for TLS instead of the URI's.
        origin: ``Origin`` header.
        extensions: Client extension factories.
        subprotocols: Subprotocols to offer.
        compression: ``"deflate"`` (default) or :obj:`None`.
        additional_headers: Extra request headers.
        user_agent_header: ``User-Agent`` value; :obj:`None` omits it.
        proxy: :obj:`True` (default) uses the proxy the environment
            configures for ``uri``, as websockets does (``wss_proxy`` or
            ``ws_proxy``, a system SOCKS proxy, ``https_proxy``, then
            ``http_proxy`` for ``ws://``; ``no_proxy`` exempts hosts);
            :obj:`None` connects directly; a string is the proxy's address:
            ``http://``, ``https://`` (TLS to the proxy), ``socks5h://``,
            ``socks5://``, ``socks4a://`` or ``socks4://`` (these need
            ``pip install 'ferrows[socks]'``). ``user:pass@`` in it
            authenticates (``Proxy-Authorization: Basic`` for HTTP). The
            environment's proxy is ignored when ``sock`` or ``address``
            says where to connect. ``ssl`` and ``server_hostname`` still
            configure TLS to the server, inside the tunnel.
        proxy_ssl: TLS context for an ``https://`` proxy (default: the
            system's).
        proxy_server_hostname: Host name for TLS to the proxy instead of
            the proxy address's.
        proxy_headers: Extra headers for the ``CONNECT`` request to an
            HTTP proxy.
        open_timeout: Seconds for TCP, TLS, redirects and the handshake.
        ping_interval: Seconds between keepalive pings; :obj:`None` disables.
        ping_timeout: Seconds to wait for a pong before closing with 1011.
        close_timeout: Seconds for the closing handshake before aborting.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        max_queue: High-water mark of unread messages (or ``(high, low)``).
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.client")``.
        create_connection: :class:`ClientConnection` subclass to use.
        legacy: :obj:`False` returns a :class:`reconnect` object instead of
            connecting; other values connect at once.
        kwargs: Passed to :func:`socket.create_connection` (``address``,
            ``source_address``...), to the proxy's address when connecting
            through an HTTP proxy; a SOCKS proxy uses ``source_address``.

    Raises:
        InvalidURI: If ``uri`` is not a WebSocket URI.
        InvalidProxy: If the proxy's address isn't valid.
        InvalidHandshake: If the handshake fails; :exc:`InvalidProxyStatus`
            if an HTTP proxy refuses the tunnel (407, 403...),
            :exc:`InvalidProxyMessage` if it answers nonsense,
            :exc:`ProxyError` if a SOCKS proxy refuses.
        TimeoutError: If the handshake takes longer than ``open_timeout``.
        OSError: If the TCP connection (to the server or the proxy) fails.
        ImportError: For a SOCKS proxy without python-socks.
        ValueError: For ``ssl`` with a ``ws://`` URI, or ``proxy_ssl``
            with an ``http://`` proxy.
    """
    ssl_context_argument(kwargs)
    connecter = reconnect(uri, **kwargs)
    if legacy is False:
        return connecter
    return connecter.connect()


def _unix_uri(uri: str | None, kwargs: dict[str, Any]) -> str:
    if uri is not None:
        return uri
    return "wss://localhost/" if kwargs.get("ssl") is not None else "ws://localhost/"


@overload
def unix_connect(
    path: PathLike | None = ...,
    uri: str | None = ...,
    *,
    legacy: Literal[True] | None = ...,
    **kwargs: Any,
) -> ClientConnection: ...


@overload
def unix_connect(
    path: PathLike | None = ...,
    uri: str | None = ...,
    *,
    legacy: Literal[False],
    **kwargs: Any,
) -> reconnect: ...


def unix_connect(
    path: PathLike | None = None,
    uri: str | None = None,
    *,
    legacy: bool | None = None,
    **kwargs: Any,
) -> ClientConnection | reconnect:
    """Connects to a WebSocket server over a Unix socket; see :func:`connect`.

    Args:
        path: Filesystem path of the socket.
        uri: URI for the handshake; ``ws://localhost/`` by default, or
            ``wss://localhost/`` when ``ssl`` is given.
    """
    connecter = connect(_unix_uri(uri, kwargs), unix=True, path=path, legacy=False, **kwargs)
    return connecter if legacy is False else connecter.connect()


def unix_reconnect(path: PathLike | None = None, uri: str | None = None, **kwargs: Any) -> reconnect:
    """:class:`reconnect` over a Unix socket; see :func:`unix_connect`."""
    return reconnect(_unix_uri(uri, kwargs), unix=True, path=path, **kwargs)
