"""A buffer read by generator-based coroutines, as websockets' Sans-I/O layer reads.

ferrows' connections parse in the Rust core and never use this class. It
exists because websockets documents ``websockets.streams.StreamReader`` as
the reader of :meth:`~ferrows.frames.Frame.parse`,
:meth:`~ferrows.http11.Request.parse` and
:meth:`~ferrows.http11.Response.parse`, and code that drives those parsers
by hand creates one.

Each ``read_*`` method is a generator: it yields (``None``) while the data it
needs hasn't been fed yet, and returns the data with ``StopIteration`` once
it has. Callers chain them with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Generator

__all__ = ["StreamReader"]


class StreamReader:
    """Bytes received so far, and whether the stream has ended.

    One reader serves one consumer: concurrent ``read_*`` calls would
    interleave their data.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False

    def read_line(self, m: int, too_long_exc_type: type[Exception] = RuntimeError) -> Generator[None, None, bytes]:
        """Read up to and including the next ``\\n``.

        Args:
            m: Longest line accepted, in bytes, ``\\n`` included.
            too_long_exc_type: Raised when the line is longer than ``m``.
                Callers pass their own ``SecurityError`` subclass.

        Raises:
            EOFError: If the stream ends before the end of the line.
        """
        searched = 0
        while True:
            end = self.buffer.find(b"\n", searched)
            if end >= 0:
                break
            # Fail as soon as the buffer holds more than m bytes without a
            # newline: a peer can't make the reader buffer an unbounded line.
            searched = len(self.buffer)
            if searched > m:
                raise too_long_exc_type(f"read {searched} bytes, expected no more than {m} bytes")
            if self.eof:
                raise EOFError(f"stream ends after {searched} bytes, before end of line")
            yield
        n = end + 1
        if n > m:
            raise too_long_exc_type(f"read {n} bytes, expected no more than {m} bytes")
        line = bytes(self.buffer[:n])
        del self.buffer[:n]
        return line

    def read_exact(self, n: int) -> Generator[None, None, bytes]:
        """Read exactly ``n`` bytes.

        Raises:
            EOFError: If the stream ends with fewer than ``n`` bytes buffered.
        """
        if n < 0:
            raise ValueError("n must be non-negative")
        while len(self.buffer) < n:
            if self.eof:
                raise EOFError(f"stream ends after {len(self.buffer)} bytes, expected {n} bytes")
            yield
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_to_eof(self, m: int, too_long_exc_type: type[Exception] = RuntimeError) -> Generator[None, None, bytes]:
        """Read everything until the end of the stream.

        Args:
            m: Most bytes accepted.
            too_long_exc_type: Raised when the stream holds more than ``m``.
        """
        while not self.eof:
            if len(self.buffer) > m:
                raise too_long_exc_type(f"read {len(self.buffer)} bytes, expected no more than {m} bytes")
            yield
        if len(self.buffer) > m:
            raise too_long_exc_type(f"read {len(self.buffer)} bytes, expected no more than {m} bytes")
        data = bytes(self.buffer)
        del self.buffer[:]
        return data

    def at_eof(self) -> Generator[None, None, bool]:
        """Wait until data arrives or the stream ends; return whether it ended with nothing left."""
        while not self.buffer:
            if self.eof:
                return True
            yield
        return False

    def feed_data(self, data: bytes | bytearray) -> None:
        """Append received bytes.

        Raises:
            EOFError: If the stream has ended.
        """
        if self.eof:
            raise EOFError("stream ended")
        self.buffer += data

    def feed_eof(self) -> None:
        """Mark the end of the stream.

        Raises:
            EOFError: If the stream has already ended.
        """
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        """Drop the buffered data, e.g. after a failure, when nothing more will be parsed."""
        del self.buffer[:]
