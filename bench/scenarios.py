"""What is measured: one :class:`Scenario` per line of issue 6."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common import binary_pool, text_pool


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # echo, broadcast, handshake, memory
    unit: str
    modes: tuple[str, ...] = ("same", "server")
    size: int = 0
    window: int = 1
    text: bool = False
    compress: bool = False
    pool: int = 64
    scale: float = 1.0  # rate (ops/s) -> reported figure
    lower_is_better: bool = False
    unsupported: tuple[tuple[str, str], ...] = ()  # (lib, reason)
    cpu_unit: str = "op"
    # broadcast: each message in its own event loop iteration (a chat message,
    # a price tick) rather than all of a round's in one.
    spread: bool = False

    def payloads(self) -> list[Any]:
        """The messages a client sends, in order, cycling; distinct, so an
        echo of the wrong message is caught."""
        if self.text:
            return text_pool(self.size, self.pool, seed=self.size)
        return binary_pool(self.size, self.pool, seed=self.size)

    def why_unsupported(self, lib: str) -> str | None:
        return dict(self.unsupported).get(lib)


NO_DEFLATE = "no permessage-deflate"

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "seq",
            "Sequential echo, 32 B",
            "echo",
            "round trips/s",
            size=32,
            cpu_unit="round trip",
        ),
        Scenario(
            "pipe",
            "Pipelined echo, 32 B, 64 in flight",
            "echo",
            "msgs/s",
            size=32,
            window=64,
            cpu_unit="msg",
        ),
        Scenario(
            "big",
            "1 MiB binary echo",
            "echo",
            "MB/s",
            size=2**20,
            pool=4,
            scale=2**20 / 1e6,
            cpu_unit="MiB",
        ),
        Scenario(
            "deflate",
            "16 KiB text, permessage-deflate (12-bit windows)",
            "echo",
            "msgs/s",
            size=16 * 1024,
            text=True,
            compress=True,
            pool=16,
            unsupported=(("picows", NO_DEFLATE), ("tcp", "no WebSocket")),
            cpu_unit="msg",
        ),
        Scenario(
            "broadcast",
            "Broadcast 64 B to 200 connections",
            "broadcast",
            "deliveries/s",
            size=64,
            cpu_unit="delivery",
        ),
        Scenario(
            "broadcast1",
            "Broadcast 64 B to 200 connections, one message per loop iteration",
            "broadcast",
            "deliveries/s",
            size=64,
            spread=True,
            cpu_unit="delivery",
        ),
        Scenario(
            "handshake",
            "Handshakes (connect, upgrade, close)",
            "handshake",
            "handshakes/s",
            modes=("server",),
            unsupported=(("tcp", "no WebSocket"),),
            cpu_unit="handshake",
        ),
        Scenario(
            "memory",
            "Idle connections, deflate negotiated",
            "memory",
            "KiB/conn",
            modes=("server",),
            lower_is_better=True,
            compress=True,
            cpu_unit="conn",
        ),
        Scenario(
            "memory_plain",
            "Idle connections, no compression",
            "memory",
            "KiB/conn",
            modes=("server",),
            lower_is_better=True,
            cpu_unit="conn",
        ),
    ]
}

BROADCAST_CONNS = 200
BROADCAST_BATCH = 50
IDLE_CONNS = 1000
IDLE_SECONDS = 3.0
HANDSHAKE_CONCURRENCY = 8
