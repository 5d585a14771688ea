"""``--workers 2`` against one process (issue 14): handshakes/s and pipelined
echo against ``python -m ferrows serve workers:echo --workers N``.

    python bench/workers.py                          # 5 interleaved reps of N = 1 and N = 2
    python bench/workers.py --reps 3 --clients 4 --scenarios pipe

For each repetition, and for N = 1 then 2 (2 then 1 on odd repetitions, so
that a drift of the machine's load hits both), start the server with
``python -m ferrows serve`` (``--workers 1`` serves in the command's own
process; ``--workers 2`` in two supervised processes sharing the port with
``SO_REUSEPORT``), then for each scenario start ``--clients`` client
processes (uvloop, rawclient.py's raw-socket peer, no WebSocket library),
let them import and connect, and release them at once:

- ``handshake``: in each client process, 8 workers connect, upgrade (with a
  browser's permessage-deflate offer), close and wait for the server to hang
  up, over and over, as the ``handshake`` scenario of run.py;
- ``pipe``: in each client process, ``--conns`` connections each keep 64
  binary messages of 32 bytes in flight (a new one per echo), every echo
  checked, as the ``pipe`` scenario of run.py. Several connections per
  process, so that ``SO_REUSEPORT``'s hashing spreads them over both
  workers (the share of each worker's CPU is reported).

Reported per scenario and N: the clients' summed rate (median, min-max),
the server's CPU per operation summed over its processes (the supervisor
and its workers, from /proc, over the middle of the measured window), the
cores the server and the clients used, and the ratio N = 2 over N = 1 per
repetition. Every wait is bounded; the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 60.0


async def echo(websocket: Any) -> None:
    """The handler served: ``python -m ferrows serve workers:echo``."""
    async for message in websocket:
        await websocket.send(message)


# -- client processes ------------------------------------------------------


async def client(scenario: str, port: int, conns: int, warmup: float, duration: float) -> dict[str, Any]:
    """One client process's part; starts when a line arrives on stdin."""
    import rawclient
    from common import EchoDriver, Meter
    from scenarios import HANDSHAKE_CONCURRENCY, SCENARIOS

    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu0 = time.process_time()
    if scenario == "handshake":
        meter = Meter(None)
        await rawclient.handshakes(
            port, meter, warmup=warmup, duration=duration, concurrency=HANDSHAKE_CONCURRENCY, max_ops=10**9
        )
        rate = meter.result()["rate"]
    else:
        sc = SCENARIOS["pipe"]
        drivers = [EchoDriver(sc.payloads(), sc.window, Meter(None), warmup, duration, 10**9) for _ in range(conns)]
        await asyncio.gather(
            *(rawclient.echo(port, d, handshake=True, compress=False, text=False, timeout=TIMEOUT) for d in drivers)
        )
        errors = [d.error for d in drivers if d.error]
        if errors:
            raise ValueError(f"wrong echo: {errors[0]}")
        rate = sum(d.meter.result()["rate"] for d in drivers)
    return {"rate": rate, "cpu": time.process_time() - cpu0}


# -- the server -------------------------------------------------------------


def proc_children(pid: int) -> list[int]:
    children: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children += [int(c) for c in f.read().split()]
    return children


class Lines:
    """Lines from a child's stdout, each within a timeout: select() on the
    pipe and os.read(), with no buffered reader to hide lines from select()."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def readline(self, timeout: float) -> str:
        """The next line, with its newline; what is left at EOF, or ""."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise TimeoutError(f"no line within {timeout} s")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line.decode()
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode() + "\n"


