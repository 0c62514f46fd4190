"""The Redis adapter while Redis is away: stopped and restarted, or paused.

Each test runs its own redis-server (the session's one stays untouched) under
two socketwire servers. Local delivery goes on; what waits for Redis is bounded,
counted when dropped and flushed when Redis is back; requests fail with a
``RequestTimeout`` and work again afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

import socketwire
from socketwire import RequestTimeout
from socketwire.adapters.redis import RedisAdapter, create_adapter
from socketwire.adapters.redis_bus import RedisBus
from socketwire.client import Client

from .conftest import TIMEOUT, RedisServer
from .test_redis_adapter import Inbox, setup_rooms


@pytest.fixture
def own_redis() -> AsyncIterator[RedisServer] | Any:
    server = RedisServer()
    server.start()
    yield server
    if server.proc is not None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


async def servers(
    redis: RedisServer, count: int = 2, **adapter_options: Any
) -> list[tuple[socketwire.Server, str]]:
    out = []
    for _ in range(count):
        sio = socketwire.Server(
            adapter=create_adapter(redis.url, key="outage", requests_timeout=1.0, **adapter_options)
        )
        setup_rooms(sio)
        port = await sio.listen(0, "127.0.0.1")
        out.append((sio, f"http://127.0.0.1:{port}"))
    return out


def bus_of(sio: socketwire.Server) -> RedisBus:
    ad = sio.of("/").adapter
    assert isinstance(ad, RedisAdapter) and isinstance(ad.bus, RedisBus)
    return ad.bus


async def until(check: Any) -> None:
    """Poll ``check()`` (an awaitable factory) until true, bounded by TIMEOUT."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), TIMEOUT)


async def member(url: str) -> tuple[Client, Inbox]:
    client = Client(url, transports=["websocket"], reconnection=False, auth={"rooms": ["red"]})
    inbox = Inbox(client, "msg")
    await asyncio.wait_for(client.connect(), TIMEOUT)
    return client, inbox


async def test_redis_stopped_and_restarted(own_redis: RedisServer) -> None:
    (a, url_a), (b, url_b) = await servers(own_redis)
    on_a, in_a = await member(url_a)
    on_b, in_b = await member(url_b)
    try:
        port = own_redis.port
        proc, own_redis.proc = own_redis.proc, None
        assert proc is not None and proc.stdout is not None
        proc.terminate()
        proc.wait()
        proc.stdout.close()

        a.to("red").emit("msg", "during the outage")
        assert await in_a.next() == ("msg", ("during the outage",))  # local delivery goes on
        with pytest.raises(RequestTimeout):
            await a.fetch_sockets()
        await until(lambda: _true(bus_of(a).failed_writes > 0))
        assert bus_of(a).pending_bytes > 0  # kept, not dropped

        own_redis.start(port)
        await until(lambda: _true(bus_of(a).pending_bytes == 0))  # flushed once back

        async def both_subscribed() -> bool:
            try:
                return len(await a.fetch_sockets()) == 2
            except RequestTimeout:
                return False

        await until(both_subscribed)  # subscriptions came back by themselves
        a.to("red").emit("msg", "after")
        while (await in_b.next())[1] != ("after",):
            pass
        assert (await in_a.next())[1] == ("after",)
    finally:
        await on_a.disconnect()
        await on_b.disconnect()
        await a.close()
        await b.close()


async def test_redis_paused(own_redis: RedisServer) -> None:
    """SIGSTOP: connections stay open, nothing answers. The queue holds up to its
    bound, the rest is dropped and counted; all held messages go out on SIGCONT."""
    (a, url_a), (b, url_b) = await servers(own_redis, max_pending_bytes=2000)
    on_a, in_a = await member(url_a)
    on_b, in_b = await member(url_b)
    try:
        assert own_redis.proc is not None
        pid = own_redis.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(100):
                a.to("red").emit("msg", i)
            assert [(await in_a.next())[1][0] for _ in range(100)] == list(range(100))
            bus = bus_of(a)
            assert bus.dropped > 0
            assert bus.pending_bytes <= 2000
            with pytest.raises(RequestTimeout):
                await a.fetch_sockets()
        finally:
            os.kill(pid, signal.SIGCONT)
        kept = 100 - bus.dropped
        got = [(await in_b.next())[1][0] for _ in range(kept)]
        assert got == list(range(kept))  # in order, the first ones (what fitted)
        assert len(await a.fetch_sockets()) == 2
    finally:
        await on_a.disconnect()
        await on_b.disconnect()
        await a.close()
        await b.close()


async def _true(value: bool) -> bool:
    return value
