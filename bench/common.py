"""Shared helpers: payloads, event loops, process accounting, the measuring
drivers every client uses, and the bits of RFC 6455 the raw peers need.

Everything here is deterministic, so the server and the client processes
build the same payload pools independently and every byte can be checked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import resource
import sys
import time
from typing import Any

LIBS = ("ferrows", "websockets", "picows", "aiohttp", "tcp")
"""Servers under test; ``tcp`` is a plain asyncio echo, the ceiling."""

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BROADCAST_POOL = 256
"""Largest broadcast batch the servers accept per command."""


# -- payloads ---------------------------------------------------------------


def binary_pool(size: int, count: int, seed: int) -> list[bytes]:
    """``count`` distinct random messages of ``size`` bytes."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def text_pool(size: int, count: int, seed: int) -> list[str]:
    """``count`` distinct ASCII texts of ``size`` bytes that compress about as
    well as typical JSON (roughly 5-8x with zlib)."""
    rng = random.Random(seed)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "price",
        "volume",
        "symbol",
        "ts",
        "bid",
        "ask",
        "side",
        "id",
    ]
    pool = []
    for _ in range(count):
        parts = []
        n = 0
        while n < size:
            a, b, c, d = (
                rng.choice(words),
                rng.choice(words),
                rng.choice(words).upper(),
                rng.choice(words),
            )
            rec = f'{{"{a}":{rng.randrange(10**6)},"{b}":"{c}","{d}":{rng.random() * 1000:.4f}}},'
            parts.append(rec)
            n += len(rec)
        pool.append("".join(parts)[:size])
    return pool


def broadcast_pool(size: int = 64) -> list[bytes]:
    """Messages a broadcast server sends, in order, for each command."""
    return binary_pool(size, BROADCAST_POOL, seed=64)


# -- event loops and limits -------------------------------------------------


