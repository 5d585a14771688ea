"""Routing for the threading server: URL variables, 404, redirects."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from werkzeug.routing import Map, Rule

import ferrows
from ferrows.sync.client import connect, unix_connect
from ferrows.sync.router import Router, route, unix_route


def greet(websocket, name):
    websocket.send(f"hello {name}")


URL_MAP = Map(
    [
        Rule("/hello/<name>", endpoint=greet),
        Rule("/old/<name>", redirect_to="/hello/<name>"),
    ]
)


@contextmanager
def running(server):
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive()


def test_url_variables_404_and_redirect():
    with running(route(URL_MAP, "127.0.0.1", 0)) as server:
        port = server.socket.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/hello/ada") as ws:
            assert ws.recv(timeout=5) == "hello ada"
        with pytest.raises(ferrows.InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{port}/nowhere")
        assert info.value.response.status_code == 404
        with connect(f"ws://127.0.0.1:{port}/old/bob") as ws:
            assert ws.recv(timeout=5) == "hello bob"


def test_router_instance_with_process_request():
    calls = []

    def note(connection, request):
        calls.append(request.path)

    with running(route(Router(URL_MAP), "127.0.0.1", 0, process_request=note)) as server:
        port = server.socket.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/hello/x") as ws:
            assert ws.recv(timeout=5) == "hello x"
    assert calls == ["/hello/x"]


def test_unix_route(tmp_path):
    path = str(tmp_path / "router.sock")
    with running(unix_route(URL_MAP, path)):
        with unix_connect(path, "ws://localhost/hello/unix") as ws:
            assert ws.recv(timeout=5) == "hello unix"
