"""ferrows.asgi under a real uvicorn: every ASGI WebSocket message, with
ferrows' client and the websockets client, with and without compression."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

import ferrows

from .utils import TIMEOUT, echo_app, serving, uri_of, wait_for

CLIENTS = ["ferrows", "websockets"]
CLOSED = (ConnectionClosed, ferrows.ConnectionClosed)
REFUSED = (InvalidStatus, ferrows.InvalidStatus)


def connect(client: str, uri: str, **kwargs: Any) -> Any:
    """``connect`` of ferrows or of websockets, with a large enough max_size."""
    kwargs.setdefault("max_size", 8 * 2**20)
    module: Any = ferrows if client == "ferrows" else websockets
    return module.connect(uri, **kwargs)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("compression", ["deflate", None])
async def test_echo_up_to_4_mib(client: str, compression: str | None) -> None:
    async with serving(echo_app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server), compression=compression) as ws:
            extensions = [extension.name for extension in ws.protocol.extensions]
            assert extensions == (["permessage-deflate"] if compression else [])
            for message in ["hello", "é" * 1000, b"\x00\xff" * 10, b"\x01" * 4 * 2**20, "x" * 4 * 2**20]:
                await ws.send(message)
                assert await ws.recv() == message
        assert ws.close_code == 1000


@pytest.mark.parametrize("client", CLIENTS)
async def test_deflate_can_be_disabled(client: str) -> None:
    async with serving(echo_app, ws_per_message_deflate=False) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server)) as ws:
            assert ws.protocol.extensions == []
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_import_string(http: str) -> None:
    """The ``ws`` setting as a string, as ``--ws`` gives it, behind both of
    uvicorn's HTTP protocols (which replay the upgrade request to it)."""
    settings = {"ws": "ferrows.asgi:WebSocketProtocol", "http": http}
    async with serving(echo_app, **settings) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/path?query=1")) as ws:
            await ws.send("by name")
            assert await ws.recv() == "by name"


async def test_scope() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "websocket.close"})

    async with serving(app, root_path="/api") as server, asyncio.timeout(TIMEOUT):
        uri = uri_of(server, "/one%2Ftwo/é?x=1&y=%20")
        with pytest.raises(InvalidStatus):
            async with websockets.connect(
                uri.replace("é", "%C3%A9"),
                subprotocols=["chat", "superchat"],
                additional_headers={"X-Token": "abc"},
            ):
                pass
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["asgi"]["spec_version"] == "2.4"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/one/two/é"
    assert scope["raw_path"] == b"/api/one%2Ftwo/%C3%A9"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["server"] == ("127.0.0.1", int(uri.split(":")[2].split("/")[0]))
    assert scope["client"][0] == "127.0.0.1"
    headers = dict(scope["headers"])
    assert headers[b"x-token"] == b"abc"
    assert headers[b"upgrade"] == b"websocket"
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["extensions"] == {"websocket.http.response": {}}


async def test_lifespan_state_is_copied_per_connection() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["counter"] = 1
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(dict(scope["state"]))
        scope["state"]["counter"] = 99  # a copy: the next connection sees 1
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    async with serving(app, lifespan="on") as server, asyncio.timeout(TIMEOUT):
        for _ in range(2):
            async with ferrows.connect(uri_of(server)) as ws:
                with pytest.raises(ferrows.ConnectionClosedOK):
                    await ws.recv()
    assert seen == [{"counter": 1}, {"counter": 1}]


@pytest.mark.parametrize("client", CLIENTS)
async def test_accept_with_subprotocol_and_headers(client: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "superchat", "headers": [(b"X-Extra", b"yes")]})
        await send({"type": "websocket.send", "text": "hi"})
        await send({"type": "websocket.close"})

    async with serving(app, headers=[("X-Config", "set")]) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server), subprotocols=["chat", "superchat"]) as ws:
            assert ws.subprotocol == "superchat"
            headers = ws.response.headers
            assert headers["x-extra"] == "yes"
            assert headers["x-config"] == "set"
            assert headers["server"] == "uvicorn"
            assert len(headers.get_all("date")) == 1
            assert await ws.recv() == "hi"


async def test_server_and_date_headers_can_be_disabled() -> None:
    async with serving(echo_app, server_header=False, date_header=False) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            assert "server" not in ws.response.headers
            assert "date" not in ws.response.headers


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("code", "reason"), [(None, None), (1001, "bye"), (4321, "app-defined")])
async def test_app_closes(client: str, code: int | None, reason: str | None) -> None:
    after: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message: dict[str, Any] = {"type": "websocket.close"}
        if code is not None:
            message["code"] = code
        if reason is not None:
            message["reason"] = reason
        await send(message)
        after.append(await receive())
        with pytest.raises(RuntimeError, match=r"after sending 'websocket\.close'"):
            await send({"type": "websocket.send", "text": "too late"})
        after.append("raised")

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server)) as ws:
            with pytest.raises(CLOSED):
                await ws.recv()
        assert ws.close_code == (code or 1000)
        assert ws.close_reason == (reason or "")
        await wait_for(lambda: len(after) == 2)
    assert after == [{"type": "websocket.disconnect", "code": code or 1000, "reason": reason or ""}, "raised"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_client_closes(client: str) -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.append(await receive())
        events.append(await receive())
        events.append(await receive())  # it stays disconnected
        try:
            await send({"type": "websocket.send", "text": "gone"})
        except OSError as exc:
            events.append(type(exc).__name__)

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server)) as ws:
            await ws.send(b"last")
            await ws.close(4000, "done here")
        await wait_for(lambda: len(events) == 4)
    disconnect = {"type": "websocket.disconnect", "code": 4000, "reason": "done here"}
    assert events == [{"type": "websocket.receive", "bytes": b"last"}, disconnect, disconnect, "ClientDisconnected"]


