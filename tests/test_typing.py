"""A user's program type-checks against ferrows as it does against websockets.

``mypy --strict`` runs on the programs in ``tests/type_checks/``, against the
installed package: ``good_program.py`` must pass clean (its ``assert_type``
calls pin the inferred types), and every line of ``bad_program.py`` marked
``# E: <code>`` must be reported with that code, and no other line. A public
signature that decays to ``Any`` fails the first half or the second.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

PROGRAMS = Path(__file__).parent / "type_checks"

# mypy's output line for an error: "path:line: error: message  [code]".
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def run_mypy(tmp_path: Path, *programs: Path) -> tuple[int, list[str]]:
    """Runs mypy in a fresh cache, with an empty configuration so that the
    project's own (checking ``python/ferrows``) does not apply."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--strict",
            "--python-version",
            "3.11",
            "--show-error-codes",
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            *(str(program) for program in programs),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    return result.returncode, [line for line in result.stdout.splitlines() if ": error: " in line]


def expected_errors(program: Path) -> set[tuple[int, str]]:
    marks = re.compile(r"#\s*E:\s*(?P<code>[a-z-]+)\s*$")
    found = set()
    for number, line in enumerate(program.read_text().splitlines(), start=1):
        match = marks.search(line)
        if match:
            found.add((number, match["code"]))
    return found


def test_types_of_a_websockets_program(tmp_path: Path) -> None:
    good, bad = PROGRAMS / "good_program.py", PROGRAMS / "bad_program.py"
    start = time.monotonic()
    status, errors = run_mypy(tmp_path, good, bad)
    elapsed = time.monotonic() - start
    by_file: dict[str, set[tuple[int, str]]] = {good.name: set(), bad.name: set()}
    for line in errors:
        match = ERROR.match(line)
        assert match, line
        by_file[Path(match["path"]).name].add((int(match["line"]), match["code"]))
    assert by_file[good.name] == set(), "\n".join(errors)
    expected = expected_errors(bad)
    assert len(expected) >= 10
    assert by_file[bad.name] == expected, "\n".join(errors)
    assert status == 1
    # A cold cache costs a few seconds; fail loudly if it ever gets slow.
    assert elapsed < 60, elapsed
