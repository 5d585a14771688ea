"""Connecting through proxies with the threading client, against real
proxies on 127.0.0.1 (tests/proxy_servers.py), and the parsing of proxy
addresses and settings shared by both layers."""

from __future__ import annotations

import base64
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from ferrows.exceptions import InvalidMessage, InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, ProxyError
from ferrows.proxy import ConnectResponseParser, Proxy, get_proxy, parse_proxy, prepare_connect_request, select_proxy
from ferrows.sync.client import connect
from ferrows.uri import parse_uri

from ..proxy_servers import HTTPProxy, SOCKSProxy, closed_port, env_without_proxies, silent_server
from .utils import TIMEOUT, echo, port_of, serving


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env_without_proxies(monkeypatch)


@pytest.fixture(scope="module")
def tls() -> Iterator[dict[str, ssl.SSLContext]]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    proxy = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "proxy.test").configure_cert(proxy)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    yield {"server": server, "proxy": proxy, "client": client}


def roundtrip(uri: str, **kwargs: Any) -> Any:
    kwargs.setdefault("open_timeout", TIMEOUT)
    with connect(uri, **kwargs) as ws:
        ws.send("through")
        assert ws.recv(TIMEOUT) == "through"
        ws.send(b"\x00" * 100_000)
        assert ws.recv(TIMEOUT) == b"\x00" * 100_000
    assert ws.close_code == 1000
    return ws


def ws_uri(server: Any, host: str = "127.0.0.1", scheme: str = "ws") -> str:
    return f"{scheme}://{host}:{port_of(server)}/"


# ------------------------------------------------------------ HTTP proxies


def test_ws_through_http_proxy() -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        port = port_of(server)
        roundtrip(ws_uri(server), proxy=proxy.url)
    assert proxy.tunnels == 1
    assert proxy.requests[0][0] == f"CONNECT 127.0.0.1:{port} HTTP/1.1"
    assert proxy.headers()["host"] == f"127.0.0.1:{port}"
    assert proxy.headers()["user-agent"].startswith("Python/")


def test_wss_through_http_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    with serving(echo, ssl=tls["server"]) as server, HTTPProxy() as proxy:
        ws = roundtrip(ws_uri(server, scheme="wss"), proxy=proxy.url, ssl=tls["client"])
    assert isinstance(ws.socket, ssl.SSLSocket)
    assert proxy.tunnels == 1


def test_ws_through_https_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    with serving(echo) as server, HTTPProxy(ssl_context=tls["proxy"]) as proxy:
        ws = roundtrip(ws_uri(server), proxy=proxy.url, proxy_ssl=tls["client"], proxy_server_hostname="proxy.test")
    assert ws.socket.server_hostname == "proxy.test"
    assert proxy.tunnels == 1


def test_wss_through_https_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    """TLS in TLS, relayed by a thread that ends with the connection."""
    before = {thread for thread in threading.enumerate() if thread.name == "ferrows-proxy-tls"}
    with serving(echo, ssl=tls["server"]) as server, HTTPProxy(ssl_context=tls["proxy"]) as proxy:
        ws = roundtrip(ws_uri(server, scheme="wss"), proxy=proxy.url, proxy_ssl=tls["client"], ssl=tls["client"])
        for size in (1, 20_000, 1_000_000):
            with connect(
                ws_uri(server, scheme="wss"), proxy=proxy.url, proxy_ssl=tls["client"], ssl=tls["client"]
            ) as ws2:
                ws2.send(b"\x01" * size)
                assert ws2.recv(TIMEOUT) == b"\x01" * size
                assert any(thread.name == "ferrows-proxy-tls" for thread in threading.enumerate())
    assert ws.socket.server_hostname == "127.0.0.1"
    assert proxy.tunnels == 4
    relays = {thread for thread in threading.enumerate() if thread.name == "ferrows-proxy-tls"} - before
    for relay in relays:
        relay.join(TIMEOUT)
        assert not relay.is_alive()


def test_https_proxy_untrusted() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with HTTPProxy(ssl_context=context) as proxy:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=TIMEOUT)
    assert proxy.requests == []


def test_proxy_ssl_with_http_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    with pytest.raises(ValueError, match="proxy_ssl argument is incompatible with an http:// proxy"):
        connect("ws://127.0.0.1:9/", proxy="http://127.0.0.1:9", proxy_ssl=tls["client"])


