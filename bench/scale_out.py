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

The clients are rawclient.py's raw-socket peers (no WebSocket library, the
same for every library; python-socketio's speak engine.io over them),
spread over ``--client-procs`` uvloop processes, so that the latency is not
one process's backlog of 1000 deliveries per message; each process reports
when a message reached all its connections, which drives the window. The
publisher has a process of its own. On a small machine they all compete for
the cores with the servers and Redis, so figures are for comparison within
one run. Every wait is bounded; the servers, the clients and Redis are
stopped by their pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "tests"))  # after the standard library

from common import machine_busy, proc_cpu, raise_nofile  # noqa: E402

import ferrows  # noqa: E402
from redis_server import RedisServer, free_port  # noqa: E402

TIMEOUT = 60.0


class Run:
    """The publisher's view of the clients: which messages every client
    process reported as delivered to all its connections."""

    def __init__(self, procs: int) -> None:
        self.done = [0] * procs  # messages (seq >= 0) complete, per client process
        self.complete = 0  # messages delivered to every client
        self.warm: dict[int, set[int]] = {}
        self.changed = asyncio.Event()
        self.results: list[dict | None] = [None] * procs

    def reported(self, proc: int, seq: int) -> None:
        if seq < 0:
            self.warm.setdefault(seq, set()).add(proc)
        else:
            self.done[proc] += 1
            self.complete = min(self.done)
        self.changed.set()

    async def wait(self, predicate) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


async def clients_main(lib: str, ports: list[int], first: int, count: int, latency_from: int) -> None:
    """A client process (``--client``): connections ``first`` to ``first +
    count - 1``, round-robin over ``ports``, as rawclient.py's raw-socket
    peers. Prints ``ready`` once all are open, then ``c SEQ`` each time a
    message reached all of them; at EOF on stdin, the publish-to-delivery
    latencies (ns) of messages ``latency_from`` and up, as JSON."""
    from common import frame
    from rawclient import open_raw

    loop = asyncio.get_running_loop()
    counts: dict[int, int] = {}
    latencies: list[int] = []
    joined = {i: loop.create_future() for i in range(first, first + count)}
    pong, join = frame(1, b"3", masked=True), frame(1, b"40", masked=True)

    def delivered(text: str) -> None:
        now = time.monotonic_ns()
        seq_text, sent = text.split(" ", 1)
        seq = int(seq_text)
        if seq >= latency_from:
            latencies.append(now - int(sent))
        got = counts[seq] = counts.get(seq, 0) + 1
        if got == count:
            del counts[seq]
            sys.stdout.write(f"c {seq}\n")
            sys.stdout.flush()

    def on_message(conn, opcode: int, payload: bytes) -> None:
        text = payload.decode()
        if lib != "socketio":
            delivered(text)
        elif text.startswith("42"):  # socket.io event: ["m", text]
            delivered(json.loads(text[2:])[1])
        elif text == "2":  # engine.io ping
            conn.send_frame(pong)
        elif text.startswith("40"):  # socket.io connected
            joined[conn.index].set_result(None)
        elif text.startswith("0"):  # engine.io open: connect to the default namespace
            conn.send_frame(join)

    path = "/socket.io/?EIO=4&transport=websocket" if lib == "socketio" else "/"
    connections = []
    for start in range(first, first + count, 50):
        connections += await asyncio.gather(
            *(
                open_raw(ports[i % len(ports)], path=path, on_message=on_message, index=i)
                for i in range(start, min(first + count, start + 50))
            )
        )
    if lib == "socketio":
        await asyncio.wait_for(asyncio.gather(*joined.values()), TIMEOUT)
    print("ready", flush=True)
    while await loop.run_in_executor(None, sys.stdin.readline):
        pass
    print(json.dumps(latencies), flush=True)
    for conn in connections:
        conn.transport.abort()


