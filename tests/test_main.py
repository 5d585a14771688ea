"""The command line, driven as a user would: a subprocess with piped stdin."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import ferrows


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What the interactive client adds for a terminal: its prompt, and the VT100
# sequences that print messages above the line being typed.
_TERMINAL = re.compile(r"\x1b\[[A-Z]|\x1b[78]|\r")
_PROMPTS = re.compile(r"^(> )+")


def visible_line(stream):
    """The next line of the client's output that shows text, as a terminal
    shows it (the prompt and cursor movements removed)."""
    for _ in range(20):
        line = stream.readline()
        if not line:
            return line
        text = _PROMPTS.sub("", _TERMINAL.sub("", line))
        if text.strip():
            return text
    raise AssertionError("no visible line in 20 lines of output")


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


@pytest.fixture
def demo_server():
    """``python -m ferrows serve`` on a free port; stopped by its PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ferrows", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port)
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        if not process.stdout.closed:
            try:
                process.communicate(timeout=10)  # also closes the pipes
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=10)


def run_client(*args, stdin="", timeout=20):
    return subprocess.run(
        [sys.executable, "-m", "ferrows", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_client(port):
    return subprocess.Popen(
        [sys.executable, "-m", "ferrows", f"ws://127.0.0.1:{port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        pipe.close()


def test_interactive_client_against_the_demo_server(demo_server):
    port, _server = demo_server
    client = start_client(port)
    try:
        assert visible_line(client.stdout) == f"Connected to ws://127.0.0.1:{port}.\n"
        # Control characters from the peer are shown, not obeyed.
        for line, shown in [
            ("hello", "hello"),
            ("wörld", "wörld"),
            ("bell\x07 clear\x1b[2J", "bell\\x07 clear\\x1b[2J"),
        ]:
            client.stdin.write(line + "\n")
            client.stdin.flush()
            assert visible_line(client.stdout) == f"< {shown}\n"
        client.stdin.close()  # Ctrl-D
        assert visible_line(client.stdout) == "Connection closed: 1000 (OK).\n"
        assert client.wait(10) == 0
    finally:
        stop(client)


def test_demo_server_stops_cleanly_on_ctrl_c(demo_server):
    port, server = demo_server
    server.send_signal(signal.SIGINT)
    out, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert f"Echo server on ws://127.0.0.1:{port}" in out
    assert "Server stopped." in out


def test_client_reports_server_close(demo_server):
    port, server = demo_server
    client = start_client(port)
    try:
        assert visible_line(client.stdout).startswith("Connected to")
        client.stdin.write("first\n")
        client.stdin.flush()
        assert visible_line(client.stdout) == "< first\n"
        server.send_signal(signal.SIGINT)  # the server closes with 1001
        assert visible_line(client.stdout) == "Connection closed: 1001 (going away).\n"
        assert client.wait(10) == 0
    finally:
        stop(client)


def test_version_and_usage():
    result = run_client("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ferrows {ferrows.__version__}"
    result = run_client()
    assert result.returncode == 2
    assert "usage: ferrows" in result.stderr


def test_connection_failure_is_reported():
    port = free_port()
    result = run_client(f"ws://127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"Failed to connect to ws://127.0.0.1:{port}" in result.stdout


def test_console_script_is_declared():
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")) as f:
        assert 'ferrows = "ferrows.__main__:main"' in f.read()


def test_cli_module_exits_as_websockets_cli_main(capsys):
    # websockets.cli.main returns nothing and exits with SystemExit on
    # failure; ferrows.cli gives ferrows' command line that convention.
    from ferrows import cli
    from ferrows.__main__ import main

    port = free_port()
    with pytest.raises(SystemExit) as raised:
        cli.main([f"ws://127.0.0.1:{port}"])
    assert raised.value.code == 1
    assert f"Failed to connect to ws://127.0.0.1:{port}" in capsys.readouterr().out
    assert main([f"ws://127.0.0.1:{port}"]) == 1
