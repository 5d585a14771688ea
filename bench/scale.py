"""The scale run (issue 12): many idle connections held by one server process.

For each library, one server process (ferrows, websockets, picows, aiohttp)
on 127.0.0.1 is given ``--connections`` WebSocket connections by raw-socket
clients (rawclient.py's :class:`RawConnection`, no WebSocket library) in
a few uvloop processes. Each client socket is bound to its own source
address in 127.0.0.0/8 (100 connections per address, ``127.0.1.1`` up) before
connecting, so the 4-tuples never run out of ephemeral ports. It reports:

- **memory**: the server's RSS growth over the connections opened after a
  warm-up of 100, once all are open and have been idle for 3 s, per
  connection (no compression: the clients offer no extension, unless
  ``--offer-deflate``);
- **keepalive**: the server's CPU time over an idle window (45 s by
  default), per second, with every library pinging every 20 s: websockets'
  and ferrows' default ``ping_interval``; picows has no keepalive by default
  (``enable_auto_ping=False``), so it runs with ``enable_auto_ping=True`` and
  its defaults otherwise: a ping after 20 s without incoming data
  (``PING_WHEN_IDLE``, ``auto_ping_idle_timeout=20``), which on an idle
  connection is a ping every 20 s (its ``PING_PERIODICALLY`` pinged half as
  often, measured at a 2 s interval); aiohttp has none either
  (``heartbeat=None``) and runs with ``heartbeat=20``. The clients count the
  pings they answer, so the CPU per ping is reported too;
- **shutdown**: SIGTERM to the server, which closes every connection the way
  the library documents (websockets and ferrows: ``server.close()`` from a
  signal handler, then ``wait_closed()``; picows: a close frame 1001 on every
  transport, then ``wait_disconnected()``; aiohttp: ``ws.close(code=1001)``
  from an ``on_shutdown`` hook, then ``runner.cleanup()``). The clients
  answer each close frame. Reported: the time from the signal until the
  server process exits, until the last client saw its close frame, and
  until the last client socket saw the TCP connection end.

Usage::

    python bench/scale.py [--connections 50000] [--libs ferrows,websockets,picows,aiohttp]
                          [--idle 45] [--ping-interval 20] [--loop asyncio|uvloop]
                          [--client-procs N] [--offer-deflate] [--json PATH]

One server process cannot hold more sockets than its RLIMIT_NOFILE hard
limit: the run is capped to that limit minus a margin, and says so. Every
process started here is stopped by its PID; every wait is bounded. Asserts
nothing; Linux only (reads /proc, uses pidfd).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import proc_cpu, proc_rss, raise_nofile, run, self_cpu  # noqa: E402
from rawclient import BROWSER_OFFER, RawConnection  # noqa: E402

LIBS = ("ferrows", "websockets", "picows", "aiohttp")
FD_MARGIN = 64
"""File descriptors a process keeps for itself (stdio, epoll, pipes, ...)."""
PER_PROC = 10_000
"""Most connections one client process holds."""
PER_ADDRESS = 100
"""Connections per client source address."""
OPEN_CONCURRENCY = 100
"""Handshakes in flight per client process."""
WARMUP_CONNS = 100
SETTLE = 3.0
"""Seconds idle before reading the server's RSS."""
SERVER_CLOSE_TIMEOUT = 10.0
"""How long picows' server waits for close handshakes (websockets' default
``close_timeout``)."""
LIFETIME = 1200.0
"""Bound on the life of every child process, in seconds."""
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


# -- servers ---------------------------------------------------------------


async def serve_websockets_like(module: str, sock: socket.socket, ping: float) -> None:
    """websockets' documented graceful shutdown: ``server.close`` on SIGTERM."""
    if module == "ferrows":
        from ferrows.asyncio.server import serve
    else:
        from websockets.asyncio.server import serve

    async def echo(websocket):  # type: ignore[no-untyped-def]
        async for message in websocket:
            await websocket.send(message)

    async with serve(echo, sock=sock, ping_interval=ping or None) as server:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.close)
        ready(sock)
        await server.wait_closed()


