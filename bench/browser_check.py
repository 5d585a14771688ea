"""permessage-deflate with a real browser: headless Chromium against ferrows.

Serves a small HTML page from a ferrows server on 127.0.0.1 (through
``process_request``); its script opens ``ws://127.0.0.1:PORT/ws`` to the same
server, which negotiates permessage-deflate with its defaults. The browser
sends two messages of its own, then echoes every message the server sends.
The script records the raw bytes in both directions and reports:

- the negotiated ``Sec-WebSocket-Extensions``,
- whether the browser's frames and the server's frames carried RSV1,
- whether every message arrived intact both ways.

Usage: ``python bench/browser_check.py [--browser chromium]``. Not a test:
Chromium is not part of the project's setup (``apt-get install chromium``).
Exits with status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from typing import Any

import ferrows
from ferrows.asyncio.server import ServerConnection

TIMEOUT = 30.0

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>ferrows deflate check</title>
<script>
const ws = new WebSocket("ws://127.0.0.1:%(port)d/ws");
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  ws.send("browser says: " + "compress me ".repeat(6000));
  const bytes = new Uint8Array(70000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) %% 251;
  ws.send(bytes);
};
ws.onmessage = (event) => ws.send(event.data);
</script>
"""


def browser_messages() -> list[str | bytes]:
    return [
        "browser says: " + "compress me " * 6000,
        bytes((i * 7) % 251 for i in range(70000)),
    ]


def server_messages() -> list[str | bytes]:
    return [
        "",
        b"",
        "a",
        "héllo wörld 😀 " * 1000,
        bytes(range(256)) * 400,
        os.urandom(70_000),
        json.dumps([{"id": i, "name": f"item {i}", "ok": i % 2 == 0} for i in range(5000)]),
    ]


def parse_frames(data: bytes) -> list[tuple[int, bool, int, bytes]]:
    """``(opcode, rsv1, length, payload)`` of each whole frame in ``data``."""
    frames = []
    pos = 0
    while pos + 2 <= len(data):
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        if b1 & 0x80:
            pos += 4
        frames.append((b0 & 0x0F, bool(b0 & 0x40), n, b""))
        pos += n
    return frames


class RecordingConnection(ServerConnection):
    """Keeps the raw bytes of the connection, both ways."""

    def connection_made(self, transport: Any) -> None:
        self.raw_in = bytearray()
        self.raw_out = bytearray()
        write, writelines = transport.write, transport.writelines

        def recording_write(data: Any) -> None:
            self.raw_out += data
            write(data)

        def recording_writelines(chunks: Any) -> None:
            chunks = list(chunks)
            for chunk in chunks:
                self.raw_out += chunk
            writelines(chunks)

        transport.write = recording_write
        transport.writelines = recording_writelines
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.raw_in += data
        super().data_received(data)


def after_head(data: bytes) -> bytes:
    return data[data.index(b"\r\n\r\n") + 4 :]


async def main(browser: str) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()
    port = 0

    def process_request(connection: Any, request: Any) -> Any:
        if request.path == "/":
            response = connection.respond(http.HTTPStatus.OK, PAGE % {"port": port})
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "text/html; charset=utf-8"
            return response
        if request.path != "/ws":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found\n")
        return None

    async def handler(ws: Any) -> None:
        report: dict[str, Any] = {
            "request_extensions": ws.request.headers.get("Sec-WebSocket-Extensions"),
            "response_extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
            "user_agent": ws.request.headers.get("User-Agent"),
        }
        try:
            async with asyncio.timeout(TIMEOUT):
                report["browser_messages_ok"] = [await ws.recv() for _ in range(2)] == browser_messages()
                sent = server_messages()
                echoes = []
                for message in sent:
                    await ws.send(message)
                    echoes.append(await ws.recv())
                report["echoes_ok"] = echoes == sent
                await ws.close()
        except (ferrows.ConnectionClosed, TimeoutError) as exc:
            report["error"] = repr(exc)
        await asyncio.sleep(0.1)
        report["connection"] = ws
        if not done.done():
            done.set_result(report)

    async with ferrows.serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        create_connection=RecordingConnection,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with tempfile.TemporaryDirectory() as profile:
            proc = await asyncio.create_subprocess_exec(
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"http://127.0.0.1:{port}/",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                report = await asyncio.wait_for(done, TIMEOUT)
            finally:
                # Only the browser this script started, by its pid.
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await asyncio.wait_for(proc.wait(), 10)

    ws = report.pop("connection")
    inbound = parse_frames(after_head(bytes(ws.raw_in)))
    outbound = parse_frames(after_head(bytes(ws.raw_out)))
    data_in = [f for f in inbound if f[0] in (1, 2)]
    data_out = [f for f in outbound if f[0] in (1, 2)]
    report["browser_frames"] = len(data_in)
    report["browser_frames_rsv1"] = sum(f[1] for f in data_in)
    report["server_frames"] = len(data_out)
    report["server_frames_rsv1"] = sum(f[1] for f in data_out)
    report["browser_wire_bytes"] = sum(f[2] for f in data_in)
    report["server_wire_bytes"] = sum(f[2] for f in data_out)
    report["message_bytes_each_way"] = sum(len(m.encode() if isinstance(m, str) else m) for m in server_messages())
    for key, value in report.items():
        print(f"{key}: {value}")
    ok = (
        report.get("browser_messages_ok") is True
        and report.get("echoes_ok") is True
        and "permessage-deflate" in (report["response_extensions"] or "")
        and report["browser_frames_rsv1"] == report["browser_frames"] > 0
        and report["server_frames_rsv1"] == report["server_frames"] > 0
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browser", default=shutil.which("chromium") or "chromium")
    sys.exit(asyncio.run(main(parser.parse_args().browser)))
