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


def test_sync_web_socket_server_is_server() -> None:
    from ferrows.sync.server import Server

    with pytest.warns(DeprecationWarning, match="WebSocketServer was renamed to Server"):
        from ferrows.sync.server import WebSocketServer
    assert WebSocketServer is Server


def test_sync_ssl_context_is_ssl() -> None:
    """``ssl_context=`` still works on the threading server and client."""
    import ssl

    import trustme

    from ferrows.sync.client import connect
    from ferrows.sync.server import serve

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with pytest.warns(DeprecationWarning, match="ssl_context was renamed to ssl"):
        server = serve(lambda ws: ws.send(ws.recv()), "127.0.0.1", 0, ssl_context=server_context)
    import threading

    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        with pytest.warns(DeprecationWarning, match="ssl_context was renamed to ssl"):
            ws = connect(f"wss://127.0.0.1:{port}/", ssl_context=client_context)
        with ws:
            ws.send("over tls")
            assert ws.recv(5) == "over tls"
    finally:
        server.shutdown()
        thread.join(5)
