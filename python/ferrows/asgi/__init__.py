"""ferrows inside ASGI servers: the WebSocket implementation for uvicorn.

:class:`WebSocketProtocol` is an :class:`asyncio.Protocol` that uvicorn
creates for each WebSocket upgrade, as it creates its own implementations,
so that FastAPI, Starlette and other ASGI applications run on ferrows' core
without changing a line::

    uvicorn.run(app, ws="ferrows.asgi:WebSocketProtocol")

Importing this module imports uvicorn (the ``asgi`` extra); nothing else in
ferrows does.
"""

from __future__ import annotations

from .protocol import WebSocketProtocol

__all__ = ["WebSocketProtocol"]
