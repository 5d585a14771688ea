"""ferrows.Hub across server processes attached to one real redis-server:
every message reaches exactly the members of its group, once, in order per
publisher, through joins, leaves, disconnections and a Redis restart.

Each server is ``tests/hub_app.py`` in a subprocess (see its docstring for
what a client can ask it), stopped by its pid.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request

import pytest

import ferrows
from redis_server import RedisServer, free_port

APP = os.path.join(os.path.dirname(__file__), "hub_app.py")
TIMEOUT = 20.0


class Servers:
    """``count`` hub_app processes on one Redis, their hubs with ``replay``."""

    def __init__(self, redis_url, count, replay=0):
        self.replay = replay
        self.ports = [free_port() for _ in range(count)]
        self.processes = [
            subprocess.Popen(
                # -P: the script's directory first on sys.path would let
                # tests/asyncio shadow the standard library's asyncio.
                [sys.executable, "-P", APP, redis_url, str(port), str(replay)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for port in self.ports
        ]

    def wait_listening(self):
        for process in self.processes:
            line = process.stdout.readline()  # bounded: the app prints or exits
            assert line == "listening\n", process.stderr.read()

    def get(self, index, path):
        url = f"http://127.0.0.1:{self.ports[index]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, ""

    def wait_ready(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        for index in range(len(self.ports)):
            while self.get(index, "/ready")[0] != 200:
                assert time.monotonic() < deadline, f"server {index} not subscribed again"
                time.sleep(0.02)

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=10)


@pytest.fixture
def redis():
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def servers(redis, request):
    """Server processes: ``count`` or ``(count, replay)``."""
    count, replay = request.param if isinstance(request.param, tuple) else (request.param, 0)
    group = Servers(redis.url, count, replay)
    try:
        group.wait_listening()
        yield group
    finally:
        group.stop()


class Client:
    """A client of one server, collecting what publishers send it."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.received = []  # published messages: (publisher, group, seq)
        self.replies = asyncio.Queue()

    @classmethod
    async def connect(cls, port, group):
        websocket = await ferrows.connect(f"ws://127.0.0.1:{port}/{group}", ping_interval=None)
        assert await websocket.recv() == "joined"
        client = cls(websocket)
        client.task = asyncio.create_task(client.read())
        return client

    async def read(self):
        try:
            async for message in self.websocket:
                if message.startswith("m:"):
                    publisher, group, seq = message[2:].split(":")
                    self.received.append((publisher, group, int(seq)))
                else:
                    self.replies.put_nowait(message)
        except ferrows.ConnectionClosed:
            pass

    async def ask(self, command):
        await self.websocket.send(command)
        async with asyncio.timeout(TIMEOUT):
            return await self.replies.get()

    def seqs(self, publisher, group):
        return [seq for p, g, seq in self.received if p == publisher and g == group]


async def wait_until(predicate, timeout=TIMEOUT):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


GROUPS = [f"g{i}" for i in range(5)]
COUNT = 30  # messages per group and publisher


