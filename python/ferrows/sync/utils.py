"""Timeouts of the threading layer, as websockets' ``sync.utils`` has them."""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """One time limit shared by the several blocking steps of an operation.

    Connecting takes a TCP connect, maybe a proxy and a TLS handshake, then the
    opening handshake: ``open_timeout`` bounds them together, so each step asks
    the deadline how long it may block.

    Args:
        timeout: Seconds available, or :obj:`None` for no limit.
        message: The text of the :exc:`TimeoutError` raised once it passed.
    """

    __slots__ = ("deadline", "message")

    def __init__(self, timeout: float | None, *, message: str = "timed out") -> None:
        self.deadline: float | None = None if timeout is None else time.monotonic() + timeout
        self.message = message

    def timeout(self, *, raise_if_elapsed: bool = True) -> float | None:
        """Seconds left (negative once passed, if not raising), or :obj:`None`.

        Raises:
            TimeoutError: If the deadline passed and ``raise_if_elapsed``.
        """
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if raise_if_elapsed and remaining <= 0:
            raise TimeoutError(self.message)
        return remaining
