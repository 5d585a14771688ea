"""Profiles one server under one scenario with py-spy, and prints where the
time goes (self and inclusive samples per function).

    python bench/profile.py [--lib ferrows] [--scenario pipe] [--mode server]
                            [--loop asyncio] [--seconds 5] [--native] [--top 25]

It starts the server and the client as run.py does, attaches ``py-spy
record`` to the server's PID for the client's whole run (warm-up included,
so keep --seconds well above the warm-up), and writes the collapsed stacks
to bench/results/profile-LIB-SCENARIO.txt (open them in speedscope or
flamegraph.pl). With --native, frames inside the Rust extension show too.
py-spy needs ptrace rights on the server (it is our own child).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import PY, stop, wait_ready  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def top(collapsed: str, n: int) -> str:
    """Self and inclusive shares per function, from py-spy's raw output."""
    self_count: collections.Counter[str] = collections.Counter()
    incl_count: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = [f.strip() for f in stack.split(";")]
        # Drop the thread/process header py-spy puts first.
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_count[frames[-1]] += c
        for f in set(frames):
            incl_count[f] += c
    if not total:
        return "no samples"
    out = [f"{total} samples\n", "self %  function (file:line)"]
    for f, c in self_count.most_common(n):
        out.append(f"{100 * c / total:5.1f}  {f}")
    out += ["", "incl %  function"]
    for f, c in incl_count.most_common(n):
        out.append(f"{100 * c / total:5.1f}  {f}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", default="ferrows")
    parser.add_argument("--scenario", default="pipe", choices=sorted(SCENARIOS))
    parser.add_argument("--mode", default="server", choices=["same", "server"])
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds of the client")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true", help="include native (Rust, C) frames")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(PY), "py-spy")
    sc = SCENARIOS[args.scenario]
    client = "raw" if args.mode == "server" or args.lib == "tcp" else args.lib
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    raw_path = os.path.join(out_dir, f"profile-{args.lib}-{args.scenario}-{args.mode}-{args.loop}.txt")

    kind = "broadcast" if sc.kind == "broadcast" else "echo"
    server = subprocess.Popen(
        [
            PY,
            os.path.join(HERE, "servers.py"),
            "--lib",
            args.lib,
            "--kind",
            kind,
            "--loop",
            args.loop,
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    spy = None
    try:
        port = wait_ready(server, 30)
        cmd = [
            pyspy,
            "record",
            "--pid",
            str(server.pid),
            "--format",
            "raw",
            "--output",
            raw_path,
        ]
        cmd += ["--rate", str(args.rate), "--duration", str(int(args.seconds + 3))]
        # Native unwinding needs the target paused while sampled; Python-only
        # sampling doesn't, and disturbs the server less.
        cmd.append("--native" if args.native else "--nonblocking")
        spy = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        client_cmd = [
            PY, os.path.join(HERE, "clients.py"), "--client", client, "--scenario", args.scenario,
            "--port", str(port), "--server-pid", str(server.pid),
            "--loop", "uvloop" if args.mode == "server" else args.loop,
            "--warmup", "0.5", "--duration", str(args.seconds), "--timeout", str(args.seconds + 60),
        ]  # fmt: skip
        if args.lib == "tcp":
            client_cmd.append("--no-handshake")
        result = subprocess.run(
            client_cmd,
            capture_output=True,
            text=True,
            timeout=args.seconds + 90,
            check=False,
        )
        print(result.stdout.strip()[:400])
        # py-spy stops by itself after --duration (idle samples are not
        # recorded, so the tail after the client is done costs nothing).
        try:
            _, err = spy.communicate(timeout=args.seconds + 30)
        except subprocess.TimeoutExpired:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            _, err = spy.communicate(timeout=30)
        if not os.path.exists(raw_path):
            print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        stop(server)
    if os.path.exists(raw_path):
        with open(raw_path) as f:
            print(top(f.read(), args.top))
        print(f"\ncollapsed stacks: {raw_path}")


if __name__ == "__main__":
    main()