@pytest.mark.parametrize("servers", [2, 3, (2, 1000)], indirect=True, ids=["2", "3", "2-replay"])
async def test_groups_across_processes(redis, servers):
    """300 clients over the servers in 5 groups; two publishers (this
    process's hub, and server 0 asked by a client) publish COUNT messages
    to each group while 20 clients move from a group to another and 10
    disconnect mid-stream."""
    n = len(servers.ports)
    clients = await asyncio.gather(*(Client.connect(servers.ports[i % n], GROUPS[i % 5]) for i in range(300)))
    movers = clients[:20]  # leave their group, join the next one
    quitters = clients[20:30]  # disconnect mid-stream
    steady = clients[30:]
    commander = steady[0]  # on server 0
    async with ferrows.Hub(redis.url, replay=servers.replay) as hub:
        await hub.wait_connected(TIMEOUT)
        for seq in range(COUNT):
            for group in GROUPS:
                await hub.publish(group, f"m:local:{group}:{seq}")
                assert await commander.ask(f"pub {group} m:remote:{group}:{seq}") == "published"
            if seq == COUNT // 3:
                for i, client in enumerate(movers):
                    old, new = GROUPS[i % 5], GROUPS[(i + 1) % 5]
                    assert await client.ask(f"leave {old}") == f"ok leave {old}"
                    assert await client.ask(f"join {new}") == f"ok join {new}"
            if seq == COUNT // 2:
                for client in quitters:
                    await client.websocket.close()
    # Every steady client gets both publishers' messages of its group, once,
    # in order, and nothing of the other groups.
    expected = list(range(COUNT))
    for client in steady:
        await wait_until(lambda client=client: len(client.received) >= 2 * COUNT)
    await asyncio.sleep(0.1)  # anything extra would have come by now
    for i, client in enumerate(steady, start=30):
        group = GROUPS[i % 5]
        assert {g for _, g, _ in client.received} == {group}
        assert client.seqs("local", group) == expected
        assert client.seqs("remote", group) == expected
    # A mover got a prefix of its first group and a suffix of its second.
    for i, client in enumerate(movers):
        old, new = GROUPS[i % 5], GROUPS[(i + 1) % 5]
        await wait_until(lambda client=client, new=new: client.seqs("local", new)[-1:] == [COUNT - 1])
        await wait_until(lambda client=client, new=new: client.seqs("remote", new)[-1:] == [COUNT - 1])
        for publisher in ("local", "remote"):
            before, after = client.seqs(publisher, old), client.seqs(publisher, new)
            # Around the move, a message already on its way may land on
            # either side; none is repeated or lost within a group.
            assert before == list(range(len(before))) and len(before) >= COUNT // 3
            assert after == list(range(COUNT - len(after), COUNT)) and len(after) >= COUNT - COUNT // 3 - 1
    # Quitters got a prefix; the servers dropped them from their groups.
    for client in quitters:
        assert client.received
        for publisher in ("local", "remote"):
            seqs = client.seqs(publisher, client.received[0][1])
            assert seqs == list(range(len(seqs)))
    members = {group: 0 for group in GROUPS}
    for index in range(n):
        for group in GROUPS:
            status, count = servers.get(index, f"/members/{group}")
            assert status == 200
            members[group] += int(count)
    assert sum(members.values()) == 290
    for client in clients:
        await client.websocket.close()
        await client.task


@pytest.mark.parametrize("servers", [2, (2, 1000)], indirect=True, ids=["pubsub", "replay"])
async def test_redis_killed_and_restarted(redis, servers):
    """Publishing through a Redis crash: publish() raises HubUnavailable
    within its bound while local members still get their messages, the hubs
    subscribe again, and what is published after recovery arrives everywhere."""
    clients = await asyncio.gather(*(Client.connect(servers.ports[i % 2], "room") for i in range(20)))
    on_zero = [c for i, c in enumerate(clients) if i % 2 == 0]
    on_one = [c for i, c in enumerate(clients) if i % 2 == 1]
    commander = on_zero[0]
    bounds = {"publish_timeout": 0.5, "min_backoff": 0.02, "max_backoff": 0.2}
    async with ferrows.Hub(redis.url, replay=servers.replay, **bounds) as hub:
        await hub.wait_connected(TIMEOUT)
        for seq in range(10):
            await hub.publish("room", f"m:before:room:{seq}")
        for client in clients:
            await wait_until(lambda client=client: len(client.seqs("before", "room")) == 10)

        redis.kill()
        with pytest.raises(ferrows.HubUnavailable, match="delivered in this process only"):
            for _ in range(100):  # bounded: the first publish after the crash fails
                await hub.publish("room", "m:outage:room:0")
                await asyncio.sleep(0.01)
        reply = await commander.ask("pub room m:outage-local:room:0")
        assert reply.startswith("unavailable: Redis at redis://127.0.0.1:")
        # Server 0's own members got it during the outage; server 1's could not.
        for client in on_zero:
            await wait_until(lambda client=client: client.seqs("outage-local", "room") == [0])
        assert all(client.seqs("outage-local", "room") == [] for client in on_one)

        redis.start()
        await asyncio.to_thread(servers.wait_ready)
        await hub.wait_connected(TIMEOUT)
        for seq in range(10):
            await hub.publish("room", f"m:after:room:{seq}")
            assert await commander.ask(f"pub room m:after-remote:room:{seq}") == "published"
        for client in clients:
            await wait_until(lambda client=client: len(client.seqs("after", "room")) == 10)
            await wait_until(lambda client=client: len(client.seqs("after-remote", "room")) == 10)
            assert client.seqs("after", "room") == list(range(10))
            assert client.seqs("after-remote", "room") == list(range(10))
            assert client.seqs("before", "room") == list(range(10))
    for client in clients:
        await client.websocket.close()
        await client.task
