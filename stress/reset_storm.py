"""N connections opened at once, then reset (RST, via SO_LINGER 0) at once.

The server (asyncio by default, or ``--server sync``) runs in a subprocess
so that its memory (RSS) and log can be read from outside. Half of the
connections complete the opening handshake, half stop in the middle of the
request. Each round opens them all, reads the server's RSS (the peak), then
resets them all. Checks that the server:

- drops every connection (none left registered, no connection object
  alive),
- gives the memory back: a few seconds after each round, RSS is within
  max(8 MiB, 25% of what the round's connections cost) of the baseline
  measured before the first round,
- logs no traceback (at most a line per connection at INFO and below),
- still serves a new client afterwards.

Talks only to 127.0.0.1. Bounded in time (``--timeout``). Exit status 0 on
success; ``--json`` prints the measurements.

    python stress/reset_storm.py --connections 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

COMMON = r"""
import gc, logging, sys, threading
import ferrows

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def stats(registered, cls):
    gc.collect()
    live = sum(isinstance(o, cls) for o in gc.get_objects())
    return f"{registered} {live} {rss_kb()}"
"""

ASYNCIO_SERVER = (
    COMMON
    + r"""
import asyncio

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def serve():
    loop = asyncio.get_running_loop()
    async with ferrows.serve(echo, "127.0.0.1", 0, open_timeout=5, close_timeout=1, backlog=4096) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        done = loop.create_future()

        def report():
            print(stats(len(server._handlers), ferrows.ServerConnection), flush=True)

        def commands():
            for line in sys.stdin:
                loop.call_soon_threadsafe(report)
            loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=commands, daemon=True).start()
        await done

asyncio.run(serve())
"""
)

SYNC_SERVER = (
    COMMON
    + r"""
import socket
from ferrows.sync.server import ServerConnection, serve

def echo(ws):
    for message in ws:
        ws.send(message)

listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
with serve(echo, sock=listener, open_timeout=5, close_timeout=1) as server:
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for line in sys.stdin:
        with server._lock:
            registered = len(server._all)
        print(stats(registered, ServerConnection), flush=True)
    server.shutdown()
