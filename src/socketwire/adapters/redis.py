"""The Redis adapter: a cluster of servers over Redis pub/sub (layer 1).

Wire-compatible with Node's ``@socket.io/redis-adapter`` 8.x (classic, not
sharded): socketwire and Node servers can share one Redis and one cluster, and
the Node ``@socket.io/redis-emitter`` reaches socketwire's clients unchanged.

::

    import socketwire
    from socketwire.adapters.redis import create_adapter

    sio = socketwire.Server(adapter=create_adapter("redis://127.0.0.1:6379"))

``RedisAdapter`` is the ``ClusterAdapter`` template (``socketwire.adapters.cluster``:
what the servers of a cluster do for each other) on a ``RedisBus``
(``socketwire.adapters.redis_bus``: the connections). Every namespace gets its
adapter; all of a server's adapters share one bus, so one subscriber connection
and one pipelined, bounded publisher.

**Subscription modes** (``subscription_mode``, see ``RedisSubscriptionMode``).
Node's adapter subscribes to the pattern ``<key>#<nsp>#*``, so every server
receives every broadcast (``"pattern"``, the default). In ``"interest"`` mode a
server subscribes to the namespace's channel and to one channel per room it
holds, socket ids included, and never receives a broadcast to one room it does
not have; the modes, Node's servers and Node's emitter mix in one cluster.
``socketwire.adapters.redis_interest`` explains the mode, its guarantee after a
join and why it refuses ``recovery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from socketwire.adapters.base import BroadcastOptions
from socketwire.adapters.cluster import ClusterAdapter
from socketwire.adapters.factory import adapter_factory, own_client
from socketwire.adapters.ports import NamespacePort
from socketwire.adapters.redis_bus import MessageHandler, RedisBus
from socketwire.adapters.redis_interest import (
    RECOVERY_NEEDS_PATTERN,
    InterestRooms,
    RedisSubscriptionMode,
    RoomBus,
)
from socketwire.adapters.redis_recovery import DEFAULT_MAX_LENGTH, RedisRecoveryStore, storable
from socketwire.adapters.room_subscriptions import RoomSubscriptions
from socketwire.adapters.session_aware import Session
from socketwire.core.cluster.reach import reaches
from socketwire.core.cluster.recovery_format import (
    ANCHOR_EVENT,
    ANCHOR_ROOM,
    StoredSession,
    decode_session,
    encode_recorded_broadcast,
    foreign_offset,
    make_offset,
    peek_offset,
)
from socketwire.core.cluster.redis_format import (
    DEFAULT_KEY,
    BroadcastMessage,
    decode_broadcast,
    encode_response,
    new_uid,
)
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.errors import ProtocolError, RequestTimeout
from socketwire.handlers import Runner

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Bus",
    "RedisAdapter",
    "RedisBus",
    "RedisSubscriptionMode",
    "RoomBus",
    "create_adapter",
]


class Bus(Protocol):
    """What a ``RedisAdapter`` needs of its bus (``RedisBus`` is the real one)."""

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message (in order; never blocks)."""

    def command(self, *args: Any, size: int = 0) -> asyncio.Future[Any] | None:
        """Queue a command behind the messages; its reply (None: dropped, queue full)."""

    async def numsub(self, channel: str) -> int:
        """How many subscribers ``channel`` has (``PUBSUB NUMSUB``)."""

    async def subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        """Route the messages of ``channels`` and ``patterns`` to ``handler``."""

    async def unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        """Stop routing them."""


class _Catch:
    """A session being restored: the broadcasts that fall between the history Redis
    returned and the socket joining its rooms."""

    __slots__ = ("fence", "fenced", "items", "session")

    def __init__(self, fence: asyncio.Future[None]) -> None:
        self.fence = fence
        self.fenced = False  # remote broadcasts count once the fence arrived
        self.items: list[tuple[list[Any], frozenset[str], frozenset[str]]] = []
        self.session: Session | None = None


def _start_of(position: asyncio.Future[Any]) -> str | None:
    """The score a ``ZREVRANGE ... WITHSCORES`` reply names ("0": no history yet)."""
    if position.cancelled() or position.exception() is not None:
        return None
    reply = position.result()  # [(offset, score)] (redis-py pairs them), or []
    return repr(float(reply[0][1])) if reply else "0"


