"""Nodes of a Redis cluster behind a plain load balancer: no sticky sessions (layer 3).

Several socketwire servers (nodes: processes on other ports or hosts) joined by
the Redis adapter can sit behind a round-robin load balancer when each routes
the Engine.IO sessions of the others::

    from socketwire.adapters.redis import create_adapter
    from socketwire.nodes import RedisSessionRouter

    sio = socketwire.Server(
        adapter=create_adapter("redis://10.0.0.2:6379"),
        session_routing=RedisSessionRouter(
            "redis://10.0.0.2:6379", advertise="http://10.0.0.11:3000"
        ),
    )

(or ``socketwire app:sio --session-routing redis://10.0.0.2:6379
--advertise-url http://10.0.0.11:3000``). This is the design of
``socketwire --workers`` (``socketwire.serve.forward``) across hosts:

* **Node ids in session ids.** A node has an id, random at each start unless
  given (``node_id=``, ``--node-id``; never all digits, which name workers).
  Its Engine.IO session ids are ``<node>.<random>``: any node tells the owner
  of a request from its ``sid`` alone. The random part stays as unguessable as
  any session id.
* **A table of nodes in Redis.** A node announces the address other nodes reach
  it at (``advertise=``, ``--advertise-url``; by default the address it is
  bound to) in a key of its own, ``<key>-nodes:<node>``, under the adapter's
  key, with a time to live (``ttl``, 15 s) that a heartbeat renews three times
  per ``ttl``; a node that stops deletes its key, a node that dies is
  forgotten when its key expires. A node looks an owner up once (then from its
  cache), and at most once per second for an id it does not find, so that
  clients sending made-up ids cost Redis little.
* **Forwarding.** A node that receives a polling request for another node's
  session sends it to the owner over HTTP/1.1 (one TCP connection per request,
  a bounded answer) and relays the owner's answer; the WebSocket upgrade of
  such a session is relayed byte for byte, both ways, for the connection's
  life. The client's address and scheme go in ``X-Forwarded-For`` and
  ``X-Forwarded-Proto``, which the owner believes with ``--proxy-headers`` when
  the forwarding node is among its ``--forwarded-allow-ips`` (as a load
  balancer would be). A forwarded request carries ``X-Socketwire-Forwarded``:
  its receiver serves it, never forwards it again.
* **Failures.** A session of a node that is unknown, or that cannot be
  reached, gets what one server answers for an unknown session (400, ``Session
  ID unknown``): the client starts a new session, on a node that lives.

Why through Redis and not the load balancer: the nodes already share Redis,
and a table of a few keys costs one ``SET`` per node every few seconds, while a
cookie- or hash-based sticky balancer needs its own configuration (and
``ip_hash`` piles clients behind one NAT onto one node). WebSocket clients, most
clients, cost nothing: a WebSocket that opens with no session is served where
it lands. Only the polling requests and upgrades that land on another node than
their session's are relayed (one more hop inside the cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
import ssl as ssl_module
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from socketwire.core.cluster.redis_format import DEFAULT_KEY
from socketwire.serve.connection import MAX_HEAD_SIZE, Request
from socketwire.serve.forward import RouterStats, SessionRouter

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from socketwire.engine.server import EngineServer
    from socketwire.server.server import Server

__all__ = [
    "NodeAddress",
    "NodeRouter",
    "RedisSessionRouter",
    "new_node_id",
    "node_of",
    "valid_node_id",
]

log = logging.getLogger("socketwire.nodes")

_NODE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,40}")
# How long a node id that Redis does not know is not asked for again (seconds).
_MISS_TTL: Final = 1.0
# At most this many ids remembered as unknown (made-up ids must not grow memory).
_MAX_MISSES: Final = 1024


def valid_node_id(node: str) -> bool:
    """Whether ``node`` can be a node id: letters, digits, ``_`` and ``-``, at
    most 40, not all digits (an id of digits names a worker of ``--workers``)."""
    return _NODE_ID.fullmatch(node) is not None and not node.isdigit()


def new_node_id() -> str:
    """A random node id (``n`` and 8 hex digits)."""
    return "n" + secrets.token_hex(4)


def node_of(sid: str) -> str | None:
    """The node named by session id ``sid`` (``<node>.<random>``), or None."""
    head, dot, _ = sid.partition(".")
    if not dot or not valid_node_id(head):
        return None
    return head


class NodeAddress:
    """Where a node is reached (from its advertised URL): host, port, and TLS or not."""

    __slots__ = ("host", "port", "secure")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a node's address must be http://HOST:PORT or https://...: {url!r}")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)


class NodeRouter(SessionRouter):
    """The app of a node's connections: serve a request here, or forward it to the
    node that owns its session (see the module docstring). ``routing`` finds
    the owners."""

    owner_kind = "node"

    def __init__(
        self,
        app: Callable[[Request], None],
        engine: EngineServer,
        engine_path: str,
        routing: RedisSessionRouter,
    ) -> None:
        super().__init__(app, engine, engine_path)
        self.routing = routing

    def owner(self, sid: str) -> str | None:
        """The node named by ``sid`` when it is another one."""
        node = node_of(sid)
        return None if node is None or node == self.routing.node_id else node

    async def _address(self, owner: Hashable) -> NodeAddress:
        assert isinstance(owner, str)
        address = await self.routing.lookup(owner)
        if address is None:
            raise LookupError(f"no node {owner} in the table")
        return address

    def _ssl(self, address: NodeAddress) -> ssl_module.SSLContext | None:
        if not address.secure:
            return None
        return self.routing.ssl or ssl_module.create_default_context()

    async def open_stream(
        self, owner: Hashable
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to the owner's advertised address."""
        address = await self._address(owner)
        async with asyncio.timeout(self.routing.connect_timeout):
            return await asyncio.open_connection(
                address.host, address.port, ssl=self._ssl(address), limit=MAX_HEAD_SIZE
            )

    async def open_pipe(self, owner: Hashable, protocol: asyncio.Protocol) -> None:
        """Connect ``protocol`` to the owner's advertised address."""
        address = await self._address(owner)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.routing.connect_timeout):
            await loop.create_connection(
                lambda: protocol, address.host, address.port, ssl=self._ssl(address)
            )

    def forget(self, owner: Hashable) -> None:
        """An owner that could not be reached is looked up again next time."""
        if isinstance(owner, str):
            self.routing.forget(owner)

    def forwarded_by(self) -> str:
        """This node's id."""
        return self.routing.node_id