async def test_client_disappears() -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.append(await receive())

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            ws.transport.abort()
        await wait_for(lambda: events)
    assert events == [{"type": "websocket.disconnect", "code": 1006}]


@pytest.mark.parametrize("client", CLIENTS)
async def test_close_before_accept_is_403(client: str) -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        events.append(await receive())

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(REFUSED) as exc_info:
            async with connect(client, uri_of(server)):
                pass
        assert exc_info.value.response.status_code == 403
        assert exc_info.value.response.headers["server"] == "uvicorn"
        await wait_for(lambda: events)
    assert events == [{"type": "websocket.disconnect", "code": 1006}]


async def test_app_raises_before_accept_is_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken app")

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as exc_info:
            async with websockets.connect(uri_of(server)):
                pass
    response = exc_info.value.response
    assert response.status_code == 500
    assert response.body == b"Internal Server Error"
    assert response.headers["content-length"] == "21"
    assert any(r.message.startswith("Exception in ASGI application") and r.exc_info for r in caplog.records)


async def test_app_returns_before_accept_is_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(ferrows.InvalidStatus) as exc_info:
            async with ferrows.connect(uri_of(server)):
                pass
    assert exc_info.value.response.status_code == 500
    assert "ASGI callable returned without completing handshake." in caplog.messages


@pytest.mark.parametrize("client", CLIENTS)
async def test_app_raises_after_accept_is_1011(client: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("broken handler")

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with connect(client, uri_of(server)) as ws:
            await ws.send("trigger")
            with pytest.raises(CLOSED):
                await ws.recv()
        assert ws.close_code == 1011


async def test_app_returns_without_closing_is_1000(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> int:
        await receive()
        await send({"type": "websocket.accept"})
        return 42

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            with pytest.raises(ferrows.ConnectionClosedOK):
                await ws.recv()
        assert ws.close_code == 1000
    assert "ASGI callable should return None, but returned '42'." in caplog.messages


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "websocket.send", "text": "x"}], "Expected ASGI message 'websocket.accept'"),
        ([{"type": "websocket.accept"}, {"type": "websocket.accept"}], "Expected ASGI message 'websocket.send'"),
        ([{"type": "websocket.accept"}, {"type": "websocket.send"}], "Expected 'bytes' or 'text'"),
        (
            [{"type": "websocket.http.response.start", "status": 403}, {"type": "websocket.http.response.start"}],
            "Expected ASGI message 'websocket.http.response.body' but got 'websocket.http.response.start'.",
        ),
        ([{"type": "websocket.http.response.start", "status": 700}], "Invalid HTTP status code '700'"),
        ([{"type": "websocket.accept"}, {"type": "websocket.close", "code": 999}], "invalid status code 999"),
    ],
)
async def test_messages_out_of_order(messages: list[dict[str, Any]], error: str) -> None:
    """Each raises a clear error in the app; the client gets 500 (nothing
    answered yet), the application's response (head sent), or 1011."""
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            errors.append(str(exc))

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises((*CLOSED, *REFUSED)):
            async with websockets.connect(uri_of(server)) as ws:
                await ws.recv()
    assert len(errors) == 1
    assert error in errors[0]


async def test_receive_after_disconnect_from_several_tasks() -> None:
    """Two tasks waiting in ``receive`` both get the disconnect."""
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.extend(await asyncio.gather(receive(), receive()))

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            await asyncio.sleep(0.05)
            await ws.close(1001)
        await wait_for(lambda: events)
    assert events == [{"type": "websocket.disconnect", "code": 1001, "reason": ""}] * 2


@pytest.mark.parametrize("proxy_headers", [True, False])
async def test_proxy_headers(proxy_headers: bool) -> None:
    """uvicorn's ProxyHeadersMiddleware rewrites the scope from a trusted
    proxy's X-Forwarded-* headers; ``--no-proxy-headers`` leaves it."""
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo_app(scope, receive, send)

    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    async with serving(app, proxy_headers=proxy_headers, forwarded_allow_ips="127.0.0.1") as server:
        async with asyncio.timeout(TIMEOUT), ferrows.connect(uri_of(server), additional_headers=headers) as ws:
            await ws.send("via proxy")
            assert await ws.recv() == "via proxy"
    (scope,) = scopes
    if proxy_headers:
        assert scope["client"] == ("203.0.113.7", 0)
        assert scope["scheme"] == "wss"
    else:
        assert scope["client"][0] == "127.0.0.1"
        assert scope["scheme"] == "ws"


@pytest.mark.parametrize(
    "accept",
    [
        {"type": "websocket.accept", "headers": [(b"x-bad", b"split\r\ninjected: yes")]},
        {"type": "websocket.accept", "subprotocol": "bad\nprotocol"},
    ],
)
async def test_accept_with_invalid_header_is_500(accept: dict[str, Any]) -> None:
    """A header value that would split the response raises in the app, and
    the upgrade, still unanswered, gets 500."""
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send(accept)
        except ferrows.InvalidHeaderValue as exc:
            errors.append(exc)
            raise

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as exc_info:
            async with websockets.connect(uri_of(server)):
                pass
    assert exc_info.value.response.status_code == 500
    assert b"injected" not in exc_info.value.response.body
    assert [type(e).__name__ for e in errors] == ["InvalidHeaderValue"]
