"""A client floods pings and never reads; the server's memory must stay
bounded while another client keeps being served.

The server runs in a subprocess (its RSS is read from /proc); the flooding
client sends ``--pings`` pings as fast as the server takes them, for at
most ``--seconds``, then reads the pongs: it must get one for its last
ping. Talks only to 127.0.0.1. Exit status 0 on success.

    python stress/ping_flood.py --pings 5000000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

SERVER = r"""
import asyncio, sys
import ferrows

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with ferrows.serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def handshake(port: int) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def flood(port: int, pid: int, pings: int, seconds: float) -> dict[str, object]:
    import ferrows

    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, handshake(port))
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 4096)
    baseline = peak = rss_kib(pid)
    deadline = time.monotonic() + seconds
    sent = 0
    batch = 10_000
    echo_rtts = []
    async with ferrows.connect(f"ws://127.0.0.1:{port}/", compression=None) as other:
        while sent < pings and time.monotonic() < deadline:
            data = b"".join(b"\x89\x88\x00\x00\x00\x00" + b"%08d" % i for i in range(sent, sent + batch))
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, data), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break  # the server stopped reading: TCP pushes back, as intended
            sent += batch
            peak = max(peak, rss_kib(pid))
            t = time.monotonic()
            await other.send("ping?")
            assert await other.recv() == "ping?"
            echo_rtts.append(time.monotonic() - t)
    last = b"\x8a\x08" + b"%08d" % (sent - 1)
    received = 0
    tail = b""
    async with asyncio.timeout(60):
        while not tail.endswith(last):
            chunk = await loop.sock_recv(sock, 1 << 16)
            if not chunk:
                break
            received += len(chunk)
            tail = (tail + chunk)[-len(last) :]
    sock.close()
    return {
        "pings_sent": sent,
        "pongs_received": received // len(last),
        "last_ping_answered": tail.endswith(last),
        "rss_baseline_kib": baseline,
        "rss_peak_kib": peak,
        "other_client_max_rtt_ms": round(max(echo_rtts) * 1000, 1) if echo_rtts else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=5_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        result = asyncio.run(flood(port, proc.pid, args.pings, args.seconds))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for key, value in result.items():
        print(f"{key:24} {value}")
    # Without a bound, each 10-byte pong would stay buffered: 100 MB for
    # 10M pings. 50 MB of growth allows for the kernel-side and allocator
    # noise while catching that.
    ok = bool(result["last_ping_answered"]) and int(result["rss_peak_kib"]) - int(result["rss_baseline_kib"]) < 50_000  # type: ignore[call-overload]
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
