"""Timers shared by many connections: one event-loop timer per slot of time.

A server holding thousands of idle connections would otherwise keep one
:class:`asyncio.TimerHandle` per connection for its keepalive (with the
context asyncio copies into each), and a cancelled one stays in the loop's
heap until its deadline. Deadlines far in the future need no nanosecond
precision: a deadline is rounded up to its slot (a power of two of about a
sixteenth of the delay, between 1/128 s and 1 s), and every owner due in
the same slot shares that slot's one timer. An owner is in at most one slot;
moving it is two dictionary operations.

Owners are objects with a ``_wheel_slot`` attribute (the key of their slot,
or :obj:`None`) and an ``_on_wheel(now)`` method, which the wheel calls with
the slot's time, never earlier than the deadline the owner asked for.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Protocol

__all__ = ["TimerWheel", "wheel_for"]

# Slot widths: 2**MIN_EXP s to 2**MAX_EXP s, about a sixteenth of the delay.
MIN_EXP = -7
MAX_EXP = 0
SLOTS_PER_DELAY = 16


class Owner(Protocol):
    _wheel_slot: tuple[int, int] | None

    def _on_wheel(self, now: float) -> None: ...


class TimerWheel:
    """The shared timers of one event loop (see the module's docstring)."""

    __slots__ = ("loop", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Slot key (exponent, index) -> the owners due in it, in insertion
        # order (a dict used as an ordered set), the slot's timer, and the
        # key, which every owner in the slot shares rather than one each.
        self.slots: dict[tuple[int, int], tuple[dict[Any, None], asyncio.TimerHandle, tuple[int, int]]] = {}

    def schedule(self, owner: Owner, delay: float) -> None:
        """Calls ``owner._on_wheel`` ``delay`` seconds from now (or up to a
        sixteenth of ``delay`` later), instead of any call scheduled before."""
        if owner._wheel_slot is not None:
            self.cancel(owner)
        if delay < 0.0:
            delay = 0.0
        grid = _grids.get(delay)
        if grid is None:
            grid = _grid(delay)
        exp, scale, width = grid
        index = math.ceil((self.loop.time() + delay) * scale)
        key = (exp, index)
        slot = self.slots.get(key)
        if slot is None:
            when = index * width
            slot = self.slots[key] = ({}, self.loop.call_at(when, self._fire, key, when), key)
        slot[0][owner] = None
        owner._wheel_slot = slot[2]

    def cancel(self, owner: Owner) -> None:
        """Forgets the owner's pending call, if any."""
        key = owner._wheel_slot
        if key is None:
            return
        owner._wheel_slot = None
        slot = self.slots.get(key)
        if slot is None:
            return
        owners, handle, _ = slot
        owners.pop(owner, None)
        if not owners:
            del self.slots[key]
            handle.cancel()
            self._release_if_empty()

    def _fire(self, key: tuple[int, int], when: float) -> None:
        owners = self.slots.pop(key)[0]
        for owner in owners:
            if owner._wheel_slot == key:
                owner._wheel_slot = None
                try:
                    owner._on_wheel(when)
                except Exception as exc:  # one owner's failure must not skip the others
                    self.loop.call_exception_handler(
                        {"message": "error in a shared timer's callback", "exception": exc}
                    )
        self._release_if_empty()

    def _release_if_empty(self) -> None:
        if not self.slots and _wheels.get(self.loop) is self:
            del _wheels[self.loop]


# The slot grids, one per width: its exponent, the inverse of the width and
# the width, all powers of two, so that scaling a time by them is exact.
_GRIDS = tuple((exp, math.ldexp(1.0, -exp), math.ldexp(1.0, exp)) for exp in range(MIN_EXP, MAX_EXP + 1))


def _grid(delay: float) -> tuple[int, float, float]:
    """The grid of the slots for ``delay`` (a width of about a sixteenth of
    it, between the bounds), kept for the next call with the same delay:
    most come back (a connection's ``ping_interval`` and ``close_timeout``).
    ``frexp``'s exponent minus one is the floor of the base-2 logarithm,
    exactly, in one call."""
    exp = math.frexp(delay / SLOTS_PER_DELAY)[1] - 1 if delay > 0.0 else MIN_EXP
    grid = _GRIDS[min(max(exp, MIN_EXP), MAX_EXP) - MIN_EXP]
    if len(_grids) >= MAX_GRIDS:
        # Reschedules bring any delay: start again, rather than stop keeping
        # the ones that come back.
        _grids.clear()
    _grids[delay] = grid
    return grid


# The grids of the delays seen lately, at most MAX_GRIDS of them.
MAX_GRIDS = 64
_grids: dict[float, tuple[int, float, float]] = {}


# One wheel per running loop, dropped when it has nothing scheduled, so that
# a closed loop is not kept alive by it.
_wheels: dict[asyncio.AbstractEventLoop, TimerWheel] = {}


def wheel_for(loop: asyncio.AbstractEventLoop) -> TimerWheel:
    """The loop's shared timers."""
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = TimerWheel(loop)
    return wheel