def test_credentials() -> None:
    with serving(echo) as server, HTTPProxy(credentials=("alice", "pw")) as proxy:
        roundtrip(ws_uri(server), proxy=f"http://alice:pw@127.0.0.1:{proxy.port}")
    assert proxy.headers()["proxy-authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()


@pytest.mark.parametrize("userinfo", ["", "alice:wrong@"])
def test_credentials_refused_407(userinfo: str) -> None:
    with HTTPProxy(credentials=("alice", "pw")) as proxy:
        with pytest.raises(InvalidProxyStatus) as raised:
            connect("ws://127.0.0.1:9/", proxy=f"http://{userinfo}127.0.0.1:{proxy.port}", open_timeout=TIMEOUT)
    assert raised.value.response.status_code == 407
    assert str(raised.value) == "proxy rejected connection: HTTP 407"


def test_forbidden_403() -> None:
    with HTTPProxy(status=403) as proxy:
        with pytest.raises(InvalidProxyStatus) as raised:
            connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=TIMEOUT)
    assert raised.value.response.status_code == 403


def test_proxy_headers() -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        roundtrip(ws_uri(server), proxy=proxy.url, proxy_headers=[("X-Tenant", "blue")], user_agent_header=None)
    assert proxy.headers()["x-tenant"] == "blue"
    assert "user-agent" not in proxy.headers()


@pytest.mark.parametrize(
    ("answer", "cause"),
    [(b"garbage\r\n\r\n", ValueError), (b"HTTP/1.1 200 OK\r\n", EOFError), (b"", EOFError)],
)
def test_garbage_answer(answer: bytes, cause: type[Exception]) -> None:
    with HTTPProxy(answer=answer) as proxy:
        with pytest.raises(InvalidProxyMessage) as raised:
            connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=TIMEOUT)
    assert str(raised.value) == "did not receive a valid HTTP response from proxy"
    assert isinstance(raised.value.__cause__, cause)


def test_unreachable_proxy() -> None:
    with pytest.raises(ConnectionRefusedError):
        connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{closed_port()}", open_timeout=TIMEOUT)


def test_silent_proxy_times_out() -> None:
    with silent_server() as port:
        with pytest.raises(TimeoutError, match="timed out during opening handshake"):
            connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.2)


def test_invalid_proxy() -> None:
    with pytest.raises(InvalidProxy, match="hostname isn't provided"):
        connect("ws://127.0.0.1:9/", proxy="http://:8080")


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
def test_ws_through_socks_proxy(scheme: str, host: str, seen: str) -> None:
    with serving(echo) as server, SOCKSProxy() as proxy:
        port = port_of(server)
        roundtrip(ws_uri(server, host=host), proxy=proxy.url_for(scheme))
    assert proxy.requests == [(5 if scheme.startswith("socks5") else 4, seen, port)]


def test_wss_through_socks_proxy(tls: dict[str, ssl.SSLContext]) -> None:
    with serving(echo, ssl=tls["server"]) as server, SOCKSProxy() as proxy:
        ws = roundtrip(ws_uri(server, scheme="wss"), proxy=proxy.url, ssl=tls["client"])
    assert isinstance(ws.socket, ssl.SSLSocket)
    assert proxy.tunnels == 1


def test_socks_credentials() -> None:
    with serving(echo) as server, SOCKSProxy(credentials=("bob", "pw")) as proxy:
        roundtrip(ws_uri(server), proxy=proxy.url_for("socks5"))
        with pytest.raises(ProxyError, match="failed to connect to SOCKS proxy"):
            connect(ws_uri(server), proxy=f"socks5://bob:bad@127.0.0.1:{proxy.port}", open_timeout=TIMEOUT)
    assert proxy.tunnels == 1


def test_socks_unreachable() -> None:
    with pytest.raises(OSError):
        connect("ws://127.0.0.1:9/", proxy=f"socks5h://127.0.0.1:{closed_port()}", open_timeout=TIMEOUT)


def test_socks_silent_times_out() -> None:
    with silent_server() as port:
        with pytest.raises(TimeoutError, match="timed out during opening handshake"):
            connect("ws://127.0.0.1:9/", proxy=f"socks5h://127.0.0.1:{port}", open_timeout=0.2)


def test_socks_rejects_http_proxy_arguments() -> None:
    with pytest.raises(ValueError, match="proxy_headers argument is incompatible with a socks5:// proxy"):
        connect("ws://127.0.0.1:9/", proxy="socks5://127.0.0.1:9", proxy_headers={"X": "y"})


