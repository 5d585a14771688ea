"""ferrows.Hub in one process: groups, publish, automatic leave, and the
Redis path between two hubs against a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import pytest
import redis.asyncio

import ferrows
from ferrows.asyncio.hub import Hub, HubUnavailable

from .utils import MS, TIMEOUT, ListHandler, serving, uri_of, wait_for


async def idle(ws):
    await ws.wait_closed()


async def recv_all(client, count):
    async with asyncio.timeout(TIMEOUT):
        return [await client.recv() for _ in range(count)]


@pytest.fixture
async def server_and_clients():
    """A server whose connections the test joins to groups, and three clients."""
    async with serving(idle) as server:
        clients = [await ferrows.connect(uri_of(server)) for _ in range(3)]
        await wait_for(lambda: len(server.connections) == 3)
        # The server's side of each client, in the clients' order.
        by_port = {c.remote_address[1]: c for c in server.connections}
        yield server, clients, [by_port[c.local_address[1]] for c in clients]
        for client in clients:
            await client.close()


async def test_publish_reaches_members_only(server_and_clients):
    _, clients, conns = server_and_clients
    hub = Hub()
    hub.join(conns[0], "a")
    hub.join(conns[1], "a")
    hub.join(conns[1], "a")  # twice changes nothing
    hub.join(conns[2], "b")
    assert hub.members("a") == {conns[0], conns[1]}
    assert hub.groups(conns[1]) == {"a"}
    await hub.publish("a", "to a")
    await hub.publish("b", b"to b")
    await hub.publish("a", "forced binary", text=False)
    await hub.publish("nobody", "lost")
    assert await recv_all(clients[0], 2) == ["to a", b"forced binary"]
    assert await recv_all(clients[1], 2) == ["to a", b"forced binary"]
    assert await recv_all(clients[2], 1) == [b"to b"]


async def test_leave_and_automatic_leave_on_close(server_and_clients):
    _, clients, conns = server_and_clients
    hub = Hub()
    for conn in conns:
        hub.join(conn, "a")
    hub.join(conns[0], "b")
    hub.leave(conns[1], "a")
    hub.leave(conns[1], "a")  # not a member any more: nothing happens
    hub.leave(conns[2], "zzz")
    assert hub.members("a") == {conns[0], conns[2]}
    await clients[0].close()
    await wait_for(lambda: conns[0] not in hub.members("a"))
    assert hub.members("b") == set()
    assert hub.groups(conns[0]) == set()
    # Joining a connection that is gone keeps nothing.
    hub.join(conns[0], "a")
    assert hub.members("a") == {conns[2]}
    await hub.publish("a", "still here")
    assert await recv_all(clients[2], 1) == ["still here"]
    assert "groups=1" in repr(hub) and "in-process" in repr(hub)


async def test_bad_arguments(server_and_clients):
    _, _, conns = server_and_clients
    hub = Hub()
    with pytest.raises(TypeError, match="group must be str, not int"):
        hub.join(conns[0], 1)
    with pytest.raises(ValueError, match="1 to 65535 bytes"):
        hub.join(conns[0], "")
    with pytest.raises(ValueError, match="1 to 65535 bytes"):
        await hub.publish("x" * 65536, "m")
    with pytest.raises(TypeError, match="data must be str or bytes"):
        await hub.publish("a", 42)
    await hub.close()
    with pytest.raises(RuntimeError, match="closed Hub"):
        await hub.publish("a", "m")


async def test_in_process_hub_is_always_connected():
    async with Hub() as hub:
        assert hub.connected
        await hub.wait_connected(timeout=0)


async def test_without_redis_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"needs the redis package: pip install 'ferrows\[redis\]'"):
        Hub("redis://:secret@127.0.0.1:1/0")


# ---------------------------------------------------------------- Redis


async def test_two_hubs_over_redis(redis_server, server_and_clients):
    """Two hubs on one Redis stand for two processes: each delivers what the
    other publishes, and its own messages once (not again from Redis)."""
    _, clients, conns = server_and_clients
    async with Hub(redis_server.url, channel="two") as one, Hub(redis_server.url, channel="two") as two:
        one.join(conns[0], "g")
        two.join(conns[1], "g")
        two.join(conns[2], "other")
        await one.wait_connected(TIMEOUT)
        await two.wait_connected(TIMEOUT)
        assert one.connected and two.connected
        for i in range(20):
            await (one if i % 2 else two).publish("g", f"m{i}")
        await one.publish("g", b"\x00binary")
        expected = [f"m{i}" for i in range(20)] + [b"\x00binary"]
        # Each publisher's order holds; the two interleave as Redis saw them.
        for client in clients[:2]:
            got = await recv_all(client, 21)
            assert sorted(got, key=repr) == sorted(expected, key=repr)
            odd = [m for m in got if isinstance(m, str) and int(m[1:]) % 2]
            assert odd == [f"m{i}" for i in range(1, 20, 2)]
        # "other" got nothing, and no message came twice.
        await one.publish("other", "last")
        assert await recv_all(clients[2], 1) == ["last"]
        for client in clients[:2]:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(50 * MS):
                    await client.recv()


async def test_other_channels_and_malformed_messages_are_ignored(redis_server, server_and_clients):
    _, clients, conns = server_and_clients
    logs = ListHandler()
    logger = logging.getLogger("test.hub.malformed")
    logger.addHandler(logs)
    try:
        async with Hub(redis_server.url, channel="mine", logger=logger) as hub:
            hub.join(conns[0], "g")
            await hub.wait_connected(TIMEOUT)
            raw = redis.asyncio.Redis.from_url(redis_server.url)
            try:
                header = b"o" * 16
                for data in [
                    b"short",
                    header + b"t\x00\x05g",  # group cut short
                    header + b"x\x00\x01g" + b"bad kind",
                    header + b"t\x00\x01\xff",  # group not UTF-8
                    header + b"t\x00\x01g\xff\xfe",  # text not UTF-8
                    header + b"t\x00\x01h" + b"no member of h here",
                    header + b"t\x00\x01g" + b"from elsewhere",
                ]:
                    await raw.publish("mine", data)
                async with Hub(redis_server.url, channel="theirs") as theirs:
                    await theirs.publish("g", "other channel")
            finally:
                await raw.aclose()
            assert await recv_all(clients[0], 1) == ["from elsewhere"]
        messages = [r.getMessage() for r in logs.records]
        assert messages.count("ignored a malformed message on Redis channel 'mine'") == 4
        assert "ignored a text message that isn't UTF-8 on Redis channel 'mine'" in messages
    finally:
        logger.removeHandler(logs)


async def test_publish_without_redis_raises_after_local_delivery(server_and_clients):
    """Nothing listens on the port: the local member gets the message, then
    publish() raises within its bound, naming the URL without its password."""
    _, clients, conns = server_and_clients
    from redis_server import free_port

    url = f"redis://user:secret@127.0.0.1:{free_port()}/0"
    async with Hub(url, publish_timeout=200 * MS, min_backoff=MS, max_backoff=10 * MS) as hub:
        hub.join(conns[0], "g")
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HubUnavailable) as raised:
            await hub.publish("g", "local")
        assert loop.time() - start < 2
        message = str(raised.value)
        assert "redis://user:***@127.0.0.1:" in message and "secret" not in message
        assert message.endswith("delivered in this process only")
        assert await recv_all(clients[0], 1) == ["local"]
        assert not hub.connected
        with pytest.raises(TimeoutError):
            await hub.wait_connected(timeout=50 * MS)
        assert "redis://user:***@" in repr(hub)
    with pytest.raises(RuntimeError, match="Hub is closed"):
        hub.join(conns[0], "g")


@pytest.mark.parametrize("replay", [0, 10])
async def test_silently_dead_redis_is_noticed_and_recovered(redis_server, server_and_clients, replay):
    """Redis stopped with SIGSTOP keeps its connections open and answers
    nothing, as a host gone or a network partition: the hub's PING (with
    replay, its read) goes unanswered, so it drops the subscription;
    publish() fails within its bound; after SIGCONT the hub subscribes
    again and delivers."""
    _, clients, conns = server_and_clients
    logs = ListHandler()
    logger = logging.getLogger("test.hub.stopped")
    logger.addHandler(logs)
    logger.setLevel(logging.INFO)
    bounds = {"ping_interval": 50 * MS, "ping_timeout": 100 * MS, "publish_timeout": 200 * MS}
    try:
        async with Hub(
            redis_server.url,
            channel="stop",
            min_backoff=MS,
            max_backoff=20 * MS,
            logger=logger,
            replay=replay,
            **bounds,
        ) as hub:
            hub.join(conns[0], "g")
            await hub.wait_connected(TIMEOUT)
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            try:
                await wait_for(lambda: not hub.connected)
                with pytest.raises(HubUnavailable, match="did not take the message within"):
                    await hub.publish("g", "while stopped")
                assert await recv_all(clients[0], 1) == ["while stopped"]
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
            await hub.wait_connected(TIMEOUT)
            async with Hub(redis_server.url, channel="stop", replay=replay) as other:
                await other.publish("g", "after")
            assert await recv_all(clients[0], 1) == ["after"]
            await hub.publish("g", "from the hub again")
            assert await recv_all(clients[0], 1) == ["from the hub again"]
        messages = [r.getMessage() for r in logs.records]
        assert any(
            m.startswith("lost Redis at redis://127.0.0.1:") and "no answer from Redis" in m for m in messages
        ), messages
        assert any(m.startswith("subscribed to Redis again after") for m in messages), messages
    finally:
        logger.removeHandler(logs)


async def test_concurrent_publishes_keep_their_order(redis_server, server_and_clients):
    """publish() calls made while earlier ones are on their way to Redis go
    together; the other process still gets them in the order of the calls."""
    _, clients, conns = server_and_clients
    async with Hub(redis_server.url, channel="many") as one, Hub(redis_server.url, channel="many") as two:
        two.join(conns[0], "g")
        await one.wait_connected(TIMEOUT)
        await two.wait_connected(TIMEOUT)
        await asyncio.gather(*(one.publish("g", f"m{i}") for i in range(300)))
        assert await recv_all(clients[0], 300) == [f"m{i}" for i in range(300)]
        # One at a time again, after the burst.
        await one.publish("g", "after")
        assert await recv_all(clients[0], 1) == ["after"]


async def test_close_fails_the_publishes_waiting_for_redis(redis_server, server_and_clients):
    """Redis stopped (SIGSTOP): publishes wait for it; close() makes them
    raise HubUnavailable at once, those on their way and those queued."""
    _, clients, conns = server_and_clients
    hub = Hub(redis_server.url, channel="closing", publish_timeout=30)
    hub.join(conns[0], "g")
    await hub.wait_connected(TIMEOUT)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        tasks = [asyncio.create_task(hub.publish("g", f"m{i}")) for i in range(5)]
        await asyncio.sleep(50 * MS)
        assert not any(task.done() for task in tasks)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await hub.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert loop.time() - start < 5
        assert all(isinstance(r, HubUnavailable) for r in results), results
        assert all("Hub closed" in str(r) for r in results), results
        # The local member got every one of them.
        assert await recv_all(clients[0], 5) == [f"m{i}" for i in range(5)]
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)


async def test_replay_arguments():
    with pytest.raises(ValueError, match="replay must be 0"):
        Hub(replay=10)
    with pytest.raises(ValueError, match="replay must be 0"):
        Hub("redis://127.0.0.1:1/0", replay=-1)


async def test_replay_delivers_what_was_published_while_disconnected(redis_server, server_and_clients):
    """With replay, a hub whose connection to Redis dropped delivers, once
    connected again, what was published meanwhile, in order; when more than
    the window was published, the newest ones, with a warning."""
    _, clients, conns = server_and_clients
    logs = ListHandler()
    logger = logging.getLogger("test.hub.replay")
    logger.addHandler(logs)
    logger.setLevel(logging.INFO)
    control = redis.asyncio.Redis.from_url(redis_server.url)
    backoff = {"min_backoff": 300 * MS, "max_backoff": 300 * MS}
    try:
        async with (
            Hub(redis_server.url, channel="replayed", replay=10, logger=logger, **backoff) as one,
            Hub(redis_server.url, channel="replayed", replay=10) as two,
        ):
            one.join(conns[0], "g")
            await one.wait_connected(TIMEOUT)
            await two.wait_connected(TIMEOUT)
            await two.publish("g", "before")
            assert await recv_all(clients[0], 1) == ["before"]

            async def drop_readers() -> None:
                # The hubs' readers are the connections waiting in XREAD.
                for client in await control.client_list():
                    if client["cmd"] == "xread":
                        await control.client_kill_filter(_id=client["id"])
                await wait_for(lambda: not one.connected)

            # Published together, in a few round trips: well within the
            # hub's 300 ms before it connects again.
            await drop_readers()
            await asyncio.gather(*(two.publish("g", f"gap {i}") for i in range(5)))
            assert not one.connected
            await one.wait_connected(TIMEOUT)
            assert await recv_all(clients[0], 5) == [f"gap {i}" for i in range(5)]
            assert not any("may have been lost" in r.getMessage() for r in logs.records)

            await drop_readers()
            await asyncio.gather(*(two.publish("g", f"burst {i}") for i in range(25)))
            assert not one.connected
            await one.wait_connected(TIMEOUT)
            assert await recv_all(clients[0], 10) == [f"burst {i}" for i in range(15, 25)]
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(50 * MS):
                    await clients[0].recv()
        messages = [r.getMessage() for r in logs.records]
        assert (
            "messages may have been lost on Redis stream 'replayed': more than its 10 were "
            "published while disconnected" in messages
        ), messages
    finally:
        logger.removeHandler(logs)
        await control.aclose()


async def test_replay_in_order_with_resp3_and_malformed_entries(redis_server, server_and_clients):
    """With replay over RESP3 and no PING: concurrent publishes arrive in
    order; an entry without the hub's field is logged and skipped."""
    _, clients, conns = server_and_clients
    logs = ListHandler()
    logger = logging.getLogger("test.hub.replay3")
    logger.addHandler(logs)
    url = redis_server.url + "?protocol=3"
    control = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with (
            Hub(url, channel="r3", replay=100, ping_interval=None, logger=logger) as one,
            Hub(url, channel="r3", replay=100) as two,
        ):
            one.join(conns[0], "g")
            await one.wait_connected(TIMEOUT)
            await two.wait_connected(TIMEOUT)
            await control.xadd("r3", {b"other": b"x"})
            await asyncio.gather(*(two.publish("g", f"m{i}") for i in range(50)))
            assert await recv_all(clients[0], 50) == [f"m{i}" for i in range(50)]
        assert "ignored a malformed entry on Redis stream 'r3'" in [r.getMessage() for r in logs.records]
    finally:
        logger.removeHandler(logs)
        await control.aclose()
