"""Groups of connections, and publishing to them from any process: :class:`Hub`.

A :class:`Hub` keeps, for each group name, the open connections of this
process that joined it. :meth:`Hub.publish` sends a message to every member
with :func:`~ferrows.asyncio.connection.broadcast`: framed once per encoding,
written without waiting, a slow connection never holding up the others.

With a Redis URL, the hub also carries each message to the hubs of every
other process attached to the same Redis (on this machine or others), over
one Redis pub/sub channel: each process holds one subscription however many
groups and members it has, and frames each message once for its own members.
The publishing process delivers to its own members at once and skips its
echo from Redis, so that its members are served even while Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
import urllib.parse
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..typing import Data, LoggerLike
from .connection import Connection, broadcast

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["Hub", "HubUnavailable"]

HUB_LOGGER = "ferrows.hub"

# A message on the Redis channel: the publishing hub's id, the kind (text or
# binary), the group's length and name in UTF-8, then the payload as given.
_ORIGIN_SIZE = 16
_HEADER = struct.Struct("!16scH")
_TEXT, _BINARY = b"t", b"b"


class HubUnavailable(ConnectionError):
    """Raised by :meth:`Hub.publish` when Redis could not take the message
    within ``publish_timeout``.

    The members of the publishing process already received it; members in
    other processes may not have.
    """


class Hub:
    """Groups (rooms) of connections, published to from this process or, with
    Redis, from any process attached to the same Redis.

    ``Hub()`` keeps everything in this process. ``Hub("redis://host:6379/0")``
    also publishes through Redis and delivers what other processes publish.
    It connects on first use, in the running event loop, so that a hub made
    at import time (one per worker process) works; :meth:`wait_connected`
    waits for the subscription. Close it with :meth:`close`, or use it as an
    async context manager.

    Delivery is at most once: a message published while a process's
    subscription is down (Redis restarting) does not reach that process.
    With ``replay=N``, the messages go through a Redis stream that keeps the
    last N instead of pub/sub: a hub whose connection to Redis dropped
    delivers, once connected again, what was published meanwhile, if it is
    among the last N (older ones are lost, with a warning in the log). The
    window lives in Redis: a Redis restarted without persistence loses it.
    A connection to Redis that dies without closing (a host gone, a network
    partition, a Redis process stopped) is noticed within ``ping_interval +
    ping_timeout`` seconds: when nothing came from Redis for
    ``ping_interval``, the hub sends a PING on its subscription and, without
    an answer ``ping_timeout`` later, drops the connection and subscribes
    again.
    Messages from one publishing process arrive in the order of its
    :meth:`publish` calls.

    Args:
        url: ``redis://`` (or ``rediss://``, ``unix://``) URL, as
            :meth:`redis.asyncio.Redis.from_url` takes it; :obj:`None` for
            a hub that stays in this process.
        channel: Redis pub/sub channel shared by the hubs that should reach
            each other; hubs on other channels of the same Redis are apart.
        publish_timeout: Seconds :meth:`publish` waits for Redis (counting
            the wait behind this process's earlier publishes) before raising
            :exc:`HubUnavailable`.
        ping_interval: Seconds without anything from Redis after which the
            hub PINGs it on the subscription; :obj:`None` never pings, and a
            silently dead connection then goes unnoticed.
        ping_timeout: Seconds the hub waits for Redis's answer to a PING, or
            to a SUBSCRIBE, before reconnecting.
        min_backoff: First delay, in seconds, before reconnecting to Redis
            after losing it; doubled at each failure up to ``max_backoff``.
        max_backoff: Longest delay between reconnection attempts.
        replay: Messages kept in Redis for the hubs that lose their
            connection briefly (a Redis stream named ``channel``, trimmed
            to that length at each publish); 0 for pub/sub, which keeps
            none. Hubs with and without replay don't reach each other.
        logger: Logger or logger name; defaults to ``logging.getLogger("ferrows.hub")``.

    Raises:
        ImportError: With a URL, when the ``redis`` package is missing
            (``pip install "ferrows[redis]"``).
        ValueError: If ``replay`` is negative, or set without a URL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        channel: str = "ferrows",
        publish_timeout: float = 1.0,
        ping_interval: float | None = 5.0,
        ping_timeout: float = 5.0,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        replay: int = 0,
        logger: LoggerLike | str | None = None,
    ) -> None:
        if replay < 0 or (replay and url is None):
            raise ValueError("replay must be 0, or a positive number of messages with a Redis URL")
        if url is not None:
            try:
                import redis.asyncio  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    f"Hub({_redacted(url)!r}) needs the redis package: pip install 'ferrows[redis]'"
                ) from exc
        self.url = url
        self.channel = channel
        self.publish_timeout = publish_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.replay = replay
        # With replay: the ID of the last stream entry read.
        self._stream_id: bytes | None = None
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or HUB_LOGGER)
        self.logger: LoggerLike = logger
        self._groups: dict[str, set[Connection]] = {}
        self._joined: dict[Connection, set[str]] = {}
        self._origin = os.urandom(_ORIGIN_SIZE)
        # Redis side, made on first use in the running loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: redis.asyncio.Redis | None = None
        # Messages waiting for Redis, in publish() order, and the task
        # sending them (one batch at a time).
        self._outbox: list[tuple[bytes, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None
        self._closed = False

    # ----------------------------------------------------------- members

    def join(self, connection: Connection, group: str) -> None:
        """Adds ``connection`` to ``group``; it leaves every group by itself
        when it closes. Joining twice changes nothing.

        Raises:
            TypeError: If ``group`` isn't a :class:`str`.
            ValueError: If ``group`` is longer than 65535 bytes in UTF-8.
        """
        _check_group(group)
        if self.url is not None:
            self._start()
        if connection.connection_lost_waiter.done():
            return
        groups = self._joined.get(connection)
        if groups is None:
            groups = self._joined[connection] = set()
            connection.connection_lost_waiter.add_done_callback(lambda _: self._drop(connection))
        groups.add(group)
        self._groups.setdefault(group, set()).add(connection)

    def leave(self, connection: Connection, group: str) -> None:
        """Removes ``connection`` from ``group``, if it is a member."""
        groups = self._joined.get(connection)
        if groups is None or group not in groups:
            return
        groups.discard(group)
        self._discard(connection, group)

    def _drop(self, connection: Connection) -> None:
        """Removes a closed connection from all its groups."""
        for group in self._joined.pop(connection, ()):
            self._discard(connection, group)

    def _discard(self, connection: Connection, group: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.discard(connection)
            if not members:
                del self._groups[group]

    def members(self, group: str) -> set[Connection]:
        """The connections of this process in ``group`` (a copy)."""
        return set(self._groups.get(group, ()))

    def groups(self, connection: Connection) -> set[str]:
        """The groups ``connection`` is a member of (a copy)."""
        return set(self._joined.get(connection, ()))

    # -------------------------------------------------------- publishing

    async def publish(self, group: str, message: Data, *, text: bool | None = None) -> None:
        """Sends ``message`` to every member of ``group``, in every process
        attached to the same Redis.

        The members of this process get it before Redis is involved, with
        :func:`~ferrows.asyncio.connection.broadcast`: closed connections are
        skipped, and nothing waits for a slow connection (its write buffer
        grows; the keepalive closes a client that stopped reading, after
        ``ping_timeout``). With Redis, this returns once Redis took the
        message; other processes deliver it as they read it from Redis.
        Messages published while earlier ones are on their way to Redis go
        together, in one round trip, in the order of the calls.

        Args:
            group: Group name.
            message: Text (:class:`str`) or binary (bytes-like) message.
            text: Force a text (True) or binary (False) frame, as in
                :func:`~ferrows.asyncio.connection.broadcast`.

        Raises:
            TypeError: If ``message`` is neither text nor bytes-like, or
                ``group`` isn't a :class:`str`.
            ValueError: If ``group`` is longer than 65535 bytes in UTF-8.
            HubUnavailable: If Redis did not take the message within
                ``publish_timeout`` seconds.
            RuntimeError: If the hub is closed.
        """
        encoded = _check_group(group)
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError("data must be str or bytes")
        if self._closed:
            raise RuntimeError("publish() on a closed Hub")
        members = self._groups.get(group)
        if members:
            broadcast(members, message, text=text)
        if self.url is None:
            return
        self._start()
        assert self._loop is not None
        is_text = isinstance(message, str) if text is None else text
        payload = message.encode() if isinstance(message, str) else bytes(message)
        data = _HEADER.pack(self._origin, _TEXT if is_text else _BINARY, len(encoded)) + encoded + payload
        # The sender task writes the queued messages in call order, so that
        # messages of this process reach Redis in the order published. The
        # bound counts the wait behind earlier publishes: behind a batch
        # stuck on a dead Redis, this one fails in time too, and if it is
        # still queued then, it is never sent.
        done = self._loop.create_future()
        self._outbox.append((data, done))
        if self._sender is None:
            self._sender = self._loop.create_task(self._send())
        try:
            async with asyncio.timeout(self.publish_timeout):
                await done
        except Exception as exc:
            raise HubUnavailable(
                f"Redis at {_redacted(self.url)} did not take the message within "
                f"{self.publish_timeout} s ({_reason(exc)}); delivered in this process only"
            ) from exc
        finally:
            done.cancel()  # if abandoned (a timeout, a cancellation): not to be sent

    async def _send(self) -> None:
        """Sends the queued messages to Redis: all those queued so far in one
        round trip (a pipeline of PUBLISH, or with replay XADD, commands),
        then the next ones."""
        assert self._publisher is not None
        try:
            while self._outbox:
                batch = [(data, done) for data, done in self._outbox if not done.done()]
                self._outbox.clear()
                if not batch:
                    continue
                try:
                    # publish_timeout bounds each batch too: a Redis that
                    # stopped answering doesn't hold the next ones forever.
                    async with asyncio.timeout(self.publish_timeout):
                        if len(batch) == 1 and not self.replay:
                            await self._publisher.publish(self.channel, batch[0][0])
                        elif len(batch) == 1:
                            await self._publisher.xadd(
                                self.channel, {b"m": batch[0][0]}, maxlen=self.replay, approximate=False
                            )
                        else:
                            async with self._publisher.pipeline(transaction=False) as pipeline:
                                for data, _ in batch:
                                    if self.replay:
                                        pipeline.xadd(self.channel, {b"m": data}, maxlen=self.replay, approximate=False)
                                    else:
                                        pipeline.publish(self.channel, data)
                                await pipeline.execute()
                except BaseException as exc:
                    # Closed meanwhile (a cancellation): the callers learn it
                    # as a failure, not as a cancellation of their own.
                    failure = exc if isinstance(exc, Exception) else RuntimeError("Hub closed")
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(failure)
                    if failure is not exc:
                        raise
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._sender = None

    def _deliver(self, data: bytes) -> None:
        """Delivers a message read from Redis to this process's members."""
        if len(data) < _HEADER.size:
            self.logger.warning("ignored a malformed message on Redis channel %r", self.channel)
            return
        origin, kind, length = _HEADER.unpack_from(data)
        if origin == self._origin:
            return  # published here, and delivered here already
        start = _HEADER.size + length
        try:
            group = data[_HEADER.size : start].decode()
        except UnicodeDecodeError:
            group = ""
        if len(data) < start or kind not in (_TEXT, _BINARY) or not group:
            self.logger.warning("ignored a malformed message on Redis channel %r", self.channel)
            return
        members = self._groups.get(group)
        if not members:
            return
        payload = data[start:]
        if kind == _TEXT:
            try:
                message: Data = payload.decode()
            except UnicodeDecodeError:
                self.logger.warning("ignored a text message that isn't UTF-8 on Redis channel %r", self.channel)
                return
        else:
            message = payload
        broadcast(members, message)

    # ------------------------------------------------------------- Redis

    @property
    def connected(self) -> bool:
        """True while the Redis subscription is up (always for a hub
        without Redis)."""
        if self.url is None:
            return True
        return self._subscribed is not None and self._subscribed.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Connects to Redis if not yet done, and waits for the subscription.

        Raises:
            TimeoutError: If it isn't up within ``timeout`` seconds.
        """
        if self.url is None:
            return
        self._start()
        assert self._subscribed is not None
        async with asyncio.timeout(timeout):
            await self._subscribed.wait()

    def _start(self) -> None:
        """Makes the Redis client and the subscriber task, once, in the
        running loop."""
        if self._closed:
            raise RuntimeError("Hub is closed")
        if self._loop is not None:
            return
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        assert self.url is not None
        self._loop = asyncio.get_running_loop()
        # The hub retries by itself, with its own bounds: redis-py's
        # retries would hold publish() past publish_timeout.
        self._publisher = redis.asyncio.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=self.publish_timeout
        )
        self._subscribed = asyncio.Event()
        self._subscriber = self._loop.create_task(self._subscribe())

    async def _subscribe(self) -> None:
        """Holds the subscription: reads messages (:meth:`_listen`), and on
        any failure waits a backoff delay (``min_backoff`` doubling to
        ``max_backoff``) and subscribes again."""
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        assert self.url is not None and self._subscribed is not None
        delay = self.min_backoff
        down_since: float | None = None
        while True:
            client = redis.asyncio.Redis.from_url(
                self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=self.publish_timeout
            )
            pubsub = client.pubsub()
            try:
                if self.replay:
                    listener = self._read_stream(client)
                else:
                    # Connecting also waits for replies (CLIENT SETINFO): bounded,
                    # for a Redis that accepts connections but doesn't answer.
                    async with asyncio.timeout(self.ping_timeout):
                        await pubsub.subscribe(self.channel)
                    listener = self._listen(pubsub)
                async for _ in listener:
                    self._subscribed.set()
                    delay = self.min_backoff
                    if down_since is not None:
                        self.logger.info("subscribed to Redis again after %.1f s", time.monotonic() - down_since)
                        down_since = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closed:
                    return
                if down_since is None:
                    down_since = time.monotonic()
                    self.logger.warning("lost Redis at %s (%s); reconnecting", _redacted(self.url), _reason(exc))
                self._subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _read_stream(self, client: redis.asyncio.Redis) -> AsyncIterator[None]:
        """With replay: delivers the entries of the stream after the last one
        read (after the newest one, at the first connection); yields once
        reading. Waits at most ``ping_interval`` per read, and gives up
        ``ping_timeout`` later without an answer."""
        async with _answer_within(self.ping_timeout):
            if self._stream_id is None:
                newest: Any = await client.xrevrange(self.channel, count=1)
                self._stream_id = newest[0][0] if newest else b"0-0"
            else:
                # The last entry read was trimmed: more than the window may
                # have been published meanwhile.
                oldest: Any = await client.xrange(self.channel, count=1)
                if (
                    oldest
                    and _entry_key(oldest[0][0]) > _entry_key(self._stream_id)
                    and await client.xlen(self.channel) >= self.replay
                ):
                    self.logger.warning(
                        "messages may have been lost on Redis stream %r: more than its %d were "
                        "published while disconnected",
                        self.channel,
                        self.replay,
                    )
        yield
        block = self.ping_interval
        while True:
            streams: dict[Any, Any] = {self.channel: self._stream_id}
            response: Any
            if block is None:
                response = await client.xread(streams, count=1024, block=0)
            else:
                async with _answer_within(block + self.ping_timeout):
                    response = await client.xread(streams, count=1024, block=max(1, round(block * 1000)))
            # [[name, entries]] in RESP2, {name: [entries]} in RESP3.
            for entries in response.values() if isinstance(response, dict) else (e for _, e in response):
                if entries and isinstance(entries[0], list):
                    entries = entries[0]
                for entry_id, fields in entries:
                    self._stream_id = entry_id
                    data = fields.get(b"m")
                    if isinstance(data, bytes):
                        self._deliver(data)
                    else:
                        self.logger.warning("ignored a malformed entry on Redis stream %r", self.channel)

    async def _listen(self, pubsub: redis.asyncio.client.PubSub) -> AsyncIterator[None]:
        """Delivers the messages of ``pubsub``; yields once subscribed.

        Ends with an exception when the connection is lost, or when Redis
        didn't confirm the subscription or answer a PING (sent after
        ``ping_interval`` of quiet) within ``ping_timeout``.
        """
        waiting = True  # for the subscription's confirmation, then for a PONG
        while True:
            # get_message(timeout=None) waits on the socket without polling;
            # with a timeout, it returns None once that much time passed.
            item = await pubsub.get_message(timeout=self.ping_timeout if waiting else self.ping_interval)
            if item is None:
                if waiting:
                    raise TimeoutError(f"no answer from Redis within {self.ping_timeout} s")
                async with asyncio.timeout(self.ping_timeout):
                    await pubsub.ping()
                waiting = True
                continue
            waiting = False
            if item["type"] == "message":
                self._deliver(item["data"])
            elif item["type"] == "subscribe":
                yield

    # ----------------------------------------------------------- closing

    async def close(self) -> None:
        """Stops the subscription and closes the Redis connections. Members
        stay connected; :meth:`publish` raises :exc:`RuntimeError` after."""
        self._closed = True
        for task in (self._subscriber, self._sender):
            if task is not None:
                # redis-py's reader can swallow a cancellation that lands
                # while it reads (the task then waits for the next message):
                # cancel again until it ends, for at most a second.
                for _ in range(20):
                    task.cancel()
                    finished, _ = await asyncio.wait({task}, timeout=0.05)
                    if finished:
                        break
        self._subscriber = self._sender = None
        for _, done in self._outbox:
            if not done.done():
                done.set_exception(RuntimeError("Hub closed"))
        self._outbox.clear()
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    async def __aenter__(self) -> Hub:
        if self.url is not None:
            self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = "in-process" if self.url is None else _redacted(self.url)
        return f"<Hub {where} groups={len(self._groups)}>"


def _check_group(group: Any) -> bytes:
    if not isinstance(group, str):
        raise TypeError(f"group must be str, not {type(group).__name__}")
    encoded = group.encode()
    if not encoded or len(encoded) > 0xFFFF:
        raise ValueError("group must be 1 to 65535 bytes long in UTF-8")
    return encoded


@contextlib.asynccontextmanager
async def _answer_within(delay: float) -> AsyncIterator[None]:
    """asyncio.timeout(), whose TimeoutError says what was awaited."""
    try:
        async with asyncio.timeout(delay):
            yield
    except TimeoutError:
        raise TimeoutError(f"no answer from Redis within {delay:g} s") from None


def _entry_key(entry_id: bytes) -> tuple[int, ...]:
    """A stream entry ID (``b"1700000000000-3"``) as a sortable key."""
    return tuple(int(part) for part in entry_id.split(b"-"))


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
