"""Connecting to a WebSocket server through a proxy, for both client layers.

An HTTP proxy (``http://`` or ``https://``) opens a tunnel with ``CONNECT``
(RFC 9110 §9.3.6); a SOCKS proxy (``socks4``, ``socks4a``, ``socks5``,
``socks5h``) goes through the optional ``python-socks`` package, imported
only when such a proxy is used. RFC 6455 §4.1 asks clients to use the
proxy their environment configures; :func:`get_proxy` finds it where
websockets does, so that ``import ferrows as websockets`` keeps the same
routes.

The HTTP exchange with the proxy happens here, in Python: it is a few
hundred bytes once per connection, parsed with :class:`~ferrows.http11.Response`
and its size limits. Once the tunnel is open, the WebSocket connection runs
over it as over any TCP connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import select
import socket
import ssl as ssl_module
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .datastructures import Headers, HeadersLike
from .exceptions import InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, ProxyError
from .headers import build_authorization_basic, build_host
from .http11 import USER_AGENT, Response
from .streams import StreamReader
from .uri import WebSocketURI, credentials, idna_host

if TYPE_CHECKING:
    from .sync.utils import Deadline

__all__ = ["Proxy", "get_proxy", "parse_proxy", "prepare_connect_request"]

SCHEMES = ("socks5h", "socks5", "socks4a", "socks4", "https", "http")
"""Proxy schemes ferrows connects through."""


@dataclasses.dataclass
class Proxy:
    """A proxy address, split into the parts a client needs.

    Attributes:
        scheme: One of :data:`SCHEMES`.
        host: Host name in lower case, IDNA-encoded if it was not ASCII.
        port: Port, defaulting to 443 for ``https`` and 80 otherwise, as
            websockets does (SOCKS proxies usually want an explicit 1080).
        username: User name from the address, percent-decoded, if any.
        password: Password from the address, percent-decoded, if any.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def user_info(self) -> tuple[str, str] | None:
        """``(username, password)`` when the address has credentials."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password


def parse_proxy(proxy: str) -> Proxy:
    """Parses and checks a proxy address such as ``http://user:pass@proxy:8080``.

    Raises:
        InvalidProxy: If the scheme isn't supported, the host is missing,
            the address has a path, query or fragment, the port isn't valid,
            or there is a user name without a password.
    """
    try:
        parts = urllib.parse.urlsplit(proxy)
        port = parts.port
    except ValueError as exc:
        raise InvalidProxy(proxy, str(exc)) from exc
    if parts.scheme not in SCHEMES:
        raise InvalidProxy(proxy, f"scheme {parts.scheme} isn't supported")
    host = parts.hostname
    if not host:
        raise InvalidProxy(proxy, "hostname isn't provided")
    if parts.path not in ("", "/"):
        raise InvalidProxy(proxy, "path is meaningless")
    if parts.query:
        raise InvalidProxy(proxy, "query is meaningless")
    if parts.fragment:
        raise InvalidProxy(proxy, "fragment is meaningless")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    try:
        username, password = credentials(parts)
        host = idna_host(host)
    except ValueError as exc:
        raise InvalidProxy(proxy, str(exc)) from exc
    return Proxy(parts.scheme, host, port, username, password)


def get_proxy(wsuri: WebSocketURI) -> str | None:
    """The proxy the environment configures for ``wsuri``, or :obj:`None`.

    The server may be exempt (``no_proxy`` or the system's bypass list).
    Otherwise the first of these wins, as in websockets: ``wss_proxy`` (for
    ``wss://``) or ``ws_proxy`` (for ``ws://``), a SOCKS proxy of the
    system, ``https_proxy``, then ``http_proxy`` for ``ws://`` only: RFC
    6455 §4.1 favours SOCKS, and a proxy for HTTPS tunnels anything.
    """
    if urllib.request.proxy_bypass(f"{wsuri.host}:{wsuri.port}"):
        return None
    proxies = urllib.request.getproxies()
    schemes = ("wss", "socks", "https") if wsuri.secure else ("ws", "socks", "https", "http")
    for scheme in schemes:
        proxy = proxies.get(scheme)
        if proxy is not None:
            # A system SOCKS proxy comes back as {"socks": "http://host:port"}.
            if scheme == "socks" and proxy.startswith("http://"):
                proxy = "socks5h://" + proxy[len("http://") :]
            return proxy
    return None


def select_proxy(proxy: str | bool | None, wsuri: WebSocketURI, kwargs: dict[str, Any]) -> Proxy | None:
    """The proxy to connect through, given ``connect()``'s arguments.

    ``proxy=True`` reads the environment, a string names the proxy, and
    :obj:`None` (or :obj:`False`) connects directly. A connected ``sock``
    means no proxy, as in websockets; so does an address given by the
    caller (``host``, ``port``, ``address``) unless a proxy is named too,
    which is an error: the connection can go to only one place. The
    ``proxy_*`` arguments are dropped from ``kwargs`` when no proxy is
    used, so that a configuration written for a proxy works without one.

    Raises:
        InvalidProxy: If the proxy address isn't valid.
        ValueError: For a named proxy with ``host``, ``port`` or ``address``.
    """
    explicit_target = any(kwargs.get(key) is not None for key in ("host", "port", "address"))
    if kwargs.get("sock") is not None:
        proxy = None
    elif proxy is True:
        proxy = None if explicit_target else get_proxy(wsuri)
    if not proxy:
        for key in [key for key in kwargs if key.startswith("proxy_")]:
            del kwargs[key]
        return None
    assert isinstance(proxy, str)
    parsed = parse_proxy(proxy)
    if explicit_target:
        raise ValueError("host, port and address arguments are incompatible with a proxy")
    return parsed


def prepare_connect_request(
    proxy: Proxy,
    wsuri: WebSocketURI,
    user_agent_header: str | None = USER_AGENT,
    proxy_headers: HeadersLike | None = None,
) -> bytes:
    """The ``CONNECT`` request that opens a tunnel to the server.

    The request target is the authority with its port (RFC 9110 §9.3.6).
    Credentials in the proxy address become ``Proxy-Authorization: Basic``
    (RFC 9110 §11.7.2, RFC 7617); ``proxy_headers`` come last and replace
    headers of the same name.
    """
    target = build_host(wsuri.host, wsuri.port, wsuri.secure, always_include_port=True)
    headers = Headers()
    headers["Host"] = build_host(wsuri.host, wsuri.port, wsuri.secure)
    if user_agent_header is not None:
        headers["User-Agent"] = user_agent_header
    if proxy.user_info is not None:
        headers["Proxy-Authorization"] = build_authorization_basic(*proxy.user_info)
    if proxy_headers is not None:
        extra = Headers(proxy_headers)
        for name in {name.lower() for name in extra}:
            if name in headers:
                del headers[name]
        headers.update(extra)
    return f"CONNECT {target} HTTP/1.1\r\n".encode() + headers.serialize()


class ConnectResponseParser:
    """Reads the proxy's answer to ``CONNECT``, fed as it arrives.

    The answer has no body (RFC 9110 §9.3.6): nothing may follow it before
    the client speaks, since neither a WebSocket server nor a TLS server
    talks first, so bytes after it mean the proxy is confused.
    """

    def __init__(self) -> None:
        self.reader = StreamReader()
        self.parser = Response.parse(self.reader.read_line, self.reader.read_exact, self.reader.read_to_eof, proxy=True)

    def feed(self, data: bytes) -> Response | None:
        """Feeds received bytes, or ``b""`` for the end of the stream.

        Returns:
            The response once it is complete, :obj:`None` before.

        Raises:
            InvalidProxyMessage: If the answer isn't valid HTTP, is cut short,
                or is followed by data.
            InvalidProxyStatus: If the status isn't 2xx.
        """
        if data:
            self.reader.feed_data(data)
        else:
            self.reader.feed_eof()
        try:
            next(self.parser)
        except StopIteration as done:
            response = done.value
        except Exception as exc:
            raise InvalidProxyMessage("did not receive a valid HTTP response from proxy") from exc
        else:
            return None
        assert isinstance(response, Response)
        if not 200 <= response.status_code < 300:
            raise InvalidProxyStatus(response)
        if self.reader.buffer:
            raise InvalidProxyMessage("proxy sent data after its response to CONNECT")
        return response


def _socks_proxy_class(sync: bool) -> tuple[Any, Any]:
    """python-socks' proxy class for this layer and its ``ProxyType`` enum.

    Raises:
        ImportError: If python-socks isn't installed.
    """
    try:
        from python_socks import ProxyType

        if sync:
            from python_socks.sync import Proxy as SyncProxy

            return SyncProxy, ProxyType
        from python_socks.async_.asyncio import Proxy as AsyncProxy

        return AsyncProxy, ProxyType
    except ImportError as exc:
        raise ImportError(
            "connecting through a SOCKS proxy requires python-socks: pip install 'ferrows[socks]'"
        ) from exc


def _socks_arguments(proxy: Proxy, proxy_type: Any) -> tuple[Any, ...]:
    """Version and resolution of a SOCKS proxy: the ``h`` and ``a``
    variants let the proxy resolve the server's name."""
    version = proxy_type.SOCKS5 if proxy.scheme.startswith("socks5") else proxy_type.SOCKS4
    rdns = proxy.scheme in ("socks5h", "socks4a")
    return version, proxy.host, proxy.port, proxy.username, proxy.password, rdns


def _check_socks_kwargs(proxy: Proxy, kwargs: dict[str, Any]) -> None:
    for key in ("proxy_ssl", "proxy_server_hostname", "proxy_headers"):
        if kwargs.get(key) is not None:
            raise ValueError(f"{key} argument is incompatible with a {proxy.scheme}:// proxy")


# ------------------------------------------------------------------ threading


def _remaining(deadline: Deadline) -> float | None:
    """Seconds left to connect to the proxy, with the proxy's own timeout error."""
    try:
        return deadline.timeout()
    except TimeoutError:
        raise TimeoutError("timed out while connecting to proxy") from None


def connect_proxy_sync(
    proxy: Proxy,
    wsuri: WebSocketURI,
    deadline: Deadline,
    *,
    user_agent_header: str | None,
    proxy_headers: HeadersLike | None = None,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    **kwargs: Any,
) -> socket.socket:
    """Opens a tunnel to the server through ``proxy``, for the threading client.

    The returned socket carries the WebSocket connection, still without TLS
    to the server: the caller adds it for ``wss://``. Through an
    ``https://`` proxy to a ``wss://`` server, that is a socket pair
    relayed by a thread to the proxy's TLS connection (TLS in TLS), since
    the connection's socket must be a real one.

    Args:
        kwargs: Passed to :func:`socket.create_connection` for an HTTP
            proxy; a SOCKS proxy uses only ``source_address``.

    Raises:
        OSError: If the proxy can't be reached.
        TimeoutError: If ``deadline`` passes.
        ProxyError: If the proxy refuses or answers nonsense.
        ImportError: For a SOCKS proxy without python-socks.
        ValueError: For ``proxy_ssl`` with an ``http://`` proxy.
    """
    if proxy.scheme.startswith("socks"):
        _check_socks_kwargs(
            proxy,
            dict(proxy_ssl=proxy_ssl, proxy_server_hostname=proxy_server_hostname, proxy_headers=proxy_headers),
        )
        socks_class, proxy_type = _socks_proxy_class(sync=True)
        socks = socks_class(*_socks_arguments(proxy, proxy_type))
        try:
            sock: socket.socket = socks.connect(
                wsuri.host, wsuri.port, timeout=_remaining(deadline), local_addr=kwargs.get("source_address")
            )
        except OSError:
            # python-socks' connection and timeout errors are OSErrors.
            raise
        except Exception as exc:
            raise ProxyError("failed to connect to SOCKS proxy") from exc
        sock.settimeout(None)
        return sock

    if proxy.scheme != "https" and proxy_ssl is not None:
        raise ValueError("proxy_ssl argument is incompatible with an http:// proxy")
    kwargs.setdefault("timeout", _remaining(deadline))
    sock = socket.create_connection((proxy.host, proxy.port), **kwargs)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        if proxy.scheme == "https":
            context = proxy_ssl if proxy_ssl is not None else ssl_module.create_default_context()
            hostname = proxy_server_hostname if proxy_server_hostname is not None else proxy.host
            sock.settimeout(_remaining(deadline))
            sock = context.wrap_socket(sock, server_hostname=hostname)
        sock.sendall(prepare_connect_request(proxy, wsuri, user_agent_header, proxy_headers))
        parser = ConnectResponseParser()
        while True:
            sock.settimeout(_remaining(deadline))
            try:
                # Header lines and counts are bounded, so is this loop.
                data = sock.recv(4096)
            except TimeoutError:
                raise TimeoutError("timed out while connecting to HTTP proxy") from None
            if parser.feed(data) is not None:
                break
        sock.settimeout(None)
        if isinstance(sock, ssl_module.SSLSocket) and wsuri.secure:
            return _relay_tls(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _relay_tls(outer: ssl_module.SSLSocket) -> socket.socket:
    """One end of a socket pair whose other end a thread relays to ``outer``."""
    mine, theirs = socket.socketpair()
    relay = threading.Thread(target=_relay, args=(outer, theirs), name="ferrows-proxy-tls", daemon=True)
    relay.start()
    return mine


_RELAY_BUFFER = 2**18
"""Bytes buffered in each direction before the relay stops reading."""


def _relay(outer: ssl_module.SSLSocket, inner: socket.socket) -> None:
    """Moves bytes both ways until either side closes or fails.

    One thread drives ``outer`` because an SSL object may not be used by
    two threads at once; both sockets are non-blocking and the thread waits
    in poll() only when no step made progress.
    """
    outer.setblocking(False)
    inner.setblocking(False)
    to_inner = bytearray()
    to_outer = bytearray()
    outer_eof = inner_eof = inner_shut = False
    try:
        # Ends once the WebSocket side closed and its bytes were passed on.
        while not (inner_eof and (outer_eof or not to_outer)):
            progress = False
            outer_events = inner_events = 0
            if not outer_eof and len(to_inner) < _RELAY_BUFFER:
                try:
                    data = outer.recv(65536)
                except ssl_module.SSLWantReadError:
                    outer_events |= select.POLLIN
                except ssl_module.SSLWantWriteError:
                    outer_events |= select.POLLOUT
                else:
                    progress = True
                    if data:
                        to_inner += data
                    else:
                        outer_eof = True
            if to_inner:
                try:
                    sent = inner.send(to_inner)
                except BlockingIOError:
                    inner_events |= select.POLLOUT
                else:
                    del to_inner[:sent]
                    progress = True
            elif outer_eof and not inner_shut:
                inner.shutdown(socket.SHUT_WR)
                inner_shut = progress = True
            if not inner_eof and len(to_outer) < _RELAY_BUFFER:
                try:
                    data = inner.recv(65536)
                except BlockingIOError:
                    inner_events |= select.POLLIN
                else:
                    progress = True
                    if data:
                        to_outer += data
                    else:
                        inner_eof = True
            if to_outer:
                try:
                    sent = outer.send(to_outer)
                except ssl_module.SSLWantWriteError:
                    outer_events |= select.POLLOUT
                except ssl_module.SSLWantReadError:
                    outer_events |= select.POLLIN
                else:
                    del to_outer[:sent]
                    progress = True
            if progress or outer.pending():
                continue
            if not (outer_events or inner_events):  # pragma: no cover - defensive
                break
            poller = select.poll()
            if outer_events:
                poller.register(outer.fileno(), outer_events)
            if inner_events:
                poller.register(inner.fileno(), inner_events)
            poller.poll()
    except OSError:
        pass
    finally:
        inner.close()
        outer.close()


# -------------------------------------------------------------------- asyncio


class _HTTPProxyProtocol(asyncio.Protocol):
    """Sends ``CONNECT`` and reads the answer; stops reading once it is in,
    so that no byte meant for the WebSocket connection lands here."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.parser = ConnectResponseParser()
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def _feed(self, data: bytes) -> None:
        if self.response.done():
            return
        try:
            response = self.parser.feed(data)
        except ProxyError as exc:
            self.response.set_exception(exc)
            return
        if response is not None:
            self.transport.pause_reading()
            self.response.set_result(response)

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> None:
        self._feed(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self._feed(b"")


_P = TypeVar("_P", bound=asyncio.BaseProtocol)


async def connect_proxy_async(
    proxy: Proxy,
    wsuri: WebSocketURI,
    factory: Callable[[], _P],
    kwargs: dict[str, Any],
    user_agent_header: str | None,
) -> _P:
    """Opens a tunnel through ``proxy`` and starts ``factory()``'s protocol on it.

    ``kwargs`` are those of :meth:`~asyncio.loop.create_connection`, with
    ``ssl`` and ``server_hostname`` already set for a ``wss://`` URI. For an
    HTTP proxy, ``ssl*`` and ``server_hostname`` configure TLS to the
    server, ``proxy_``-prefixed ones (``proxy_ssl``,
    ``proxy_server_hostname``...) TLS to the proxy, ``proxy_headers`` the
    ``CONNECT`` request, and the others the connection to the proxy. A
    SOCKS proxy uses ``local_addr`` to reach the proxy and the rest for the
    connection through it.

    Raises:
        OSError: If the proxy can't be reached.
        ProxyError: If the proxy refuses or answers nonsense.
        ImportError: For a SOCKS proxy without python-socks.
        ValueError: For ``proxy_ssl`` that doesn't fit the proxy's scheme.
    """
    loop = asyncio.get_running_loop()
    kwargs = dict(kwargs)
    if proxy.scheme.startswith("socks"):
        _check_socks_kwargs(proxy, kwargs)
        for key in [key for key in kwargs if key.startswith("proxy_")]:
            del kwargs[key]
        socks_class, proxy_type = _socks_proxy_class(sync=False)
        socks = socks_class(*_socks_arguments(proxy, proxy_type), loop=loop)
        try:
            # Cancelled by the caller's open_timeout, not timed out here.
            sock = await socks.connect(wsuri.host, wsuri.port, local_addr=kwargs.pop("local_addr", None))
        except OSError:
            raise
        except Exception as exc:
            raise ProxyError("failed to connect to SOCKS proxy") from exc
        try:
            _, protocol = await loop.create_connection(factory, sock=sock, **kwargs)
        except BaseException:
            sock.close()
            raise
        return protocol

    proxy_headers = kwargs.pop("proxy_headers", None)
    server_kwargs: dict[str, Any] = {}
    proxy_kwargs: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key.startswith("ssl") or key == "server_hostname":
            server_kwargs[key] = value
        elif key.startswith("proxy_"):
            proxy_kwargs[key[len("proxy_") :]] = value
        else:
            proxy_kwargs[key] = value
    if proxy.scheme == "https":
        proxy_kwargs.setdefault("ssl", True)
        if proxy_kwargs["ssl"] is None:
            raise ValueError("proxy_ssl=None is incompatible with an https:// proxy")
        proxy_kwargs.setdefault("server_hostname", proxy.host)
    elif proxy_kwargs.get("ssl") is not None:
        raise ValueError("proxy_ssl argument is incompatible with an http:// proxy")
    request = prepare_connect_request(proxy, wsuri, user_agent_header, proxy_headers)
    transport, tunnel = await loop.create_connection(
        lambda: _HTTPProxyProtocol(request), proxy.host, proxy.port, **proxy_kwargs
    )
    try:
        await tunnel.response
        protocol = factory()
        transport.set_protocol(protocol)
        server_ssl = server_kwargs.pop("ssl", None)
        if server_ssl is True:
            server_ssl = ssl_module.create_default_context()
        if server_ssl is not None:
            # start_tls() resumes reading once its own protocol is in place.
            tls_transport = await loop.start_tls(transport, protocol, server_ssl, **server_kwargs)
            assert tls_transport is not None
            transport = tls_transport
            protocol.connection_made(transport)
        else:
            protocol.connection_made(transport)
            transport.resume_reading()
    except BaseException:
        transport.abort()
        raise
    return protocol