class Server:
    """``python -m ferrows serve workers:echo --workers N`` on a free port."""

    def __init__(self, workers: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferrows", "serve", "workers:echo"]
            + ["--host", "127.0.0.1", "--port", "0", "--workers", str(workers)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            lines = Lines(self.process.stdout)
            deadline = time.monotonic() + TIMEOUT
            while not (line := lines.readline(deadline - time.monotonic())).startswith("Serving"):
                if not line:
                    raise RuntimeError(f"server exited with {self.process.wait(10)}")
            match = re.search(r"ws://[^ ]+:(\d+)", line)
            assert match is not None, line
            self.port = int(match.group(1))
            self.pids = [self.process.pid] + proc_children(self.process.pid)
            if len(self.pids) != (workers + 1 if workers > 1 else 1):
                raise RuntimeError(f"expected {workers} workers, found processes {self.pids}")
        except BaseException:
            self.stop()
            raise

    def cpu(self) -> list[float]:
        from common import proc_cpu

        return [proc_cpu(pid) for pid in self.pids]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def trial(server: Server, scenario: str, options: argparse.Namespace) -> dict[str, Any]:
    clients = [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--client", scenario, "--port", str(server.port)]
            + ["--conns", str(options.conns), "--warmup", str(options.warmup), "--duration", str(options.duration)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(options.clients)
    ]
    try:
        outputs = [Lines(c.stdout) for c in clients]
        if any(out.readline(TIMEOUT) != "ready\n" for out in outputs):
            raise RuntimeError("a client process failed to start")
        for c in clients:
            c.stdin.write(b"go\n")
            c.stdin.flush()
        # The clients measure from warmup to warmup + duration after the
        # first echo or handshake; take the server's CPU inside that window.
        time.sleep(options.warmup + 0.2)
        from common import machine_busy

        cpu0, all0, t0 = server.cpu(), machine_busy(), time.perf_counter()
        time.sleep(options.duration - 0.4)
        cpu1, all1, t1 = server.cpu(), machine_busy(), time.perf_counter()
        results = [json.loads(out.readline(TIMEOUT) or "{}") for out in outputs]
        for c in clients:
            c.wait(TIMEOUT)
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait(10)
    failed = [r.get("failed", "no result") for r in results if "rate" not in r]
    if failed:
        raise RuntimeError(f"client failed: {failed[0]}")
    rate = sum(r["rate"] for r in results)
    busy = [(b - a) / (t1 - t0) for a, b in zip(cpu0, cpu1, strict=True)]
    return {
        "rate": rate,
        "server_cpu_us_per_op": 1e6 * sum(busy) / rate,
        "server_cores": sum(busy),
        "worker_cores": busy[1:] if len(busy) > 1 else busy,
        "client_cores": sum(r["cpu"] for r in results) / (options.warmup + options.duration),
        "client_cpu_us_per_op": 1e6 * sum(r["cpu"] for r in results) / (options.warmup + options.duration) / rate,
        "machine_cores": (all1 - all0) / (t1 - t0),
    }


# -- the run ----------------------------------------------------------------


def summary(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="handshake,pipe")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--conns", type=int, default=4, help="pipe: connections per client process")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.client:
        import uvloop

        try:
            result = uvloop.run(client(options.client, options.port, options.conns, options.warmup, options.duration))
        except Exception as exc:
            result = {"failed": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
        return
    from common import raise_nofile

    raise_nofile()
    scenarios = options.scenarios.split(",")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {(s, n): [] for s in scenarios for n in (1, 2)}
    for rep in range(options.reps):
        for workers in (1, 2) if rep % 2 == 0 else (2, 1):
            server = Server(workers)
            try:
                for scenario in scenarios:
                    result = trial(server, scenario, options)
                    runs[scenario, workers].append(result)
                    print(json.dumps({"rep": rep, "scenario": scenario, "workers": workers, **result}), flush=True)
            finally:
                server.stop()
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{options.clients} client processes; pipe: {options.conns} connections each; {options.reps} reps")
    print(
        "| scenario | workers | rate/s | server CPU µs/op | server cores | client CPU µs/op | client cores | machine cores busy | 2 ÷ 1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        ratios = [b["rate"] / a["rate"] for a, b in zip(runs[scenario, 1], runs[scenario, 2], strict=True)]
        for workers in (1, 2):
            rs = runs[scenario, workers]
            print(
                f"| {scenario} | {workers} | {summary([r['rate'] for r in rs], ',.0f')} "
                f"| {summary([r['server_cpu_us_per_op'] for r in rs], '.1f')} "
                f"| {summary([r['server_cores'] for r in rs], '.2f')} "
                f"| {summary([r['client_cpu_us_per_op'] for r in rs], '.1f')} "
                f"| {summary([r['client_cores'] for r in rs], '.2f')} "
                f"| {summary([r['machine_cores'] for r in rs], '.2f')} "
                f"| {summary(ratios, '.2f') + 'x' if workers == 2 else ''} |"
            )


if __name__ == "__main__":
    main()
