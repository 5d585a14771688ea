"""Routing for the asyncio server: URL variables, 404, redirects, hooks."""

from __future__ import annotations

import asyncio

import pytest
from werkzeug.routing import Map, Rule

import ferrows
from ferrows.asyncio.router import Router, route, unix_route


async def greet(websocket, name):
    await websocket.send(f"hello {name}")


async def add(websocket, a, b):
    await websocket.send(str(a + b))


URL_MAP = Map(
    [
        Rule("/hello/<name>", endpoint=greet),
        Rule("/add/<int:a>/<int:b>", endpoint=add),
        Rule("/old/<name>", redirect_to="/hello/<name>"),
    ]
)


def port_of(server):
    return server.sockets[0].getsockname()[1]


async def test_url_variables_reach_the_endpoint():
    async with route(URL_MAP, "127.0.0.1", 0) as server:
        async with ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/hello/ada") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello ada"
        async with ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/add/2/40") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "42"


async def test_no_match_is_404():
    async with route(URL_MAP, "127.0.0.1", 0) as server:
        with pytest.raises(ferrows.InvalidStatus) as info:
            await ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/nowhere")
        assert info.value.response.status_code == 404


async def test_redirect_rule_is_followed_by_the_client():
    async with route(URL_MAP, "127.0.0.1", 0) as server:
        port = port_of(server)
        async with ferrows.connect(f"ws://127.0.0.1:{port}/old/bob") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello bob"
        # Seen without following: 302 with the new location.
        protocol_client = ferrows.ClientProtocol(f"ws://127.0.0.1:{port}/old/bob")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        protocol_client.send_request(protocol_client.connect())
        writer.write(b"".join(protocol_client.data_to_send()))
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        assert response.startswith(b"HTTP/1.1 302")
        assert f"Location: ws://127.0.0.1:{port}/hello/bob".encode() in response


async def test_user_process_request_runs_before_routing():
    def refuse_all(connection, request):
        return connection.respond(403, "no\n")

    async with route(URL_MAP, "127.0.0.1", 0, process_request=refuse_all) as server:
        with pytest.raises(ferrows.InvalidStatus) as info:
            await ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/hello/x")
        assert info.value.response.status_code == 403


async def test_async_process_request_passing_through():
    seen = []

    async def note(connection, request):
        seen.append(request.path)

    async with route(URL_MAP, "127.0.0.1", 0, process_request=note) as server:
        async with ferrows.connect(f"ws://127.0.0.1:{port_of(server)}/hello/x") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello x"
    assert seen == ["/hello/x"]


async def test_router_instance_and_seed_basic_auth_on_endpoint():
    @ferrows.basic_auth("admin", "secret")
    async def private(websocket):
        await websocket.send(f"hi {websocket.username}")

    router = Router(Map([Rule("/private", endpoint=private)]))
    async with route(router, "127.0.0.1", 0) as server:
        port = port_of(server)
        with pytest.raises(ferrows.InvalidStatus) as info:
            await ferrows.connect(f"ws://127.0.0.1:{port}/private")
        assert info.value.response.status_code == 401
        async with ferrows.connect(f"ws://admin:secret@127.0.0.1:{port}/private") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hi admin"


async def test_unix_route(tmp_path):
    path = str(tmp_path / "router.sock")
    async with unix_route(URL_MAP, path):
        async with ferrows.unix_connect(path, "ws://localhost/hello/unix") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello unix"


def test_route_is_exported_at_top_level():
    assert ferrows.route is route
    assert ferrows.Router is Router
