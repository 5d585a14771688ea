"""Command line: an interactive client, and a server.

``python -m ferrows ws://host:port/path`` connects, prints each message
received and sends each line typed (Ctrl-D closes). ``python -m ferrows
serve`` starts an echo server on ws://127.0.0.1:8765 to try it against;
``python -m ferrows serve MODULE:HANDLER --workers N`` serves an application's
handler from N processes (see :mod:`ferrows.supervisor`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .asyncio.client import ClientConnection, connect
from .asyncio.server import ServerConnection, serve
from .exceptions import ConnectionClosed
from .frames import Close, CloseCode
from .version import __version__

__all__ = ["main"]

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8765


_SERVE_ENVIRONMENT = f"""\
environment variables:
  FERROWS_DEMO_HOST     default of --host ({DEMO_HOST} without it)
  FERROWS_DEMO_PORT     default of --port ({DEMO_PORT} without it)
  WEBSOCKETS_SERVER     Server header of the responses
  WEBSOCKETS_MAX_LINE_LENGTH, WEBSOCKETS_MAX_NUM_HEADERS, WEBSOCKETS_MAX_BODY_SIZE,
  WEBSOCKETS_MAX_FRAGMENTS, WEBSOCKETS_MAX_LOG_SIZE
                        limits of the opening handshake and of messages, and the
                        length of frames in debug logs, as in websockets
"""


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# Control characters (C0, DEL, C1) in a peer's message could move the cursor
# or reprogram the terminal: they are shown as Python escapes instead.
_TERMINAL_ESCAPES = str.maketrans({i: repr(chr(i))[1:-1] for i in (*range(32), *range(127, 160))})

_PROMPT = "> "


def _escape(text: str) -> str:
    """``text`` safe to print on a terminal."""
    return text.translate(_TERMINAL_ESCAPES)


def _print_above_prompt(text: str) -> None:
    """Prints a line above the one being typed, which stays as it was.

    VT100 sequences: save the cursor, make room with a line feed, go back up
    and insert a blank line there, print, then restore the cursor one line
    down, where the prompt has moved.
    """
    sys.stdout.write(f"\x1b7\n\x1b[A\x1b[L{text}\n\x1b8\x1b[B")
    sys.stdout.flush()


def _print_over_prompt(text: str) -> None:
    """Replaces the prompt line with ``text`` (the last line printed)."""
    sys.stdout.write(f"\r\x1b[K{text}\n")
    sys.stdout.flush()


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Reads stdin in a daemon thread (stdin has no portable non-blocking
    mode) and hands lines to the event loop; None marks Ctrl-D."""
    try:
        while True:
            sys.stdout.write(_PROMPT)
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
    finally:
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(queue.put_nowait, None)


async def _interactive(uri: str, insecure: bool) -> int:
    kwargs: dict[str, Any] = {}
    if insecure and uri.startswith("wss://"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = context
    try:
        websocket: ClientConnection = await connect(uri, **kwargs)
    except Exception as exc:
        _print(f"Failed to connect to {uri}: {_reason(exc)}.")
        return 1
    _print(f"Connected to {uri}.")

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(loop, lines), daemon=True).start()

    async def show_incoming() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in websocket:
                if isinstance(message, str):
                    _print_above_prompt(f"< {_escape(message)}")
                else:
                    _print_above_prompt(f"< (binary) {message.hex()}")

    async def send_typed() -> None:
        while True:
            line = await lines.get()
            if line is None:
                return
            try:
                await websocket.send(line)
            except ConnectionClosed:
                return

    incoming = asyncio.create_task(show_incoming())
    outgoing = asyncio.create_task(send_typed())
    await asyncio.wait([incoming, outgoing], return_when=asyncio.FIRST_COMPLETED)
    outgoing.cancel()
    await websocket.close()
    await incoming
    close = Close(websocket.close_code or CloseCode.ABNORMAL_CLOSURE, websocket.close_reason or "")
    _print_over_prompt(f"Connection closed: {_escape(str(close))}.")
    return 0


def _reason(exc: BaseException) -> str:
    """What went wrong, for a person: the message, or the exception's type
    when it has none (a bare ``TimeoutError()``, some TLS and socket errors)."""
    return str(exc) or type(exc).__name__


async def _echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


async def _serve(host: str, port: int) -> int:
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def request_stop() -> None:
        # A second Ctrl-C (or SIGTERM) while the server closes its
        # connections changes nothing: the shutdown is under way, bounded by
        # the close timeout.
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(sig, request_stop)
    async with serve(_echo, host, port) as server:
        address = server.sockets[0].getsockname()
        _print(f"Echo server on ws://{host}:{address[1]} (Ctrl-C to stop).")
        await stop
    _print("Server stopped.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ferrows`` and the ``ferrows`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        parser = argparse.ArgumentParser(
            prog="ferrows serve",
            description="Run a WebSocket server (the demo echo server without MODULE:HANDLER); Ctrl-C (SIGINT) or SIGTERM stops it.",
            epilog=_SERVE_ENVIRONMENT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "--host",
            default=os.environ.get("FERROWS_DEMO_HOST", DEMO_HOST),
            help="interface to listen on (default: %(default)s)",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("FERROWS_DEMO_PORT", DEMO_PORT)),
            help="TCP port; 0 picks a free one (default: %(default)s)",
        )
        parser.add_argument(
            "handler",
            nargs="?",
            metavar="MODULE:HANDLER",
            help="connection handler to serve, by import path (default: the demo echo handler)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            metavar="N",
            default=1,
            help="number of server processes sharing the port, restarted if they die; "
            "SIGHUP restarts them one at a time (default: %(default)s)",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            metavar="SECONDS",
            default=10.0,
            help="seconds a stopping server waits for connections to close with 1001 (default: %(default)s)",
        )
        options = parser.parse_args(args[1:])
        if options.workers < 1:
            parser.error(f"--workers must be at least 1, not {options.workers}")
        if options.handler is None and options.workers == 1:
            return asyncio.run(_serve(options.host, options.port))
        from .supervisor import run

        try:
            return run(
                options.handler or "ferrows.__main__:_echo",
                options.host,
                options.port,
                workers=options.workers,
                shutdown_timeout=options.shutdown_timeout,
            )
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            sys.stderr.write(f"ferrows serve: cannot load {options.handler}: {_reason(exc)}\n")
            return 1
        except OSError as exc:
            sys.stderr.write(f"ferrows serve: cannot listen on {options.host}:{options.port}: {_reason(exc)}\n")
            return 1

    parser = argparse.ArgumentParser(
        prog="ferrows",
        description="Interactive WebSocket client. 'ferrows serve' runs a demo echo server.",
    )
    parser.add_argument("--version", action="version", version=f"ferrows {__version__}")
    parser.add_argument("--insecure", action="store_true", help="don't verify TLS certificates")
    parser.add_argument("uri", metavar="<uri>", help="ws:// or wss:// URI")
    options = parser.parse_args(args)
    try:
        return asyncio.run(_interactive(options.uri, options.insecure))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
