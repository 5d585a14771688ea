#!/usr/bin/env python3
"""Run websockets' own test suite against ferrows.

``import ferrows as websockets`` is ferrows' promise. This tool measures it
with the reference implementation's tests: it takes websockets' ``tests/``
from a checkout (or from a git directory at a given commit), runs them with
pytest while an import hook serves every ``websockets`` and ``websockets.*``
module from ``ferrows`` / ``ferrows.*``, and prints, per test module, how many
tests ran, passed, failed and errored.

The tests are read from the given path and exported to a temporary directory;
ferrows never ships them. ``tests/legacy`` and ``tests/trio`` are left out:
ferrows has neither websockets' legacy API nor a trio layer.

The same file is the pytest plugin that the child process loads (``-p``):
loading it installs the import hook when ``FERROWS_SUITE_ALIAS`` is set and
records each test's outcome, one JSON line at a time, so that a run that dies
still leaves its results behind and can go on after the test that killed it.

Usage::

    python tools/websockets_suite.py PATH_TO_WEBSOCKETS_CHECKOUT
    python tools/websockets_suite.py --git-dir websockets/.git --commit 04e599ca
    python tools/websockets_suite.py PATH --json failing.json -k test_frames
    python tools/websockets_suite.py PATH --reference   # the real websockets
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import types
from collections.abc import Sequence
from typing import Any

# Directories of websockets' tests that cover APIs ferrows doesn't have.
OUT_OF_SCOPE = {
    "tests/legacy": "websockets' legacy (pre-13) implementation; ferrows has no legacy API",
    "tests/trio": "websockets' trio implementation; ferrows has no trio layer",
}

ENV_ALIAS = "FERROWS_SUITE_ALIAS"  # target package name, e.g. "ferrows"
ENV_RESULTS = "FERROWS_SUITE_RESULTS"  # JSON lines written by the plugin
ENV_SKIP = "FERROWS_SUITE_SKIP"  # file of test ids already recorded

MAX_RESTARTS = 10


# ---------------------------------------------------------------------------
# Import hook


class _AliasLoader(importlib.abc.Loader):
    """Hand out the already imported target module under the alias name."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system has just set __spec__ to the alias spec on the
        # shared module object. Restore the original: relative imports inside
        # the target check __package__ against __spec__.parent.
        module.__spec__ = self.spec


class AliasFinder(importlib.abc.MetaPathFinder):
    """Serve ``alias`` and ``alias.*`` from ``target`` and ``target.*``.

    ``sys.modules['websockets.frames'] is sys.modules['ferrows.frames']``
    afterwards, so ``mock.patch('websockets.frames.X')`` patches ferrows.

    A submodule that ferrows lacks raises :exc:`ModuleNotFoundError`, as a
    missing module does; the finder never lets the import fall through to
    an installed copy of the real package.
    """

    def __init__(self, alias: str, target: str) -> None:
        self.alias = alias
        self.target = target

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        real = self.target + fullname[len(self.alias) :]
        try:
            real_spec = importlib.util.find_spec(real)
        except ImportError as exc:
            raise ModuleNotFoundError(f"No module named {fullname!r} ({exc})", name=fullname) from None
        if real_spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r} (no {real!r})", name=fullname)
        is_package = real_spec.submodule_search_locations is not None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=is_package)


def install_alias(alias: str = "websockets", target: str = "ferrows") -> AliasFinder:
    """Install the finder first on ``sys.meta_path``; drop modules of the real package."""
    for name in list(sys.modules):
        if name == alias or name.startswith(alias + "."):
            del sys.modules[name]
    finder = AliasFinder(alias, target)
    sys.meta_path.insert(0, finder)
    return finder


# ---------------------------------------------------------------------------
# pytest plugin (runs in the child process)


def _record(entry: dict[str, Any]) -> None:
    path = os.environ.get(ENV_RESULTS)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