class RedisAdapter(ClusterAdapter):
    """A namespace's adapter in a Redis cluster: ``ClusterAdapter`` on a bus.

    ``bus`` is shared by every namespace's adapter of a server (``create_adapter``
    builds one); ``key`` and the options are Node's. With ``recovery`` (and the
    server's ``connection_state_recovery``), sessions and missed broadcasts are
    kept in Redis, so that any server of the cluster recovers them
    (``socketwire.adapters.redis_recovery``). ``subscription_mode`` is
    ``"pattern"`` (Node's) or ``"interest"`` (see the module docstring); interest
    mode needs a ``RoomBus`` and refuses ``recovery``.
    """

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.redis")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        bus: Bus,
        *,
        key: str = DEFAULT_KEY,
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
        recovery: bool = False,
        recovery_max_length: int = DEFAULT_MAX_LENGTH,
        subscription_mode: RedisSubscriptionMode | str = RedisSubscriptionMode.PATTERN,
    ) -> None:
        mode = RedisSubscriptionMode(subscription_mode)
        if mode is RedisSubscriptionMode.INTEREST and recovery:
            raise ValueError(RECOVERY_NEEDS_PATTERN)
        super().__init__(
            nsp,
            key=key,
            requests_timeout=requests_timeout,
            publish_on_specific_response_channel=publish_on_specific_response_channel,
        )
        self.bus = bus
        self.subscription_mode = mode
        self._subscribed = False
        #: Interest mode: the rooms' channels (None in pattern mode).
        self.interest: InterestRooms | None = None
        if mode is RedisSubscriptionMode.INTEREST:
            if not isinstance(bus, RoomBus):
                raise TypeError("subscription_mode='interest' needs a RoomBus (such as RedisBus)")
            self.interest = InterestRooms(self.channels, bus, self.on_message, self.log)
        self.recovery: RedisRecoveryStore | None = None
        lifetime = nsp.max_disconnection_duration if recovery else None
        if lifetime is not None:
            self.recovery = RedisRecoveryStore(bus, key, nsp.name, lifetime, recovery_max_length)
        self._counter = 0
        self._next_offset: str | None = None  # of the broadcast being emitted
        self._anchor: str | None = None  # the last offset received in order
        self._since_anchor = 0
        self._received_offset: str | None = None  # of the message being handled
        # Per connected socket: Redis's reply on where the history stood when it joined.
        self._starts: dict[str, asyncio.Future[Any]] = {}
        self._fences: dict[bytes, _Catch] = {}
        self._catches: dict[str, _Catch] = {}
        # The connected sockets whose sessions the live hash keeps: sid -> [pid, the
        # hash of the blob last written (None: write it whatever it is)], those to
        # write at the next loop turn, and the heartbeat.
        self._live: dict[str, list[Any]] = {}
        self._dirty: set[str] = set()
        self._flush: asyncio.Handle | None = None
        self._beat: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Subscribed: the other servers count this one and reach it."""
        return self._subscribed

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message on the bus (its one writer task publishes it)."""
        self.bus.publish(channel, payload)

    async def server_count(self) -> int:
        """The servers of the cluster serving this namespace, this one included:
        the subscribers of its request channel (``RequestTimeout`` when Redis does
        not answer within ``requests_timeout``)."""
        try:
            return await asyncio.wait_for(
                self.bus.numsub(self.channels.request), self.requests_timeout
            )
        except TimeoutError:
            raise RequestTimeout(
                f"redis did not answer within {self.requests_timeout} s (server count)"
            ) from None
        except RequestTimeout:
            raise
        except Exception as exc:  # redis-py's ConnectionError, mostly
            raise RequestTimeout(f"redis unavailable: {exc}") from exc

    @property
    def room_subscriptions(self) -> RoomSubscriptions | None:
        """Interest mode: the rooms' channels, wanted and sent (None in pattern mode)."""
        return self.interest.subscriptions if self.interest is not None else None

    @property
    def subscriptions(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The channels and patterns subscribed at ``init``: in interest mode, the
        namespace's broadcast channel instead of the pattern (the rooms' channels
        come and go with the rooms)."""
        if self.interest is None:
            return super().subscriptions
        ch = self.channels
        return (ch.request, ch.response, ch.specific_response, ch.broadcast), ()

    async def init(self) -> None:
        """Subscribe (returns once Redis confirmed: other servers count this one)."""
        channels, patterns = self.subscriptions
        await self.bus.subscribe(channels, patterns, self.on_message)
        self._subscribed = True
        if self.interest is not None:
            # The rooms made before (a mounted app's early sockets) go in one command.
            self.interest.start()
        if self.recovery is not None:
            # An invisible recorded broadcast: the others' first anchor from this server.
            self._broadcast_recorded([ANCHOR_EVENT], frozenset({ANCHOR_ROOM}), False)
            self.recovery.beat(self.uid)
            if self._beat is None:
                self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def close(self) -> None:
        """Give up waiting requests and unsubscribe (the last adapter closes the bus)."""
        if not self._subscribed:
            return
        self._subscribed = False
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.recovery is not None:
            self.recovery.leave(self.uid)
        await super().close()
        channels, patterns = self.subscriptions
        if self.interest is not None:
            channels = (*channels, *await self.interest.close())
        await self.bus.unsubscribe(channels, patterns)

    # -- interest mode: the rooms' channels (socketwire.adapters.redis_interest) ---------

    def on_create_room(self, room: str) -> None:
        """Interest mode: subscribe to the room's channel (batched, in order)."""
        if self.interest is not None:
            self.interest.room_created(room)

    def on_delete_room(self, room: str) -> None:
        """Interest mode: unsubscribe from the room's channel."""
        if self.interest is not None:
            self.interest.room_deleted(room)

    def connecting(self, sid: str) -> Awaitable[None] | None:
        """Interest mode: subscribe the socket's own room, and have the server wait
        until Redis confirmed it and the rooms the socket joined in a middleware (at
        most ``requests_timeout``; not while the subscriber connection is down)."""
        if self.interest is None:
            return None
        rooms = self.sids.get(sid, ())
        return self.interest.connecting(sid, rooms, self._subscribed, self.requests_timeout)

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        super().add_all(sid, rooms)
        if self.interest is not None:
            self.interest.joined(sid)

    async def wait_until_subscribed(self, *rooms: str) -> bool:
        """Wait until Redis confirmed this server's subscription to the channel of
        each of ``rooms`` that it holds: from then on, a broadcast to one of them
        from any server reaches it. True at once in pattern mode; False when Redis
        did not confirm within ``requests_timeout``."""
        if self.interest is None:
            return True
        return await self.interest.wait(rooms, self.requests_timeout)

    # -- connection state recovery ------------------------------------------------------

    def on_message(self, channel: str, payload: bytes) -> None:
        """A message of the subscriptions; with recovery, every broadcast's offset is
        followed (before the room filter drops anything)."""
        if self.recovery is None:
            super().on_message(channel, payload)
            return
        ch = self.channels
        if channel == ch.specific_response and payload in self._fences:
            # Published by the restore script: what comes after it is not in the
            # history the script returned.
            catch = self._fences.pop(payload)
            catch.fenced = True
            if not catch.fence.done():
                catch.fence.set_result(None)
            return
        room = ch.room_of(channel)
        if room is None:
            super().on_message(channel, payload)
            return
        offset = peek_offset(payload)
        if offset is not None:
            self._anchor, self._since_anchor = offset, 0
        elif self._anchor is not None:
            self._since_anchor += 1
            offset = foreign_offset(self._anchor, self._since_anchor)
            self.recovery.record_foreign(offset, payload, self._anchor, self._since_anchor)
        self._received_offset = offset
        try:
            if self._catches:
                self._catch_received(payload, offset)
            super().on_message(channel, payload)
        finally:
            self._received_offset = None

    def _catch_received(self, payload: bytes, offset: str | None) -> None:
        try:
            msg = decode_broadcast(payload)
        except ProtocolError:
            return
        if msg.uid == self.uid or msg.nsp != self.nsp.name or msg.flags.volatile or not offset:
            return
        for catch in self._catches.values():
            if catch.fenced:
                catch.items.append(([*msg.data, offset], msg.rooms, msg.except_rooms))

    def received_offset(self, msg: BroadcastMessage) -> str | None:
        """The offset of the broadcast being handled (not for volatile ones)."""
        return None if msg.flags.volatile else self._received_offset

    def add_to_history(self, data: list[Any], opts: BroadcastOptions) -> None:
        """Append this broadcast's offset (recorded in Redis as it is published)."""
        if self.recovery is None:
            return
        self._counter += 1
        offset = self._next_offset = make_offset(self.uid, self._counter)
        data.append(offset)

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        offset = self._next_offset
        if offset is None:
            super().broadcast(message, packet, opts)
            return
        self._next_offset = None
        data = packet.data
        assert data and data[-1] == offset
        self.warn_if_not_ready("a broadcast")
        self._broadcast_recorded(data[:-1], opts.rooms, opts.local, opts, offset)
        for catch in self._catches.values():
            catch.items.append((data, opts.rooms, opts.except_rooms))
        self.broadcast_local(message, opts, packet)

    def _broadcast_recorded(
        self,
        data: list[Any],
        rooms: frozenset[str],
        local: bool,
        opts: BroadcastOptions | None = None,
        offset: str | None = None,
    ) -> None:
        assert self.recovery is not None
        if offset is None:
            self._counter += 1
            offset = make_offset(self.uid, self._counter)
        # Node servers get the classic message (its offset is a fourth element they ignore).
        payload = encode_recorded_broadcast(
            self.uid,
            self.nsp.name,
            data,
            rooms,
            opts.except_rooms if opts is not None else (),
            offset,
            compress=opts.compress if opts is not None else True,
        )
        self.recovery.record(offset, payload, None if local else self.channels.for_rooms(rooms))

    def start_session(self, sid: str, restored: Any) -> None:
        """Note where the history stands (in order with this server's broadcasts);
        complete a restored session with what fell between history and joining."""
        if self.recovery is None:
            return
        catch = self._catches.pop(restored.pid, None) if restored is not None else None
        if catch is not None:
            rooms = set(restored.rooms)
            restored.missed.extend(d for d, to, ex in catch.items if reaches(rooms, to, ex))
        position = self.recovery.position()
        if position is not None:
            self._starts[sid] = position
            # Its live session gets its start once Redis told it.
            position.add_done_callback(lambda _: self._touch(sid, again=True))
        socket = self.nsp.local_sockets.get(sid)
        pid = getattr(socket, "pid", None)
        if isinstance(pid, str):
            self._live[sid] = [pid, None]
            # Written after the connection handlers ran (their rooms and data).
            self._touch(sid)

    def delete_all(self, sid: str) -> None:
        self._starts.pop(sid, None)
        live = self._live.pop(sid, None)
        if live is not None and self.recovery is not None:
            self._dirty.discard(sid)
            self.recovery.drop_live(self.uid, live[0])
        super().delete_all(sid)
        if self.interest is not None:
            self.interest.gone(sid, sid in self.rooms)

    def on_join_room(self, room: str, sid: str) -> None:
        if sid in self._live:
            self._touch(sid)

    def on_leave_room(self, room: str, sid: str) -> None:
        if sid in self._live:
            self._touch(sid)

    def _touch(self, sid: str, *, again: bool = False) -> None:
        """Write ``sid``'s live session at the next loop turn (``again``: even if
        its blob did not change)."""
        live = self._live.get(sid)
        if live is None:
            return
        if again:
            live[1] = None
        self._dirty.add(sid)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._write_live)

    def _write_live(self) -> None:
        """Write the live sessions that changed (see ``redis_recovery``: servers that die)."""
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        store = self.recovery
        if store is None:
            return
        sockets = self.nsp.local_sockets
        for sid in dirty:
            live = self._live.get(sid)
            socket = sockets.get(sid)
            if live is None or socket is None:
                continue
            pid, written = live
            rooms = list(self.socket_rooms(sid) or ())
            blob = storable(StoredSession(sid, pid, rooms, socket.data), quiet=True)
            mark = hash(blob)
            if mark == written:
                continue
            position = self._starts.get(sid)
            start = _start_of(position) if position is not None and position.done() else None
            store.keep_live(self.uid, blob, pid, start)
            live[1] = mark

    async def _heartbeat(self) -> None:
        """Keep the live hash, and write the sessions whose ``socket.data`` changed."""
        store = self.recovery
        assert store is not None
        while True:
            await asyncio.sleep(store.beat_interval)
            store.beat(self.uid)
            for sid in self._live:
                self._touch(sid)

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Keep the session in Redis for ``max_disconnection_duration``."""
        if self.recovery is None:
            return
        store = self.recovery
        session = StoredSession(sid, pid, rooms, data)
        position = self._starts.pop(sid, None)
        if position is None:
            store.persist(session, None)
        elif position.done():
            store.persist(session, _start_of(position))
        else:
            # Disconnected before Redis told where the history stood at connection.
            position.add_done_callback(lambda fut: store.persist(session, _start_of(fut)))

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` from Redis with the broadcasts it missed, or None."""
        if self.recovery is None:
            return None
        fence = encode_response({"requestId": new_uid()})
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        catch = self._catches[pid] = _Catch(arrived)
        self._fences[fence] = catch
        ch = self.channels
        reply_fut = self.recovery.restore(
            pid, offset, ch.specific_response, fence, self.uid, ch.response
        )
        try:
            if reply_fut is None:
                return None
            reply = await asyncio.wait_for(reply_fut, self.requests_timeout)
            await asyncio.wait_for(arrived, self.requests_timeout)
        except Exception as exc:
            self.log.warning("nsp=%s: session %s not restored: %s", self.nsp.name, pid, exc)
            self._catches.pop(pid, None)
            return None
        finally:
            self._fences.pop(fence, None)
        if not reply or len(reply) < 3:
            self._catches.pop(pid, None)
            return None
        try:
            stored = decode_session(reply[0])
        except ProtocolError as exc:
            self.log.warning("nsp=%s: stored session %s unreadable: %s", self.nsp.name, pid, exc)
            self._catches.pop(pid, None)
            return None
        session = Session(stored.sid, stored.pid, stored.rooms, stored.data)
        rooms = set(stored.rooms)
        for raw_offset, payload in zip(reply[1], reply[2], strict=True):
            if payload is None:
                continue
            try:
                msg = decode_broadcast(payload)
            except ProtocolError:
                continue
            if msg.nsp != self.nsp.name or msg.flags.volatile:
                continue
            if reaches(rooms, msg.rooms, msg.except_rooms):
                session.missed.append([*msg.data, raw_offset.decode()])
        catch.session = session
        # Until the socket joins (start_session), the catch keeps what arrives;
        # a connection that never joins must not keep it forever.
        asyncio.get_running_loop().call_later(
            2 * self.requests_timeout, self._catches.pop, pid, None
        )
        return session


