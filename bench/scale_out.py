"""Scale-out benchmark: one publisher, N server processes on one Redis, 1000
connections in one group (issue 14).

    python bench/scale_out.py                      # every library, 2 processes, and ferrows x1
    python bench/scale_out.py --libs ferrows --no-reference --client-sched normal

For each library: start a fresh redis-server (no persistence) and the server
processes (``scale_servers.py``), connect the clients round-robin to them,
then

1. *max rate*: publish ``--messages`` messages of ~30 bytes to the group, at
   most ``--window`` messages not yet delivered to every client at any time;
   deliveries/s = messages x connections / elapsed, and the servers' CPU
   (user + system, from /proc) per delivery;
2. *latency*: publish as many again at half the measured rate (``--fraction``),
   on a fixed schedule (a late publisher catches up; ``--pacing even`` keeps
   the interval from where it is instead), and report publish-to-arrival
   latency p50 and p99 over every delivery.

The clients are raw sockets read with ``epoll`` (no WebSocket library, the
same for every library; python-socketio's speak engine.io over them), spread
over ``--client-procs`` processes, each reporting when a message reached all
its connections (which drives the window). A delivery's arrival is the
kernel's receive stamp of the frame on the client's socket (``SO_TIMESTAMPNS``,
CLOCK_REALTIME turned into the CLOCK_MONOTONIC of the publisher's stamp), not
the moment the client process got round to it: the clients stand for peers
on other machines, and their own backlog is reported apart (``handled``).
TCP keeps one stamp per read, the last segment's, so a frame read together
with later ones gets a late stamp; for ferrows, the servers also time their
hub's deliveries (``--no-trace`` not to), and a delivery's arrival is the
earlier of its stamp and the moment its server's writes of that message
ended; both are late bounds. In the latency phase the clients run as
``SCHED_IDLE`` (``--client-sched``), on the cores the servers, Redis and the
publisher leave, so that on a small machine the servers don't wait for a core
behind the clients (``latency_phase_run_queue_wait`` says how long each group
waited). The breakdown in the JSON (``--breakdown``; always with the trace)
splits each delivery into publish, Redis to the hub, fan-out and the client's
backlog. The publisher has a process of its own. Every wait is bounded; the
servers, the clients and Redis are stopped by their pid.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "tests"))  # after the standard library
if HERE not in sys.path:
    sys.path.append(HERE)  # run with -P as a traced server: common.py, scale_servers.py

from common import machine_busy, proc_cpu, raise_nofile  # noqa: E402

import ferrows  # noqa: E402
from redis_server import RedisServer, free_port  # noqa: E402

TIMEOUT = 60.0
SCHED_POLICIES = {"normal": os.SCHED_OTHER, "batch": os.SCHED_BATCH, "idle": os.SCHED_IDLE}


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


SO_TIMESTAMPNS = 35  # Linux; not in the socket module of every Python


def realtime_offset() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns, from the closest of a few
    back-to-back readings: kernel receive stamps are on the first clock, the
    publisher's on the second."""
    best = None
    for _ in range(50):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    assert best is not None
    return best[1]


