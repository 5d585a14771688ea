"""asyncio WebSocket client: :func:`connect`, :func:`unix_connect` and
:class:`ClientConnection`."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from .._logging import CLIENT_LOGGER, get_logger
from ..client import MAX_REDIRECTS, ClientProtocol, backoff, process_exception, process_redirect
from ..datastructures import Headers, HeadersLike
from ..exceptions import InvalidStatus, InvalidURI, SecurityError
from ..extensions.base import ClientExtensionFactory
from ..extensions.permessage_deflate import client_extensions
from ..headers import validate_subprotocols
from ..http11 import USER_AGENT, Response
from ..proxy import connect_proxy_async, select_proxy
from ..typing import LoggerLike, Origin, PathLike, Subprotocol
from ..uri import WebSocketURI, parse_uri
from .connection import Connection

__all__ = ["ClientConnection", "connect", "unix_connect"]


class ClientConnection(Connection):
    """A client-side WebSocket connection, returned by :func:`connect`."""

    __slots__ = ("response_rcvd",)

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        """Takes the keyword arguments of :class:`~ferrows.asyncio.connection.Connection`."""
        super().__init__(protocol, **kwargs)
        self.response_rcvd: asyncio.Future[None] = self.loop.create_future()

    def _handshake_data(self, data: bytes | memoryview) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()
        if not events:
            return
        response = events[0]
        assert isinstance(response, Response)
        self.response = response
        # The handshake succeeded, even if a close frame that came in the
        # same read already moved the state to CLOSING.
        if protocol.handshake_exc is None:
            # Frames that came in the same read as the 101 response.
            self._start(events[1:])
        if not self.response_rcvd.done():
            self.response_rcvd.set_result(None)

    def _on_closed(self) -> None:
        if not self.response_rcvd.done():
            self.response_rcvd.set_result(None)


class connect:
    """Connects to a WebSocket server.

    Usable three ways: ``async with connect(uri) as websocket:`` (closed on
    exit), ``websocket = await connect(uri)`` (the caller closes it), and
    ``async for websocket in connect(uri):`` which reconnects with
    exponential backoff after each failure that :func:`process_exception`
    deems temporary.

    Args:
        uri: ``ws://`` or ``wss://`` URI; ``user:pass@`` adds Basic auth.
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
            environment's proxy is ignored when ``sock``, ``host`` or
            ``port`` says where to connect.
        process_exception: Decides which failures to retry when iterating.
        open_timeout: Seconds for TCP, TLS, redirects and the handshake.
        ping_interval: Seconds between keepalive pings; :obj:`None` disables.
        ping_timeout: Seconds to wait for a pong before closing with 1011.
        close_timeout: Seconds for the closing handshake before aborting.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        max_queue: High-water mark of unread messages (or ``(high, low)``).
        read_limit: High-water mark, in bytes, of unread received messages.
        write_limit: High-water mark of the write buffer (or ``(high, low)``).
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.client")``.
        create_connection: :class:`ClientConnection` subclass to use.
        kwargs: Passed to :meth:`~asyncio.loop.create_connection` (``ssl``,
            ``server_hostname``, ``sock``, ``host``, ``port``...). Through
            an HTTP proxy, ``ssl*`` and ``server_hostname`` still configure
            TLS to the server (inside the tunnel), ``proxy_ssl``,
            ``proxy_server_hostname``, ``proxy_ssl_handshake_timeout`` and
            other ``proxy_``-prefixed arguments configure TLS to an
            ``https://`` proxy, ``proxy_headers`` adds headers to the
            ``CONNECT`` request, and other arguments apply to the
            connection to the proxy. Through a SOCKS proxy, ``local_addr``
            applies to the connection to the proxy.

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
    """

    def __init__(
        self,
        uri: str,
        *,
        origin: Origin | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[Subprotocol] | None = None,
        compression: str | None = "deflate",
        additional_headers: HeadersLike | None = None,
        user_agent_header: str | None = USER_AGENT,
        proxy: str | bool | None = True,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        max_queue: int | tuple[int | None, int | None] | None = 32,
        read_limit: int | None = 2**16,
        write_limit: int | tuple[int, int | None] = 2**16,
        logger: LoggerLike | str | None = None,
        create_connection: type[ClientConnection] | None = None,
        reconnect_delays: Callable[[], Generator[float]] = backoff,
        **kwargs: Any,
    ) -> None:
        extra_headers = kwargs.pop("extra_headers", None)
        if extra_headers is not None:
            warnings.warn("extra_headers is deprecated; use additional_headers", DeprecationWarning, stacklevel=2)
            merged = Headers(additional_headers) if additional_headers is not None else Headers()
            merged.update(extra_headers)
            additional_headers = merged
        if subprotocols is not None:
            validate_subprotocols(subprotocols)
        extensions = client_extensions(compression, extensions)
        self.uri = uri
        self.origin = origin
        self.extensions = extensions
        self.subprotocols = subprotocols
        self.additional_headers = additional_headers
        self.user_agent_header = user_agent_header
        self.proxy = proxy
        self.process_exception = process_exception
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.logger = get_logger(logger, CLIENT_LOGGER)
        self.create_connection = create_connection or ClientConnection
        self.connection_kwargs: dict[str, Any] = dict(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
            read_limit=read_limit,
            write_limit=write_limit,
        )
        self.reconnect_delays = reconnect_delays
        self.unix = kwargs.pop("unix", False)
        self.path = kwargs.pop("path", None)
        self.kwargs = kwargs
        self.connection: ClientConnection | None = None
        # The URI being connected to, which redirects change (set by _create).
        self._wsuri: WebSocketURI

    async def _connect_once(self, wsuri: WebSocketURI) -> ClientConnection:
        """Opens TCP (and TLS), then performs the handshake."""
        loop = asyncio.get_running_loop()
        kwargs = dict(self.kwargs)
        if wsuri.secure:
            kwargs.setdefault("ssl", True)
            if kwargs["ssl"] is None:
                raise ValueError("ssl=None is incompatible with a wss:// URI")
            kwargs.setdefault("server_hostname", wsuri.host)
        elif kwargs.get("ssl") is not None:
            raise ValueError("ssl argument is incompatible with a ws:// URI")
        protocol = ClientProtocol(
            wsuri,
            origin=self.origin,
            extensions=self.extensions,
            subprotocols=self.subprotocols,
            max_size=self.max_size,
            logger=self.logger,
        )

        def factory() -> ClientConnection:
            return self.create_connection(protocol, **self.connection_kwargs)

        proxy = None if self.unix else select_proxy(self.proxy, wsuri, kwargs)
        if self.unix:
            _, connection = await loop.create_unix_connection(factory, self.path, **kwargs)
        elif proxy is not None:
            connection = await connect_proxy_async(proxy, wsuri, factory, kwargs, self.user_agent_header)
        else:
            if kwargs.get("sock") is None:
                host = kwargs.pop("host", wsuri.host)
                port = kwargs.pop("port", wsuri.port)
                _, connection = await loop.create_connection(factory, host, port, **kwargs)
            else:
                _, connection = await loop.create_connection(factory, **kwargs)
        assert isinstance(connection, ClientConnection)
        try:
            request = protocol.connect()
            if self.additional_headers is not None:
                request.headers.update(self.additional_headers)
            if self.user_agent_header is not None and "User-Agent" not in request.headers:
                request.headers["User-Agent"] = self.user_agent_header
            connection.request = request
            protocol.send_request(request)
            connection._flush()
            await asyncio.shield(connection.response_rcvd)
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            if connection.response is None:
                raise protocol.close_exc
        except BaseException:
            connection.transport.abort()
            raise
        return connection

    async def _create(self) -> ClientConnection:
        wsuri = self._wsuri = parse_uri(self.uri)
        try:
            async with asyncio.timeout(self.open_timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    try:
                        return await self._connect_once(wsuri)
                    except InvalidStatus as exc:
                        target = self.process_redirect(exc)
                        if isinstance(target, Exception):
                            if target is exc:
                                raise
                            raise target from exc
                        self.logger.info("redirecting to %s", target)
                        wsuri = self._wsuri
                raise SecurityError(f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError as exc:
            raise TimeoutError("timed out during opening handshake") from exc

    def _target(self) -> str | None:
        """What fixes where the connection goes (see ``process_redirect``)."""
        if self.kwargs.get("sock") is not None:
            return "sock"
        if self.unix:
            return "unix"
        if "host" in self.kwargs or "port" in self.kwargs:
            return "host"
        return None

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Whether a failed handshake is a redirect to follow, as websockets decides.

        Returns:
            The absolute location to connect to (``exc`` was a 3xx answer
            that may be followed), or the exception to raise: ``exc`` itself,
            or why the redirect may not be followed (:exc:`SecurityError`,
            :exc:`ValueError`). Override or patch it to change the policy.
        """
        if not isinstance(exc, InvalidStatus):
            return exc
        try:
            self._wsuri, self.additional_headers, location = process_redirect(
                self._wsuri, exc, self.additional_headers, target=self._target()
            )
        except (InvalidStatus, InvalidURI, SecurityError, ValueError) as error:
            return error
        return location

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    __iter__ = __await__

    async def __aenter__(self) -> ClientConnection:
        if self.connection is not None:
            raise RuntimeError("connect() isn't reentrant")
        self.connection = await self
        return self.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        delays: Generator[float] | None = None
        while True:
            try:
                connection = await self
            except Exception as exc:
                new_exc = self.process_exception(exc)
                if new_exc is exc:
                    raise
                if new_exc is not None:
                    raise new_exc from exc
                if delays is None:
                    delays = self.reconnect_delays()
                delay = next(delays)
                self.logger.info("connect failed; reconnecting in %.1f seconds: %s", delay, exc)
                await asyncio.sleep(delay)
                continue
            delays = None
            try:
                yield connection
            finally:
                await connection.close()


def unix_connect(path: PathLike | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """Connects to a WebSocket server over a Unix socket; see :func:`connect`.

    Args:
        path: Filesystem path of the socket.
        uri: URI for the handshake; ``ws://localhost/`` by default, or
            ``wss://localhost/`` when ``ssl`` is given.
    """
    if uri is None:
        uri = "wss://localhost/" if kwargs.get("ssl") is not None else "ws://localhost/"
    return connect(uri=uri, unix=True, path=path, **kwargs)