"""
)


def handshake(port: int) -> bytes:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Server:
    def __init__(self, log_path: str, kind: str, allocator: str = "pymalloc") -> None:
        self.log = open(log_path, "w+")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ASYNCIO_SERVER if kind == "asyncio" else SYNC_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            # "malloc" puts every Python object in glibc's heap, which the
            # servers' trim can return: it tells what ferrows holds from
            # what CPython's own allocator keeps (see stress/README.md).
            env={**os.environ, "PYTHONMALLOC": allocator},
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> tuple[int, int, int]:
        """(registered connections, live connection objects, RSS in KiB)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        handlers, live, rss = self.proc.stdout.readline().split()
        return int(handlers), int(live), int(rss)

    def stop(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


async def open_connections(port: int, count: int) -> list[socket.socket]:
    """Opens ``count`` connections; every other one completes the opening
    handshake, the others stop in the middle of the request."""
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []
    request = handshake(port)

    async def one(i: int) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sockets.append(sock)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        if i % 2:
            await loop.sock_sendall(sock, request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ConnectionError("closed during handshake")
                head += chunk
        else:
            await loop.sock_sendall(sock, request[: len(request) // 2])

    await asyncio.gather(*[one(i) for i in range(count)])
    return sockets


def reset(sockets: list[socket.socket]) -> None:
    """Closes every socket with a TCP reset (SO_LINGER 0), all at once."""
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def wait_idle(server: Server, deadline: float) -> None:
    """Waits until the server has dropped every connection."""
    while server.stats()[0] and time.monotonic() < deadline:
        time.sleep(0.02)


def settle(server: Server, deadline: float, seconds: float) -> int:
    """The lowest RSS seen over ``seconds`` without connections: long
    enough for the servers' periodic sweep (once a second) to run."""
    lowest = server.stats()[2]
    end = min(time.monotonic() + seconds, deadline)
    while time.monotonic() < end:
        time.sleep(0.25)
        lowest = min(lowest, server.stats()[2])
    return lowest


async def echo_once(port: int) -> bool:
    import ferrows

    async with ferrows.connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send("still there")
        return await ws.recv() == "still there"


def run(
    connections: int, rounds: int, timeout: float, kind: str = "asyncio", allocator: str = "pymalloc"
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(os.path.join(tmp, "server.log"), kind, allocator)
        try:
            # Warm-up: a few connections, so that imports and caches are in
            # the baseline; the storm's connections are not.
            reset(asyncio.run(open_connections(server.port, 20)))
            wait_idle(server, deadline)
            baseline = settle(server, deadline, 1.5)
            peaks: list[int] = []
            afters: list[int] = []
            for _ in range(rounds):
                sockets = asyncio.run(open_connections(server.port, connections))
                peaks.append(server.stats()[2])
                reset(sockets)
                wait_idle(server, deadline)
                afters.append(settle(server, deadline, 3.0))
            handlers, live, _ = server.stats()
            served = asyncio.run(echo_once(server.port))
            wait_idle(server, deadline)
        finally:
            log = server.stop()
    # One INFO record as each connection opens and closes is websockets'
    # log (what its logging guide promises); anything else is noise.
    lines = [line for line in log.splitlines() if not line.endswith(PER_CONNECTION)]
    return {
        "server": kind,
        "allocator": allocator,
        "connections": connections,
        "rounds": rounds,
        "handlers_left": handlers,
        "live_connection_objects": live,
        "rss_baseline_kib": baseline,
        "rss_peak_kib": peaks,
        "rss_after_kib": afters,
        "log_lines": len(lines),
        "tracebacks": sum("Traceback" in line for line in lines),
        "errors": sum(line.startswith(("ERROR", "CRITICAL")) for line in lines),
        "served_afterwards": served,
    }


PER_CONNECTION = ("websockets.server connection open", "websockets.server connection closed")


def allowance(baseline: int, peak: int) -> int:
    """How far above the baseline RSS may stay once a round's connections
    are gone, in KiB: a quarter of what they cost at the peak, and at least
    8 MiB, which the allocators may keep whatever the storm."""
    return max(8 * 1024, (peak - baseline) // 4)


def check(result: dict[str, object], connections: int) -> list[str]:
    problems = []
    if result["handlers_left"] != 0:
        problems.append(f"{result['handlers_left']} connections still registered")
    if result["live_connection_objects"] != 0:
        problems.append(f"{result['live_connection_objects']} connection objects still alive")
    if result["tracebacks"] or result["errors"]:
        problems.append(f"{result['tracebacks']} tracebacks, {result['errors']} errors in the log")
    if int(result["log_lines"]) > 20:  # type: ignore[call-overload]
        problems.append(f"{result['log_lines']} log lines for {connections} resets")
    baseline = int(result["rss_baseline_kib"])  # type: ignore[call-overload]
    for peak, after in zip(result["rss_peak_kib"], result["rss_after_kib"], strict=True):  # type: ignore[call-overload]
        if after - baseline > allowance(baseline, peak):
            problems.append(
                f"RSS stayed {(after - baseline) / 1024:.1f} MiB above the baseline after a round that cost"
                f" {(peak - baseline) / 1024:.1f} MiB (allowed: {allowance(baseline, peak) / 1024:.1f} MiB)"
            )
    if not result["served_afterwards"]:
        problems.append("server does not serve a new client")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", choices=["asyncio", "sync"], default="asyncio")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--allocator",
        choices=["pymalloc", "malloc"],
        default="pymalloc",
        help="the server's PYTHONMALLOC: CPython's default allocator, or glibc's malloc for every object",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.connections, args.rounds, args.timeout, args.server, args.allocator)
    problems = check(result, args.connections)
    if args.json:
        print(json.dumps({**result, "problems": problems}))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
        print("OK" if not problems else "FAILED: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
