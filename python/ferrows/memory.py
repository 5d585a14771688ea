"""When to give freed heap memory back to the operating system.

After many connections end at once (a burst of resets, a load balancer
draining), the memory they used is free but stays resident: glibc's malloc
keeps freed blocks in the process for reuse. ``_core.release_memory()``
(``malloc_trim``) returns the free pages, but walks the whole heap, so it
must not run on every close. Both servers call :func:`release_after_closes`
from their periodic sweep (once a second) with the number of connections
they hold; it trims once that number fell well below its recent peak.

What Python's own allocator keeps (its 1 MiB arenas, pinned by a few
long-lived objects such as interpreter free lists) stays resident whatever
this does; see ``stress/reset_storm.py`` for measurements.
"""

from __future__ import annotations

from . import _core

__all__ = ["TRIM_MIN_CLOSED", "release_after_closes"]

TRIM_MIN_CLOSED = 256
"""Connections that must have closed since the last trim before the next
one: fewer free too little memory to be worth a walk of the heap."""


def release_after_closes(closed: int, live: int) -> int:
    """Trims the heap if many connections closed since the last trim.

    The servers count closed connections (an addition per close) and call
    this from their periodic sweep, once a second.

    Args:
        closed: Connections closed since the last trim.
        live: Connections still held.

    Returns:
        The count to carry on with: 0 after a trim, else ``closed``.

    A trim happens when at least :data:`TRIM_MIN_CLOSED` connections closed,
    and at least as many as are still held: the walk of the heap costs in
    proportion to what the live connections hold, so its cost per closed
    connection stays bounded, and a server with many connections that
    come and go slowly trims rarely.
    """
    if closed >= TRIM_MIN_CLOSED and closed >= live:
        _core.release_memory()
        return 0
    return closed