async def start_clients(lib: str, ports: list[int], connections: int, procs: int, latency_from: int, run: Run):
    """Starts the client processes, waits until each is ready, and follows
    their reports; returns the processes and the tasks following them."""
    shares = [connections // procs + (i < connections % procs) for i in range(procs)]
    firsts = [sum(shares[:i]) for i in range(procs)]
    clients = [
        await asyncio.create_subprocess_exec(
            *[sys.executable, os.path.abspath(__file__), "--client", lib, "--ports", ",".join(map(str, ports))],
            *["--first", str(first), "--connections", str(share), "--latency-from", str(latency_from)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=2**26,
        )
        for first, share in zip(firsts, shares, strict=True)
    ]

    async def follow(index: int, process) -> None:
        while line := await process.stdout.readline():
            if line.startswith(b"c "):
                run.reported(index, int(line[2:]))
            else:
                run.results[index] = json.loads(line)
        run.changed.set()

    async with asyncio.timeout(TIMEOUT):
        for process in clients:
            if await process.stdout.readline() != b"ready\n":
                raise RuntimeError("a client process failed to connect")
    return clients, [asyncio.create_task(follow(i, p)) for i, p in enumerate(clients)]


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


async def measure(lib: str, processes: int, options: argparse.Namespace) -> dict:
    connections, messages, window = options.connections, options.messages, options.window
    procs, fraction = options.client_procs, options.fraction
    env = dict(os.environ)
    if lib == "broadcaster" and options.broadcaster_redis:
        # broadcaster 0.3.1's Redis listener misses its first subscription
        # with redis-py 8: its servers may import an older one.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [options.broadcaster_redis, env.get("PYTHONPATH")]))
    redis = RedisServer()
    redis.start()
    ports = [free_port() for _ in range(processes)]
    servers = [
        subprocess.Popen(
            [sys.executable, "-P", os.path.join(HERE, "scale_servers.py"), lib, redis.url, str(port)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for port in ports
    ]
    clients: list = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for server in servers:
            assert server.stdout.readline() == "ready\n"
        run = Run(procs)
        clients, tasks = await start_clients(lib, ports, connections, procs, messages, run)
        publish, close = await publisher(lib, url=redis.url)
        # Warm up until every client got a message (subscriptions are up).
        async with asyncio.timeout(TIMEOUT):
            for seq in itertools.count(-1, -1):
                await publish(f"{seq} {time.monotonic_ns()}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await run.wait(lambda seq=seq: len(run.warm.get(seq, ())) == procs)
                    break

        async def burst(first: int, count: int, interval: float | None) -> float:
            start = time.perf_counter()
            async with asyncio.timeout(TIMEOUT):
                for seq in range(first, first + count):
                    await run.wait(lambda seq=seq: seq - run.complete < window)
                    await publish(f"{seq} {time.monotonic_ns()}")
                    if interval is not None:
                        await asyncio.sleep(max(0.0, start + (seq - first + 1) * interval - time.perf_counter()))
                await run.wait(lambda: run.complete >= first + count)
            return time.perf_counter() - start

        def cpu_of(processes) -> float:
            return sum(proc_cpu(p.pid) for p in processes)

        others = [redis.process, *clients]
        cpu0, others0, own0 = cpu_of(servers), cpu_of(others), time.process_time()
        elapsed = await burst(0, messages, None)
        cpu, others1, own1 = cpu_of(servers) - cpu0, cpu_of(others), time.process_time()
        rate = messages / elapsed
        before = [cpu_of(servers), cpu_of(others), time.process_time(), machine_busy()]
        latency_elapsed = await burst(messages, messages, 1 / (rate * fraction))
        after = [cpu_of(servers), cpu_of(others), time.process_time(), machine_busy()]
        busy = [b - a for a, b in zip(before, after, strict=True)]
        await close()
        for process in clients:
            process.stdin.close()
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*tasks)
        latencies = sorted(itertools.chain.from_iterable(run.results))
        assert len(latencies) == messages * connections, (len(latencies), messages * connections)
        return {
            "lib": lib,
            "processes": processes,
            "connections": connections,
            "client_procs": procs,
            "deliveries_per_s": messages * connections / elapsed,
            "server_cpu_us_per_delivery": 1e6 * cpu / (messages * connections),
            # Redis and the client processes, then the publisher (this process).
            "redis_clients_cpu_us_per_delivery": 1e6 * (others1 - others0) / (messages * connections),
            "publisher_cpu_us_per_message": 1e6 * (own1 - own0) / messages,
            # Cores kept busy during the latency phase: servers, Redis and
            # clients, publisher, and the whole machine (anyone's work).
            "latency_phase_cores": [round(b / latency_elapsed, 2) for b in busy],
            "latency_rate_msgs_per_s": rate * fraction,
            "p50_ms": latencies[len(latencies) // 2] / 1e6,
            "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
            "mean_ms": statistics.fmean(latencies) / 1e6,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for process in clients:
            if process.returncode is None:
                process.kill()
            await process.wait()
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
    parser.add_argument("--fraction", type=float, default=0.5, help="latency: rate as a fraction of the maximum")
    parser.add_argument("--client-procs", type=int, default=4, help="processes the clients are spread over")
    parser.add_argument("--no-reference", action="store_true", help="skip the single ferrows process")
    parser.add_argument(
        "--broadcaster-redis",
        metavar="DIR",
        help="directory put first on the broadcaster servers' path, holding the redis-py they import "
        "(pip install --no-deps --target DIR 'redis>=7,<8': broadcaster 0.3.1 delivers nothing with redis-py 8)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--latency-from", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    raise_nofile()
    import uvloop

    if options.client:
        ports = [int(p) for p in options.ports.split(",")]
        uvloop.run(clients_main(options.client, ports, options.first, options.connections, options.latency_from))
        return
    plan = [(lib, options.processes) for lib in options.libs.split(",")]
    if not options.no_reference:
        plan.append(("ferrows", 1))

    results = []
    for lib, processes in plan:
        try:
            result = uvloop.run(measure(lib, processes, options))
        except Exception as exc:  # recorded, as the other benchmarks record a library's failure
            result = {"lib": lib, "processes": processes, "failed": f"{type(exc).__name__}: {exc}"}
            if lib == "broadcaster" and not options.broadcaster_redis:
                result["failed"] += " (broadcaster 0.3.1 delivers nothing with redis-py 8: see --broadcaster-redis)"
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        "| library | processes | deliveries/s | server CPU µs/delivery | Redis + clients µs/delivery "
        "| latency p50 / p99 (ms) at msgs/s | cores busy then: servers, Redis + clients, publisher; machine |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "failed" in r:
            print(f"| {r['lib']} | {r['processes']} | failed: {r['failed']} | | | | |")
            continue
        print(
            f"| {r['lib']} | {r['processes']} | {r['deliveries_per_s']:,.0f} | {r['server_cpu_us_per_delivery']:.2f} "
            f"| {r['redis_clients_cpu_us_per_delivery']:.2f} "
            f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} at {r['latency_rate_msgs_per_s']:.0f} "
            f"| {', '.join(map(str, r['latency_phase_cores'][:3]))}; {r['latency_phase_cores'][3]} |"
        )


if __name__ == "__main__":
    main()
