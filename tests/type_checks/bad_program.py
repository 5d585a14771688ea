"""Mistakes a type checker must catch in code using ferrows.

Each line marked ``# E: <code>`` must be reported by ``mypy --strict`` with
that error code, and no other line may be: ``tests/test_typing.py`` checks
both, so a signature that decays to ``Any`` makes the test fail. It is never
executed.
"""

from __future__ import annotations

import ferrows as websockets
from ferrows.asyncio.server import ServerConnection, basic_auth, serve
from ferrows.http11 import Request, Response
from ferrows.sync import client as sync_client
from ferrows.sync import server as sync_server


async def handler(websocket: ServerConnection) -> None:
    await websocket.send(42)  # E: arg-type
    text: str = await websocket.recv()  # E: assignment
    print(text)


def sync_handler(websocket: sync_server.ServerConnection) -> None:
    websocket.send(3.14)  # E: arg-type


def wrong_hook(connection: ServerConnection) -> Response | None:
    return None


def check_username(username: str) -> bool:
    return username == "admin"


def status_hook(connection: ServerConnection, request: Request) -> int:
    return 404


async def main() -> None:
    serve(handler, "127.0.0.1", 0, open_timeout="10")  # E: arg-type
    serve(handler, "127.0.0.1", 0, process_request=wrong_hook)  # E: arg-type
    serve(handler, "127.0.0.1", 0, process_request=status_hook)  # E: arg-type
    serve(sync_handler, "127.0.0.1", 0)  # E: arg-type
    basic_auth(realm="dev", credentials=42)  # E: call-overload
    basic_auth(realm="dev", check_credentials=check_username)  # E: arg-type
    async with websockets.connect("ws://127.0.0.1:8765") as websocket:
        websocket.send("not awaited")  # E: unused-coroutine


def sync_main() -> None:
    sync_server.serve(handler, "127.0.0.1", 0)  # E: arg-type
    sync_client.connect("ws://127.0.0.1:8765", open_timeout="10")  # E: call-overload
    connection: sync_client.ClientConnection = sync_client.connect("ws://127.0.0.1:8765", legacy=False)  # E: assignment
    connection.close()
    sync_client.connect("ws://127.0.0.1:8765").recv(timeout="1")  # E: call-overload
    sync_server.basic_auth(realm="dev", check_credentials=check_username)  # E: arg-type
