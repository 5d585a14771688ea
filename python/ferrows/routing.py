"""URL routing for WebSocket servers, over werkzeug's ``Map`` and ``Rule``.

The asyncio and threading routers share everything here; they differ only
in how the endpoint is called (awaited or not) and which ``serve`` starts
the server. werkzeug is an optional dependency (``pip install
ferrows[router]``): importing this module works without it, calling
:func:`make_route` does not.
"""

from __future__ import annotations

import http
import inspect
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .auth import HANDLER_ATTRIBUTE
from .http11 import Request, Response
from .typing import StatusLike

if TYPE_CHECKING:
    from werkzeug.routing import Map

__all__ = ["RouterBase", "make_route"]


def _werkzeug() -> Any:
    try:
        import werkzeug.exceptions
        import werkzeug.routing
    except ImportError:
        raise ImportError("route() requires werkzeug") from None
    return werkzeug


ConnectionT = TypeVar("ConnectionT")
"""The server connection class of a layer, which its router is given."""


def _respond(connection: Any, status: StatusLike, text: str) -> Response:
    response: Response = connection.respond(status, text)
    return response


class RouterBase(Generic[ConnectionT]):
    """Routes each connection to an endpoint by its request path.

    Generic in the layer's server connection class, so that the methods a
    subclass overrides are typed as websockets types them.

    Args:
        url_map: werkzeug ``Map`` of ``Rule(path, endpoint=handler)``.
        server_name: Host to match rules against; the request's ``Host``
            header by default.
        url_scheme: ``ws`` or ``wss``, used to build redirect URLs.
    """

    def __init__(self, url_map: Map, server_name: str | None = None, url_scheme: str = "ws") -> None:
        _werkzeug()
        self.url_map = url_map
        self.server_name = server_name
        self.url_scheme = url_scheme
        for rule in url_map.iter_rules():
            rule.websocket = True

    def get_server_name(self, connection: ConnectionT, request: Request) -> str:
        """Host used to match rules and build redirects."""
        if self.server_name is None:
            return str(request.headers["Host"])
        return self.server_name

    def redirect(self, connection: ConnectionT, url: str) -> Response:
        """302 to ``url``, for werkzeug's redirect rules."""
        response = _respond(connection, http.HTTPStatus.FOUND, f"Found at {url}")
        response.headers["Location"] = url
        return response

    def not_found(self, connection: ConnectionT) -> Response:
        """404 when no rule matches."""
        return _respond(connection, http.HTTPStatus.NOT_FOUND, "Not Found")

    def route_request(self, connection: ConnectionT, request: Request) -> Response | None:
        """Matches the request; stores the endpoint and its URL variables on
        the connection, or returns a redirect or 404 response. An endpoint
        decorated with ``@basic_auth(user, password)`` is checked here, right
        after matching."""
        werkzeug = _werkzeug()
        adapter = self.url_map.bind(
            server_name=self.get_server_name(connection, request),
            url_scheme=self.url_scheme,
        )
        url = urllib.parse.urlparse(request.path)
        try:
            handler, kwargs = adapter.match(path_info=url.path, query_args=url.query, websocket=True)
        except werkzeug.routing.RequestRedirect as redirect:
            return self.redirect(connection, redirect.new_url)
        except werkzeug.exceptions.NotFound:
            return self.not_found(connection)
        routed: Any = connection  # the handler's fields are the router's own
        routed.handler, routed.handler_kwargs = handler, kwargs
        auth = getattr(handler, HANDLER_ATTRIBUTE, None)
        if auth is not None:
            return auth.check(connection, request)  # type: ignore[no-any-return]
        return None


def make_route(
    serve: Callable[..., Any],
    router_class: type[RouterBase[Any]],
    url_map: Map | RouterBase[Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    server_name: str | None,
    ssl: Any,
    create_router: type[RouterBase[Any]] | None,
) -> Any:
    """Starts ``serve`` with a router as handler and hook.

    The first argument may be a werkzeug ``Map`` or a ready router (the
    user's documentation passes a ``Router``). The user's
    ``process_request`` runs first, routing second. ``ssl=True`` means TLS
    is terminated in front of the server: URLs are ``wss://`` but the
    server itself listens in clear.
    """
    if isinstance(url_map, RouterBase):
        router = url_map
    else:
        url_scheme = "ws" if ssl is None else "wss"
        router = (create_router or router_class)(url_map, server_name, url_scheme)
    if ssl is True:
        ssl = None
    if ssl is not None:
        kwargs["ssl"] = ssl
    user_hook = kwargs.pop("process_request", None)
    if user_hook is None:
        process_request: Callable[..., Any] = router.route_request
    elif inspect.iscoroutinefunction(user_hook) or getattr(router, "is_async", False):

        async def process_request(connection: Any, request: Request) -> Response | None:
            response = user_hook(connection, request)
            if inspect.isawaitable(response):
                response = await response
            if response is not None:
                return response  # type: ignore[no-any-return]
            return router.route_request(connection, request)

    else:

        def process_request(connection: Any, request: Request) -> Response | None:
            response = user_hook(connection, request)
            if response is not None:
                return response  # type: ignore[no-any-return]
            return router.route_request(connection, request)

    return serve(router.handler, *args, process_request=process_request, **kwargs)  # type: ignore[attr-defined]
