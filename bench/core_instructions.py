"""A fixed in-process workload over the extension, for instruction counts.

Each round frames and parses a small text message each way, a 4 KiB binary
message, a 96 KiB one (received into a bytes object the core fills in
place), and parses an opening handshake request: the calls across the
Python/Rust boundary that the Python layers make per read and per frame.
Wall-clock time is noisy on a shared machine; callgrind's instruction count
is not. Run it at two sizes and take the difference, which cancels the
interpreter's start-up::

    for n in 2000 4000; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python bench/core_instructions.py $n 2>&1 | grep Collected
    done

(``python`` must be the interpreter binary itself, not a shell shim.)
"""

from __future__ import annotations

import sys

from ferrows._core import Connection, HttpParser

TEXT = "hello, world " * 4
SMALL = bytes(range(256)) * 16
LARGE = bytes(range(256)) * 384
REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def main(rounds: int) -> None:
    client = Connection(True, max_size=None)
    server = Connection(False, max_size=None, assemble=True)
    received = 0
    for _ in range(rounds):
        received += len(server.receive_data(client.send_text(TEXT)))
        received += len(server.receive_data(client.send_binary(SMALL)))
        received += len(server.receive_data(client.send_binary(LARGE)))
        received += len(client.receive_data(server.send_text(TEXT)))
        received += HttpParser(False).feed(REQUEST) is not None
    # Every message arrived whole: the workload did what it says.
    assert received == 5 * rounds, received


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
