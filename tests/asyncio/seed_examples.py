"""The handlers of the user's asyncio-server guide, copied verbatim.

Only the imports differ: ``import ferrows as websockets`` stands for
``import websockets``, and ``from websockets import X`` becomes
``from ferrows import X`` (the real websockets package is installed too).
The ``main()`` functions, which bind localhost:8765 and run forever, are
rebuilt in ``test_seed_examples.py`` with the same arguments on port 0.
"""

import asyncio
import json

import ferrows as websockets
from ferrows import Request, Response, basic_auth

# --- Basic Echo Server


async def echo_handler(websocket):
    """Simple echo handler that returns received messages."""
    async for message in websocket:
        await websocket.send(f"Echo: {message}")


# --- Chat Server with Broadcasting

# Keep track of connected clients
clients: set[websockets.ServerConnection] = set()


async def chat_handler(websocket):
    """Chat server handler with broadcasting."""
    # Register client
    clients.add(websocket)
    print(f"Client connected: {websocket.remote_address}")

    try:
        async for message in websocket:
            try:
                # Parse JSON message
                data = json.loads(message)
                chat_message = {
                    "user": data.get("user", "Anonymous"),
                    "message": data.get("message", ""),
                    "timestamp": asyncio.get_event_loop().time(),
                }

                # Broadcast to all connected clients
                broadcast_message = json.dumps(chat_message)
                websockets.broadcast(clients, broadcast_message)

            except json.JSONDecodeError:
                # Send error response
                error = {"error": "Invalid JSON format"}
                await websocket.send(json.dumps(error))

    except websockets.ConnectionClosedError:
        pass
    finally:
        # Unregister client
        clients.discard(websocket)
        print(f"Client disconnected: {websocket.remote_address}")


# --- Authenticated Server


@basic_auth("admin", "secret123")
async def protected_handler(websocket):
    """Handler that requires authentication."""
    await websocket.send("Welcome! You are authenticated.")

    async for message in websocket:
        if message.lower() == "status":
            await websocket.send("Server is running normally")
        else:
            await websocket.send(f"Received: {message}")


# --- Server with Custom Request Processing


async def process_request(connection, request: Request):
    """Custom request processing before WebSocket upgrade."""
    # Check custom header
    api_key = request.headers.get("X-API-Key")
    if not api_key or api_key != "valid-api-key":
        return Response(403, "Forbidden", b"Invalid API key")

    # Allow upgrade to proceed
    return None


async def api_handler(websocket):
    """API handler for authenticated clients."""
    await websocket.send("API connection established")

    async for message in websocket:
        # Process API commands
        if message.startswith("GET /"):
            await websocket.send('{"status": "success", "data": "..."}')
        else:
            await websocket.send('{"error": "Unknown command"}')


# --- Unix Domain Socket Server


async def unix_handler(websocket):
    """Handler for Unix socket connections."""
    await websocket.send("Connected via Unix socket")

    async for message in websocket:
        await websocket.send(f"Unix echo: {message}")
