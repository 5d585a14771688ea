"""Scale-out benchmark: one publisher, N server processes on one Redis, 1000
connections in one group (issue 14).

    python bench/scale_out.py                      # every library, 2 processes, and ferrows x1
    python bench/scale_out.py --libs ferrows --connections 500 --messages 200

For each library: start a fresh redis-server (no persistence) and the server
processes (``scale_servers.py``), connect the clients round-robin to them,
then

1. *max rate*: publish ``--messages`` messages of ~30 bytes to the group, at
   most ``--window`` messages not yet delivered to every client at any time;
   deliveries/s = messages x connections / elapsed, and the servers' CPU
   (user + system, from /proc) per delivery;
2. *latency*: publish as many again at half the measured rate, and report
   publish-to-delivery latency (CLOCK_MONOTONIC, shared by the processes of
   one machine) p50 and p99 over every delivery.

The clients and the publisher share this process (uvloop): on a small
machine it competes for the cores with the servers and Redis, so figures
are for comparison within one run. Every wait is bounded; the servers and
Redis are stopped by their pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "tests"))  # after the standard library

from common import proc_cpu, raise_nofile  # noqa: E402

import ferrows  # noqa: E402
from redis_server import RedisServer, free_port  # noqa: E402

TIMEOUT = 60.0


class Run:
    def __init__(self, lib: str, processes: int, connections: int) -> None:
        self.lib = lib
        self.processes = processes
        self.connections = connections
        self.counts: dict[int, int] = {}
        self.complete = 0  # messages delivered to every client
        self.latencies: list[int] | None = None
        self.changed = asyncio.Event()

    def delivered(self, text: str) -> None:
        now = time.monotonic_ns()
        seq_text, sent = text.split(" ", 1)
        seq = int(seq_text)
        count = self.counts[seq] = self.counts.get(seq, 0) + 1
        if seq < 0:
            return  # warm-up
        if self.latencies is not None:
            self.latencies.append(now - int(sent))
        if count == self.connections:
            self.complete += 1
            self.changed.set()


async def client(run: Run, port: int, ready: asyncio.Queue[None]) -> None:
    if run.lib == "socketio":
        websocket = await ferrows.connect(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", compression=None, ping_interval=None
        )
        assert (await websocket.recv()).startswith("0")  # engine.io open
        await websocket.send("40")  # socket.io connect, default namespace
        assert (await websocket.recv()).startswith("40")
    else:
        websocket = await ferrows.connect(f"ws://127.0.0.1:{port}/", compression=None, ping_interval=None)
    ready.put_nowait(None)
    try:
        async for message in websocket:
            if run.lib == "socketio":
                if message == "2":  # engine.io ping
                    await websocket.send("3")
                    continue
                run.delivered(json.loads(message[2:])[1])
            else:
                run.delivered(message)
    except ferrows.ConnectionClosed:
        pass


async def publisher(lib: str, url: str):
    """An async ``publish(text)`` for the library, and its closer."""
    if lib == "ferrows":
        hub = ferrows.Hub(url, publish_timeout=5)
        await hub.wait_connected(10)
        return (lambda text: hub.publish("room", text)), hub.close
    if lib == "broadcaster":
        from broadcaster import Broadcast

        broadcast = Broadcast(url)
        await broadcast.connect()
        return (lambda text: broadcast.publish("room", text)), broadcast.disconnect
    import socketio

    manager = socketio.AsyncRedisManager(url, write_only=True)

    async def close() -> None:
        pass

    return (lambda text: manager.emit("m", text, room="room", namespace="/")), close


async def measure(lib: str, processes: int, connections: int, messages: int, window: int) -> dict:
    redis = RedisServer()
    redis.start()
    ports = [free_port() for _ in range(processes)]
    servers = [
        subprocess.Popen(
            [sys.executable, "-P", os.path.join(HERE, "scale_servers.py"), lib, redis.url, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        for server in servers:
            assert server.stdout.readline() == "ready\n"
        run = Run(lib, processes, connections)
        ready: asyncio.Queue[None] = asyncio.Queue()
        for i in range(connections):
            tasks.append(asyncio.create_task(client(run, ports[i % processes], ready)))
            if i % 50 == 49:
                await asyncio.sleep(0)
        async with asyncio.timeout(TIMEOUT):
            for _ in range(connections):
                await ready.get()
        publish, close = await publisher(lib, url=redis.url)
        # Warm up until every client got a message (subscriptions are up).
        async with asyncio.timeout(TIMEOUT):
            while True:
                run.counts.clear()
                await publish(f"-1 {time.monotonic_ns()}")
                await asyncio.sleep(0.2)
                if run.counts.get(-1, 0) == connections:
                    break
        run.counts.clear()

        async def burst(first: int, count: int, interval: float | None) -> float:
            start = time.perf_counter()
            async with asyncio.timeout(TIMEOUT):
                for seq in range(first, first + count):
                    while seq - run.complete >= window:
                        run.changed.clear()
                        await run.changed.wait()
                    await publish(f"{seq} {time.monotonic_ns()}")
                    if interval is not None:
                        await asyncio.sleep(max(0.0, start + (seq - first + 1) * interval - time.perf_counter()))
                while run.complete < first + count:
                    run.changed.clear()
                    await run.changed.wait()
            return time.perf_counter() - start

        cpu0 = sum(proc_cpu(s.pid) for s in servers)
        elapsed = await burst(0, messages, None)
        cpu = sum(proc_cpu(s.pid) for s in servers) - cpu0
        rate = messages / elapsed
        run.latencies = []
        await burst(messages, messages, 2 / rate)
        latencies = sorted(run.latencies)
        await close()
        return {
            "lib": lib,
            "processes": processes,
            "connections": connections,
            "deliveries_per_s": messages * connections / elapsed,
            "server_cpu_us_per_delivery": 1e6 * cpu / (messages * connections),
            "latency_rate_msgs_per_s": rate / 2,
            "p50_ms": latencies[len(latencies) // 2] / 1e6,
            "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
            "mean_ms": statistics.fmean(latencies) / 1e6,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libs", default="ferrows,socketio,broadcaster")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--no-reference", action="store_true", help="skip the single ferrows process")
    options = parser.parse_args()
    raise_nofile()
    plan = [(lib, options.processes) for lib in options.libs.split(",")]
    if not options.no_reference:
        plan.append(("ferrows", 1))
    import uvloop

    results = []
    for lib, processes in plan:
        try:
            result = uvloop.run(measure(lib, processes, options.connections, options.messages, options.window))
        except Exception as exc:  # recorded, as the other benchmarks record a library's failure
            result = {"lib": lib, "processes": processes, "failed": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| library | processes | deliveries/s | server CPU µs/delivery | latency p50 / p99 (ms) at msgs/s |")
    print("|---|---|---|---|---|")
    for r in results:
        if "failed" in r:
            print(f"| {r['lib']} | {r['processes']} | failed: {r['failed']} | | |")
            continue
        print(
            f"| {r['lib']} | {r['processes']} | {r['deliveries_per_s']:,.0f} | {r['server_cpu_us_per_delivery']:.2f} "
            f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} at {r['latency_rate_msgs_per_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
