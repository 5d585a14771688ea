"""Side-by-side WebSocket benchmarks: ferrows, websockets, picows, aiohttp
and a plain asyncio TCP echo, in one run.

    python bench/run.py [--quick] [--scenarios seq,pipe,...] [--loops asyncio,uvloop]
                        [--modes same,server] [--libs ...] [--reps N]

Each trial starts a fresh server process and a fresh client process (see
servers.py and clients.py), measures after a warm-up, and stops the server
by its PID. Libraries run interleaved (all of them for one scenario, then
the next scenario; the order rotates every repetition), so a burst of load
on the machine spreads over everyone. The report gives medians, min-max,
ratios to websockets, and the server's CPU time per operation, which is the
steadier figure on a busy machine. Nothing here asserts anything about
speed.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import importlib.util
import json
import os
import platform
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import LIBS, descendants  # noqa: E402
from report import summary, tables  # noqa: E402
from scenarios import BROADCAST_CONNS, IDLE_CONNS, IDLE_SECONDS, SCENARIOS  # noqa: E402

PY = sys.executable
CHILD_ENV: dict[str, str] | None = None
"""Environment of the server and client processes (see :func:`snapshot`)."""


def snapshot(directory: str) -> str:
    """Copies the installed ferrows package (Python files and the built
    extension) into ``directory`` and returns the path to put first on the
    children's PYTHONPATH: the whole run then measures one build, even if
    the checkout is edited or rebuilt meanwhile."""
    spec = importlib.util.find_spec("ferrows")
    if spec is None or not spec.submodule_search_locations:
        return ""
    source = next(iter(spec.submodule_search_locations))
    shutil.copytree(source, os.path.join(directory, "ferrows"), ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def wait_ready(proc: subprocess.Popen, timeout: float) -> int:
    """Reads the server's ``READY <port>`` line, within ``timeout``."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError("server not ready in time")
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                raise RuntimeError(f"server exited with {proc.wait()}")
            line += chunk
    finally:
        sel.close()
    word, port = line.split()[:2]
    if word != b"READY":
        raise RuntimeError(f"unexpected server output {line!r}")
    return int(port)


def stop(proc: subprocess.Popen) -> None:
    """Stops a process we started, by its PID: SIGTERM, then SIGKILL; then
    any of its descendants still alive (granian's worker), by PID."""
    children = descendants(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tail(path: str, n: int = 600) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def trial(lib: str, scenario: str, mode: str, loop: str, cfg: argparse.Namespace) -> dict[str, Any]:
    sc = SCENARIOS[scenario]
    record: dict[str, Any] = {
        "lib": lib,
        "scenario": scenario,
        "mode": mode,
        "loop": loop,
    }
    kind = "broadcast" if sc.kind == "broadcast" else "echo"
    client = "raw" if mode == "server" or lib == "tcp" else lib
    client_loop = "uvloop" if mode == "server" else loop
    with tempfile.NamedTemporaryFile("w+", prefix=f"bench-{lib}-", suffix=".log", delete=False) as errlog:
        errpath = errlog.name
    with open(errpath, "w") as errfile:
        server = subprocess.Popen(
            [
                PY,
                os.path.join(HERE, "servers.py"),
                "--lib",
                lib,
                "--kind",
                kind,
                "--loop",
                loop,
            ],
            stdout=subprocess.PIPE,
            stderr=errfile,
            stdin=subprocess.DEVNULL,
            env=CHILD_ENV,
        )
    try:
        port = wait_ready(server, 30)
        cmd = [
            PY,
            os.path.join(HERE, "clients.py"),
            "--client", client,
            "--scenario", scenario,
            "--port", str(port),
            "--server-pid", str(server.pid),
            "--loop", client_loop,
            "--warmup", str(cfg.warmup),
            "--duration", str(cfg.duration),
            "--timeout", str(cfg.timeout),
        ]  # fmt: skip
        if lib == "tcp":
            cmd.append("--no-handshake")
        if sc.kind == "memory" and cfg.idle_conns:
            cmd += ["--conns", str(cfg.idle_conns)]
        if sc.kind == "broadcast" and cfg.broadcast_conns:
            cmd += ["--conns", str(cfg.broadcast_conns)]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=cfg.timeout + 30,
            stdin=subprocess.DEVNULL,
            check=False,
            env=CHILD_ENV,
        )
        out = done.stdout.strip().splitlines()
        if not out:
            raise RuntimeError(f"client exited with {done.returncode}: {done.stderr[-500:]}")
        record.update(json.loads(out[-1]))
        if server.poll() is not None:
            record.update(
                ok=False,
                error=f"server exited with {server.returncode}: {tail(errpath)}",
            )
    except Exception as exc:  # a failed trial is reported, not raised
        record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        stop(server)
    if not record.get("ok"):
        record["server_log"] = tail(errpath)
    os.unlink(errpath)
    return record


