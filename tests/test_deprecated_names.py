"""Names websockets 17 still ships as deprecated aliases: they work, and
warn as websockets warns."""

from __future__ import annotations

import pytest

from ferrows.client import ClientProtocol
from ferrows.protocol import Protocol
from ferrows.server import ServerProtocol


def test_connection_is_protocol() -> None:
    with pytest.warns(DeprecationWarning, match="Connection was renamed to Protocol"):
        from ferrows.connection import Connection
    assert Connection is Protocol


def test_client_connection_is_client_protocol() -> None:
    from ferrows.client import ClientConnection

    with pytest.warns(DeprecationWarning, match="ClientConnection was renamed to ClientProtocol"):
        client = ClientConnection("ws://localhost/")
    assert isinstance(client, ClientProtocol)


def test_server_connection_is_server_protocol() -> None:
    from ferrows.server import ServerConnection

    with pytest.warns(DeprecationWarning, match="ServerConnection was renamed to ServerProtocol"):
        server = ServerConnection()
    assert isinstance(server, ServerProtocol)


def test_unknown_names_still_fail() -> None:
    with pytest.raises(ImportError):
        from ferrows.connection import NoSuchName  # type: ignore[attr-defined]  # noqa: F401