def create_adapter(
    redis: Redis | str = "redis://127.0.0.1:6379",
    *,
    sub_client: Redis | None = None,
    key: str = DEFAULT_KEY,
    requests_timeout: float = 5.0,
    publish_on_specific_response_channel: bool = False,
    max_pending_bytes: int = 64 * 1024 * 1024,
    recovery: bool = False,
    recovery_max_length: int = DEFAULT_MAX_LENGTH,
    subscription_mode: RedisSubscriptionMode | str = RedisSubscriptionMode.PATTERN,
) -> Callable[[NamespacePort], RedisAdapter]:
    """The ``adapter`` option of a server in a Redis cluster.

    ``redis`` is a ``redis.asyncio.Redis`` client (publishing and counting
    servers) or a URL for one that the adapter creates and closes; the subscriber
    uses a connection of ``sub_client`` (by default of the same client). Options
    are those of Node's ``createAdapter``, in seconds.

    ``recovery=True`` keeps connection state recovery's sessions and broadcasts in
    Redis (with the server's ``connection_state_recovery`` on), at most
    ``recovery_max_length`` broadcasts per namespace, so that a client recovers
    its session on any server of the cluster, also after a restart.
    ``max_pending_bytes`` bounds what waits for Redis while it is away.

    ``subscription_mode="interest"`` subscribes each server to the rooms it holds
    instead of Node's pattern, so that a broadcast to one room reaches only the
    servers that have it (see the module docstring and ``RedisSubscriptionMode``);
    it cannot be combined with ``recovery`` (ValueError).
    """
    from redis.asyncio import Redis as _Redis

    mode = RedisSubscriptionMode(subscription_mode)
    if mode is RedisSubscriptionMode.INTEREST and recovery:
        raise ValueError(RECOVERY_NEEDS_PATTERN)

    client, owned = own_client(redis, _Redis.from_url)
    bus = RedisBus(client, sub_client, owns_client=owned, max_pending_bytes=max_pending_bytes)
    make = partial(
        RedisAdapter,
        bus=bus,
        key=key,
        requests_timeout=requests_timeout,
        publish_on_specific_response_channel=publish_on_specific_response_channel,
        recovery=recovery,
        recovery_max_length=recovery_max_length,
        subscription_mode=mode,
    )
    return adapter_factory(make, bus)