async def serve_picows(sock: socket.socket, ping: float) -> None:
    """picows has no server-wide close: a close frame on every transport,
    then a bounded wait for the peers' answers."""
    from picows import WSCloseCode, WSListener, WSMsgType, ws_create_server

    transports: set = set()

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport):  # type: ignore[no-untyped-def]
            transports.add(transport)

        def on_ws_disconnected(self, transport):  # type: ignore[no-untyped-def]
            transports.discard(transport)

        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            msg_type = frame.msg_type
            if msg_type == WSMsgType.CLOSE:
                if not transport.is_close_frame_sent:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                transport.send(msg_type, frame.get_payload_as_memoryview())

    options: dict[str, Any] = {}
    if ping:
        options = {
            "enable_auto_ping": True,
            "auto_ping_idle_timeout": ping,
            # picows refuses connections when this is longer than the
            # interval; both are 20 s by default, like websockets' pair.
            "auto_ping_reply_timeout": ping,
        }
    server = await ws_create_server(lambda request: Echo(), sock=sock, **options)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)

    async def disconnected(transport: Any) -> None:
        try:
            await transport.wait_disconnected()
        except Exception:  # a failure is still a disconnect
            pass

    async with server:
        ready(sock)
        await stopping.wait()
        server.close()
        closing = list(transports)
        for transport in closing:
            transport.send_close(WSCloseCode.GOING_AWAY)
        if closing:
            waits = [asyncio.ensure_future(disconnected(t)) for t in closing]
            await asyncio.wait(waits, timeout=SERVER_CLOSE_TIMEOUT)
        for transport in list(transports):
            transport.disconnect()