def test_socks_without_python_socks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match="connecting through a SOCKS proxy requires python-socks"):
        connect("ws://127.0.0.1:9/", proxy="socks5h://127.0.0.1:9")


# ------------------------------------------------------------- environment


def test_http_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        roundtrip(ws_uri(server))
    assert proxy.tunnels == 1


def test_no_proxy_bypasses_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        roundtrip(ws_uri(server))
    assert proxy.requests == []


def test_proxy_none_and_sock_ignore_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        roundtrip(ws_uri(server), proxy=None)
        sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=TIMEOUT)
        roundtrip(ws_uri(server), sock=sock)
    assert proxy.requests == []


def test_socks_proxy_of_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system SOCKS proxy comes as http://host:port and means SOCKS 5h."""
    with serving(echo) as server, SOCKSProxy() as proxy:
        monkeypatch.setenv("socks_proxy", f"http://127.0.0.1:{proxy.port}")
        roundtrip(ws_uri(server, host="localhost"))
    assert proxy.requests[0][:2] == (5, "localhost")


# --------------------------------------------------- addresses and settings


def test_parse_proxy() -> None:
    assert parse_proxy("http://proxy:8080") == Proxy("http", "proxy", 8080)
    assert parse_proxy("https://PROXY/") == Proxy("https", "proxy", 443)
    assert parse_proxy("socks5h://u%40x:p%3Aw@proxy:1080") == Proxy("socks5h", "proxy", 1080, "u@x", "p:w")
    assert parse_proxy("http://u:p@proxy").user_info == ("u", "p")
    assert parse_proxy("http://proxy").user_info is None
    assert parse_proxy("http://bücher.example:3128").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ftp://proxy", "scheme ftp isn't supported"),
        ("proxy:8080", "scheme proxy isn't supported"),
        ("http://", "hostname isn't provided"),
        ("http://proxy/path", "path is meaningless"),
        ("http://proxy/?q", "query is meaningless"),
        ("http://proxy/#f", "fragment is meaningless"),
        ("http://proxy:http", "Port could not be cast"),
        ("http://user@proxy", "username provided without password"),
        ("http://u:%ff@proxy", "user information isn't valid UTF-8"),
        ("http://a..b\u00e9/", "hostname can't be encoded with IDNA"),
    ],
)
def test_parse_proxy_errors(address: str, message: str) -> None:
    with pytest.raises(InvalidProxy) as raised:
        parse_proxy(address)
    assert message in str(raised.value)
    assert raised.value.proxy == address


@pytest.mark.parametrize(
    ("env", "uri", "expected"),
    [
        ({}, "ws://example.com/", None),
        ({"http_proxy": "http://h:1"}, "ws://example.com/", "http://h:1"),
        ({"http_proxy": "http://h:1"}, "wss://example.com/", None),
        ({"https_proxy": "http://s:1", "http_proxy": "http://h:1"}, "ws://example.com/", "http://s:1"),
        ({"https_proxy": "http://s:1"}, "wss://example.com/", "http://s:1"),
        ({"wss_proxy": "http://w:1", "https_proxy": "http://s:1"}, "wss://example.com/", "http://w:1"),
        ({"ws_proxy": "socks5://w:1", "https_proxy": "http://s:1"}, "ws://example.com/", "socks5://w:1"),
        ({"socks_proxy": "http://k:1", "https_proxy": "http://s:1"}, "wss://example.com/", "socks5h://k:1"),
        ({"socks_proxy": "socks4://k:1"}, "ws://example.com/", "socks4://k:1"),
        ({"https_proxy": "http://s:1", "no_proxy": "example.com"}, "wss://example.com/", None),
        ({"https_proxy": "http://s:1", "no_proxy": ".example.com"}, "wss://www.example.com/", None),
        ({"https_proxy": "http://s:1", "no_proxy": "other.com"}, "wss://example.com/", "http://s:1"),
        ({"HTTPS_PROXY": "http://s:1"}, "wss://example.com/", "http://s:1"),
    ],
)
def test_get_proxy(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], uri: str, expected: str | None) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_proxy(parse_uri(uri)) == expected


