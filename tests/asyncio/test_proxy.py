"""Connecting through proxies with the asyncio client: HTTP CONNECT (plain
and TLS, to ws:// and wss:// servers), SOCKS 4, 4a, 5 and 5h, credentials,
refusals, broken proxies, and the proxy settings of the environment.

The proxies are real, on 127.0.0.1 (tests/proxy_servers.py)."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

import ferrows
from ferrows.asyncio.client import process_exception
from ferrows.exceptions import InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, ProxyError

from ..proxy_servers import HTTPProxy, SOCKSProxy, closed_port, env_without_proxies, silent_server
from .utils import TIMEOUT, echo, port_of, serving


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env_without_proxies(monkeypatch)


@pytest.fixture(scope="module")
def tls() -> Iterator[dict[str, ssl.SSLContext]]:
    """Contexts for a wss:// server and an https:// proxy; the client
    contexts trust only the test CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    proxy = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "proxy.test").configure_cert(proxy)
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("elsewhere.test").configure_cert(other)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    yield {"server": server, "proxy": proxy, "other": other, "client": client}


async def roundtrip(uri: str, **kwargs: Any) -> Any:
    async with asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri, **kwargs) as ws:
            await ws.send("through")
            assert await ws.recv() == "through"
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == b"\x00" * 100_000
        assert ws.close_code == 1000
        return ws


def ws_uri(server: Any, host: str = "127.0.0.1", scheme: str = "ws") -> str:
    return f"{scheme}://{host}:{port_of(server)}/"


# ------------------------------------------------------------ HTTP proxies


async def test_ws_through_http_proxy() -> None:
    async with serving(echo) as server:
        port = port_of(server)
        with HTTPProxy() as proxy:
            await roundtrip(ws_uri(server), proxy=proxy.url)
    assert proxy.tunnels == 1
    request_line, _ = proxy.requests[0]
    assert request_line == f"CONNECT 127.0.0.1:{port} HTTP/1.1"
    assert proxy.headers()["host"] == f"127.0.0.1:{port}"
    assert proxy.headers()["user-agent"].startswith("Python/")
    assert "proxy-authorization" not in proxy.headers()


async def test_wss_through_http_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    async with serving(echo, ssl=tls["server"]) as server:
        port = port_of(server)
        with HTTPProxy() as proxy:
            ws = await roundtrip(ws_uri(server, scheme="wss"), proxy=proxy.url, ssl=tls["client"])
    assert ws.transport.get_extra_info("ssl_object").server_hostname == "127.0.0.1"
    assert proxy.tunnels == 1
    assert proxy.requests[0][0] == f"CONNECT 127.0.0.1:{port} HTTP/1.1"


async def test_wss_certificate_checked_through_tunnel(tls: dict[str, ssl.SSLContext]) -> None:
    """TLS runs end to end: the server's certificate is checked, not the proxy's."""
    async with serving(echo, ssl=tls["other"]) as server:
        with HTTPProxy() as proxy:
            with pytest.raises(ssl.SSLCertVerificationError):
                async with asyncio.timeout(TIMEOUT):
                    await ferrows.connect(ws_uri(server, scheme="wss"), proxy=proxy.url, ssl=tls["client"])
    assert proxy.tunnels == 1


async def test_ws_through_https_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    async with serving(echo) as server:
        with HTTPProxy(ssl_context=tls["proxy"]) as proxy:
            assert proxy.url.startswith("https://")
            ws = await roundtrip(ws_uri(server), proxy=proxy.url, proxy_ssl=tls["client"])
    assert ws.transport.get_extra_info("ssl_object").server_hostname == "127.0.0.1"
    assert proxy.tunnels == 1


async def test_wss_through_https_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    """TLS in TLS: to the proxy, and inside the tunnel to the server."""
    async with serving(echo, ssl=tls["server"]) as server:
        with HTTPProxy(ssl_context=tls["proxy"]) as proxy:
            ws = await roundtrip(
                ws_uri(server, scheme="wss"),
                proxy=proxy.url,
                proxy_ssl=tls["client"],
                proxy_server_hostname="proxy.test",
                ssl=tls["client"],
            )
    assert ws.transport.get_extra_info("ssl_object").server_hostname == "127.0.0.1"
    assert proxy.tunnels == 1


