#!/usr/bin/env python
"""A FastAPI app, unchanged, whose WebSocket connections run on ferrows' core.

    python examples/fastapi_echo.py --port 8000

The same as ``uvicorn fastapi_echo:app --ws ferrows.asgi:WebSocketProtocol``:
the one ferrows-specific line is the ``ws`` setting. The port comes from
``--port``, else the ``PORT`` environment variable, else 8000. uvicorn logs
its address once it listens, and stops cleanly on Ctrl-C or SIGTERM (open
connections are closed with 1012).
"""

import argparse
import os

import fastapi
import uvicorn

app = fastapi.FastAPI()


@app.websocket("/")
async def echo(websocket: fastapi.WebSocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except fastapi.WebSocketDisconnect:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws="ferrows.asgi:WebSocketProtocol")
