"""HTTP Basic Authentication for the opening handshake (RFC 7617).

Two calling forms coexist, as the user's documentation and websockets 17
each use one:

* ``@basic_auth("admin", "secret")`` decorates a handler. The server finds
  the check on the handler and runs it before ``process_request``. The same
  object also works as ``process_request=basic_auth("admin", "secret")``.
* ``basic_auth(realm=..., credentials=..., check_credentials=...)`` returns a
  ``process_request`` hook, as in websockets 17.

Secrets are compared with :func:`hmac.compare_digest` on both the username
and the password, so the time taken does not reveal which one was wrong nor
how much of it matched.
"""

from __future__ import annotations

import functools
import hmac
import http
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, overload

from .exceptions import InvalidHeader
from .headers import build_www_authenticate_basic, parse_authorization_basic
from .http11 import Request, Response

__all__ = ["HANDLER_ATTRIBUTE", "BasicAuth", "make_basic_auth"]

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

Credentials = tuple[str, str] | Iterable[tuple[str, str]]
"""What ``credentials=`` accepts: a ``(username, password)`` pair or pairs."""

HANDLER_ATTRIBUTE = "__ferrows_basic_auth__"
"""Attribute of a decorated handler that holds its :class:`BasicAuth`."""


def _unauthorized(connection: Any, realm: str, text: str) -> Response:
    response: Response = connection.respond(http.HTTPStatus.UNAUTHORIZED, text)
    response.headers["WWW-Authenticate"] = build_www_authenticate_basic(realm)
    return response


def _read_credentials(request: Request) -> tuple[str, str] | str:
    """Returns ``(username, password)``, or the reason to refuse."""
    try:
        authorization = request.headers["Authorization"]
    except KeyError:
        return "Missing credentials\n"
    except Exception:
        return "Unsupported credentials\n"
    try:
        return parse_authorization_basic(authorization)
    except InvalidHeader:
        return "Unsupported credentials\n"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class BasicAuth:
    """One username and password, checked during the handshake.

    Args:
        username: Expected username.
        password: Expected password.
        realm: Realm sent in ``WWW-Authenticate``.
    """

    def __init__(self, username: str, password: str, realm: str = "WebSocket") -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError("username and password must be str")
        self.username = username
        self.password = password
        self.realm = realm

    def check(self, connection: Any, request: Request) -> Response | None:
        """Returns a 401 response, or :obj:`None` after setting
        ``connection.username`` when the credentials match."""
        credentials = _read_credentials(request)
        if isinstance(credentials, str):
            return _unauthorized(connection, self.realm, credentials)
        username, password = credentials
        # Evaluate both comparisons: no early exit on a wrong username.
        valid = _same(username, self.username) & _same(password, self.password)
        if not valid:
            return _unauthorized(connection, self.realm, "Invalid credentials\n")
        connection.username = username
        return None

    @overload
    def __call__(self, handler: _Handler, /) -> _Handler: ...

    @overload
    def __call__(self, connection: Any, request: Request, /) -> Response | None: ...

    def __call__(self, *args: Any) -> Any:
        """As a decorator: ``@basic_auth(...)`` over a handler. As a hook:
        ``process_request(connection, request)``."""
        if len(args) == 2:
            return self.check(*args)
        if len(args) != 1 or not callable(args[0]):
            raise TypeError("basic_auth() decorates a handler or is called as process_request(connection, request)")
        handler = args[0]
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_wrapper(connection: Any, *a: Any, **kw: Any) -> Any:
                return await handler(connection, *a, **kw)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(handler)
            def sync_wrapper(connection: Any, *a: Any, **kw: Any) -> Any:
                return handler(connection, *a, **kw)

            wrapper = sync_wrapper
        setattr(wrapper, HANDLER_ATTRIBUTE, self)
        return wrapper


def _credentials_dict(credentials: Any) -> dict[str, str]:
    """Accepts a ``(username, password)`` pair or an iterable of pairs."""
    if isinstance(credentials, tuple) and len(credentials) == 2 and all(isinstance(c, str) for c in credentials):
        return {credentials[0]: credentials[1]}
    if isinstance(credentials, Iterable) and not isinstance(credentials, (str, bytes)):
        pairs = list(credentials)
        if all(isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(c, str) for c in pair) for pair in pairs):
            return dict(pairs)
    raise TypeError(f"invalid credentials argument: {credentials}")


def make_basic_auth(
    realm: str = "",
    credentials: Any = None,
    check_credentials: Callable[[str, str], bool | Awaitable[bool]] | None = None,
    *,
    allow_async: bool,
) -> Callable[[Any, Request], Any]:
    """Builds websockets 17's ``process_request`` hook for Basic auth.

    Args:
        realm: Realm sent in ``WWW-Authenticate``.
        credentials: A ``(username, password)`` pair or an iterable of pairs.
        check_credentials: ``f(username, password) -> bool``; may be a
            coroutine function when ``allow_async`` is true (asyncio).

    Raises:
        ValueError: Unless exactly one of ``credentials`` and
            ``check_credentials`` is given.
        TypeError: If ``credentials`` is malformed, or ``check_credentials``
            is a coroutine function while ``allow_async`` is false.
    """
    if (credentials is None) == (check_credentials is None):
        raise ValueError("provide either credentials or check_credentials")
    if credentials is not None:
        table = _credentials_dict(credentials)

        def check_table(username: str, password: str) -> bool:
            expected = table.get(username)
            # Compare against something even for an unknown user, so that
            # timing does not tell which usernames exist.
            return _same(password, expected if expected is not None else "\0" * len(password)) and (
                expected is not None
            )

        check_credentials = check_table

    checker = check_credentials
    assert checker is not None
    if not allow_async and inspect.iscoroutinefunction(checker):
        # The threading server would get a coroutine, which is truthy:
        # every password would be accepted.
        raise TypeError("check_credentials must be a plain function in ferrows.sync")

    def refuse_or_credentials(connection: Any, request: Request) -> Response | tuple[str, str]:
        credentials = _read_credentials(request)
        if isinstance(credentials, str):
            return _unauthorized(connection, realm, credentials)
        return credentials

    if allow_async and inspect.iscoroutinefunction(checker):

        async def async_process_request(connection: Any, request: Request) -> Response | None:
            result = refuse_or_credentials(connection, request)
            if isinstance(result, Response):
                return result
            if not await checker(*result):
                return _unauthorized(connection, realm, "Invalid credentials\n")
            connection.username = result[0]
            return None

        return async_process_request

    def process_request(connection: Any, request: Request) -> Response | None:
        result = refuse_or_credentials(connection, request)
        if isinstance(result, Response):
            return result
        if not checker(*result):
            return _unauthorized(connection, realm, "Invalid credentials\n")
        connection.username = result[0]
        return None

    return process_request


def dispatch_basic_auth(args: tuple[Any, ...], kwargs: dict[str, Any], *, allow_async: bool) -> Any:
    """Chooses between the two forms of ``basic_auth`` from the arguments:
    the handler decorator when a password string comes second (or
    ``username=``/``password=`` is given), websockets 17's hook otherwise."""
    if "username" in kwargs or "password" in kwargs or (len(args) >= 2 and isinstance(args[1], str)):
        return BasicAuth(*args, **kwargs)
    return make_basic_auth(*args, allow_async=allow_async, **kwargs)
