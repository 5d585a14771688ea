"""URL routing for the threading server: :func:`route`, :func:`unix_route`,
:class:`Router`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from ..routing import RouterBase, make_route
from ..typing import PathLike
from .server import Server, ServerConnection, serve

if TYPE_CHECKING:
    import ssl as ssl_module

    from werkzeug.routing import Map

__all__ = ["Router", "route", "unix_route"]


class Router(RouterBase[ServerConnection]):
    """Routes connections to plain-function endpoints; see
    :class:`~ferrows.routing.RouterBase`."""

    def handler(self, connection: ServerConnection) -> None:
        """Runs the endpoint matched during the handshake, with the URL
        variables as keyword arguments."""
        routed: Any = connection  # the fields route_request() set
        routed.handler(connection, **routed.handler_kwargs)


def route(
    url_map: Map | Router,
    *args: Any,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | Literal[True] | None = None,
    create_router: type[Router] | None = None,
    **kwargs: Any,
) -> Server:
    """Starts a threading WebSocket server that routes by URL, like
    :func:`~ferrows.sync.server.serve`.

    Args:
        url_map: werkzeug ``Map`` (or a :class:`Router`).
        server_name: Host to match; the ``Host`` header by default.
        ssl: An SSL context to serve TLS, or :obj:`True` when TLS ends at a
            proxy in front (URLs become ``wss://``).
        create_router: :class:`Router` subclass to use.

    Raises:
        ImportError: If werkzeug isn't installed.
    """
    server = make_route(
        serve, Router, url_map, args, kwargs, server_name=server_name, ssl=ssl, create_router=create_router
    )
    return cast(Server, server)


def unix_route(url_map: Map | Router, path: PathLike | None = None, **kwargs: Any) -> Server:
    """:func:`route` on a Unix socket."""
    return route(url_map, unix=True, path=path, **kwargs)
