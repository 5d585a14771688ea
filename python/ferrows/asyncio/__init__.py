"""WebSocket server and client on asyncio (``asyncio.Protocol`` based)."""
