"""uvicorn's WebSocket protocol, on ferrows' core.

uvicorn parses the HTTP request with its own protocol; when it is a
WebSocket upgrade, it creates the class named by its ``ws`` setting with
``(config, server_state, app_state)``, calls ``connection_made()`` with the
transport, replays the request with ``data_received()`` and hands the
transport over. From there :class:`WebSocketProtocol` drives a
:class:`~ferrows.server.ServerProtocol` in ``assemble`` mode as ferrows'
asyncio server does: each read crosses into the Rust core once and comes back
as whole messages and control events, and frames are written straight to the
transport.

What the application sees follows the ASGI WebSocket specification (2.4) and
uvicorn's own implementations, setting for setting: ``ws_max_size``,
``ws_max_queue``, ``ws_ping_interval``, ``ws_ping_timeout``,
``ws_per_message_deflate``, the ``server`` and ``date`` headers, ``root_path``,
TLS, the log lines, and shutdown, which closes connections with 1012.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal, cast

from uvicorn.config import Config
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.server import ServerState

from ..asyncio.wheel import wheel_for
from ..connection import COALESCE_LIMIT, WRITE_APART, WRITE_LINGER, keepalive_payload
from ..connection import linger_clock as _monotonic
from ..datastructures import Headers
from ..events import CloseReceived, PongReceived, ProtocolViolation
from ..exceptions import InvalidState
from ..extensions.permessage_deflate import enable_server_permessage_deflate
from ..frames import CloseCode
from ..http11 import Request, Response
from ..protocol import OPEN
from ..server import ServerProtocol
from .http import AcceptResponse, accept_head, add_defaults, asgi_headers, build_scope, denial_response, error_response

__all__ = ["WebSocketProtocol"]

_TEXT, _BINARY = 1, 2

READ_LIMIT = 2**16
"""Bytes of received messages the application has not taken yet above which
reading pauses, besides ``ws_max_queue`` messages: 32 messages of 16 MiB each
would otherwise be half a gigabyte per connection. Also bounds what a client
sends before the application accepts it."""

# Built once: a server shares its extension factories between connections.
_DEFLATE = enable_server_permessage_deflate(None)
_LOGGER = logging.getLogger("uvicorn.error")

_DISCONNECT_LOST: dict[str, Any] = {"type": "websocket.disconnect", "code": CloseCode.ABNORMAL_CLOSURE}


def addresses(transport: asyncio.BaseTransport) -> tuple[tuple[str, int | None] | None, tuple[str, int] | None]:
    """The scope's ``server`` and ``client``, as uvicorn's helpers give them
    (host and port; a Unix socket's path and None for ``server``, None for
    ``client``), from the addresses the transport keeps rather than from
    two system calls on its socket, which uvicorn's HTTP protocol made
    already for this connection."""
    local = transport.get_extra_info("sockname")
    remote = transport.get_extra_info("peername")
    if isinstance(local, (tuple, list)):
        server: tuple[str, int | None] | None = (str(local[0]), int(local[1]))
    elif isinstance(local, str):
        server = (local, None)
    else:
        server = None
    client = (str(remote[0]), int(remote[1])) if isinstance(remote, (tuple, list)) and remote else None
    return server, client


class _Handshake(ServerProtocol):
    """The core's server protocol with what a uvicorn connection needs of the
    handshake and no more: it records the offered subprotocols (the
    application picks one in ``websocket.accept``). An extensions offer
    seen before is negotiated from ``ServerProtocol``'s table."""

    offered: Sequence[str] = ()

    def select_subprotocol(self, subprotocols: Sequence[str]) -> None:
        self.offered = subprotocols