def ferrows_build(root: str = "") -> str:
    """ "release" or "debug": a debug build of the extension carries DWARF
    sections (the release profile has no debug info), and runs several times
    slower, so it must not be measured by mistake."""
    if root:
        found = glob.glob(os.path.join(root, "ferrows", "_core.*.so"))
        origin = found[0] if found else None
    else:
        try:
            spec = importlib.util.find_spec("ferrows._core")
        except ImportError:
            return "not installed"
        origin = spec.origin if spec is not None else None
    if origin is None:
        return "not installed"
    with open(origin, "rb") as f:
        elf = f.read()
    if elf[:5] != b"\x7fELF\x02":
        return "unknown"
    shoff = int.from_bytes(elf[0x28:0x30], "little")
    shentsize, shnum, shstrndx = (int.from_bytes(elf[i : i + 2], "little") for i in (0x3A, 0x3C, 0x3E))

    def section(i: int) -> tuple[int, int, int]:
        h = shoff + i * shentsize
        name = int.from_bytes(elf[h : h + 4], "little")
        return (
            name,
            int.from_bytes(elf[h + 0x18 : h + 0x20], "little"),
            int.from_bytes(elf[h + 0x20 : h + 0x28], "little"),
        )

    _, stroff, strsize = section(shstrndx)
    strtab = elf[stroff : stroff + strsize]
    names = {strtab[n : strtab.index(b"\0", n)] for n, _, _ in map(section, range(shnum))}
    return "debug" if b".debug_info" in names else "release"


