"""A server process for the Hub's multi-process tests: ``python hub_app.py REDIS_URL PORT [REPLAY]``.

A client connecting to ``/GROUP`` joins GROUP and gets ``joined``; then it
may send ``join G``, ``leave G`` (answered ``ok join G``, ``ok leave G``) and
``pub G TEXT`` (published with the hub, answered ``published`` or
``unavailable: ...``). Plain HTTP: ``GET /ready`` is 200 once the hub's
subscription is up (503 before), ``GET /members/G`` gives the count of
local members of G. It prints ``listening`` once ready and stops on SIGTERM.
REPLAY is the hub's ``replay`` (0, pub/sub, when left out).
"""

from __future__ import annotations

import asyncio
import http
import signal
import sys

import ferrows

replay = int(sys.argv[3]) if len(sys.argv) > 3 else 0
hub = ferrows.Hub(sys.argv[1], publish_timeout=0.5, min_backoff=0.02, max_backoff=0.2, replay=replay)


async def handler(websocket):
    group = websocket.request.path.strip("/")
    if group:
        hub.join(websocket, group)
    await websocket.send("joined")
    async for command in websocket:
        verb, _, rest = command.partition(" ")
        if verb in ("join", "leave"):
            getattr(hub, verb)(websocket, rest)
            await websocket.send(f"ok {command}")
        elif verb == "pub":
            target, _, text = rest.partition(" ")
            try:
                await hub.publish(target, text)
            except ferrows.HubUnavailable as exc:
                await websocket.send(f"unavailable: {exc}")
            else:
                await websocket.send("published")


def status(websocket, request):
    if request.path == "/ready":
        if hub.connected:
            return websocket.respond(http.HTTPStatus.OK, "ready\n")
        return websocket.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "not subscribed\n")
    if request.path.startswith("/members/"):
        count = len(hub.members(request.path.removeprefix("/members/")))
        return websocket.respond(http.HTTPStatus.OK, f"{count}\n")
    return None


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with hub, ferrows.serve(handler, "127.0.0.1", int(sys.argv[2]), process_request=status):
        await hub.wait_connected(timeout=10)
        print("listening", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