class WebSocketProtocol(asyncio.Protocol):
    """A WebSocket connection of uvicorn, on ferrows' Sans-I/O core.

    Pass the class, or its import string ``"ferrows.asgi:WebSocketProtocol"``,
    as uvicorn's ``ws`` setting (``uvicorn.run()``, ``uvicorn.Config``,
    ``--ws`` on the command line).

    Flow control is bounded both ways: reading pauses while the application
    has ``ws_max_queue`` messages (or :data:`READ_LIMIT` bytes) it has not
    received, and ``websocket.send`` waits while the transport's write buffer
    is above its high-water mark.

    Attributes ``close_timeout`` (seconds to wait for the client's close
    frame, 10), ``close_timer`` and ``ping_timer`` have the names of uvicorn's
    implementations, which its tests read (``ping_timer`` is not a timer
    handle: keepalive runs on the loop's shared timers, see
    ``ferrows.asyncio.wheel``).
    """

    # The state every connection starts in, as class attributes: a
    # connection assigns only what changes, and a handshake-only connection
    # (connect, upgrade, close) changes little of it.
    transport: asyncio.Transport = None  # type: ignore[assignment]
    server: tuple[str, int | None] | None = None
    client: tuple[str, int] | None = None
    scheme: Literal["ws", "wss"] = "ws"
    scope: dict[str, Any] | None = None
    _response: Response | None = None  # the 101, until the app accepts
    _receive: Any = None  # the core's entry points, once open
    _send: Any = None

    # Handshake: bytes the client sent after its request, kept until the
    # application accepts; what the application answered.
    _early: list[bytes] | None = None
    _early_size = 0
    _answered = False  # accepted, refused or responding
    _denial: tuple[int, Headers] | None = None  # response started
    _denial_body: list[bytes] | None = None  # its body parts, kept
    _denial_streamed = False  # its head is on the wire
    _denial_done = False

    # Receiving.
    _connect_pending = False
    _queued_bytes = 0
    _read_limit, _read_limit_low = READ_LIMIT, READ_LIMIT // 4
    _reading_paused = False
    _disconnect: dict[str, Any] | None = None

    # Sending and closing.
    _writing_paused = False
    _corked: list[bytes] | None = None  # small frames held: see _send_frame()
    _corked_size = 0
    _corked_at = 0.0  # when the first of them was held
    _uncork_handle: asyncio.Handle | None = None
    _closing = False  # a close frame went out or came in
    _app_closed = False  # the application sent websocket.close
    _lost = False
    close_timeout: float = 10.0
    close_timer: asyncio.TimerHandle | None = None
    _abort_handle: asyncio.TimerHandle | None = None

    # Keepalive, on the loop's shared timers (wheel.py) rather than a
    # call_later() per connection: the loop times of the next ping and of
    # the pending pong's deadline (0.0: none).
    _wheel_slot: tuple[int, int] | None = None
    _ping_due = 0.0
    _pong_due = 0.0
    _ping_payload: bytes | None = None
    _ping_sent_at = 0.0
    latency = 0.0
    """Round-trip time of the last keepalive ping, in seconds."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = _LOGGER
        self.root_path = config.root_path
        self.app_state = app_state
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks

        self.protocol = _Handshake(
            extensions=_DEFLATE if config.ws_per_message_deflate else None,
            max_size=config.ws_max_size,
            logger=self.logger,
        )
        self.protocol.assemble = True

        self._messages: collections.deque[str | bytes] = collections.deque()
        self._max_queue = max(1, config.ws_max_queue)
        self._max_queue_low = self._max_queue // 4
        self._receivers: list[asyncio.Future[None]] = []
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

        interval = config.ws_ping_interval
        self.ping_interval = interval if interval is not None and interval > 0 else None
        self.ping_timeout = config.ws_ping_timeout

    # ------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)  # type: ignore[arg-type]
        self.server, self.client = addresses(self.transport)
        if transport.get_extra_info("sslcontext"):
            self.scheme = "wss"
        if self.config.server_header:
            # On the errors the parser answers itself (a request over a limit).
            self.protocol.server_header = "uvicorn"
        self._trace("WebSocket connection made")

    def data_received(self, data: bytes) -> None:
        receive = self._receive
        if receive is not None:
            events = receive(data)
            if events:
                self._handle_events(events)
        elif self.scope is None and not self._answered:
            self._handshake_data(data)
        elif not self._answered:
            # Frames sent before the application accepted: kept for after
            # the 101, and no more than READ_LIMIT before reading pauses.
            if self._early is None:
                self._early = []
            self._early.append(data)
            self._early_size += len(data)
            if self._early_size > self._read_limit:
                self._pause_reading()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        events = self.protocol.events_received()
        if self._receive is not None and events:
            self._handle_events(events)
        # None: asyncio closes the transport, the client is done.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.connections.discard(self)
        self._trace("WebSocket connection lost")
        self._stop_keepalive()
        for handle in (self.close_timer, self._abort_handle):
            if handle is not None:
                handle.cancel()
        self.close_timer = self._abort_handle = None
        if self._disconnect is None:
            self._disconnect = _DISCONNECT_LOST
        self._wake_receivers()
        self._wake_drain_waiters()

    def pause_writing(self) -> None:
        self._writing_paused = True
        # A client flooding pings without reading would grow the buffer by
        # a pong per ping: the core keeps the latest only (RFC 6455 5.5.3).
        self.protocol.hold_pongs(True)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.protocol.hold_pongs(False):
            self._flush()
        self._wake_drain_waiters()

    # uvicorn's Server.shutdown() calls this for every connection.
    def shutdown(self) -> None:
        """Closes the connection for a server shutdown: with 1012 (Service
        Restart) once open, with a 500 while the application has not answered
        the upgrade, at once if a closing handshake is under way."""
        self._stop_keepalive()
        if self._closing or self._denial_done:
            self._cancel_close_timer()
        elif self.protocol.state is OPEN:
            self._closing = True
            self._set_disconnect({"type": "websocket.disconnect", "code": CloseCode.SERVICE_RESTART})
            self.protocol.send_close(CloseCode.SERVICE_RESTART)
            self._flush()
        elif not self._denial_streamed:
            self._send_500()
        self._close_transport()

    # ------------------------------------------------------------ handshake

    def _handshake_data(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            request = events[0]
            assert isinstance(request, Request)
            self._request_received(request)
        # A request over the parser's limits was answered already.
        self._flush()

    def _request_received(self, request: Request) -> None:
        """Checks the upgrade, then starts the application; an invalid
        upgrade (no key, wrong version...) is answered without it, as
        uvicorn's implementations do."""
        response = self.protocol.accept(request)
        if response.status_code != 101:
            self._answered = self._closing = True
            add_defaults(response.headers, self.server_state.default_headers)
            self.protocol.send_response(response)
            return
        self._response = response
        self.scope = build_scope(
            request,
            asgi_version=self.config.asgi_version,
            scheme=self.scheme,
            server=self.server,
            client=self.client,
            root_path=self.root_path,
            subprotocols=self.protocol.offered,
            state=self.app_state,
        )
        self._connect_pending = True
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _accept(self, message: Any) -> None:
        """``websocket.accept``: the 101 with uvicorn's default headers, the
        application's headers and subprotocol, then the frames that came
        early."""
        response = self._response
        assert response is not None
        subprotocol = message.get("subprotocol")
        # A header the application got wrong (a CR, say) raises here, and
        # the upgrade is still unanswered for the 500.
        head = accept_head(response, self.server_state.default_headers, message.get("headers"), subprotocol)
        self._log_access("[accepted]")
        self._answered = True
        self._response = None
        self.protocol.subprotocol = subprotocol or None
        if self.transport.is_closing():
            self._closing = True  # the client left while the app decided
            return
        protocol = self.protocol
        if response.headers._source is not None:
            # The core's 101, completed: sent as it is, without a second
            # Response object (see Response.serialize()).
            response._wire = (response.headers._source, head)
            protocol.send_response(response)
        else:
            protocol.send_response(AcceptResponse(response, head))
        self._receive = protocol.receive_events
        self._send = protocol.send_data
        events = protocol.events_received()
        self._flush()
        self._start_keepalive()
        early, self._early = self._early, None
        self._early_size = 0
        for data in early or ():
            events += self._receive(data)
        if events:
            self._handle_events(events)
        self._check_read_resume()

    def _refuse(self) -> None:
        """``websocket.close`` before accepting: 403, as the specification
        says."""
        self._log_access("403")
        self._answered = self._closing = self._app_closed = True
        self._set_disconnect(_DISCONNECT_LOST)
        response = self.protocol.reject(403, "")
        add_defaults(response.headers, self.server_state.default_headers)
        self.protocol.send_response(response)
        self._flush()

    def _send_500(self) -> None:
        """Answers the upgrade with 500 unless something was answered."""
        if self._answered and self._denial is None:
            return
        self._answered = self._closing = True
        self._denial = None
        self._write(error_response(self.server_state.default_headers).serialize())
        self._close_transport()

    # ---------------------------------------------- Denial Response extension

    def _start_denial(self, message: Any) -> None:
        """``websocket.http.response.start``: the head goes out at once when
        the application delimits the body (``content-length`` or
        ``transfer-encoding``), so that its body parts are written as they
        come; otherwise the parts are kept and sent with a
        ``content-length`` at the end."""
        status = message["status"]
        if not isinstance(status, int) or not 100 <= status < 600:
            raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
        headers = Headers(asgi_headers(message.get("headers") or ()))
        self._log_access(str(status))
        self._answered = True
        self._denial = (status, headers)
        if "content-length" in headers or "transfer-encoding" in headers:
            response = denial_response(status, headers, self.server_state.default_headers)
            self._denial_streamed = True
            self._write(response.serialize())

    def _denial_part(self, message: Any) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'.")
        body = bytes(message.get("body", b""))
        if self._denial_streamed:
            if body:
                self._write(body)
        else:
            if self._denial_body is None:
                self._denial_body = []
            self._denial_body.append(body)
        if message.get("more_body", False):
            return
        assert self._denial is not None
        if not self._denial_streamed:
            status, headers = self._denial
            body = b"".join(self._denial_body or ())
            self._write(denial_response(status, headers, self.server_state.default_headers, body).serialize())
        self._denial = None
        self._denial_body = None
        self._denial_done = self._closing = True
        self._set_disconnect(_DISCONNECT_LOST)
        self._close_transport()

    # ------------------------------------------------------------ application

    async def run_asgi(self) -> None:
        """Runs the application for this connection and closes it after.

        An application that raises gets 500 before accepting and 1011
        (Internal Error) after; one that returns without closing, 1000.
        """
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            self.logger.exception("Exception in ASGI application\n")
            self._app_ended(CloseCode.INTERNAL_ERROR)
        else:
            if not self._answered:
                self.logger.error("ASGI callable returned without completing handshake.")
            elif self._denial is not None:
                self.logger.error("ASGI callable returned without completing response.")
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
            self._app_ended(CloseCode.NORMAL_CLOSURE)
        finally:
            if self.close_timer is None:
                self._close_transport()

    def _app_ended(self, code: int) -> None:
        """Closes what the application left open when it ended."""
        if self._denial_streamed and not self._denial_done:
            return  # the head is out: the response ends with the connection
        if not self._answered or self._denial is not None:
            self._send_500()
        elif self.protocol.state is OPEN and not self._closing:
            self._close(code, "")

    async def receive(self) -> dict[str, Any]:
        """The ASGI ``receive`` callable: ``websocket.connect``, then each
        message as ``websocket.receive``, then ``websocket.disconnect`` with
        the close code and reason, which it keeps returning."""
        if self._connect_pending:
            self._connect_pending = False
            return {"type": "websocket.connect"}
        messages = self._messages
        while not messages:
            if self._disconnect is not None:
                return dict(self._disconnect)
            waiter = self.loop.create_future()
            self._receivers.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._receivers:
                    self._receivers.remove(waiter)
        message = messages.popleft()
        self._queued_bytes -= len(message)
        if self._reading_paused:
            self._check_read_resume()
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def send(self, message: Any) -> None:
        """The ASGI ``send`` callable.

        Waits while the write buffer is above its high-water mark, then
        writes.

        Raises:
            ClientDisconnected: (an :exc:`OSError`) if the client is gone or
                closed the connection.
            RuntimeError: For a message out of order.
        """
        if self._writing_paused and not self._lost:
            await self._drain()
        if self._lost:
            raise ClientDisconnected()
        kind = message["type"]
        if self._denial is not None:
            self._denial_part(message)
        elif not self._answered:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._refuse()
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif self._app_closed or self._denial_done:
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close' or response already completed."
            )
        elif self._closing or self._receive is None or self.protocol.state is not OPEN:
            raise ClientDisconnected()
        elif kind == "websocket.send":
            data = message.get("bytes")
            if data is not None:
                self._send_frame(_BINARY, data)
            elif (text := message.get("text")) is not None:
                self._send_frame(_TEXT, text)
            else:
                raise RuntimeError("Expected 'bytes' or 'text' in ASGI message 'websocket.send'.")
        elif kind == "websocket.close":
            self._app_closed = True
            code = message.get("code")
            self._close(CloseCode.NORMAL_CLOSURE if code is None else code, message.get("reason") or "")
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")

    # ------------------------------------------------------------- receiving

    def _handle_events(self, events: list[Any]) -> None:
        """Queues the messages of one read and handles its control events."""
        messages = self._messages
        control = False
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                if self._closing:
                    continue  # past the close: dropped, reading goes on
                messages.append(event)
                self._queued_bytes += len(event)
            else:
                control = True
                if kind is PongReceived:
                    self._pong_received(event.data)
                elif kind is CloseReceived:
                    self._close_received()
                elif kind is ProtocolViolation:
                    self._violation_received()
                # Pings: the core queued the pong.
        if control:
            self._flush()
        if messages:
            self._wake_receivers()
            if not self._reading_paused and (len(messages) >= self._max_queue or self._queued_bytes > self._read_limit):
                self._pause_reading()

    def _close_received(self) -> None:
        if self._closing:
            # The client's answer to our close frame: the handshake is over
            # and the core queued the end of the TCP connection.
            self._cancel_close_timer()
            return
        self._closing = True
        close = self.protocol.close_rcvd
        assert close is not None
        self._set_disconnect({"type": "websocket.disconnect", "code": close.code, "reason": close.reason})

    def _violation_received(self) -> None:
        """The client broke the protocol (1002), sent invalid UTF-8 (1007) or
        a message over ``ws_max_size`` (1009): the connection fails with that
        code at once; the messages before the violation stay for the
        application, followed by ``websocket.disconnect`` with the code."""
        if not self.protocol.fail_pending():
            return
        self._closing = True
        close = self.protocol.close_sent
        assert close is not None
        self._set_disconnect({"type": "websocket.disconnect", "code": close.code, "reason": close.reason})

    def _set_disconnect(self, event: dict[str, Any]) -> None:
        if self._disconnect is None:
            self._disconnect = event
            self._wake_receivers()

    def _wake_receivers(self) -> None:
        for waiter in self._receivers:
            if not waiter.done():
                waiter.set_result(None)

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self._lost:
            self._reading_paused = True
            self.transport.pause_reading()

    def _check_read_resume(self) -> None:
        if not self._reading_paused or self._receive is None:
            return
        if self._closing or (len(self._messages) <= self._max_queue_low and self._queued_bytes <= self._read_limit_low):
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()

    # --------------------------------------------------------------- sending

    def _send_frame(self, opcode: int, data: Any) -> None:
        """Frames a message and writes it; a large ``bytes`` payload goes
        out after its header as it is, without a copy."""
        try:
            if opcode == _BINARY and type(data) is bytes and len(data) >= WRITE_APART:
                header = self.protocol.send_header(opcode, len(data), True)
                if header is not None:
                    self._write(header)
                    self._write(data)
                    return
            data = self._send(opcode, data)
        except InvalidState:
            raise ClientDisconnected() from None
        if self._messages and len(data) < COALESCE_LIMIT:
            # More received messages wait for the application: its answers
            # to them go out together, in one system call at the end of
            # this loop iteration, rather than one each (as ferrows' asyncio
            # server does; most of a pipelined echo's cost otherwise).
            # Past COALESCE_LIMIT held, they go out now: an app sending in a
            # loop that never waits would otherwise hold them all, unseen
            # by the transport's high-water mark. Past WRITE_LINGER too, so
            # that the client works on the first answers meanwhile.
            corked = self._corked
            if corked is None:
                corked = self._corked = []
                self._corked_at = _monotonic()
            corked.append(data)
            self._corked_size += len(data)
            if self._corked_size >= COALESCE_LIMIT or _monotonic() - self._corked_at >= WRITE_LINGER:
                self._uncork()
            elif self._uncork_handle is None:
                self._uncork_handle = self.loop.call_soon(self._uncork)
        elif self._corked and len(data) < WRITE_APART:
            # The answer to the last queued message: written with the held
            # ones, in one write (one segment for the client to read); a
            # large one after them, rather than copied.
            self._corked.append(data)
            self._uncork()
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._corked:
            self._uncork()  # held frames first, to keep the order
        if not self._lost:
            self.transport.write(data)

    def _uncork(self) -> None:
        if self._uncork_handle is not None:
            self._uncork_handle.cancel()
            self._uncork_handle = None
        data = b"".join(self._corked or ())
        self._corked = None
        self._corked_size = 0
        if not self._lost:
            self.transport.write(data)

    def _flush(self) -> None:
        """Writes what the core queued (pongs, close frames); its end of
        the TCP connection, an empty item, closes the transport: a server
        closes first (RFC 6455 section 7.1.1)."""
        for data in self.protocol.data_to_send():
            if data:
                self._write(data)
            else:
                self._close_transport()

    async def _drain(self) -> None:
        while self._writing_paused and not self._lost:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _wake_drain_waiters(self) -> None:
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # --------------------------------------------------------------- closing

    def _close(self, code: int, reason: str) -> None:
        """Starts the closing handshake and waits ``close_timeout`` for the
        client's close frame; reading resumes so that it can arrive.

        Raises:
            ProtocolError: If ``code`` is not a close code an endpoint may
                send, or ``reason`` is longer than 123 bytes.
        """
        self.protocol.send_close(code, reason)
        self._closing = True
        self._set_disconnect({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._flush()
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()
        if not self._lost and not self.transport.is_closing():
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self.close_timer = None
        self._trace("WebSocket close timeout")
        self._close_transport()

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    def _close_transport(self) -> None:
        """Closes the transport once its buffer is written, and aborts it if
        that takes more than ``close_timeout``: a client that stopped reading
        would keep it open forever."""
        if self._lost:
            return
        if self._corked:
            self._uncork()
        self._cancel_close_timer()
        transport = self.transport
        # With nothing left to write, close() ends the connection at once:
        # no timer then (most connections, a handshake-only one always).
        try:
            buffered = transport.get_write_buffer_size()
        except (AttributeError, NotImplementedError):  # a transport double
            buffered = 1
        transport.close()
        if buffered and self._abort_handle is None:
            self._abort_handle = self.loop.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        self._abort_handle = None
        if not self._lost:
            self.transport.abort()

    # ------------------------------------------------------------- keepalive

    @property
    def ping_timer(self) -> tuple[int, int] | None:
        """The pending keepalive call's slot on the loop's shared timers, or
        None without one (keepalive disabled, or the connection over): the
        name of uvicorn's attribute, which its tests compare to None."""
        return self._wheel_slot

    def _start_keepalive(self) -> None:
        if self.ping_interval is not None and not self._lost:
            self._ping_due = self.loop.time() + self.ping_interval
            wheel_for(self.loop).schedule(self, self.ping_interval)

    def _stop_keepalive(self) -> None:
        if self._wheel_slot is not None:
            wheel_for(self.loop).cancel(self)
        self._ping_due = self._pong_due = 0.0
        self._ping_payload = None

    def _on_wheel(self, now: float) -> None:
        """The shared timers' call: the pending pong's deadline passed, or
        the next ping is due; then back on them for what is still pending."""
        if self._pong_due and now >= self._pong_due:
            self._pong_due = 0.0
            self._keepalive_timed_out()
            return
        if self._ping_due and now >= self._ping_due:
            self._ping_due = 0.0
            self._send_keepalive_ping()
        due = self._pong_due or self._ping_due
        if due and not self._lost and self._wheel_slot is None:
            wheel_for(self.loop).schedule(self, due - now)

    def _send_keepalive_ping(self) -> None:
        """Sends a ping; without its pong within ``ws_ping_timeout`` the
        connection fails with 1011. Also frees the compression state of a
        connection idle since the previous ping."""
        if self._closing or self._lost or self.protocol.state is not OPEN:
            return
        now = time.monotonic()
        payload = keepalive_payload({}, now)
        self._ping_payload, self._ping_sent_at = payload, now
        self._write(self._send(9, payload))
        self.protocol.compact_if_idle()
        assert self.ping_interval is not None
        if self.ping_timeout is not None:
            self._pong_due = self.loop.time() + self.ping_timeout
        else:
            self._ping_due = self.loop.time() + self.ping_interval

    def _pong_received(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited, or for an older ping
        self._ping_payload = None
        self.latency = time.monotonic() - self._ping_sent_at
        if self._pong_due:
            self._pong_due = 0.0
            self._start_keepalive()

    def _keepalive_timed_out(self) -> None:
        if self._closing or self._lost:
            return
        self._trace("WebSocket keepalive ping timeout")
        self._closing = True
        reason = "keepalive ping timeout"
        self._set_disconnect({"type": "websocket.disconnect", "code": CloseCode.INTERNAL_ERROR, "reason": reason})
        self.protocol.fail(CloseCode.INTERNAL_ERROR, reason)
        self._flush()

    # --------------------------------------------------------------- logging

    def _log_access(self, outcome: str) -> None:
        """uvicorn's line for a WebSocket handshake, as its implementations
        log it on ``uvicorn.error``: ``'client - "WebSocket /path" outcome'``;
        its parts are not built when INFO is off (as a production server runs)."""
        assert self.scope is not None
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s - "WebSocket %s" %s',
            get_client_addr(self.scope),  # type: ignore[arg-type]
            get_path_with_query_string(self.scope),  # type: ignore[arg-type]
            outcome,
        )

    def _trace(self, what: str) -> None:
        if self.logger.isEnabledFor(TRACE_LOG_LEVEL):
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%s%s", prefix, what)
