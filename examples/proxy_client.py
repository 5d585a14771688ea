"""Sends one message through a proxy and prints the answer.

    python examples/proxy_client.py wss://echo.example/ --proxy http://user:pass@proxy:3128
    https_proxy=socks5h://proxy:1080 python examples/proxy_client.py wss://echo.example/

Without --proxy the proxy comes from the environment, as websockets reads it
(wss_proxy or ws_proxy, a system SOCKS proxy, https_proxy, http_proxy for
ws://; no_proxy exempts hosts). SOCKS proxies need ``pip install 'ferrows[socks]'``.
"""

from __future__ import annotations

import argparse
import asyncio

import ferrows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("--proxy", help="proxy address (default: from the environment)")
    parser.add_argument("--direct", action="store_true", help="ignore the environment's proxy")
    parser.add_argument("--message", default="Hello through the proxy")
    args = parser.parse_args()
    proxy: str | bool | None = None if args.direct else (args.proxy or True)
    try:
        async with ferrows.connect(args.uri, proxy=proxy) as websocket:
            await websocket.send(args.message)
            print(await websocket.recv())
    except ferrows.InvalidProxyStatus as exc:
        # 407: credentials missing or wrong; 403: the proxy refuses this server.
        print(f"the proxy refused: HTTP {exc.response.status_code} {exc.response.reason_phrase}")
    except ferrows.ProxyError as exc:
        print(f"the proxy failed: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