def git_state() -> str:
    """The checkout measured: commit, and whether the tree had changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "../python", "../rust"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes" if dirty else "")


def machine(libs: list[str], root: str = "") -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for dist in ["ferrows", "websockets", "picows", "aiohttp", "uvloop", "uvicorn", "starlette", "wsproto", "granian"]:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "ferrows_build": ferrows_build(root),
        "ferrows_git": git_state(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition, short windows, fewer connections",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated: " + ",".join(SCENARIOS),
    )
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--modes", default="same,server")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument(
        "--baseline",
        default="websockets",
        help="library the ratios divide by (uvicorn-websockets-sansio for the uvicorn servers)",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, --quick 1)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per trial")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per trial")
    parser.add_argument("--timeout", type=float, default=60.0, help="limit per client process")
    parser.add_argument("--idle-conns", type=int, default=0, help="idle connections (default 1000)")
    parser.add_argument(
        "--broadcast-conns",
        type=int,
        default=0,
        help="broadcast connections (default 200)",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(HERE, "results"),
        help="directory for JSON and Markdown",
    )
    cfg = parser.parse_args()
    if cfg.reps is None:
        cfg.reps = 1 if cfg.quick else 3
    if cfg.warmup is None:
        cfg.warmup = 0.2 if cfg.quick else 0.3
    if cfg.duration is None:
        cfg.duration = 0.5 if cfg.quick else 1.0
    scenarios = [s for s in cfg.scenarios.split(",") if s]
    loops = [s for s in cfg.loops.split(",") if s]
    modes = [s for s in cfg.modes.split(",") if s]
    libs = [s for s in cfg.libs.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s}")

    global CHILD_ENV
    with tempfile.TemporaryDirectory(prefix="bench-ferrows-") as directory:
        root = snapshot(directory)
        if root:
            path = os.environ.get("PYTHONPATH")
            CHILD_ENV = dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""))
        measure(cfg, scenarios, loops, modes, libs, root)


def measure(
    cfg: argparse.Namespace,
    scenarios: list[str],
    loops: list[str],
    modes: list[str],
    libs: list[str],
    root: str,
) -> None:
    info = machine(libs, root)
    if info["ferrows_build"] == "debug":
        print(
            "WARNING: ferrows is a debug build; build it for release first: "
            "maturin develop --release (see bench/README.md)",
            file=sys.stderr,
        )
    print(f"# {info['date']}  {info['nproc']} x {info['cpu']}  Python {info['python']}  {info['versions']}")
    records: list[dict[str, Any]] = []
    start = time.monotonic()
    for rep in range(cfg.reps):
        for loop in loops:
            for name in scenarios:
                sc = SCENARIOS[name]
                for mode in modes:
                    if mode not in sc.modes:
                        continue
                    k = rep % len(libs)
                    for lib in libs[k:] + libs[:k]:
                        reason = sc.why_unsupported(lib)
                        if reason:
                            if rep == 0:
                                records.append(
                                    {
                                        "lib": lib,
                                        "scenario": name,
                                        "mode": mode,
                                        "loop": loop,
                                        "ok": False,
                                        "na": reason,
                                    }
                                )
                            continue
                        r = trial(lib, name, mode, loop, cfg)
                        r["rep"] = rep
                        records.append(r)
                        if r.get("ok"):
                            value = r["rate"] * sc.scale
                            cpu = (
                                f"  server CPU {r['server_cpu'] / r['ops'] * 1e6:.1f} µs/{sc.cpu_unit}"
                                if r.get("server_cpu") is not None
                                else ""
                            )
                            status = f"{value:,.1f} {sc.unit}{cpu}"
                        else:
                            status = "FAILED: " + str(r.get("error"))[:300]
                        elapsed = time.monotonic() - start
                        print(
                            f"[{elapsed:6.0f}s] rep {rep + 1} {loop:7} {name:9} {mode:6} {lib:10} {status}",
                            flush=True,
                        )
    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.monotonic() - start)
    info["settings"] = {
        "reps": cfg.reps,
        "warmup": cfg.warmup,
        "duration": cfg.duration,
        "quick": cfg.quick,
        "idle_conns": cfg.idle_conns or IDLE_CONNS,
        "broadcast_conns": cfg.broadcast_conns or BROADCAST_CONNS,
    }
    text = render(info, records, loops, modes, scenarios, libs, cfg.baseline)
    print()
    print(text)
    os.makedirs(cfg.output, exist_ok=True)
    with open(os.path.join(cfg.output, "latest.json"), "w") as f:
        json.dump({"machine": info, "records": records}, f, indent=1)
    with open(os.path.join(cfg.output, "latest.md"), "w") as f:
        f.write(text)
    print(f"\nwritten to {cfg.output}/latest.md and latest.json")


def render(
    info: dict[str, Any],
    records: list[dict[str, Any]],
    loops: list[str],
    modes: list[str],
    scenarios: list[str],
    libs: list[str],
    baseline: str = "websockets",
) -> str:
    s = info["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    head = (
        f"Run {info['date']} on {info['nproc']} x {info['cpu']} (kernel {info['kernel']}), "
        f"Python {info['python']}; {versions} ({info['ferrows_build']} build of {info['ferrows_git']}). "
        f"{s['reps']} repetitions, {s['warmup']} s warm-up and {s['duration']} s measured per trial; "
        f"broadcast to {s['broadcast_conns']} connections, memory over {s['idle_conns']} connections idle for {IDLE_SECONDS} s. "
        f"Load average {info['loadavg'][0]:.2f} at the start, {info['loadavg_end'][0]:.2f} at the end; "
        f"the run took {info['elapsed_s']} s.\n"
    )
    return "\n".join(
        [
            head,
            "## Summary\n",
            summary(records, loops, modes, scenarios, libs, baseline),
            "## Details\n",
            tables(records, loops, modes, scenarios, libs, baseline),
        ]
    )


if __name__ == "__main__":
    main()
