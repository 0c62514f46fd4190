"""The Redis Streams adapter: a cluster of servers over Redis streams, with
connection state recovery across servers (layer 1).

Wire-compatible with Node's ``@socket.io/redis-streams-adapter`` 0.3: socketwire
and Node servers share one Redis and one Socket.IO cluster, and a client that
loses its connection to one server may come back on any other (socketwire or
Node) and get its session and the broadcasts it missed.

::

    from redis.asyncio import Redis

    import socketwire
    from socketwire.adapters.streams import create_streams_adapter

    sio = socketwire.Server(
        adapter=create_streams_adapter(Redis(host="127.0.0.1")),
        connection_state_recovery=True,
    )

What goes where (``socketwire.core.cluster.stream_format`` has the bytes):

* broadcasts (without acks), ``sockets_join``, ``sockets_leave`` and
  ``disconnect_sockets`` are appended to the namespace's stream
  (``XADD ... MAXLEN ~ max_len``), which every server reads;
* requests that wait for answers (a broadcast with acks, ``server_side_emit``,
  ``fetch_sockets``) are published on ``<channel_prefix>#<nsp>#`` and the
  answers on ``<channel_prefix>#<nsp>#<uid>#``, as msgpack;
* ``server_count`` is ``PUBSUB NUMSUB <channel_prefix>#<nsp>#``.

**Connection state recovery.** With the server's ``connection_state_recovery``
on, a broadcast's offset is the id of its stream entry: the server that sends
it appends the entry first and then delivers it locally with the id as last
argument; the others add the id they read. A socket that disconnects for a
recoverable reason leaves its session under ``<session_key_prefix><pid>`` for
``max_disconnection_duration``; the server that the client comes back to takes
it (``GET`` and ``DEL`` in one transaction), checks that the client's offset is
still in the stream, and replays the namespace's broadcasts after it that
reached the session's rooms, as Node does (volatile ones included, since Node
includes them: a client gets the same packets whichever server it returns to).

Node's 0.3 adapter declares ``heartbeatInterval`` and ``heartbeatTimeout`` but
derives from ``ClusterAdapter``, not ``ClusterAdapterWithHeartbeat``: it sends
no heartbeat and counts servers with ``PUBSUB NUMSUB``. This adapter takes the
two options for the same signature and, like Node's, does not use them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from socketwire.adapters.base import BroadcastOptions
from socketwire.adapters.factory import adapter_factory, own_client
from socketwire.adapters.message_cluster import MessageClusterAdapter
from socketwire.adapters.ports import NamespacePort
from socketwire.adapters.session_aware import Session
from socketwire.adapters.streams_bus import StreamsBus
from socketwire.core.cluster.message_format import (
    DEFAULT_CHANNEL_PREFIX,
    MessageType,
    broadcast_data,
    decode_message,
    encode_options,
)
from socketwire.core.cluster.stream_format import (
    DEFAULT_SESSION_KEY_PREFIX,
    DEFAULT_STREAM_NAME,
    StoredSession,
    decode_entry,
    decode_session,
    encode_entry,
    encode_ephemeral,
    encode_session,
    included,
    is_ephemeral,
    is_offset,
    next_offset,
    stream_for,
)
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.errors import ProtocolError
from socketwire.handlers import Runner

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["StreamsAdapter", "StreamsBus", "create_streams_adapter"]

# Node's RESTORE_SESSION_MAX_XRANGE_CALLS: a bound, should the stream grow
# faster than a restore reads it.
MAX_XRANGE_CALLS = 100
_BROADCAST_TYPE = str(int(MessageType.BROADCAST)).encode()


class StreamsAdapter(MessageClusterAdapter):
    """A namespace's adapter on Redis streams (see the module docstring). ``bus``
    is shared by every namespace's adapter of a server."""

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.streams")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        bus: StreamsBus,
        *,
        stream_name: str = DEFAULT_STREAM_NAME,
        stream_count: int = 1,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        session_key_prefix: str = DEFAULT_SESSION_KEY_PREFIX,
        only_plaintext: bool = False,
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, requests_timeout=requests_timeout)
        self.bus = bus
        self.stream = stream_for(nsp.name, stream_name, stream_count)
        self.channel_prefix = channel_prefix
        self.channel = f"{channel_prefix}#{nsp.name}#"
        self.response_channel = self._response_channel(self.uid)
        self.session_key_prefix = session_key_prefix
        self.only_plaintext = only_plaintext
        self._ready = False
        self._session_writes: set[asyncio.Task[Any]] = set()

    @property
    def ready(self) -> bool:
        """Subscribed and reading: the other servers count and reach this one."""
        return self._ready

    def _response_channel(self, uid: str) -> str:
        return f"{self.channel_prefix}#{self.nsp.name}#{uid}#"

    # -- the transport ------------------------------------------------------------------

    def do_publish(self, kind: MessageType, data: dict[str, Any] | None) -> None:
        """Append a message to the stream, or publish it if it is ephemeral."""
        name = self.nsp.name
        if is_ephemeral(kind, data):
            self.bus.pubsub.publish(self.channel, encode_ephemeral(kind, self.uid, name, data))
        else:
            fields = encode_entry(kind, self.uid, name, data, only_plaintext=self.only_plaintext)
            self.bus.append(self.stream, fields)

    def do_publish_response(
        self, requester_uid: str, kind: MessageType, data: dict[str, Any]
    ) -> None:
        """Publish a response on the requester's own channel."""
        self.bus.pubsub.publish(
            self._response_channel(requester_uid),
            encode_ephemeral(kind, self.uid, self.nsp.name, data),
        )

    async def server_count(self) -> int:
        """The servers of the namespace, this one included (its channel's subscribers)."""
        return max(await self.bus.pubsub.numsub(self.channel), 1)

    def on_raw_message(self, channel: str, payload: bytes) -> None:
        """A pub/sub message (never raises: a malformed one is logged and ignored)."""
        try:
            msg = decode_message(payload)
        except ProtocolError as exc:
            self.log.info("invalid message on %s ignored: %s", channel, exc)
            return
        if channel == self.response_channel:
            self.on_response(msg)
        else:
            self.on_message(msg)

    def on_entry(self, fields: Mapping[bytes, bytes], entry_id: str) -> None:
        """A stream entry of this namespace (never raises)."""
        try:
            msg = decode_entry(fields)
        except ProtocolError as exc:
            self.log.info("invalid stream entry %s ignored: %s", entry_id, exc)
            return
        if (
            msg.type is MessageType.BROADCAST
            and msg.request_id is None
            and not msg.flags.volatile
            and self.nsp.max_disconnection_duration is not None
        ):
            # The entry id is the broadcast's offset for connection state recovery.
            msg.data = [*msg.data, entry_id]
        self.on_message(msg)

    # -- broadcasting -------------------------------------------------------------------

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        if opts.local:
            self.broadcast_local(message, opts, packet)
            return
        data = broadcast_data(
            packet.data,
            encode_options(
                opts.rooms, opts.except_rooms, volatile=opts.volatile, compress=opts.compress
            ),
        )
        try:
            fields = encode_entry(
                MessageType.BROADCAST,
                self.uid,
                self.nsp.name,
                data,
                only_plaintext=self.only_plaintext,
            )
        except ProtocolError as exc:
            self.log.warning("BROADCAST not published: %s", exc)
            self.broadcast_local(message, opts, packet)
            return
        if opts.volatile or self.nsp.max_disconnection_duration is None:
            self.bus.append(self.stream, fields)
            self.broadcast_local(message, opts, packet)
            return

        def deliver(entry_id: str | None) -> None:
            # As Node: the local clients get the broadcast once Redis gave it an
            # offset (without one if the append failed).
            out = message
            if entry_id is not None:
                packet.data.append(entry_id)
                nsp = self.nsp
                text, attachments = nsp.parser.encode_event(nsp.name, packet.data)
                out = OutgoingMessage(text, attachments)
            self.broadcast_local(out, opts, packet)

        self.bus.append(self.stream, fields, deliver)

    # -- connection state recovery ------------------------------------------------------

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Store a disconnected socket's session in Redis for
        ``max_disconnection_duration``."""
        duration = self.nsp.max_disconnection_duration
        if duration is None:
            return
        try:
            raw = encode_session(StoredSession(sid, pid, rooms, data))
        except ProtocolError as exc:
            self.log.warning("session of %s not stored: %s", sid, exc)
            return
        task = self.runner.spawn(
            self.bus.client.set(self.session_key_prefix + pid, raw, px=max(int(duration * 1000), 1))
        )
        self._session_writes.add(task)
        task.add_done_callback(self._session_writes.discard)

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` (taken from Redis) with the broadcasts missed
        after ``offset``, or None if either is gone. A client that received no
        broadcast (``offset`` None) gets a new session, as from Node's adapter:
        the stream keeps no session's start."""
        if offset is None or not is_offset(offset):
            return None
        client = self.bus.client
        key = self.session_key_prefix + pid
        pipe = client.pipeline(transaction=True)
        pipe.get(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
        if raw is None:
            return None
        if not await client.xrange(self.stream, offset, offset):
            return None  # the offset left the stream (trimmed): too old
        try:
            stored = decode_session(raw)
        except ProtocolError as exc:
            self.log.info("invalid session %s ignored: %s", pid, exc)
            return None
        nsp = self.nsp.name.encode()
        missed: list[list[Any]] = []
        for _ in range(MAX_XRANGE_CALLS):
            entries = await client.xrange(self.stream, next_offset(offset), "+")
            if not entries:
                break
            for raw_id, fields in entries:
                offset = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                if (
                    not fields
                    or fields.get(b"nsp") != nsp
                    or fields.get(b"type") != _BROADCAST_TYPE
                ):
                    continue
                try:
                    msg = decode_entry(fields)
                except ProtocolError:
                    continue
                if msg.request_id is None and included(stored.rooms, msg.rooms, msg.except_rooms):
                    missed.append([*msg.data, offset])
        return Session(stored.sid, stored.pid, stored.rooms, stored.data, missed=missed)

    # -- lifecycle ----------------------------------------------------------------------

    async def init(self) -> None:
        """Subscribe and start reading (returns once the other servers count this
        one and nothing appended from now on can be missed)."""
        self.bus.add_user()
        await self.bus.pubsub.subscribe(
            [self.channel, self.response_channel], [], self.on_raw_message
        )
        await self.bus.watch(self.stream, self.nsp.name, self.on_entry)
        self._ready = True

    async def close(self) -> None:
        """Give up waiting requests, store the sessions being stored, stop."""
        if not self._ready:
            return
        self._ready = False
        await super().close()
        if self._session_writes:
            await asyncio.gather(*self._session_writes, return_exceptions=True)
        self.bus.unwatch(self.stream, self.nsp.name)
        await self.bus.pubsub.unsubscribe([self.channel, self.response_channel], [])
        await self.bus.remove_user()


def create_streams_adapter(
    redis_client: Redis | str = "redis://127.0.0.1:6379",
    *,
    stream_name: str = DEFAULT_STREAM_NAME,
    stream_count: int = 1,
    max_len: int = 10_000,
    read_count: int = 100,
    block_time: float = 5.0,
    session_key_prefix: str = DEFAULT_SESSION_KEY_PREFIX,
    heartbeat_interval: float = 5.0,
    heartbeat_timeout: float = 10.0,
    channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
    only_plaintext: bool = False,
    requests_timeout: float = 5.0,
    max_pending_bytes: int = 64 * 1024 * 1024,
) -> Callable[[NamespacePort], StreamsAdapter]:
    """The ``adapter`` option of a server in a Redis Streams cluster.

    ``redis_client`` is a ``redis.asyncio.Redis`` client (it must not decode
    responses) or the URL of one that the adapter creates and closes. The
    options are Node's ``createAdapter`` options in snake case and seconds:
    ``stream_name`` and ``stream_count`` (a namespace's stream: ``stream_name``,
    or ``<stream_name>-<i>`` with several), ``max_len`` (the approximate length
    kept), ``read_count`` and ``block_time`` (each ``XREAD``),
    ``session_key_prefix`` (stored sessions), ``channel_prefix`` (pub/sub),
    ``only_plaintext`` (no msgpack in stream entries), and
    ``heartbeat_interval``/``heartbeat_timeout``, unused as in Node 0.3.
    ``requests_timeout`` bounds ``fetch_sockets`` and ``server_side_emit``.
    """
    from redis.asyncio import Redis as _Redis

    if stream_count < 1:
        raise ValueError(f"stream_count must be at least 1, got {stream_count}")
    if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
        raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
    client, owned = own_client(redis_client, _Redis.from_url)
    if not owned and client.get_connection_kwargs().get("decode_responses"):  # type: ignore[no-untyped-call]
        raise ValueError("the Redis client must not decode responses (binary messages)")
    bus = StreamsBus(
        client,
        owns_client=owned,
        max_len=max_len,
        read_count=read_count,
        block_time=block_time,
        max_pending_bytes=max_pending_bytes,
    )
    make = partial(
        StreamsAdapter,
        bus=bus,
        stream_name=stream_name,
        stream_count=stream_count,
        channel_prefix=channel_prefix,
        session_key_prefix=session_key_prefix,
        only_plaintext=only_plaintext,
        requests_timeout=requests_timeout,
    )
    return adapter_factory(make, bus)