def clients_main(lib: str, ports: list[int], first: int, count: int, latency_from: int) -> None:
    """A client process (``--client``): connections ``first`` to ``first +
    count - 1``, round-robin over ``ports``, as raw sockets read with
    ``epoll`` and ``recvmsg()``. Prints ``ready`` once all are open (and, for
    python-socketio, in its namespace), then ``c SEQ`` each time a message
    reached all of them; at EOF on stdin, one JSON list of ``[seq,
    connection, arrived, handled]`` per delivery of messages ``latency_from``
    and up: ns after the publish stamp at which the kernel received the frame
    on the client's socket (``SO_TIMESTAMPNS``; for messages read together,
    the last one's), and at which this process handled it (after the
    deliveries it handled first); and whether it was read alone."""
    import base64
    import select
    import socket
    import struct

    from common import frame

    offset = realtime_offset()
    stamp = struct.Struct("qq")
    cmsg_space = socket.CMSG_SPACE(stamp.size)
    pong, join, engine_pong = frame(10, b"", masked=True), frame(1, b"40", masked=True), frame(1, b"3", masked=True)
    path = "/socket.io/?EIO=4&transport=websocket" if lib == "socketio" else "/"
    poller = select.epoll()
    conns: dict[int, tuple[socket.socket, bytearray, int]] = {}
    joined: set[int] = set()
    counts: dict[int, int] = {}
    records: list[tuple[int, int, int, int, bool]] = []
    for index in range(first, first + count):
        port = ports[index % len(ports)]
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk or len(head) > 16384:
                raise RuntimeError(f"handshake failed: {head!r}")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:80]!r}")
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        conns[sock.fileno()] = (sock, bytearray(rest), index)
        poller.register(sock.fileno(), select.EPOLLIN)
        if lib != "socketio":
            joined.add(index)

    def delivered(text: str, index: int, arrived: int | None, alone: bool) -> None:
        now = time.monotonic_ns()
        seq_text, sent_text = text.split(" ", 1)
        seq, sent = int(seq_text), int(sent_text)
        if seq >= latency_from:
            records.append((seq, index, (now if arrived is None else arrived) - sent, now - sent, alone))
        got = counts[seq] = counts.get(seq, 0) + 1
        if got == count:
            del counts[seq]
            os.write(1, f"c {seq}\n".encode())

    def readable(fd: int) -> None:
        sock, buf, index = conns[fd]
        try:
            data, ancillary, _, _ = sock.recvmsg(262144, cmsg_space)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError(f"connection {index} closed by the server")
        arrived = None
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = stamp.unpack(raw)
                arrived = seconds * 1_000_000_000 + nanoseconds - offset
        buf += data
        pos, end, out, texts = 0, len(buf), [], []
        while end - pos >= 2:
            n, head = buf[pos + 1] & 0x7F, 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                raise RuntimeError("unexpected large frame")
            if end - pos < head + n:
                break
            opcode, payload = buf[pos] & 0x0F, buf[pos + head : pos + head + n]
            pos += head + n
            if opcode == 1:
                text = payload.decode()
                if lib != "socketio":
                    texts.append(text)
                elif text.startswith("42"):  # socket.io event: ["m", text]
                    texts.append(json.loads(text[2:])[1])
                elif text == "2":  # engine.io ping
                    out.append(engine_pong)
                elif text.startswith("40"):  # socket.io connected
                    joined.add(index)
                elif text.startswith("0"):  # engine.io open: connect to the default namespace
                    out.append(join)
            elif opcode == 9:
                out.append(pong)
            elif opcode == 8:
                raise RuntimeError(f"connection {index} got a close frame")
        del buf[:pos]
        # TCP keeps the stamp of the last segment it read: exact for a
        # message read alone, an upper bound for those read with later ones.
        for text in texts:
            delivered(text, index, arrived, len(texts) == 1)
        if out:
            sock.send(b"".join(out))  # a few bytes: taken whole

    deadline = time.monotonic() + TIMEOUT
    while len(joined) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the clients did not all join")
        for fd, _ in poller.poll(1.0):
            readable(fd)
    os.write(1, b"ready\n")
    os.set_blocking(0, False)
    poller.register(0, select.EPOLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd != 0:
                readable(fd)
            elif not os.read(0, 4096):
                print(json.dumps(records), flush=True)
                return


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
            limit=2**28,
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


async def publisher(lib: str, url: str, replay: int = 0):
    """An async ``publish(text)`` for the library, and its closer."""
    if lib == "ferrows":
        hub = ferrows.Hub(url, publish_timeout=5, replay=replay)
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


def trace_server_main(url: str, port: int, out: str, replay: int) -> None:
    """A ferrows server of ``scale_servers.py`` (``--trace-server``) that
    records, for each message the hub takes from Redis, when
    ``Hub._deliver`` started and returned (all the members' writes done),
    the members, those whose frame was not on their socket when it returned
    (held for the end of the loop iteration: a second message in it), the
    CPU time of the call (less than its wall time when the process lost its
    core meanwhile) and the time spent in ``send_to_all()`` (the system
    calls). Written to ``out`` as JSON on SIGTERM: ``{"deliveries": {seq:
    [start, end, members, held, cpu, sending]}, "send_to_all": [ns,
    sockets]`` (every ``send_to_all()`` call, those of the end-of-iteration
    flushes too), ``"flushed": [end, ...]}`` (when each end-of-iteration
    flush of held frames returned)."""
    import scale_servers
    import uvloop

    from ferrows.asyncio import connection as connection_module
    from ferrows.asyncio import hub as hub_module

    seen: list[tuple[bytes, int, int, int, int, int, int]] = []
    deliver = hub_module.Hub._deliver
    send_to_all = connection_module.send_to_all
    sending = [0, 0]  # ns in send_to_all(), sockets written
    flushed: list[int] = []  # when each end-of-iteration flush returned
    flush_broadcast = connection_module._flush_broadcast

    def timed_flush_broadcast(connections: list) -> None:
        flush_broadcast(connections)
        flushed.append(time.monotonic_ns())

    def timed_send_to_all(fds: list[int], data: bytes) -> list[tuple[int, int]]:
        start = time.monotonic_ns()
        try:
            return send_to_all(fds, data)
        finally:
            sending[0] += time.monotonic_ns() - start
            sending[1] += len(fds)

    def traced(self, data: bytes) -> None:
        cpu, sent = time.thread_time_ns(), sending[0]
        start = time.monotonic_ns()
        deliver(self, data)
        end = time.monotonic_ns()
        cpu, sent = time.thread_time_ns() - cpu, sending[0] - sent
        members = self._groups.get("room", ())
        # Members whose frame is not on their socket yet: held until the end
        # of the loop iteration (a second message in it), or buffered.
        held = sum(1 for c in members if c._corked or c.transport.get_write_buffer_size())
        seen.append((data, start, end, len(members), held, cpu, sent))

    connection_module.send_to_all = timed_send_to_all
    connection_module._flush_broadcast = timed_flush_broadcast
    hub_module.Hub._deliver = traced  # type: ignore[method-assign]
    if replay:
        import ferrows as package

        hub_class = package.Hub
        package.Hub = lambda url, **options: hub_class(url, replay=replay, **options)  # type: ignore[misc]
    uvloop.run(scale_servers.ferrows_server(url, port))
    deliveries = {}
    header = hub_module._HEADER
    for data, *values in seen:
        _, _, length = header.unpack_from(data)
        deliveries[int(data[header.size + length :].split(b" ", 1)[0])] = values
    with open(out, "w") as f:
        json.dump({"deliveries": deliveries, "send_to_all": sending, "flushed": flushed}, f)


def run_queue_wait(pid: int) -> float:
    """Seconds process ``pid`` (its main thread) spent runnable but waiting
    for a core so far (/proc/PID/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def quantiles(values: list[int] | list[float]) -> dict[str, float]:
    """min, p50, p99 and max of values in ns, in ms."""
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "min": round(ordered[0] / 1e6, 3),
        "p50": round(ordered[len(ordered) // 2] / 1e6, 2),
        "p99": round(ordered[int(len(ordered) * 0.99)] / 1e6, 2),
        "max": round(ordered[-1] / 1e6, 2),
    }


def breakdown(deliveries: list, published: dict, traces: list | None, processes: int) -> dict:
    """Where the time of each delivery went: ``publish_call``, until Redis
    answered the publisher; ``to_hub``, from the publish stamp until the hub
    of the connection's server started delivering it (the publisher, Redis,
    reading it from Redis, waiting for a core and for its turn in the
    server's loop), of which ``redis_to_hub`` after Redis answered the
    publisher (negative when the hub was first); ``fan_out``, until the
    frame was in the client's socket (the writes to the members before it);
    ``client_backlog``, until the client handled it: the three add up to
    ``handled``. Quantiles
    of each stage (ms), and their means over the deliveries at or above the
    p99 of arrival. A frame read with later ones carries their arrival
    stamp (an upper bound): ``arrived_alone`` is over the exact ones only.
    ``server_written`` is, per delivery, when its server's hub returned from
    delivering the message (every member's frame written, unless held):
    what the server adds, whatever the clients do."""
    stages: dict[str, list[int]] = {"arrival": [], "arrived": [], "handled": [], "client_backlog": []}
    if traces is not None:
        stages |= {"publish_call": [], "to_hub": [], "redis_to_hub": [], "fan_out": [], "server_written": []}
        flushes = [sorted(trace["flushed"]) for trace in traces]
    rows = []
    alone = []
    for seq, index, arrived, handled, single in deliveries:
        row = {"arrival": arrived, "arrived": arrived, "handled": handled, "client_backlog": handled - arrived}
        if single:
            alone.append(arrived)
        if traces is not None:
            sent, answered = published[seq]
            server = index % processes
            start, end, _, held = traces[server]["deliveries"][str(seq)][:4]
            if held:  # some frames went out with the flush at the end of the iteration
                after = bisect.bisect_left(flushes[server], end)
                end = flushes[server][after] if after < len(flushes[server]) else sent + arrived
            # Both are late bounds of the frame's arrival in the socket: the
            # stamp of a later frame read with it, the end of the writes.
            arrival = min(arrived, end - sent)
            row |= {
                "arrival": arrival,
                "client_backlog": handled - arrival,
                "publish_call": answered - sent,
                "to_hub": start - sent,
                "redis_to_hub": start - answered,
                "fan_out": arrival - (start - sent),
                "server_written": end - sent,
            }
        for key, value in row.items():
            stages[key].append(value)
        rows.append(row)
    result: dict = {key: quantiles(values) for key, values in stages.items()}
    result["arrived_alone"] = quantiles(alone)
    result["read_alone_fraction"] = round(len(alone) / len(rows), 3)
    cut = sorted(stages["arrival"])[int(len(rows) * 0.99)]
    tail = [row for row in rows if row["arrival"] >= cut]
    result["mean_ms_at_p99_of_arrival"] = {
        key: round(statistics.fmean(row[key] for row in tail) / 1e6, 2) for key in stages
    }
    if traces is not None:
        paced = {str(seq) for seq, *_ in deliveries}  # the latency phase's messages
        done = [v for trace in traces for seq, v in trace["deliveries"].items() if seq in paced]
        members = sum(v[2] for v in done)
        result["server_deliver_duration"] = quantiles([end - start for start, end, *_ in done])
        # Per member: wall time of the hub's delivery, its CPU time, and the
        # part spent in send_to_all() (the send() system calls).
        result["server_deliver_us_per_member"] = [
            round(sum(v[1] - v[0] for v in done) / members / 1e3, 2),
            round(sum(v[4] for v in done) / members / 1e3, 2),
            round(sum(v[5] for v in done) / members / 1e3, 2),
        ]
        # Deliveries whose wall time exceeded their CPU time by 1 ms or more:
        # the server lost its core in the middle of its writes.
        result["server_deliver_preempted_fraction"] = round(sum(v[1] - v[0] - v[4] > 1e6 for v in done) / len(done), 3)
        result["held_fraction"] = round(sum(v[3] for v in done) / members, 4)
        result["send_to_all_us_per_socket"] = round(
            sum(t["send_to_all"][0] for t in traces) / sum(t["send_to_all"][1] for t in traces) / 1e3, 2
        )
    return result


async def measure(lib: str, processes: int, options: argparse.Namespace) -> dict:
    connections, messages, window = options.connections, options.messages, options.window
    procs, fraction = options.client_procs, options.fraction
    trace = options.trace and lib == "ferrows"
    env = dict(os.environ)
    if lib == "broadcaster" and options.broadcaster_redis:
        # broadcaster 0.3.1's Redis listener misses its first subscription
        # with redis-py 8: its servers may import an older one.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [options.broadcaster_redis, env.get("PYTHONPATH")]))
    redis = RedisServer()
    redis.start()
    ports = [free_port() for _ in range(processes)]
    trace_dir = tempfile.gettempdir()
    trace_files = [os.path.join(trace_dir, f"scale_out_trace_{os.getpid()}_{port}.json") for port in ports]
    servers = [
        subprocess.Popen(
            [sys.executable, "-P", os.path.abspath(__file__), "--trace-server", out, redis.url, str(port)]
            + [str(options.replay)]
            if trace
            else [sys.executable, "-P", os.path.join(HERE, "scale_servers.py"), lib, redis.url, str(port)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for port, out in zip(ports, trace_files, strict=True)
    ]
    clients: list = []
    tasks: list[asyncio.Task[None]] = []

    def stop_servers() -> None:
        for server in servers:
            if server.poll() is None:
                server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)

    try:
        for server in servers:
            assert server.stdout.readline() == "ready\n"
        run = Run(procs)
        clients, tasks = await start_clients(lib, ports, connections, procs, messages, run)
        publish, close = await publisher(lib, url=redis.url, replay=options.replay)
        # Warm up until every client got a message (subscriptions are up).
        async with asyncio.timeout(TIMEOUT):
            for seq in itertools.count(-1, -1):
                await publish(f"{seq} {time.monotonic_ns()}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await run.wait(lambda seq=seq: len(run.warm.get(seq, ())) == procs)
                    break

        published: dict[int, tuple[int, int]] = {}  # seq -> (stamp, publish() returned)
        pacing = {"late_ms": [], "window_waits": 0}

        async def burst(first: int, count: int, interval: float | None, window: int) -> float:
            start = time.perf_counter()
            next_at = start
            async with asyncio.timeout(TIMEOUT):
                for seq in range(first, first + count):
                    if seq - run.complete >= window:
                        pacing["window_waits"] += interval is not None
                        await run.wait(lambda seq=seq: seq - run.complete < window)
                    now = time.perf_counter()
                    if interval is not None:
                        pacing["late_ms"].append(1e3 * (now - next_at))
                        if options.pacing == "even":
                            # Late (the publisher had no core, or waited for
                            # the window): the next ones keep the interval
                            # from now, rather than catching up in a burst.
                            next_at = max(next_at, now)
                    sent = time.monotonic_ns()
                    await publish(f"{seq} {sent}")
                    published[seq] = (sent, time.monotonic_ns())
                    if interval is not None:
                        next_at += interval
                        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                await run.wait(lambda: run.complete >= first + count)
            return time.perf_counter() - start

        def cpu_of(processes) -> float:
            return sum(proc_cpu(p.pid) for p in processes)

        def waits() -> list[float]:
            return [sum(run_queue_wait(p.pid) for p in group) for group in (servers, [redis.process], clients)]

        others = [redis.process, *clients]
        cpu0, others0, own0 = cpu_of(servers), cpu_of(others), time.process_time()
        elapsed = await burst(0, messages, None, window)
        cpu, others1, own1 = cpu_of(servers) - cpu0, cpu_of(others), time.process_time()
        rate = messages / elapsed
        # The clients stand for peers on other machines: in the latency
        # phase they may yield the cores to the servers, Redis and the
        # publisher (their stamps are the kernel's, taken on arrival).
        for process in clients:
            os.sched_setscheduler(process.pid, SCHED_POLICIES[options.client_sched], os.sched_param(0))
        before = [cpu_of(servers), cpu_of(others), time.process_time(), machine_busy(), *waits()]
        latency_elapsed = await burst(messages, messages, 1 / (rate * fraction), options.latency_window)
        after = [cpu_of(servers), cpu_of(others), time.process_time(), machine_busy(), *waits()]
        busy = [b - a for a, b in zip(before, after, strict=True)]
        await close()
        for process in clients:
            process.stdin.close()
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*tasks)
        stop_servers()
        traces = None
        if trace:
            traces = []
            for out in trace_files:
                with open(out) as f:
                    traces.append(json.load(f))
                os.unlink(out)
        deliveries = list(itertools.chain.from_iterable(run.results))
        assert len(deliveries) == messages * connections, (len(deliveries), messages * connections)
        stages = breakdown(deliveries, published, traces, processes)
        handled = sorted(d[3] for d in deliveries)
        result = {
            "lib": lib,
            "processes": processes,
            "connections": connections,
            "client_procs": procs,
            "client_sched": options.client_sched,
            "deliveries_per_s": messages * connections / elapsed,
            "server_cpu_us_per_delivery": 1e6 * cpu / (messages * connections),
            # Redis and the client processes, then the publisher (this process).
            "redis_clients_cpu_us_per_delivery": 1e6 * (others1 - others0) / (messages * connections),
            "publisher_cpu_us_per_message": 1e6 * (own1 - own0) / messages,
            # Cores kept busy during the latency phase: servers, Redis and
            # clients, publisher, and the whole machine (anyone's work).
            "latency_phase_cores": [round(b / latency_elapsed, 2) for b in busy[:4]],
            # Time runnable but waiting for a core during the latency phase,
            # per second: servers, Redis, clients (summed over processes).
            "latency_phase_run_queue_wait": [round(b / latency_elapsed, 3) for b in busy[4:]],
            "latency_rate_msgs_per_s": rate * fraction,
            "latency_achieved_msgs_per_s": messages / latency_elapsed,
            "publisher_late_ms": quantiles([1e6 * late for late in pacing["late_ms"]]),
            "publisher_window_waits": pacing["window_waits"],
            # Publish stamp to the frame's arrival in the client's socket.
            "p50_ms": stages["arrival"]["p50"],
            "p99_ms": stages["arrival"]["p99"],
            # Publish stamp to the client process's handling of it.
            "handled_p50_ms": handled[len(handled) // 2] / 1e6,
            "handled_p99_ms": handled[int(len(handled) * 0.99)] / 1e6,
        }
        if options.breakdown or trace:
            result["breakdown"] = stages
        return result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for process in clients:
            if process.returncode is None:
                process.kill()
            await process.wait()
        stop_servers()
        redis.stop()
        for out in trace_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libs", default="ferrows,socketio,broadcaster")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, default=20, help="max rate: messages in flight at most")
    parser.add_argument(
        "--latency-window",
        type=int,
        default=1000,
        help="latency phase: messages the clients may lag behind before the publisher waits (a bound on their "
        "backlog; the latency is from the kernel's arrival stamps, so their lag is not in it)",
    )
    parser.add_argument("--fraction", type=float, default=0.5, help="latency: rate as a fraction of the maximum")
    parser.add_argument("--client-procs", type=int, default=4, help="processes the clients are spread over")
    parser.add_argument(
        "--client-sched",
        choices=list(SCHED_POLICIES),
        default="idle",
        help="scheduling policy of the client processes in the latency phase (idle: they run on the cores the "
        "servers, Redis and the publisher leave; batch: they don't preempt them on wake-up; normal: they compete)",
    )
    parser.add_argument(
        "--pacing",
        choices=["catch-up", "even"],
        default="catch-up",
        help="latency phase: a late publisher catches up on its schedule (bursts), or keeps the interval from "
        "where it is",
    )
    parser.add_argument(
        "--no-trace", dest="trace", action="store_false", help="ferrows: don't time the hub's deliveries in the servers"
    )
    parser.add_argument("--breakdown", action="store_true", help="the latency stages, in the JSON line")
    parser.add_argument("--no-reference", action="store_true", help="skip the single ferrows process")
    parser.add_argument(
        "--broadcaster-redis",
        metavar="DIR",
        help="directory put first on the broadcaster servers' path, holding the redis-py they import "
        "(pip install --no-deps --target DIR 'redis>=7,<8': broadcaster 0.3.1 delivers nothing with redis-py 8)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument(
        "--replay",
        type=int,
        default=0,
        metavar="N",
        help="ferrows: the hubs keep the last N messages in a Redis stream (Hub(url, replay=N)) instead of pub/sub",
    )
    parser.add_argument("--trace-server", nargs=4, metavar=("OUT", "URL", "PORT", "REPLAY"), help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--latency-from", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.replay and not options.trace:
        parser.error("--replay runs the traced ferrows servers: drop --no-trace")
    raise_nofile()
    import uvloop

    if options.trace_server:
        out, url, port, replay = options.trace_server
        trace_server_main(url, int(port), out, int(replay))
        return
    if options.client:
        ports = [int(p) for p in options.ports.split(",")]
        gc.disable()  # nothing cyclic is made per message; no pauses
        clients_main(options.client, ports, options.first, options.connections, options.latency_from)
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
        "| latency p50 / p99 (ms) at msgs/s | handled p99 (ms) "
        "| cores busy then: servers, Redis + clients, publisher; machine | servers' wait for a core (s/s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "failed" in r:
            print(f"| {r['lib']} | {r['processes']} | failed: {r['failed']} | | | | | | |")
            continue
        print(
            f"| {r['lib']} | {r['processes']} | {r['deliveries_per_s']:,.0f} | {r['server_cpu_us_per_delivery']:.2f} "
            f"| {r['redis_clients_cpu_us_per_delivery']:.2f} "
            f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} at {r['latency_achieved_msgs_per_s']:.0f} "
            f"| {r['handled_p99_ms']:.1f} "
            f"| {', '.join(map(str, r['latency_phase_cores'][:3]))}; {r['latency_phase_cores'][3]} "
            f"| {r['latency_phase_run_queue_wait'][0]} |"
        )


if __name__ == "__main__":
    main()