async def test_https_proxy_server_hostname(tls: dict[str, ssl.SSLContext]) -> None:
    async with serving(echo) as server:
        with HTTPProxy(ssl_context=tls["proxy"]) as proxy:
            ws = await roundtrip(
                ws_uri(server), proxy=proxy.url, proxy_ssl=tls["client"], proxy_server_hostname="proxy.test"
            )
            assert ws.transport.get_extra_info("ssl_object").server_hostname == "proxy.test"
            with pytest.raises(ssl.SSLCertVerificationError):
                async with asyncio.timeout(TIMEOUT):
                    await ferrows.connect(
                        ws_uri(server), proxy=proxy.url, proxy_ssl=tls["client"], proxy_server_hostname="nope.test"
                    )


async def test_https_proxy_untrusted() -> None:
    """Without proxy_ssl, the system's trust store rejects the test CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with HTTPProxy(ssl_context=context) as proxy:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url)
    assert proxy.requests == []


async def test_proxy_ssl_with_http_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    with pytest.raises(ValueError, match="proxy_ssl argument is incompatible with an http:// proxy"):
        await ferrows.connect("ws://127.0.0.1:9/", proxy="http://127.0.0.1:9", proxy_ssl=tls["client"])


async def test_proxy_ssl_none_with_https_proxy() -> None:
    with pytest.raises(ValueError, match="proxy_ssl=None is incompatible with an https:// proxy"):
        await ferrows.connect("ws://127.0.0.1:9/", proxy="https://127.0.0.1:9", proxy_ssl=None)


async def test_credentials() -> None:
    async with serving(echo) as server:
        with HTTPProxy(credentials=("alice", "s3cr3t:é")) as proxy:
            await roundtrip(ws_uri(server), proxy=f"http://alice:s3cr3t%3A%C3%A9@127.0.0.1:{proxy.port}")
    expected = "Basic " + base64.b64encode("alice:s3cr3t:é".encode()).decode()
    assert proxy.headers()["proxy-authorization"] == expected
    assert proxy.tunnels == 1


async def test_missing_credentials_407() -> None:
    with HTTPProxy(credentials=("alice", "secret")) as proxy:
        with pytest.raises(InvalidProxyStatus) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url)
    assert raised.value.response.status_code == 407
    assert raised.value.response.headers["Proxy-Authenticate"] == 'Basic realm="test"'
    assert str(raised.value) == "proxy rejected connection: HTTP 407"
    assert isinstance(raised.value, ProxyError)
    assert isinstance(raised.value, ferrows.InvalidHandshake)


async def test_wrong_credentials_407() -> None:
    with HTTPProxy(credentials=("alice", "secret")) as proxy:
        with pytest.raises(InvalidProxyStatus) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=f"http://alice:wrong@127.0.0.1:{proxy.port}")
    assert raised.value.response.status_code == 407


async def test_forbidden_403() -> None:
    """The test proxy refuses destinations other than 127.0.0.1."""
    with HTTPProxy() as proxy:
        with pytest.raises(InvalidProxyStatus) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://example.invalid/", proxy=proxy.url)
    assert raised.value.response.status_code == 403
    assert str(raised.value) == "proxy rejected connection: HTTP 403"
    assert proxy.requests[0][0] == "CONNECT example.invalid:80 HTTP/1.1"


async def test_proxy_headers_and_user_agent() -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            await roundtrip(
                ws_uri(server),
                proxy=proxy.url,
                user_agent_header=None,
                proxy_headers={"X-Tenant": "blue", "Proxy-Authorization": "Bearer token"},
            )
    headers = proxy.headers()
    assert "user-agent" not in headers
    assert headers["x-tenant"] == "blue"
    assert headers["proxy-authorization"] == "Bearer token"


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    ],
)
async def test_garbage_answer(answer: bytes) -> None:
    with HTTPProxy(answer=answer) as proxy:
        with pytest.raises(InvalidProxyMessage) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url)
    assert str(raised.value) == "did not receive a valid HTTP response from proxy"
    assert isinstance(raised.value.__cause__, ValueError)


async def test_closed_without_answer() -> None:
    with HTTPProxy(answer=b"") as proxy:
        with pytest.raises(InvalidProxyMessage) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url)
    assert isinstance(raised.value.__cause__, EOFError)


async def test_data_after_answer() -> None:
    with HTTPProxy(answer=b"HTTP/1.0 200 OK\r\n\r\nextra") as proxy:
        with pytest.raises(InvalidProxyMessage, match="proxy sent data after its response to CONNECT"):
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url)


async def test_unreachable_proxy() -> None:
    with pytest.raises(OSError) as raised:
        async with asyncio.timeout(TIMEOUT):
            await ferrows.connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{closed_port()}")
    assert isinstance(raised.value, ConnectionRefusedError)


async def test_silent_proxy_times_out() -> None:
    with silent_server() as port:
        with pytest.raises(TimeoutError, match="timed out during opening handshake"):
            await ferrows.connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.2)


async def test_invalid_proxy() -> None:
    with pytest.raises(InvalidProxy, match="scheme ftp isn't supported"):
        await ferrows.connect("ws://127.0.0.1:9/", proxy="ftp://127.0.0.1:21")


async def test_reconnect_retries_unreachable_proxy() -> None:
    """An unreachable proxy is a network error: the default policy retries it."""
    seen: list[Exception] = []

    def process(exc: Exception) -> Exception | None:
        seen.append(exc)
        return process_exception(exc) if len(seen) < 3 else exc

    def delays() -> Iterator[float]:
        while True:
            yield 0.0

    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ConnectionRefusedError):
        async with asyncio.timeout(TIMEOUT):
            async for _ in ferrows.connect(
                "ws://127.0.0.1:9/", proxy=url, process_exception=process, reconnect_delays=delays
            ):
                pytest.fail("connected")  # pragma: no cover
    assert len(seen) == 3


# ----------------------------------------------------------- SOCKS proxies


@pytest.mark.parametrize(
    ("scheme", "host", "seen"),
    [
        ("socks5h", "localhost", "localhost"),
        ("socks5", "127.0.0.1", "127.0.0.1"),
        ("socks4a", "localhost", "localhost"),
        ("socks4", "127.0.0.1", "127.0.0.1"),
    ],
)
async def test_ws_through_socks_proxy(scheme: str, host: str, seen: str) -> None:
    async with serving(echo) as server:
        port = port_of(server)
        with SOCKSProxy() as proxy:
            await roundtrip(ws_uri(server, host=host), proxy=proxy.url_for(scheme))
    version = 5 if scheme.startswith("socks5") else 4
    assert proxy.requests == [(version, seen, port)]
    assert proxy.tunnels == 1


async def test_wss_through_socks_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    async with serving(echo, ssl=tls["server"]) as server:
        with SOCKSProxy() as proxy:
            ws = await roundtrip(ws_uri(server, scheme="wss"), proxy=proxy.url, ssl=tls["client"])
    assert ws.transport.get_extra_info("ssl_object") is not None
    assert proxy.tunnels == 1


async def test_socks_credentials() -> None:
    async with serving(echo) as server:
        with SOCKSProxy(credentials=("bob", "pw")) as proxy:
            await roundtrip(ws_uri(server), proxy=proxy.url_for("socks5h"))
            with pytest.raises(ProxyError, match="failed to connect to SOCKS proxy") as raised:
                async with asyncio.timeout(TIMEOUT):
                    await ferrows.connect(ws_uri(server), proxy=f"socks5h://bob:wrong@127.0.0.1:{proxy.port}")
    assert type(raised.value.__cause__).__module__.startswith("python_socks")
    assert proxy.tunnels == 1


async def test_socks_refuses_destination() -> None:
    with SOCKSProxy() as proxy:
        with pytest.raises(ProxyError, match="failed to connect to SOCKS proxy"):
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://example.invalid/", proxy=proxy.url)
    assert proxy.requests == [(5, "example.invalid", 80)]


async def test_socks_unreachable() -> None:
    with pytest.raises(OSError):
        async with asyncio.timeout(TIMEOUT):
            await ferrows.connect("ws://127.0.0.1:9/", proxy=f"socks5h://127.0.0.1:{closed_port()}")


async def test_socks_rejects_http_proxy_arguments(tls: dict[str, ssl.SSLContext]) -> None:
    with pytest.raises(ValueError, match="proxy_ssl argument is incompatible with a socks5h:// proxy"):
        await ferrows.connect("ws://127.0.0.1:9/", proxy="socks5h://127.0.0.1:9", proxy_ssl=tls["client"])


async def test_socks_without_python_socks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"requires python-socks: pip install 'ferrows\[socks\]'"):
        await ferrows.connect("ws://127.0.0.1:9/", proxy="socks5h://127.0.0.1:9")


# ------------------------------------------------------------- environment


async def test_http_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            await roundtrip(ws_uri(server))
    assert proxy.tunnels == 1


async def test_no_proxy_bypasses_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            monkeypatch.setenv("no_proxy", "127.0.0.1")
            await roundtrip(ws_uri(server))
    assert proxy.requests == []


async def test_https_proxy_serves_ws_and_wss(monkeypatch: pytest.MonkeyPatch, tls: dict[str, ssl.SSLContext]) -> None:
    """As in websockets, https_proxy tunnels ws:// too, and http_proxy only ws://."""
    async with serving(echo, ssl=tls["server"]) as secure, serving(echo) as plain:
        with HTTPProxy() as http_proxy, HTTPProxy() as https_proxy:
            monkeypatch.setenv("http_proxy", http_proxy.url)
            await roundtrip(ws_uri(secure, scheme="wss"), ssl=tls["client"])
            assert http_proxy.requests == []
            monkeypatch.setenv("https_proxy", https_proxy.url)
            await roundtrip(ws_uri(secure, scheme="wss"), ssl=tls["client"])
            await roundtrip(ws_uri(plain))
    assert https_proxy.tunnels == 2
    assert http_proxy.requests == []


