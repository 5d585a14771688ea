"""N connections opened at once, then reset (RST, via SO_LINGER 0) at once.

The server runs in a subprocess so that its memory (RSS) and log can be read
from outside. Half of the connections complete the opening handshake, half
stop in the middle of the request. Checks that the server:

- drops every connection (none left registered),
- returns to near its baseline RSS,
- logs no traceback (at most a line per connection at INFO and below),
- still serves a new client afterwards.

Talks only to 127.0.0.1. Bounded in time (``--timeout``). Exit status 0 on
success; ``--json`` prints the measurements.

    python stress/reset_storm.py --connections 2000
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

SERVER = r"""
import asyncio, logging, sys, threading, gc
import ferrows

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    loop = asyncio.get_running_loop()
    async with ferrows.serve(echo, "127.0.0.1", 0, open_timeout=5, close_timeout=1, backlog=4096) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        done = loop.create_future()

        def report():
            gc.collect()
            live = sum(isinstance(o, ferrows.ServerConnection) for o in gc.get_objects())
            print(f"{len(server._handlers)} {live} {rss_kb()}", flush=True)

        def commands():
            for line in sys.stdin:
                loop.call_soon_threadsafe(report)
            loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=commands, daemon=True).start()
        await done

asyncio.run(main())
"""


def handshake(port: int) -> bytes:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Server:
    def __init__(self, log_path: str) -> None:
        self.log = open(log_path, "w+")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
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


async def open_and_reset(port: int, count: int) -> None:
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
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def wait_idle(server: Server, deadline: float) -> None:
    """Waits until the server has dropped every connection."""
    while server.stats()[0] and time.monotonic() < deadline:
        time.sleep(0.02)


async def echo_once(port: int) -> bool:
    import ferrows

    async with ferrows.connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send("still there")
        return await ws.recv() == "still there"


def run(connections: int, rounds: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(os.path.join(tmp, "server.log"))
        try:
            _, _, initial = server.stats()
            # Warm up with one full round: the baseline then includes what
            # the allocator keeps after a burst (Python's arenas and the
            # C allocator rarely give memory back), so that the rounds that
            # follow measure what accumulates, i.e. leaks.
            asyncio.run(open_and_reset(server.port, connections))
            wait_idle(server, deadline)
            _, _, baseline = server.stats()
            peak = baseline
            per_round: list[int] = []
            for _ in range(rounds):
                asyncio.run(open_and_reset(server.port, connections))
                peak = max(peak, server.stats()[2])
                wait_idle(server, deadline)
                per_round.append(server.stats()[2])
            handlers, live, after = server.stats()
            served = asyncio.run(echo_once(server.port))
            wait_idle(server, deadline)
        finally:
            log = server.stop()
    lines = log.splitlines()
    result = {
        "connections": connections,
        "rounds": rounds,
        "handlers_left": handlers,
        "live_connection_objects": live,
        "rss_initial_kib": initial,
        "rss_baseline_kib": baseline,
        "rss_peak_kib": peak,
        "rss_after_kib": after,
        "rss_per_round_kib": per_round,
        "log_lines": len(lines),
        "tracebacks": sum("Traceback" in line for line in lines),
        "errors": sum(line.startswith(("ERROR", "CRITICAL")) for line in lines),
        "served_afterwards": served,
    }
    return result


def check(result: dict[str, object], connections: int) -> list[str]:
    problems = []
    if result["handlers_left"] != 0:
        problems.append(f"{result['handlers_left']} connections still registered")
    if result["tracebacks"] or result["errors"]:
        problems.append(f"{result['tracebacks']} tracebacks, {result['errors']} errors in the log")
    if int(result["log_lines"]) > 20:  # type: ignore[call-overload]
        problems.append(f"{result['log_lines']} log lines for {connections} resets")
    # "Near the baseline": within 8 KiB per connection of one round, which
    # leaves room for the allocator keeping arenas, while a leak of the
    # connection objects (tens of KiB each) would exceed it.
    growth = int(result["rss_after_kib"]) - int(result["rss_baseline_kib"])  # type: ignore[call-overload]
    if growth > max(8 * connections, 10_000):
        problems.append(f"RSS grew by {growth} KiB")
    if not result["served_afterwards"]:
        problems.append("server does not serve a new client")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.connections, args.rounds, args.timeout)
    problems = check(result, args.connections)
    if args.json:
        print(json.dumps({**result, "problems": problems}))
    else:
        for key, value in result.items():
            print(f"{key:20} {value}")
        print("OK" if not problems else "FAILED: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
