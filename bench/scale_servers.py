"""Servers of the scale-out benchmark: ``python scale_servers.py LIB REDIS_URL PORT``.

Every client connecting joins the group ``room``; messages published to
``room`` through Redis (by ``scale_out.py``) reach it. Prints ``ready`` once
listening; stops on SIGTERM.

- ``ferrows``: a ferrows server and ``ferrows.Hub(REDIS_URL)``.
- ``broadcaster``: a ferrows server and encode's ``broadcaster`` on the same
  Redis, one subscriber (a queue and a task) per connection, as its README shows.
- ``socketio``: python-socketio's ``AsyncServer`` on aiohttp with its
  ``AsyncRedisManager``; clients join ``room`` on connect.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def wait_for_sigterm() -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("ready", flush=True)
    await stop


async def ferrows_server(url: str, port: int) -> None:
    import ferrows

    hub = ferrows.Hub(url)

    async def handler(websocket):
        hub.join(websocket, "room")
        await websocket.wait_closed()

    async with hub, ferrows.serve(handler, "127.0.0.1", port, compression=None):
        await hub.wait_connected(10)
        await wait_for_sigterm()


async def broadcaster_server(url: str, port: int) -> None:
    from broadcaster import Broadcast

    import ferrows

    broadcast = Broadcast(url)
    await broadcast.connect()

    async def handler(websocket):
        async with broadcast.subscribe("room") as subscriber:
            async for event in subscriber:
                await websocket.send(event.message)

    try:
        async with ferrows.serve(handler, "127.0.0.1", port, compression=None):
            await wait_for_sigterm()
    finally:
        await broadcast.disconnect()


async def socketio_server(url: str, port: int) -> None:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=socketio.AsyncRedisManager(url))

    @sio.event
    async def connect(sid, environ):
        await sio.enter_room(sid, "room")

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await wait_for_sigterm()
    finally:
        await runner.cleanup()


SERVERS = {"ferrows": ferrows_server, "broadcaster": broadcaster_server, "socketio": socketio_server}

if __name__ == "__main__":
    import uvloop

    lib, url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    uvloop.run(SERVERS[lib](url, port))
