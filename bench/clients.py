"""The clients, one per library, each written the way that library's
documentation writes a client, plus the fixed raw client (rawclient.py).

Run as ``python bench/clients.py --client LIB --scenario NAME --port P
--server-pid PID --loop L ...``; prints one JSON object: the measured
rate, the server's CPU seconds in the measured window, and ``ok: false``
with the reason when anything went wrong (including a wrong byte).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BroadcastDriver, EchoDriver, Meter, raise_nofile, run
from scenarios import (
    BROADCAST_BATCH,
    BROADCAST_CONNS,
    HANDSHAKE_CONCURRENCY,
    IDLE_CONNS,
    IDLE_SECONDS,
    SCENARIOS,
    Scenario,
)

MAX_SIZE = 2**21


async def gather_in_chunks(factories: list[Any], chunk: int = 20) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(factories), chunk):
        out += await asyncio.gather(*(f() for f in factories[start : start + chunk]))
    return out


# -- ferrows and websockets -------------------------------------------------


def connect_of(lib: str) -> Any:
    if lib == "ferrows":
        from ferrows.asyncio.client import connect
    else:
        from websockets.asyncio.client import connect
    return connect


async def ws_echo(lib: str, port: int, sc: Scenario, driver: EchoDriver) -> dict:
    connect = connect_of(lib)
    compression = "deflate" if sc.compress else None
    async with connect(f"ws://127.0.0.1:{port}/", compression=compression, max_size=MAX_SIZE) as ws:
        for message in driver.first():
            await ws.send(message)
        while not driver.done:
            nxt = driver.on_message(await ws.recv())
            if nxt is not None:
                await ws.send(nxt)
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    return {"extensions": extensions}


async def ws_broadcast(lib: str, port: int, driver: BroadcastDriver, conns: int) -> dict:
    connect = connect_of(lib)
    url = f"ws://127.0.0.1:{port}/"
    sockets = await gather_in_chunks([lambda: connect(url, compression=None) for _ in range(conns)])
    wake = asyncio.Event()
    driver.round_done = wake.set

    async def reader(i: int, ws: Any) -> None:
        try:
            async for message in ws:
                driver.on_message(i, message)
                if driver.done:
                    break
        finally:
            wake.set()

    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    try:
        await asyncio.sleep(0.1)
        driver.begin()
        while not driver.done:
            wake.clear()
            await sockets[0].send(driver.command())
            await wake.wait()
            if not driver.done and any(t.done() for t in tasks):
                raise ConnectionError("a connection closed during the broadcast")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), 10)
    return {}


# -- aiohttp ----------------------------------------------------------------


async def aiohttp_echo(port: int, sc: Scenario, driver: EchoDriver) -> dict:
    import aiohttp

    url = f"http://127.0.0.1:{port}/"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=12 if sc.compress else 0, max_msg_size=MAX_SIZE) as ws,
    ):
        send = ws.send_str if sc.text else ws.send_bytes
        for message in driver.first():
            await send(message)
        while not driver.done:
            msg = await ws.receive()
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise ConnectionError(f"got {msg.type.name} {msg.data!r} {msg.extra!r}")
            nxt = driver.on_message(msg.data)
            if nxt is not None:
                await send(nxt)
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
    return {"extensions": extensions}


async def aiohttp_broadcast(port: int, driver: BroadcastDriver, conns: int) -> dict:
    import aiohttp

    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = await gather_in_chunks([lambda: session.ws_connect(url) for _ in range(conns)])
        wake = asyncio.Event()
        driver.round_done = wake.set

        async def reader(i: int, ws: Any) -> None:
            try:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        raise ConnectionError(f"got {msg.type.name}")
                    driver.on_message(i, msg.data)
                    if driver.done:
                        break
            finally:
                wake.set()

        tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        try:
            await asyncio.sleep(0.1)
            driver.begin()
            while not driver.done:
                wake.clear()
                await sockets[0].send_str(driver.command())
                await wake.wait()
                if not driver.done and any(t.done() for t in tasks):
                    raise ConnectionError("a connection closed during the broadcast")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.wait_for(
                asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True),
                10,
            )
    return {}


# -- picows -----------------------------------------------------------------


async def picows_echo(port: int, sc: Scenario, driver: EchoDriver) -> dict:
    from picows import WSListener, WSMsgType, ws_connect

    done = asyncio.get_running_loop().create_future()

    class Client(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.BINARY and frame.fin:
                nxt = driver.on_message(frame.get_payload_as_bytes())
                if nxt is not None:
                    transport.send(WSMsgType.BINARY, nxt)
            elif frame.msg_type == WSMsgType.CLOSE:
                if not driver.done:
                    driver.error = f"closed by the server: {frame.get_close_code()} {frame.get_close_reason()}"
                    driver.done = True
            else:
                driver.error = f"unexpected frame {frame}"
                driver.done = True
            if driver.done and not done.done():
                done.set_result(None)

        def on_ws_disconnected(self, transport):  # type: ignore[no-untyped-def]
            if not done.done():
                done.set_exception(ConnectionError("disconnected"))

    transport, _ = await ws_connect(Client, f"ws://127.0.0.1:{port}/", max_frame_size=MAX_SIZE)
    try:
        for message in driver.first():
            transport.send(WSMsgType.BINARY, message)
        await done
    finally:
        transport.send_close()
        try:
            await asyncio.wait_for(transport.wait_disconnected(), 2)
        except TimeoutError:
            transport.disconnect(graceful=False)
    return {}


async def picows_broadcast(port: int, driver: BroadcastDriver, conns: int) -> dict:
    from picows import WSListener, WSMsgType, ws_connect

    done = asyncio.get_running_loop().create_future()

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self, index: int) -> None:
            self.index = index

        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.BINARY and frame.fin:
                driver.on_message(self.index, frame.get_payload_as_bytes())
            elif frame.msg_type != WSMsgType.CLOSE:
                driver.error = f"unexpected frame {frame}"
                driver.done = True
            if driver.done and not done.done():
                done.set_result(None)

        def on_ws_disconnected(self, transport):  # type: ignore[no-untyped-def]
            if not done.done():
                done.set_exception(ConnectionError("disconnected"))

    url = f"ws://127.0.0.1:{port}/"
    pairs = await gather_in_chunks([lambda i=i: ws_connect(lambda: Client(i), url) for i in range(conns)])
    transports = [t for t, _ in pairs]
    command = driver.command()
    driver.round_done = lambda: None if driver.done else transports[0].send(WSMsgType.TEXT, command.encode())
    try:
        await asyncio.sleep(0.1)
        driver.begin()
        transports[0].send(WSMsgType.TEXT, command.encode())
        await done
    finally:
        for t in transports:
            t.send_close()
        await asyncio.wait_for(
            asyncio.gather(*(t.wait_disconnected() for t in transports), return_exceptions=True),
            10,
        )
    return {}


# -- dispatch ---------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict:
    import rawclient

    sc = SCENARIOS[args.scenario]
    meter = Meter(args.server_pid)
    client = args.client
    handshake = not args.no_handshake
    extra: dict = {}
    if sc.kind == "echo":
        driver: Any = EchoDriver(sc.payloads(), sc.window, meter, args.warmup, args.duration, args.max_ops)
        if client == "raw":
            extra = await rawclient.echo(
                args.port,
                driver,
                handshake=handshake,
                compress=sc.compress,
                text=sc.text,
                timeout=args.timeout,
            )
        elif client in ("ferrows", "websockets"):
            extra = await ws_echo(client, args.port, sc, driver)
        elif client == "aiohttp":
            extra = await aiohttp_echo(args.port, sc, driver)
        elif client == "picows":
            extra = await picows_echo(args.port, sc, driver)
        else:
            raise ValueError(client)
    elif sc.kind == "broadcast":
        conns = args.conns or BROADCAST_CONNS
        driver = BroadcastDriver(conns, BROADCAST_BATCH, meter, args.warmup, args.duration, sc.spread)
        if client == "raw":
            extra = await rawclient.broadcast(
                args.port,
                driver,
                handshake=handshake,
                conns=conns,
                timeout=args.timeout,
            )
        elif client in ("ferrows", "websockets"):
            extra = await ws_broadcast(client, args.port, driver, conns)
        elif client == "aiohttp":
            extra = await aiohttp_broadcast(args.port, driver, conns)
        elif client == "picows":
            extra = await picows_broadcast(args.port, driver, conns)
        else:
            raise ValueError(client)
    elif sc.kind == "handshake":
        assert client == "raw"
        extra = await rawclient.handshakes(
            args.port,
            meter,
            warmup=args.warmup,
            duration=args.duration,
            concurrency=HANDSHAKE_CONCURRENCY,
            max_ops=args.max_ops,
        )
        return {"ok": True, **meter.result(**extra)}
    elif sc.kind == "memory":
        assert client == "raw"
        result = await rawclient.memory(
            args.port,
            args.server_pid,
            handshake=handshake,
            conns=args.conns or IDLE_CONNS,
            idle=args.idle,
            compress=sc.compress,
        )
        return {"ok": True, "server_cpu": None, **result}
    else:
        raise ValueError(sc.kind)
    if driver.error:
        return {"ok": False, "error": "wrong data: " + driver.error}
    if not meter.t1:
        return {"ok": False, "error": "the measured window never ended"}
    return {"ok": True, **meter.result(**extra)}


async def bounded(args: argparse.Namespace) -> dict:
    return await asyncio.wait_for(main(args), args.timeout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True)
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    parser.add_argument("--no-handshake", action="store_true", help="plain TCP peer (the tcp ceiling)")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--max-ops", type=int, default=5_000_000)
    parser.add_argument("--conns", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS, help="memory: seconds idle before reading RSS")
    args = parser.parse_args()
    raise_nofile()
    try:
        result = run(bounded(args), args.loop)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if isinstance(exc, asyncio.TimeoutError):
            detail = f"timed out after {args.timeout:.0f} s"
        result = {"ok": False, "error": detail, "trace": traceback.format_exc()[-2000:]}
    print(json.dumps(result), flush=True)