def _reason(report: Any) -> str:
    """One line describing why a test failed, for the JSON of failures."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        message: str = crash.message
    elif isinstance(longrepr, tuple):  # skipped: (file, line, reason)
        message = str(longrepr[2])
    else:
        message = str(longrepr).strip().splitlines()[-1] if longrepr else ""
    message = " ".join(message.split())
    return message[:300]


def pytest_configure(config: Any) -> None:
    skip_file = os.environ.get(ENV_SKIP)
    config._ferrows_skip = set()
    if skip_file and os.path.exists(skip_file):
        config._ferrows_skip = set(pathlib.Path(skip_file).read_text(encoding="utf-8").split("\n"))


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    skip = config._ferrows_skip
    if skip:
        deselected = [item for item in items if item.nodeid in skip]
        items[:] = [item for item in items if item.nodeid not in skip]
        config.hook.pytest_deselected(items=deselected)


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _record({"id": report.nodeid, "outcome": "error", "when": "collect", "reason": _reason(report)})


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _record({"id": nodeid, "outcome": "started"})


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call":
        outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
        _record({"id": report.nodeid, "outcome": outcome, "when": "call", "reason": _reason(report)})
    elif report.failed:
        _record({"id": report.nodeid, "outcome": "error", "when": report.when, "reason": _reason(report)})
    elif report.skipped and report.when == "setup":
        _record({"id": report.nodeid, "outcome": "skipped", "when": "setup", "reason": _reason(report)})


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    _record({"id": "", "outcome": "finished"})


def pytest_unconfigure(config: Any) -> None:
    """Ends the process once pytest is done: a failing test may leave a
    non-daemon thread blocked forever (websockets' tests start some), and the
    interpreter would wait for it at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get(ENV_ALIAS) and __name__ != "__main__":
    install_alias("websockets", os.environ[ENV_ALIAS])


# ---------------------------------------------------------------------------
# Driver


def export_tests(args: argparse.Namespace, dest: pathlib.Path) -> str:
    """Put websockets' ``tests/`` into ``dest``; return a description of the source."""
    if args.git_dir:
        commit = args.commit or "HEAD"
        archive = subprocess.run(
            ["git", "--git-dir", args.git_dir, "archive", "--format=tar", commit, "tests"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data") if sys.version_info >= (3, 12) else tar.extractall(dest)
        resolved = subprocess.run(
            ["git", "--git-dir", args.git_dir, "rev-parse", commit], check=True, capture_output=True, text=True
        ).stdout.strip()
        return f"git commit {resolved}"
    source = pathlib.Path(args.source)
    if not (source / "tests").is_dir():
        sys.exit(f"{source} has no tests/ directory: give a websockets checkout, or --git-dir and --commit")
    shutil.copytree(source / "tests", dest / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return f"checkout {source.name}"


def run_child(
    args: argparse.Namespace, workdir: pathlib.Path, results: pathlib.Path, skip: pathlib.Path
) -> tuple[int, bool]:
    """Run pytest once; return its exit code and whether it timed out as a whole."""
    tools_dir = pathlib.Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tools_dir), str(workdir)])
    env[ENV_RESULTS] = str(results)
    env[ENV_SKIP] = str(skip)
    if args.reference:
        env.pop(ENV_ALIAS, None)
    else:
        env[ENV_ALIAS] = args.package
    # As websockets' Makefile runs its tests.
    env["PYTHONASYNCIODEBUG"] = "1"
    env["PYTHONWARNINGS"] = "default"
    env["WEBSOCKETS_TESTS_TIMEOUT_FACTOR"] = str(args.timeout_factor)
    (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(workdir / "pytest.ini"),
        "--rootdir",
        str(workdir),
        "-p",
        "websockets_suite",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
        "-q",
        "--no-header",
        "-rN",
        "--tb=no",
        "--continue-on-collection-errors",
        f"--timeout={args.timeout}",
        "--timeout-method=signal",
    ]
    for directory in OUT_OF_SCOPE:
        command += ["--ignore", str(workdir / directory)]
    # maxi_cov.py is a coverage driver, not a test module.
    command += ["--ignore", str(workdir / "tests" / "maxi_cov.py")]
    if args.k:
        command += ["-k", args.k]
    command.append("tests")
    output = None if args.verbose else subprocess.DEVNULL
    try:
        completed = subprocess.run(
            command, cwd=workdir, env=env, stdout=output, stderr=output, timeout=args.total_timeout
        )
    except subprocess.TimeoutExpired:
        return -1, True
    return completed.returncode, False


def module_of(test_id: str) -> str:
    """``tests/asyncio/test_client.py::T::test_x`` -> ``asyncio.test_client``."""
    path = test_id.split("::", 1)[0]
    if path.startswith("tests/"):
        path = path[len("tests/") :]
    return path.removesuffix(".py").replace("/", ".")


def collect(args: argparse.Namespace, workdir: pathlib.Path) -> dict[str, dict[str, str]]:
    """Run the suite, restarting after a test that kills the process."""
    results = workdir / "results.jsonl"
    skip = workdir / "skip.txt"
    outcomes: dict[str, dict[str, str]] = {}
    for _attempt in range(MAX_RESTARTS + 1):
        results.write_text("", encoding="utf-8")
        _code, timed_out = run_child(args, workdir, results, skip)
        finished = False
        started: str | None = None
        for line in results.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry["outcome"] == "finished":
                finished = True
            elif entry["outcome"] == "started":
                started = entry["id"]
            else:
                previous = outcomes.get(entry["id"])
                # A teardown error overrides a pass; keep the first failure.
                if previous is None or previous["outcome"] in ("passed", "skipped"):
                    outcomes[entry["id"]] = entry
                if entry["id"] == started and entry.get("when") != "setup":
                    started = None
        if finished:
            break
        if started is None:
            # Died between tests: there is no test to blame and go on after.
            print("warning: the test run stopped before its end, between tests", file=sys.stderr)
            break
        why = "the run timed out" if timed_out else "the test crashed the test process"
        outcomes[started] = {"id": started, "outcome": "error", "when": "call", "reason": why}
        print(f"warning: {started}: {why}; going on after it", file=sys.stderr)
        skip.write_text("\n".join(outcomes), encoding="utf-8")
    return outcomes


def print_table(
    outcomes: dict[str, dict[str, str]], source: str, label: str, reference_failures: set[str] | None = None
) -> dict[str, dict[str, int]]:
    """Print tests run, passed, failed, errored and skipped per module, and totals.

    With ``reference_failures`` (test ids that fail against websockets
    itself), a last column counts the failures and errors among them: those
    measure the test suite or the machine, not ferrows.
    """
    table: dict[str, dict[str, int]] = {}
    for test_id, entry in outcomes.items():
        row = table.setdefault(
            module_of(test_id), {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "ref-fail": 0}
        )
        outcome = entry["outcome"]
        if outcome == "skipped":
            row["skipped"] += 1
            continue
        row["run"] += 1
        row[{"passed": "passed", "failed": "failed", "error": "errors"}[outcome]] += 1
        if reference_failures is not None and outcome != "passed" and test_id in reference_failures:
            row["ref-fail"] += 1
    width = max([len(name) for name in table] + [len("module"), len("total")])
    columns: tuple[str, ...] = ("run", "passed", "failed", "errors", "skipped")
    if reference_failures is not None:
        columns += ("ref-fail",)
    print(f"websockets' tests ({source}) against {label}")
    print(f"{'module':<{width}}  " + "  ".join(f"{column:>7}" for column in columns))
    totals = dict.fromkeys(columns, 0)
    for name in sorted(table):
        row = table[name]
        print(f"{name:<{width}}  " + "  ".join(f"{row[column]:>7}" for column in columns))
        for column in columns:
            totals[column] += row[column]
    print(f"{'total':<{width}}  " + "  ".join(f"{totals[column]:>7}" for column in columns))
    for directory, why in OUT_OF_SCOPE.items():
        print(f"out of scope: {directory} ({why})")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", help="a websockets checkout (the directory holding tests/)")
    parser.add_argument("--git-dir", help="a websockets git directory, to export tests/ from with git archive")
    parser.add_argument("--commit", help="the commit to export with --git-dir (default: HEAD)")
    parser.add_argument("--json", help="write the failing test ids, with a one-line reason each, to this file")
    parser.add_argument("--package", default="ferrows", help="the package served as websockets (default: ferrows)")
    parser.add_argument("--reference", action="store_true", help="run against the installed websockets, no alias")
    parser.add_argument("-k", help="pytest -k expression, to run a subset")
    parser.add_argument("--timeout", type=float, default=30, help="per-test timeout in seconds (default: 30)")
    parser.add_argument("--total-timeout", type=float, default=3600, help="bound on one pytest run, in seconds")
    parser.add_argument(
        "--timeout-factor",
        type=float,
        default=10,
        help="WEBSOCKETS_TESTS_TIMEOUT_FACTOR: scales the tests' own delays (default: 10, for shared machines)",
    )
    parser.add_argument(
        "--compare",
        metavar="JSON",
        help="the --json of a --reference run: count failures that websockets itself has separately",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args(argv)
    if not args.source and not args.git_dir:
        parser.error("give a websockets checkout, or --git-dir (and --commit)")

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="websockets-suite-") as tmp:
        workdir = pathlib.Path(tmp)
        source = export_tests(args, workdir)
        outcomes = collect(args, workdir)
    label = "the installed websockets" if args.reference else args.package
    reference_failures = None
    if args.compare:
        with open(args.compare, encoding="utf-8") as file:
            reference_failures = set(json.load(file))
    print_table(outcomes, source, label, reference_failures)
    print(f"({time.monotonic() - start:.0f} s)")
    failing = {
        test_id: entry.get("reason", "")
        for test_id, entry in sorted(outcomes.items())
        if entry["outcome"] in ("failed", "error")
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(failing, file, indent=1, sort_keys=True)
            file.write("\n")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