async def test_ws_proxy_and_socks_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(echo) as server:
        with SOCKSProxy() as socks, HTTPProxy() as http_proxy:
            monkeypatch.setenv("http_proxy", http_proxy.url)
            monkeypatch.setenv("ws_proxy", socks.url_for("socks5"))
            await roundtrip(ws_uri(server))
    assert socks.tunnels == 1
    assert http_proxy.requests == []


async def test_proxy_none_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            monkeypatch.setenv("https_proxy", proxy.url)
            await roundtrip(ws_uri(server), proxy=None)
    assert proxy.requests == []


async def test_sock_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            sock = socket.create_connection(("127.0.0.1", port_of(server)))
            await roundtrip(ws_uri(server), sock=sock, proxy_ssl=None)
    assert proxy.requests == []


async def test_invalid_proxy_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9/some/path")
    with pytest.raises(InvalidProxy, match="path is meaningless"):
        await ferrows.connect("ws://127.0.0.1:9/")


async def test_other_arguments_apply_to_the_proxy_connection() -> None:
    async with serving(echo) as server:
        with HTTPProxy() as proxy:
            ws = await roundtrip(ws_uri(server), proxy=proxy.url, local_addr=("127.0.0.1", 0))
    assert ws.remote_address[1] == proxy.port


async def test_wss_through_proxy_uses_default_context(tls: dict[str, ssl.SSLContext]) -> None:
    """Without ssl, the system's trust store checks the server, which the
    test CA isn't in."""
    async with serving(echo, ssl=tls["server"]) as server:
        with HTTPProxy() as proxy:
            with pytest.raises(ssl.SSLCertVerificationError):
                async with asyncio.timeout(TIMEOUT):
                    await ferrows.connect(ws_uri(server, scheme="wss"), proxy=proxy.url)
    assert proxy.tunnels == 1


