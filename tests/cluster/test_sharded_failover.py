"""A Redis Cluster master failover under a running mixed cluster.

Two socketwire servers with the sharded adapter and one Node server with
``createShardedAdapter`` share a Redis Cluster (its own, for this module: the
test kills one of its masters). The master that owns the namespace's channel
gets SIGKILL; its replica takes over. Without restarting any server, once the
failover has completed (``cluster_state:ok``, the replica promoted, and the
socketwire servers subscribed again, as ``PUBSUB SHARDNUMSUB`` on the new master
shows), every broadcast and room message sent by a socketwire server reaches
every socketwire client: none is lost.

Node's server does not recover (socket.io 4.8.4, ``@socket.io/redis-adapter``
8.3.0, node-redis 4.7.0 cluster client): its subscription on the dead master
and its publishes to that master's slots stay lost until it restarts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import TIMEOUT, ClientFactory, ClusterStarter, NodeStarter
from .redis_cluster import RedisClusterProcesses
from .test_redis_adapter import setup_rooms
from .test_sharded_interop import adapter, until_subscribed

MODE = "dynamic"
SENT_PER_SERVER = 10


class Collector:
    """Every ``msg`` a client receives."""

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self.changed = asyncio.Event()
        client.on("msg", self.on)

    def on(self, *args: Any) -> None:
        self.seen.append(args)
        self.changed.set()

    async def until(self, expected: set[tuple[Any, ...]]) -> None:
        async def wait() -> None:
            while not expected <= set(self.seen):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), TIMEOUT)
        except TimeoutError:
            missing = sorted(expected - set(self.seen))
            raise AssertionError(f"{len(missing)} message(s) lost: {missing[:5]}") from None


async def test_master_failover_loses_nothing_sent_after_it(
    redis_cluster: RedisClusterProcesses,
    sharded_server: ClusterStarter,
    sharded_node: NodeStarter,
    connect: ClientFactory,
) -> None:
    a, url_a = await sharded_server(setup_rooms, mode=MODE)
    b, url_b = await sharded_server(setup_rooms, mode=MODE)
    node = await sharded_node(MODE)
    collectors = {
        name: Collector(await connect(url, auth={"rooms": ["red"]}))
        for name, url in (("a", url_a), ("b", url_b), ("node", node.url))
    }
    main = adapter(a).channels.main
    red = adapter(a).channels.room("red")
    await until_subscribed(a, "red", 3)

    a.emit("msg", "before")
    for c in collectors.values():
        await c.until({("before",)})

    # The master of the namespace's channel crashes; its replica takes over.
    victim = redis_cluster.master_of_slot_owner(main)
    heir = redis_cluster.replica_of(victim)
    redis_cluster.kill(victim)
    a.emit("msg", "during")  # may be lost: the cluster is electing a master

    def promoted() -> bool:
        return (
            redis_cluster.role(heir) == "master"
            and all(redis_cluster.state_ok(p) for p in redis_cluster.live())
            and all(
                redis_cluster.master_of_slot_owner(main, p) == heir for p in redis_cluster.live()
            )
        )

    await asyncio.to_thread(redis_cluster.wait, promoted, "promoted replica")

    async def resubscribed() -> None:
        # Both socketwire servers subscribe again by themselves. Node's sharded
        # adapter (node-redis 4.7 cluster client) does not: its subscription on
        # the dead master is not renewed, so Node's server neither counts nor hears.
        bus_a, bus_b = adapter(a).bus, adapter(b).bus
        while not (
            bus_a.settled
            and bus_b.settled
            and await bus_a.shard_numsub(main) >= 2
            and await bus_a.shard_numsub(red) >= 2
        ):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(resubscribed(), TIMEOUT)

    # The failover has completed: nothing the socketwire servers send from now on
    # may be lost. (Node's server is left out: its publisher does not find the
    # new master either, so what it sends on the failed-over slot is lost.)
    expected: set[tuple[Any, ...]] = set()
    for i in range(SENT_PER_SERVER):
        a.emit("msg", "a-all", i)
        b.to("red").emit("msg", "b-red", i)
        a.to("red").emit("msg", "a-red", i)
        b.emit("msg", "b-all", i)
        expected |= {("a-all", i), ("b-red", i), ("a-red", i), ("b-all", i)}
    for name in ("a", "b"):
        await collectors[name].until(expected)

    # Requests too: the socketwire servers count each other and answer again.
    found = {s.id for s in await a.fetch_sockets()}
    assert {s.id for s in await b.fetch_sockets()} == found
    assert len(found) >= 2