def run(main: Any, loop: str) -> Any:
    """Runs coroutine ``main`` on the default asyncio loop or uvloop."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop != "asyncio":
        raise ValueError(f"unknown loop {loop!r}")
    return asyncio.run(main)


def raise_nofile() -> None:
    """Lifts the soft limit on open files to the hard one (1000+ sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- accounting of another process -----------------------------------------


def descendants(pid: int) -> list[int]:
    """The PIDs of the live processes under ``pid`` (children of each of
    its threads, recursively), from /proc/PID/task/TID/children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def one_proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from
    /proc/PID/stat; the resolution is one clock tick (10 ms)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    # Fields 14 and 15 (utime, stime), counted after "pid (comm) ".
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all cores of the machine spent busy so far, whoever used
    them (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def proc_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and of its live descendants: granian
    serves from a worker process its main process starts; the other servers
    have no children."""
    total = one_proc_cpu(pid)
    for child in descendants(pid):
        try:
            total += one_proc_cpu(child)
        except OSError:  # exited meanwhile
            pass
    return total


def proc_rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def self_cpu() -> float:
    """CPU seconds of this process."""
    return time.process_time()


class Meter:
    """Times the measured phase of a trial and the server's CPU during it
    (``server_pid=None``: the caller accounts for the server, as workers.py
    does for several processes)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.t0 = self.t1 = 0.0
        self.cpu0 = self.cpu1 = 0.0
        self.own0 = self.own1 = 0.0
        self.ops = 0

    def start(self) -> None:
        self.cpu0 = 0.0 if self.server_pid is None else proc_cpu(self.server_pid)
        self.own0 = self_cpu()
        self.t0 = time.perf_counter()

    def stop(self, ops: int) -> None:
        self.t1 = time.perf_counter()
        self.cpu1 = 0.0 if self.server_pid is None else proc_cpu(self.server_pid)
        self.own1 = self_cpu()
        self.ops = ops

    def result(self, **extra: Any) -> dict[str, Any]:
        elapsed = self.t1 - self.t0
        return {
            "ops": self.ops,
            "elapsed": elapsed,
            "rate": self.ops / elapsed if elapsed > 0 else 0.0,
            "server_cpu": self.cpu1 - self.cpu0,
            "client_cpu": self.own1 - self.own0,
            **extra,
        }


class Mismatch(Exception):
    """An echoed or broadcast message differs from what was expected."""


def describe_mismatch(index: int, got: Any, expected: Any) -> str:
    if type(got) is not type(expected):
        return f"message {index}: got {type(got).__name__}, expected {type(expected).__name__}"
    if len(got) != len(expected):
        return f"message {index}: got {len(got)} bytes/chars, expected {len(expected)}"
    first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
    return f"message {index}: differs from offset {first} (len {len(expected)})"


# -- drivers: the same bookkeeping for every client library -----------------


class EchoDriver:
    """Keeps ``window`` messages in flight, checks every echo, and measures
    the messages echoed between the end of the warm-up and the deadline.

    Clients call :meth:`first` for the messages to send at the start, then
    :meth:`on_message` for each message received; it returns the next
    message to send, or None. :attr:`done` turns true once the last
    outstanding echo came back (or on a wrong byte, in :attr:`error`).
    """

    def __init__(
        self,
        pool: list[Any],
        window: int,
        meter: Meter,
        warmup: float,
        duration: float,
        max_ops: int,
    ) -> None:
        self.pool = pool
        self.n = len(pool)
        self.window = window
        self.meter = meter
        self.warmup = warmup
        self.duration = duration
        self.max_ops = max_ops
        self.sent = 0
        self.received = 0
        self.phase = 0  # 0 warm-up, 1 measuring, 2 draining
        self.mark = 0
        self.deadline = 0.0
        self.done = False
        self.error: str | None = None

    def first(self) -> list[Any]:
        self.deadline = time.perf_counter() + self.warmup
        out = [self.pool[i % self.n] for i in range(self.window)]
        self.sent = self.window
        return out

    def on_message(self, message: Any) -> Any:
        expected = self.pool[self.received % self.n]
        if message != expected:
            self.error = describe_mismatch(self.received, message, expected)
            self.done = True
            return None
        self.received += 1
        if self.phase == 0 and (time.perf_counter() >= self.deadline or self.received >= self.max_ops):
            self.meter.start()
            self.mark = self.received
            self.deadline = self.meter.t0 + self.duration
            self.phase = 1
        elif self.phase == 1 and (time.perf_counter() >= self.deadline or self.received - self.mark >= self.max_ops):
            self.meter.stop(self.received - self.mark)
            self.phase = 2
        if self.phase == 2:
            if self.received == self.sent:
                self.done = True
            return None
        message = self.pool[self.sent % self.n]
        self.sent += 1
        return message


class BroadcastDriver:
    """Counts and checks the messages a broadcast server sends to ``conns``
    connections, in rounds of ``batch`` messages each; the next round is
    requested once every connection got the whole round."""

    def __init__(
        self, conns: int, batch: int, meter: Meter, warmup: float, duration: float, spread: bool = False
    ) -> None:
        self.pool = broadcast_pool()
        self.spread = spread
        self.conns = conns
        self.batch = batch
        self.meter = meter
        self.warmup = warmup
        self.duration = duration
        self.counts = [0] * conns
        self.pending = conns
        self.rounds = 0
        self.measured_rounds = 0
        self.phase = 0
        self.deadline = 0.0
        self.done = False
        self.error: str | None = None
        self.round_done: Any = None  # callback, set by the client
        self.max_rounds = 100_000

    def command(self) -> str:
        # "one:N": the server sends each message in its own loop iteration.
        return f"{'one' if self.spread else 'go'}:{self.batch}"

    def begin(self) -> None:
        self.deadline = time.perf_counter() + self.warmup

    def on_message(self, conn: int, message: bytes) -> None:
        count = self.counts[conn]
        if count >= self.batch:
            self.error = f"connection {conn}: more than {self.batch} messages in a round"
            self.done = True
            return
        expected = self.pool[count]
        if message != expected:
            self.error = f"connection {conn}, " + describe_mismatch(count, message, expected)
            self.done = True
            return
        self.counts[conn] = count + 1
        if count + 1 == self.batch:
            self.pending -= 1
            if self.pending == 0:
                self._next_round()

    def _next_round(self) -> None:
        self.rounds += 1
        now = time.perf_counter()
        if self.phase == 0 and (now >= self.deadline or self.rounds >= self.max_rounds):
            self.meter.start()
            self.deadline = self.meter.t0 + self.duration
            self.phase = 1
        elif self.phase == 1:
            self.measured_rounds += 1
            if now >= self.deadline or self.measured_rounds >= self.max_rounds:
                self.meter.stop(self.measured_rounds * self.batch * self.conns)
                self.done = True
        self.counts = [0] * self.conns
        self.pending = self.conns
        if self.round_done is not None:
            self.round_done()


# -- RFC 6455 bits for the raw peers ----------------------------------------


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def mask(data: bytes, key: bytes) -> bytes:
    """Masks ``data`` with the 4-byte ``key`` (one XOR over big integers,
    which runs at C speed)."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes, *, masked: bool, rsv1: bool = False) -> bytes:
    """One final frame."""
    n = len(payload)
    head = bytearray([0x80 | (0x40 if rsv1 else 0) | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += n.to_bytes(8, "big")
    if masked:
        key = os.urandom(4)
        return bytes(head) + key + mask(payload, key)
    return bytes(head) + payload


class FrameReader:
    """Incremental parser of (possibly masked, possibly fragmented) frames.

    :meth:`feed` returns complete messages as ``(opcode, rsv1, payload)``;
    control frames come out on their own, between fragments if need be.
    With ``unmask=False``, masked payloads are returned as they came (the
    tcp echo sends the client's own masked frames back).
    """

    def __init__(self, max_size: int = 1 << 24, unmask: bool = True) -> None:
        self.buf = bytearray()
        self.unmask = unmask
        self.max_size = max_size
        self.fragments: list[bytes] = []
        self.frag_opcode = 0
        self.frag_rsv1 = False

    def feed(self, data: bytes) -> list[tuple[int, bool, bytes]]:
        buf = self.buf
        buf += data
        out = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if n > self.max_size:
                raise ValueError(f"frame of {n} bytes")
            key = None
            if b1 & 0x80:
                if end - pos < head + 4:
                    break
                key = bytes(buf[pos + head : pos + head + 4])
                head += 4
            if end - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            if key is not None and self.unmask:
                payload = mask(payload, key)
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode >= 8:
                out.append((opcode, False, payload))
            elif opcode == 0:
                self.fragments.append(payload)
                if fin:
                    out.append((self.frag_opcode, self.frag_rsv1, b"".join(self.fragments)))
                    self.fragments = []
            elif not fin:
                self.frag_opcode = opcode
                self.frag_rsv1 = bool(b0 & 0x40)
                self.fragments = [payload]
            else:
                out.append((opcode, bool(b0 & 0x40), payload))
        if pos:
            del buf[:pos]
        return out


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)
