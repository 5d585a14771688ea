#!/usr/bin/env python3
"""Run uvicorn's own WebSocket tests against ferrows.asgi, beside uvicorn's
implementations.

uvicorn's source distribution ships its tests; ``tests/protocols/
test_websocket.py`` is parametrised over the WebSocket protocol classes by
the ``ws_protocol_cls`` fixture of ``tests/conftest.py``. This tool fetches
that sdist at a pinned version with pip, adds
``ferrows.asgi:WebSocketProtocol`` to the fixture's parameters (the test
bodies are left as they are), runs the module with pytest, and compares each
test's outcome for ferrows with its outcome for uvicorn's ``wsproto`` and
``websockets-sansio`` implementations.

The tests run against the sdist's own ``uvicorn`` package (pytest puts the
sdist's root first on ``sys.path``), so the tests and the code they test
always match, whatever uvicorn is installed.

Exit status 0 when every test that passes for uvicorn's implementations
passes for ferrows, except the deviations listed in :data:`DEVIATIONS`, each
with why; 1 otherwise (a new failure, or a deviation that passes now and
should leave the list).

Usage::

    python tools/uvicorn_suite.py                 # pinned version, downloaded
    python tools/uvicorn_suite.py --sdist uvicorn-0.54.0.tar.gz
    python tools/uvicorn_suite.py -- -k subprotocols   # extra pytest arguments
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

UVICORN_VERSION = "0.54.0"
"""The uvicorn release whose tests are run; raise it deliberately, after
checking the deviations below against the new tests."""

TEST_MODULE = "tests/protocols/test_websocket.py"
FERROWS_PARAM = '        pytest.param("ferrows.asgi:WebSocketProtocol", id="ferrows"),\n'
ANCHOR = (
    '            "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol", id="websockets-sansio"\n'
    "        ),\n"
)
IMPLEMENTATIONS = ("ferrows", "wsproto", "websockets-sansio")

DEVIATIONS = {
    "test_duplicate_handshake": (
        "the app raises after accepting (a second accept): ferrows closes with 1011 (Internal Error), "
        "uvicorn's implementations drop TCP without a close frame, which the test expects (1006)"
    ),
    "test_asgi_return_value": (
        "the app returns 123 after accepting: ferrows logs it as uvicorn does and closes with 1000, "
        "the test expects TCP dropped without a close frame (1006)"
    ),
    "test_close_transport_on_asgi_return": (
        "the app returns without websocket.close: ferrows closes with 1000, as the test's docstring asks "
        "('the server should still send a close frame'); its assertion expects 1006"
    ),
    "test_server_keepalive_ping_pong": (
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)), uvicorn's own classes"
    ),
    "test_server_keepalive_disabled": (
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)), uvicorn's own classes"
    ),
    "test_close_resumes_reads_paused_on_an_unconsumed_message": (
        "expects reading paused after one unread message, as uvicorn's implementations pause after "
        "each; ferrows pauses at ws_max_queue messages (32 by default), the setting's meaning "
        "(its own test covers the resume on close with ws_max_queue=1)"
    ),
    "test_close_gives_up_when_the_peer_never_replies": (
        "the test's transport double has no abort(): ferrows aborts a transport that has not closed "
        "close_timeout after close(), since a client that reads nothing keeps close() waiting forever"
    ),
}


def fetch_sdist(version: str, directory: pathlib.Path) -> pathlib.Path:
    """Downloads uvicorn's source distribution with pip."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*command, f"uvicorn=={version}", "--dest", str(directory)], check=True)
    (sdist,) = directory.glob(f"uvicorn-{version}.tar.gz")
    return sdist


def prepare(sdist: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """Extracts the sdist and adds ferrows to ``ws_protocol_cls``'s parameters."""
    with tarfile.open(sdist) as archive:
        archive.extractall(directory, filter="data")
    (root,) = [path for path in directory.iterdir() if path.is_dir()]
    conftest = root / "tests" / "conftest.py"
    text = conftest.read_text()
    if ANCHOR not in text:
        raise SystemExit(f"{conftest}: the ws_protocol_cls parameters changed; update ANCHOR")
    conftest.write_text(text.replace(ANCHOR, ANCHOR + FERROWS_PARAM, 1))
    return root


def run(root: pathlib.Path, extra: list[str]) -> pathlib.Path:
    """Runs the module; uvicorn's pytest settings apply (warnings are errors)
    except ``addopts``, which needs pytest-xdist, and pytest-asyncio, which
    would claim the anyio tests."""
    report = root / "report.xml"
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:asyncio", "-p", "no:cacheprovider"]
    command += ["-q", "-rfE", f"--junitxml={report}", TEST_MODULE, *extra]
    subprocess.run(command, cwd=root, check=False)
    return report


def outcomes(report: pathlib.Path) -> dict[tuple[str, str], dict[str, str]]:
    """``{(test, other parameters): {implementation: outcome}}``."""
    results: dict[tuple[str, str], dict[str, str]] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "")
        test, _, params = name.partition("[")
        ids = params.rstrip("]").replace("websockets-sansio", "websockets_sansio").split("-")
        implementation = next((i for i in ids if i.replace("_", "-") in IMPLEMENTATIONS), None)
        if implementation is None:
            continue  # not parametrised over implementations
        rest = "-".join(i for i in ids if i != implementation)
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        results.setdefault((test, rest), {})[implementation.replace("_", "-")] = outcome
    return results


def compare(results: dict[tuple[str, str], dict[str, str]]) -> int:
    """Prints the comparison; returns the exit status."""
    unexpected, deviating, fixed = [], set(), []
    passed = failed = 0
    for (test, rest), by_impl in sorted(results.items()):
        ours = by_impl.get("ferrows")
        theirs = [by_impl.get(i) for i in IMPLEMENTATIONS[1:]]
        if ours == "passed":
            passed += 1
            if test in DEVIATIONS:
                fixed.append(f"{test}[{rest}]")
        elif ours == "failed":
            failed += 1
            if test in DEVIATIONS:
                deviating.add(test)
            elif "passed" in theirs:
                unexpected.append(f"{test}[{rest}]")
    print(f"\nferrows: {passed} passed, {failed} failed; listed deviations:")
    for test in sorted(deviating):
        print(f"  {test}: {DEVIATIONS[test]}")
    for name in fixed:
        print(f"PASSES NOW, remove it from DEVIATIONS: {name}")
    for name in unexpected:
        print(f"FAILS for ferrows, passes for uvicorn's implementations: {name}")
    return 1 if unexpected or fixed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=UVICORN_VERSION, help="uvicorn release (default %(default)s)")
    parser.add_argument("--sdist", type=pathlib.Path, help="a local uvicorn sdist instead of downloading it")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uvicorn-suite-") as tmp:
        directory = pathlib.Path(tmp)
        sdist = args.sdist or fetch_sdist(args.version, directory / "download")
        root = prepare(sdist, directory / "source")
        return compare(outcomes(run(root, args.pytest_args)))


if __name__ == "__main__":
    sys.exit(main())