async def serve_aiohttp(sock: socket.socket, ping: float) -> None:
    """aiohttp's documented graceful shutdown: close the websockets from an
    ``on_shutdown`` hook, run by ``runner.cleanup()``."""
    from aiohttp import WSCloseCode, WSMsgType, web

    websockets: weakref.WeakSet = weakref.WeakSet()

    async def handler(request):  # type: ignore[no-untyped-def]
        ws = web.WebSocketResponse(heartbeat=ping or None)
        await ws.prepare(request)
        websockets.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        finally:
            websockets.discard(ws)
        return ws

    async def on_shutdown(app: web.Application) -> None:
        closers = [ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown") for ws in set(websockets)]
        await asyncio.gather(*closers, return_exceptions=True)

    app = web.Application()
    app.router.add_get("/", handler)
    app.on_shutdown.append(on_shutdown)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    ready(sock)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


async def serve(lib: str, ping: float) -> None:
    from servers import listening_socket

    sock = listening_socket()
    if lib in ("ferrows", "websockets"):
        coro = serve_websockets_like(lib, sock, ping)
    elif lib == "picows":
        coro = serve_picows(sock, ping)
    elif lib == "aiohttp":
        coro = serve_aiohttp(sock, ping)
    else:
        raise SystemExit(f"unknown library {lib}")
    try:
        await asyncio.wait_for(coro, LIFETIME)
    except TimeoutError:
        pass
    # The library's shutdown is over; what follows is the interpreter's.
    print(json.dumps({"closed": time.monotonic()}), flush=True)


def ready(sock: socket.socket) -> None:
    from servers import ready as announce

    announce(sock)


# -- clients ---------------------------------------------------------------


def source_address(index: int) -> str:
    """The client address of connection ``index``: 127.0.1.1, 127.0.1.2, ...
    with :data:`PER_ADDRESS` connections each."""
    k = index // PER_ADDRESS
    return f"127.0.{1 + k // 250}.{1 + k % 250}"


class Watch:
    """Wraps a connection's frame reader to note the pings and the close
    frame the server sends."""

    def __init__(self, reader: Any, conn: ScaleConnection) -> None:
        self.reader = reader
        self.conn = conn

    def feed(self, data: bytes) -> list[tuple[int, bool, bytes]]:
        messages = self.reader.feed(data)
        for opcode, _, payload in messages:
            if opcode == 9:
                self.conn.pings += 1
            elif opcode == 8 and self.conn.close_at is None:
                self.conn.close_at = time.monotonic()
                self.conn.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        return messages


class ScaleConnection(RawConnection):
    """A raw connection (which answers pings and close frames) that records
    when the server's close frame came and when TCP ended."""

    def __init__(self, port: int, offer: str | None) -> None:
        super().__init__(port, offer=offer)
        self.reader = Watch(self.reader, self)  # type: ignore[assignment]
        self.pings = 0
        self.close_at: float | None = None
        self.close_code: int | None = None
        self.lost_at: float | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        super().connection_lost(exc)


async def open_one(port: int, index: int, offer: str | None) -> ScaleConnection:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # The port is picked at connect() time, per 4-tuple, not at bind().
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source_address(index), 0))
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 10)
        _, conn = await loop.create_connection(lambda: ScaleConnection(port, offer), sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        await asyncio.wait_for(conn.opened, 10)
    except BaseException:
        if conn.transport is not None:
            conn.transport.abort()
        raise
    return conn


async def client(port: int, first: int, count: int, offer: str | None) -> None:
    """Holds up to ``count`` connections; obeys one command per stdin line
    (``open K``, ``stats``, ``wait SECONDS``, ``quit``) and answers each with
    one JSON line."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read_stdin, daemon=True).start()
    conns: list[ScaleConnection] = []
    nxt = first
    errors: collections.Counter[str] = collections.Counter()
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def bounded(index: int) -> ScaleConnection:
        async with semaphore:
            return await open_one(port, index, offer)

    def reply(**fields: Any) -> None:
        print(json.dumps({"cpu": self_cpu(), "t": time.monotonic(), **fields}), flush=True)

    try:
        while True:
            line = await lines.get()
            if not line:
                break
            command, *args = line.split()
            if command == "open":
                k = min(int(args[0]), first + count - nxt)
                t0 = time.monotonic()
                results = await asyncio.gather(*(bounded(i) for i in range(nxt, nxt + k)), return_exceptions=True)
                nxt += k
                for r in results:
                    if isinstance(r, BaseException):
                        errors[f"{type(r).__name__}: {r}"] += 1
                    else:
                        conns.append(r)
                reply(opened=len(conns), elapsed=time.monotonic() - t0, errors=dict(errors.most_common(3)))
            elif command == "stats":
                alive = sum(1 for c in conns if not c.closed.done())
                reply(opened=len(conns), alive=alive, pings=sum(c.pings for c in conns))
            elif command == "wait":
                closed = [c.closed for c in conns]
                if closed:
                    await asyncio.wait(closed, timeout=float(args[0]))
                frames = [c.close_at for c in conns if c.close_at is not None]
                lost = [c.lost_at for c in conns if c.lost_at is not None]
                codes = collections.Counter(str(c.close_code) for c in conns if c.close_code is not None)
                reply(
                    opened=len(conns),
                    close_frames=len(frames),
                    first_close=min(frames, default=None),
                    last_close=max(frames, default=None),
                    lost=len(lost),
                    last_lost=max(lost, default=None),
                    still_open=sum(1 for c in conns if not c.closed.done()),
                    codes=dict(codes),
                )
            elif command == "quit":
                break
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.abort()


# -- the driver ---------------------------------------------------------------


class Child:
    """A child process that answers commands with JSON lines."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.errlog = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
        )
        self.buf = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError(f"{self.name}: no answer in {timeout:.0f} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{self.name} exited with {self.proc.wait(5)}: {self.log()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def log(self) -> str:
        self.errlog.seek(0)
        return self.errlog.read()[-600:]

    def stop(self) -> None:
        from run import stop

        stop(self.proc)
        self.errlog.close()


def wait_exit(proc: subprocess.Popen, timeout: float) -> tuple[float | None, float]:
    """Waits (with a pidfd, so to the millisecond) for ``proc`` to exit;
    returns when it exited (monotonic clock) or None, and its total CPU
    seconds from the kernel's accounting when it did."""
    fd = os.pidfd_open(proc.pid)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            return None, 0.0
        at = time.monotonic()
    finally:
        os.close(fd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return at, usage.ru_utime + usage.ru_stime


def all_read(clients: list[Child], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    return [c.read(max(0.1, deadline - time.monotonic())) for c in clients]


def settled_rss(pid: int) -> int:
    """The RSS once it stops moving for 0.5 s (at most 5 s)."""
    last = proc_rss(pid)
    for _ in range(10):
        time.sleep(0.5)
        now = proc_rss(pid)
        if now == last:
            break
        last = now
    return last


def measure(lib: str, cfg: argparse.Namespace, n: int) -> dict[str, Any]:
    record: dict[str, Any] = {"lib": lib, "connections": n}
    server = Child(["--serve", lib, "--loop", cfg.loop, "--ping-interval", str(cfg.ping_interval)], f"{lib} server")
    clients: list[Child] = []
    try:
        from run import wait_ready

        port = wait_ready(server.proc, 30)
        pid = server.proc.pid
        per_proc = min(PER_PROC, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - FD_MARGIN)
        procs = max(cfg.client_procs, math.ceil(n / per_proc))
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        firsts = [sum(shares[:i]) for i in range(procs)]
        offer = ["--offer-deflate"] if cfg.offer_deflate else []
        for i, (first, share) in enumerate(zip(firsts, shares, strict=True)):
            args = ["--client", "--port", str(port), "--first", str(first), "--count", str(share), *offer]
            clients.append(Child(args, f"client {i}"))
        warm = min(WARMUP_CONNS, shares[0])
        clients[0].send(f"open {warm}")
        got = clients[0].read(60)
        if got["opened"] != warm:
            raise ConnectionError(f"warm-up: {got['opened']} of {warm} opened: {got['errors']}")
        before = settled_rss(pid)

        for c in clients:
            c.send("stats")
        start = all_read(clients, 60)
        cpu0, t0 = proc_cpu(pid), time.monotonic()
        for i, c in enumerate(clients):
            c.send(f"open {shares[i] - (warm if i == 0 else 0)}")
        opened = all_read(clients, 600)
        open_elapsed, open_cpu = time.monotonic() - t0, proc_cpu(pid) - cpu0
        total = sum(r["opened"] for r in opened)
        errors: collections.Counter[str] = collections.Counter()
        for r in opened:
            errors.update(r["errors"])
        if total != n:
            raise ConnectionError(f"{total} of {n} connections opened: {dict(errors)}")
        time.sleep(SETTLE)
        after = settled_rss(pid)
        record.update(
            rss_before=before,
            rss_after=after,
            kib_per_conn=(after - before) / (n - warm) / 1024,
            open_seconds=open_elapsed,
            open_server_cpu=open_cpu,
            us_per_handshake=open_cpu / (n - warm) * 1e6,
            # The busiest client process's CPU share while opening: near 1.0
            # would mean the clients, not the server, set the pace.
            open_client_busy=max(
                (r["cpu"] - s["cpu"]) / r["elapsed"] if r["elapsed"] else 0.0
                for r, s in zip(opened, start, strict=True)
            ),
        )

        for c in clients:
            c.send("stats")
        stats0 = all_read(clients, 60)
        cpu0, t0 = proc_cpu(pid), time.monotonic()
        time.sleep(cfg.idle)
        cpu1, t1 = proc_cpu(pid), time.monotonic()
        for c in clients:
            c.send("stats")
        stats1 = all_read(clients, 60)
        window = t1 - t0
        pings = sum(s["pings"] for s in stats1) - sum(s["pings"] for s in stats0)
        alive = sum(s["alive"] for s in stats1)
        record.update(
            idle_seconds=window,
            idle_server_cpu=cpu1 - cpu0,
            idle_cpu_share=(cpu1 - cpu0) / window,
            idle_us_per_conn_per_s=(cpu1 - cpu0) / window / n * 1e6,
            pings=pings,
            pings_per_conn=pings / n,
            us_per_ping=(cpu1 - cpu0) / pings * 1e6 if pings else None,
            idle_client_cpu=sum(b["cpu"] - a["cpu"] for a, b in zip(stats0, stats1, strict=True)),
            alive_after_idle=alive,
        )
        if alive != n:
            raise ConnectionError(f"{n - alive} connections closed while idle")

        # Shutdown: the clients wait for every connection to end.
        for c in clients:
            c.send(f"wait {cfg.close_timeout}")
        cpu_term = proc_cpu(pid)
        t_term = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        exited, cpu_total = wait_exit(server.proc, cfg.close_timeout + 5)
        closes = all_read(clients, cfg.close_timeout + 30)
        closed_at = server.read(1)["closed"] if exited is not None else None
        frames = sum(r["close_frames"] for r in closes)
        last_close = max((r["last_close"] for r in closes if r["last_close"] is not None), default=None)
        last_lost = max((r["last_lost"] for r in closes if r["last_lost"] is not None), default=None)
        codes: collections.Counter[str] = collections.Counter()
        for r in closes:
            codes.update(r["codes"])
        record.update(
            exit_seconds=exited - t_term if exited is not None else None,
            exit_code=server.proc.returncode,
            closed_seconds=closed_at - t_term if closed_at is not None else None,
            shutdown_server_cpu=cpu_total - cpu_term if exited is not None else None,
            close_frames=frames,
            close_codes=dict(codes),
            last_close_seconds=last_close - t_term if last_close is not None else None,
            last_tcp_close_seconds=last_lost - t_term if last_lost is not None else None,
            still_open=sum(r["still_open"] for r in closes),
            shutdown_client_busy=max(
                (r["cpu"] - s["cpu"]) / max(r["t"] - t_term, 1e-3) for r, s in zip(closes, stats1, strict=True)
            ),
            ok=exited is not None and frames == n,
        )
        if exited is None:
            record["error"] = f"server still running {cfg.close_timeout + 5:.0f} s after SIGTERM"
        elif frames != n:
            record["error"] = f"{n - frames} connections ended without a close frame"
    except Exception as exc:  # a failed run is reported, not raised
        record.update(ok=False, error=f"{type(exc).__name__}: {exc}", server_log=server.log())
    finally:
        for c in clients:
            try:
                c.send("quit")
            except OSError:
                pass
            c.stop()
        server.stop()
    return record


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(records: list[dict[str, Any]]) -> str:
    rows = [
        "| library | connections | KiB per connection | keepalive: server CPU, % of a core | µs per connection per s"
        " | pings per connection | µs per ping | shutdown: server done closing (s) | server exits (s) | last close frame seen (s)"
        " | last TCP close seen (s) | close frames (codes) | server CPU to shut down (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if not r.get("ok") and "kib_per_conn" not in r:
            rows.append(f"| {r['lib']} | FAILED: {r.get('error')} |" + " |" * 11)
            continue
        codes = ", ".join(f"{k} x{v}" for k, v in sorted(r.get("close_codes", {}).items()))
        rows.append(
            f"| {r['lib']} | {r['connections']:,} | {fmt(r.get('kib_per_conn'), '.2f')}"
            f" | {fmt(r.get('idle_cpu_share', 0) * 100, '.2f')} | {fmt(r.get('idle_us_per_conn_per_s'), '.2f')}"
            f" | {fmt(r.get('pings_per_conn'), '.2f')} | {fmt(r.get('us_per_ping'), '.1f')}"
            f" | {fmt(r.get('closed_seconds'), '.2f')} | {fmt(r.get('exit_seconds'), '.2f')} | {fmt(r.get('last_close_seconds'), '.2f')}"
            f" | {fmt(r.get('last_tcp_close_seconds'), '.2f')} | {r.get('close_frames', 0):,} ({codes})"
            f" | {fmt(r.get('shutdown_server_cpu'), '.2f')} |"
        )
    notes = [f"- {r['lib']}: {r['error']}" for r in records if r.get("error")]
    return "\n".join(rows + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--idle", type=float, default=45.0, help="idle window in seconds (default 45)")
    parser.add_argument(
        "--ping-interval", type=float, default=20.0, help="seconds between pings, every library (0: off)"
    )
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"], help="the server's loop")
    parser.add_argument(
        "--client-procs", type=int, default=0, help="client processes (at least 1 per 10,000 connections)"
    )
    parser.add_argument("--close-timeout", type=float, default=60.0)
    parser.add_argument("--offer-deflate", action="store_true", help="clients offer permessage-deflate")
    parser.add_argument("--json", help="write the records to this file")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_nofile()

    if args.serve:
        __import__(args.serve)  # before announcing the port
        run(serve(args.serve, args.ping_interval), args.loop)
        return
    if args.client:
        offer = BROWSER_OFFER if args.offer_deflate else None
        run(asyncio.wait_for(client(args.port, args.first, args.count, offer), LIFETIME), "uvloop")
        return

    from run import machine

    libs = [lib for lib in args.libs.split(",") if lib]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    n = args.connections
    limit = hard - FD_MARGIN
    info = machine(libs)
    info.update(requested=n, nofile_hard=hard, ping_interval=args.ping_interval, loop=args.loop)
    if n > limit:
        print(
            f"# RLIMIT_NOFILE hard limit is {hard}: one server process holds at most {limit} connections;"
            f" running {limit} instead of {n}",
            flush=True,
        )
        n = limit
    print(f"# {info}", flush=True)
    records = []
    for lib in libs:
        t0 = time.monotonic()
        record = measure(lib, args, n)
        record["wall_seconds"] = time.monotonic() - t0
        print(json.dumps(record), flush=True)
        records.append(record)
    print(table(records))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