def test_select_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    wsuri = parse_uri("ws://example.com/")
    monkeypatch.setenv("http_proxy", "http://h:1")
    assert select_proxy(True, wsuri, {}) == Proxy("http", "h", 1)
    assert select_proxy("socks5://k:2", wsuri, {}) == Proxy("socks5", "k", 2)
    kwargs: dict[str, Any] = {"proxy_ssl": None, "proxy_server_hostname": "x", "local_addr": None}
    assert select_proxy(None, wsuri, kwargs) is None
    assert kwargs == {"local_addr": None}
    assert select_proxy(False, wsuri, {}) is None
    for target in ("sock", "host", "port", "address"):
        assert select_proxy(True, wsuri, {target: object()}) is None
    assert select_proxy("http://h:1", wsuri, {"sock": object()}) is None
    with pytest.raises(ValueError, match="host, port and address arguments are incompatible with a proxy"):
        select_proxy("http://h:1", wsuri, {"port": 1})


def test_prepare_connect_request() -> None:
    proxy = Proxy("http", "proxy", 8080, "user", "pass")
    request = prepare_connect_request(proxy, parse_uri("wss://[::1]/chat"), "UA/1", {"Host": "other", "X-A": "1"})
    assert request == (
        b"CONNECT [::1]:443 HTTP/1.1\r\n"
        b"User-Agent: UA/1\r\n"
        b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
        b"Host: other\r\n"
        b"X-A: 1\r\n\r\n"
    )
    request = prepare_connect_request(Proxy("http", "p", 1), parse_uri("ws://example.com:8000/"), None)
    assert request == b"CONNECT example.com:8000 HTTP/1.1\r\nHost: example.com:8000\r\n\r\n"


def test_without_open_timeout() -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        roundtrip(ws_uri(server), proxy=proxy.url, open_timeout=None)
    assert proxy.tunnels == 1


def test_source_address_applies_to_the_proxy_connection() -> None:
    with serving(echo) as server, HTTPProxy() as proxy:
        with connect(ws_uri(server), proxy=proxy.url, source_address=("127.0.0.1", 0), open_timeout=TIMEOUT) as ws:
            assert ws.remote_address == ("127.0.0.1", proxy.port)
            ws.send("hi")
            assert ws.recv(TIMEOUT) == "hi"


def test_tunnel_closed_after_answer() -> None:
    with HTTPProxy(answer=b"HTTP/1.1 200 OK\r\n\r\n") as proxy:
        with pytest.raises(InvalidMessage) as raised:
            connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=TIMEOUT)
    assert isinstance(raised.value.__cause__, EOFError)


def test_connect_response_in_pieces() -> None:
    parser = ConnectResponseParser()
    answer = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"
    for byte in answer[:-1]:
        assert parser.feed(bytes([byte])) is None
    response = parser.feed(answer[-1:])
    assert response is not None
    assert response.status_code == 200
    assert response.headers["Via"] == "test"


def test_redirect_through_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferrows import Headers, Response

    def hello(ws: Any) -> None:
        ws.send(f"hello {ws.request.path}")

    with serving(hello) as target:
        target_uri = ws_uri(target) + "landed"

        def redirect(connection: Any, request: Any) -> Any:
            return Response(302, "Found", Headers({"Location": target_uri}))

        with serving(echo, process_request=redirect) as origin, HTTPProxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            with connect(ws_uri(origin), open_timeout=TIMEOUT) as ws:
                assert ws.recv(TIMEOUT) == "hello /landed"
            targets = [line.split(" ")[1] for line, _ in proxy.requests]
            assert targets == [f"127.0.0.1:{port_of(origin)}", f"127.0.0.1:{port_of(target)}"]


def test_server_closes_through_tls_in_tls(tls: dict[str, ssl.SSLContext]) -> None:
    """The server's close crosses the relay, and the relay then ends."""
    from ferrows.exceptions import ConnectionClosedOK

    def bye(ws: Any) -> None:
        ws.send("bye")
        ws.close(1001)

    with serving(bye, ssl=tls["server"]) as server, HTTPProxy(ssl_context=tls["proxy"]) as proxy:
        with connect(
            ws_uri(server, scheme="wss"),
            proxy=proxy.url,
            proxy_ssl=tls["client"],
            ssl=tls["client"],
            open_timeout=TIMEOUT,
        ) as ws:
            relays = [thread for thread in threading.enumerate() if thread.name == "ferrows-proxy-tls"]
            assert relays
            assert ws.recv(TIMEOUT) == "bye"
            with pytest.raises(ConnectionClosedOK):
                ws.recv(TIMEOUT)
        assert ws.close_code == 1001
        for relay in relays:
            relay.join(TIMEOUT)
            assert not relay.is_alive()