async def test_socks_drops_other_proxy_arguments() -> None:
    """TLS settings for an HTTPS proxy don't apply to a SOCKS proxy."""
    async with serving(echo) as server:
        with SOCKSProxy() as proxy:
            await roundtrip(ws_uri(server), proxy=proxy.url, proxy_ssl_handshake_timeout=5)
    assert proxy.tunnels == 1


async def test_tunnel_closed_after_answer() -> None:
    """A proxy that says 200 then hangs up: the handshake sees the EOF at once."""
    with HTTPProxy(answer=b"HTTP/1.1 200 OK\r\n\r\n") as proxy:
        with pytest.raises(ferrows.InvalidMessage) as raised:
            async with asyncio.timeout(TIMEOUT):
                await ferrows.connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=TIMEOUT)
    assert isinstance(raised.value.__cause__, EOFError)


async def test_redirect_through_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hop of a redirect goes through the proxy configured for it."""

    def redirect(connection: Any, request: Any) -> Any:
        return ferrows.Response(302, "Found", ferrows.Headers({"Location": target_uri}))

    async def hello(ws: Any) -> None:
        await ws.send(f"hello {ws.request.path}")

    async with serving(hello) as target, serving(echo, process_request=redirect) as origin:
        target_uri = ws_uri(target) + "landed"
        with HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            async with asyncio.timeout(TIMEOUT):
                async with ferrows.connect(ws_uri(origin)) as ws:
                    assert await ws.recv() == "hello /landed"
            targets = [line.split(" ")[1] for line, _ in proxy.requests]
            assert targets == [f"127.0.0.1:{port_of(origin)}", f"127.0.0.1:{port_of(target)}"]
