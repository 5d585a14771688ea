"""Memory per idle connection with permessage-deflate negotiated.

Starts an echo server (ferrows, then websockets) in a subprocess on
127.0.0.1, opens N connections to it from another subprocess with the same
client for both servers (websockets' asyncio client, default settings: it
offers ``client_max_window_bits``; both servers answer with 12-bit windows
and memLevel 5), exchanges one message on each so that the server's
compressor and decompressor exist, then reads the server's resident set
size (``VmRSS`` in ``/proc/PID/status``). The cost of a connection is the
growth over a warmed-up baseline, divided by N. The same run without
compression shows what deflate adds.

Usage::

    python bench/deflate_memory.py [-n 1000] [--servers ferrows websockets]
        [--compression deflate none] [--message-size 1024]

Asserts nothing; prints a table and each server's correctness (every echo
checked). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import select
import subprocess
import sys
import time
from typing import Any

TIMEOUT = 120.0
"""Bound on every wait, in seconds."""


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def message_of(size: int, seed: int) -> str:
    """Text that compresses about 3:1, like typical JSON."""
    rng = random.Random(seed)
    words = [
        "id",
        "name",
        "value",
        "true",
        "false",
        "null",
        "items",
        "price",
        "{",
        "}",
        ":",
        ",",
    ]
    out = []
    n = 0
    while n < size:
        word = rng.choice(words) + str(rng.randrange(1000))
        out.append(word)
        n += len(word) + 1
    return " ".join(out)[:size]


# ------------------------------------------------------------ subprocesses


async def serve(lib: str, compression: str | None) -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    if lib == "ferrows":
        from ferrows.asyncio.server import serve as serve_lib
    else:
        from websockets.asyncio.server import serve as serve_lib
    async with serve_lib(echo, "127.0.0.1", 0, compression=compression, max_size=2**20) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def clients(port: int, n: int, compression: str | None, size: int) -> None:
    from websockets.asyncio.client import connect

    uri = f"ws://127.0.0.1:{port}/"
    connections = []
    errors = 0
    extensions = set()

    async def one(i: int) -> Any:
        nonlocal errors
        ws = await connect(uri, compression=compression, max_size=2**20, open_timeout=TIMEOUT)
        message = message_of(size, i)
        await ws.send(message)
        if await ws.recv() != message:
            errors += 1
        extensions.add(ws.response.headers.get("Sec-WebSocket-Extensions"))
        return ws

    for start in range(0, n, 50):
        connections += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 50))))
    print(f"ready {errors} {sorted(map(str, extensions))}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for start in range(0, n, 200):
        await asyncio.gather(*(ws.close() for ws in connections[start : start + 200]))


# ------------------------------------------------------------------ driver


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output from pid {proc.pid} in {timeout}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"pid {proc.pid} exited with {proc.wait(TIMEOUT)}")
    return line.strip()


def stop(proc: subprocess.Popen[str]) -> None:
    """Ends a subprocess this script started: EOF on stdin, then kill."""
    try:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def settle(pid: int) -> int:
    """RSS once it stops moving (at most 2 s)."""
    last = rss_kib(pid)
    for _ in range(20):
        time.sleep(0.1)
        now = rss_kib(pid)
        if now == last:
            break
        last = now
    return last


def measure(lib: str, compression: str, n: int, size: int, idle: float = 3.0) -> dict[str, Any]:
    server = spawn("--serve", lib, "--compression", compression)
    try:
        port = int(read_line(server))
        # Warm-up: a few connections and messages, then closed, so that
        # imports, caches and allocator arenas are in the baseline.
        warm = spawn(
            "--clients",
            str(port),
            "--count",
            "20",
            "--compression",
            compression,
            "--message-size",
            str(size),
        )
        try:
            read_line(warm)
        finally:
            stop(warm)
        baseline = settle(server.pid)
        load = spawn(
            "--clients",
            str(port),
            "--count",
            str(n),
            "--compression",
            compression,
            "--message-size",
            str(size),
        )
        try:
            _, errors, extensions = read_line(load).split(" ", 2)
            # Idle connections: ferrows frees compression state after one to
            # two idle sweeps of a second each.
            time.sleep(idle)
            loaded = settle(server.pid)
        finally:
            stop(load)
    finally:
        stop(server)
    return {
        "server": lib,
        "compression": compression,
        "baseline_kib": baseline,
        "loaded_kib": loaded,
        "per_conn_kib": (loaded - baseline) / n,
        "errors": int(errors),
        "extensions": extensions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="connections (default 1000)")
    parser.add_argument("--servers", nargs="+", default=["ferrows", "websockets"])
    parser.add_argument("--compression", nargs="+", default=["deflate", "none"])
    parser.add_argument("--message-size", type=int, default=1024)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before measuring (default 3)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_nofile()

    if args.serve:
        compression = None if args.compression[0] == "none" else args.compression[0]
        asyncio.run(serve(args.serve, compression))
        return
    if args.clients:
        compression = None if args.compression[0] == "none" else args.compression[0]
        asyncio.run(clients(args.clients, args.count, compression, args.message_size))
        return

    import websockets

    import ferrows

    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# ferrows {ferrows.__version__}, websockets {websockets.__version__}, client: websockets")
    print(f"# {args.n} connections, one {args.message_size}-byte text message each way, warm-up: 20 connections")
    results = [measure(lib, c, args.n, args.message_size, args.idle) for c in args.compression for lib in args.servers]
    print(
        f"{'server':<11} {'compression':<12} {'baseline MiB':>12} {'loaded MiB':>11} {'KiB/conn':>9} {'errors':>6}  negotiated"
    )
    for r in results:
        print(
            f"{r['server']:<11} {r['compression']:<12} {r['baseline_kib'] / 1024:>12.1f} {r['loaded_kib'] / 1024:>11.1f}"
            f" {r['per_conn_kib']:>9.1f} {r['errors']:>6}  {r['extensions']}"
        )
    by_key = {(r["server"], r["compression"]): r["per_conn_kib"] for r in results}
    for c in args.compression:
        if ("ferrows", c) in by_key and ("websockets", c) in by_key and by_key["websockets", c]:
            print(f"ratio ferrows/websockets ({c}): {by_key['ferrows', c] / by_key['websockets', c]:.2f}")


if __name__ == "__main__":
    main()