class RedisSessionRouter:
    """The ``session_routing`` option of a ``Server``: route the sessions of a
    cluster's nodes through a table in Redis (see the module docstring).

    ``redis`` is a ``redis.asyncio.Redis`` client or a URL for one that the
    router creates and closes. ``key`` is the Redis adapter's key (the table is
    ``<key>-nodes:<node>``). ``node_id`` is this node's id (random by default);
    ``advertise`` the URL other nodes reach it at (by default the address the
    server is bound to: give it when that is ``0.0.0.0``, or behind NAT).
    ``ttl`` (seconds) is how long a node that stopped renewing its entry stays
    in the table; ``ssl`` the TLS context for nodes advertised as ``https://``
    (by default the system's trusted certificates); ``connect_timeout`` bounds
    the connection to an owner.

    One router serves one ``Server``, on the built-in server (``listen``, ``run``,
    the command line), not under an ASGI server.
    """

    def __init__(
        self,
        redis: Redis | str = "redis://127.0.0.1:6379",
        *,
        key: str = DEFAULT_KEY,
        node_id: str | None = None,
        advertise: str | None = None,
        ttl: float = 15.0,
        ssl: ssl_module.SSLContext | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if node_id is not None and not valid_node_id(node_id):
            raise ValueError(
                f"node_id={node_id!r}: letters, digits, '_' and '-' (at most 40), not all digits"
            )
        if advertise is not None:
            NodeAddress(advertise)  # a malformed address fails now, not at the first forward
        if ttl <= 0:
            raise ValueError(f"ttl={ttl}: must be positive")
        self.redis = redis
        self.key = key
        self.node_id = node_id or new_node_id()
        self.advertise = advertise
        self.ttl = float(ttl)
        self.ssl = ssl
        self.connect_timeout = float(connect_timeout)
        self.router: NodeRouter | None = None
        self._client: Redis | None = None
        self._owns_client = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._known: dict[str, tuple[NodeAddress, float]] = {}
        self._missed: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Future[NodeAddress | None]] = {}

    def entry_key(self, node: str) -> str:
        """The Redis key of ``node``'s entry in the table."""
        return f"{self.key}-nodes:{node}"

    def stats(self) -> dict[str, Any]:
        """This node's ``node`` id and its router's counters: ``served`` here,
        ``forwarded`` (polling requests) and ``spliced`` (WebSocket upgrades)
        to their owner, ``gone`` (owner unknown or unreachable)."""
        counters = self.router.stats if self.router is not None else RouterStats()
        return {"node": self.node_id, **counters.as_dict()}

    # -- the Server's side ---------------------------------------------------------------

    def attach(self, server: Server) -> Callable[[Request], None]:
        """Name ``server``'s sessions after this node; the app that routes its
        requests (``Server.listen`` calls this once)."""
        if self.router is not None:
            if self.router.engine is not server.engine:
                raise RuntimeError("a RedisSessionRouter serves one Server")
            return self.router
        engine = server.engine
        user_generate = engine.generate_id
        node = self.node_id

        def generate_id(req: Any) -> str:
            # The owner in the id: any node routes the session's requests.
            return f"{node}.{user_generate(req)}"

        engine.generate_id = generate_id
        self.router = NodeRouter(server.handle_request, engine, server.path, self)
        return self.router

    async def announce(self, name: Any, secure: bool) -> None:
        """Enter this node in the table (at ``advertise``, else ``name``, the
        bound socket's name) and renew its entry until ``close``."""
        if self._heartbeat is not None:
            return
        if self.advertise is None:
            if not isinstance(name, tuple):
                raise ValueError("a node on a Unix socket needs advertise= (--advertise-url)")
            host = str(name[0])
            if host in ("0.0.0.0", "::", ""):
                # Bound to every interface: the host's name is the best guess.
                host = socket.gethostname()
            host = f"[{host}]" if ":" in host else host
            self.advertise = f"{'https' if secure else 'http'}://{host}:{name[1]}"
        client = self._redis()
        await client.set(self.entry_key(self.node_id), self.advertise, px=int(self.ttl * 1000))
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        log.info("node %s announced at %s", self.node_id, self.advertise)

    async def close(self) -> None:
        """Leave the table and stop the heartbeat (``Server.close`` calls this)."""
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await self._redis().delete(self.entry_key(self.node_id))
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _redis(self) -> Redis:
        if self._client is None:
            if isinstance(self.redis, str):
                from redis.asyncio import Redis as _Redis

                self._client = _Redis.from_url(self.redis)
                self._owns_client = True
            else:
                self._client = self.redis
        return self._client

    async def _beat(self) -> None:
        assert self.advertise is not None
        client = self._redis()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await client.set(
                    self.entry_key(self.node_id), self.advertise, px=int(self.ttl * 1000)
                )
            except Exception as exc:  # Redis away: try again at the next beat
                log.warning("node %s could not renew its entry: %s", self.node_id, exc)

    # -- finding owners ------------------------------------------------------------------

    async def lookup(self, node: str) -> NodeAddress | None:
        """Where ``node`` is reached, or None if the table has no such node."""
        now = time.monotonic()
        known = self._known.get(node)
        if known is not None and known[1] > now:
            return known[0]
        missed = self._missed.get(node)
        if missed is not None and missed > now:
            return None
        pending = self._lookups.get(node)
        if pending is None:
            # One question to Redis for every request waiting on the same node.
            pending = asyncio.ensure_future(self._ask(node))
            self._lookups[node] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(node, None))
        return await asyncio.shield(pending)

    async def _ask(self, node: str) -> NodeAddress | None:
        try:
            raw = await self._redis().get(self.entry_key(node))
        except Exception as exc:
            log.warning("cannot look node %s up in Redis: %s", node, exc)
            return None
        now = time.monotonic()
        if raw is None:
            if len(self._missed) >= _MAX_MISSES:
                self._missed.clear()
            self._missed[node] = now + _MISS_TTL
            return None
        try:
            address = NodeAddress(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError as exc:
            log.warning("node %s has a malformed entry: %s", node, exc)
            return None
        self._known[node] = (address, now + self.ttl)
        return address

    def forget(self, node: str) -> None:
        """Drop what is known of ``node`` (it could not be reached)."""
        self._known.pop(node, None)
