"""The cluster adapter: a template for adapters over a pub/sub bus (layer 1, asyncio).

``ClusterAdapter`` is what servers of a cluster do for each other, written once:
it speaks the channels and messages of Node's classic ``@socket.io/redis-adapter``
8.x (``socketwire.core.cluster.redis_format``), so socketwire and Node servers
share one cluster, and leaves the transport to a subclass. As in Node's
``ClusterAdapter``, the subclass fills in two methods and feeds one:

* ``publish(channel, payload)`` queues a message for the other servers (it must
  not block, and keeps the order of the messages);
* ``server_count()`` counts the servers of the namespace, this one included;
* every message of the ``subscriptions`` goes to ``on_message(channel, payload)``.

``socketwire.adapters.redis.RedisAdapter`` is the Redis subclass. As in Node:

* a broadcast is published, then delivered locally; ``local`` skips the publish;
* ``sockets_join``, ``sockets_leave`` and ``disconnect_sockets`` are published and
  applied by every server when the request comes back, this one included;
* ``fetch_sockets`` and ``all_rooms`` ask every other server and wait for all of
  them at most ``requests_timeout`` seconds, then raise ``RequestTimeout``;
* a broadcast with acks completes once every server has told how many clients
  it reached and that many acks arrived, or at its timeout;
* connection state recovery is not supported here (as in Node's classic Redis
  adapter): ``RedisAdapter`` adds it, opt-in (``socketwire.adapters.redis_recovery``).

A cluster operation before ``init()`` (the adapter of a mounted ASGI app whose
host never started it, say) reaches no other server and is not seen by them:
the first one logs a warning that says how to start the adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from socketwire.adapters.base import BroadcastOptions
from socketwire.adapters.cluster_base import ClusterAdapterBase
from socketwire.adapters.ports import NamespacePort
from socketwire.core.cluster.redis_format import (
    DEFAULT_KEY,
    BroadcastMessage,
    Channels,
    Request,
    RequestType,
    Response,
    decode_broadcast,
    decode_request,
    decode_response,
    encode_broadcast,
    encode_broadcast_ack,
    encode_broadcast_request,
    encode_request,
    encode_response,
    new_uid,
    parse_fetched_socket,
    targets,
)
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.errors import LocalProtocolError, ProtocolError, RequestTimeout
from socketwire.handlers import Runner

__all__ = ["ClusterAdapter"]


class ClusterAdapter(ClusterAdapterBase):
    """A namespace's adapter in a cluster of servers (see the module docstring).

    A subclass provides ``publish`` and ``server_count``, subscribes to
    ``subscriptions`` in ``init`` with ``on_message`` as the handler, and
    unsubscribes in ``close`` before calling this class's ``close``. It may name
    its own ``log`` (and ``runner``, the Runner of the tasks it starts).
    """

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.cluster")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        *,
        key: str = DEFAULT_KEY,
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
    ) -> None:
        super().__init__(nsp, uid=new_uid(), requests_timeout=requests_timeout)
        self.key = key
        self.publish_on_specific_response_channel = publish_on_specific_response_channel
        self.channels = Channels(nsp.name, self.uid, key)
        self._warned_not_ready = False

    @property
    def ready(self) -> bool:
        """Whether the adapter is connected to the cluster (``init`` done); a
        subclass whose ``init`` subscribes says so here."""
        return True

    def warn_if_not_ready(self, operation: str) -> None:
        """Log once that ``operation`` ran before the adapter joined the cluster."""
        if self._warned_not_ready or self.ready:
            return
        self._warned_not_ready = True
        self.log.warning(
            "nsp=%s: %s ran before the cluster adapter started, so the other servers "
            "neither see nor answer it. Start the adapters first: `await sio.listen()`, "
            "the ASGI lifespan, or `async with sio.lifespan():` (FastAPI: "
            "lifespan=sio.lifespan) when the app is mounted in another one",
            self.nsp.name,
            operation,
        )

    # -- the transport (a subclass's part) ------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue ``payload`` for the subscribers of ``channel``; never blocks."""
        raise NotImplementedError

    async def server_count(self) -> int:
        """The servers of the cluster serving this namespace, this one included."""
        raise NotImplementedError

    @property
    def subscriptions(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The channels and the patterns whose messages go to ``on_message``."""
        ch = self.channels
        return (ch.request, ch.response, ch.specific_response), (ch.pattern,)

    def _new_request_id(self) -> str:
        return new_uid()

    def _send_client_count(self, uid: str | None, request_id: str, clients: int) -> None:
        payload = encode_response(
            {
                "type": int(RequestType.BROADCAST_CLIENT_COUNT),
                "requestId": request_id,
                "clientCount": clients,
            }
        )
        self._respond(uid, payload)

    def _send_ack(self, uid: str | None, request_id: str, answer: Any) -> None:
        try:
            payload = encode_broadcast_ack(request_id, answer)
        except LocalProtocolError as exc:
            self.log.warning("ack not relayed to the cluster: %s", exc)
            return
        self._respond(uid, payload)

    # -- incoming -----------------------------------------------------------------------

    def on_message(self, channel: str, payload: bytes) -> None:
        """One message of the ``subscriptions`` (never raises: a malformed message
        is logged and ignored, since every server and emitter shares the channels)."""
        ch = self.channels
        try:
            if channel == ch.request:
                self._on_request(decode_request(payload))
            elif channel == ch.response or channel == ch.specific_response:
                self._on_response(decode_response(payload))
            else:
                room = ch.room_of(channel)
                # Drop what no local socket can receive before decoding anything.
                if room is None or (room and not self.takes_room(room)):
                    return
                self._on_broadcast(decode_broadcast(payload))
        except ProtocolError as exc:
            self.log.info("invalid message on %s ignored: %s", channel, exc)

    def _on_broadcast(self, msg: BroadcastMessage) -> None:
        if msg.uid == self.uid or msg.nsp != self.nsp.name:
            return
        offset = self.received_offset(msg)
        if offset is not None:
            msg.data = [*msg.data, offset]
        self.on_remote_broadcast(msg)
        self._deliver_remote(msg.data, msg.rooms, msg.except_rooms, msg.flags)

    def takes_room(self, room: str) -> bool:
        """Whether another server's broadcast to ``room`` alone is handled here:
        when a local socket is in it. A subclass that files every broadcast
        for recovery takes them all."""
        return room in self.rooms

    def received_offset(self, msg: BroadcastMessage) -> str | None:
        """Hook: the recovery offset a received broadcast gets as its last argument
        (None: none, as here)."""
        return None

    def _on_request(self, req: Request) -> None:
        kind = req.type
        if kind is RequestType.BROADCAST:
            if req.request_id in self._ack_requests or req.uid == self.uid:
                return
            assert req.request_id is not None
            self._relay_remote(
                req.data, req.rooms, req.except_rooms, req.flags, req.request_id, req.uid
            )
        elif kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE):
            # Applied by every server, the sender included (it waits for its own request).
            if req.sid is not None:
                sock = self.nsp.local_sockets.get(req.sid)
                if sock is None:
                    return
                assert req.room is not None
                if kind is RequestType.REMOTE_JOIN:
                    sock.join(req.room)
                else:
                    sock.leave(req.room)
                self._respond(req.uid, encode_response({"requestId": req.request_id}))
                return
            opts = BroadcastOptions(rooms=req.rooms, except_rooms=req.except_rooms)
            if kind is RequestType.REMOTE_JOIN:
                super().add_sockets(opts, req.new_rooms)
            else:
                super().del_sockets(opts, req.new_rooms)
        elif kind is RequestType.REMOTE_DISCONNECT:
            if req.sid is not None:
                sock = self.nsp.local_sockets.get(req.sid)
                if sock is None:
                    return
                sock.disconnect(req.close)
                self._respond(req.uid, encode_response({"requestId": req.request_id}))
                return
            opts = BroadcastOptions(rooms=req.rooms, except_rooms=req.except_rooms)
            super().disconnect_sockets(opts, req.close)
        elif kind is RequestType.SERVER_SIDE_EMIT:
            if req.uid == self.uid:
                return
            request_id = req.request_id
            reply = (
                None if request_id is None else partial(self._send_server_side_answer, request_id)
            )
            self._run_server_side_emit(req.data, reply)
        elif req.request_id in self._requests:
            return  # our own SOCKETS / ALL_ROOMS / REMOTE_FETCH request, back to us
        elif kind is RequestType.REMOTE_FETCH:
            opts = BroadcastOptions(rooms=req.rooms, except_rooms=req.except_rooms)
            send = partial(self._send_fetched, req.uid, req.request_id)
            self.runner.spawn(self._send_sockets(opts, send, send))
        elif kind is RequestType.ALL_ROOMS:
            self._respond(
                req.uid, encode_response({"requestId": req.request_id, "rooms": list(self.rooms)})
            )
        elif kind is RequestType.SOCKETS:
            sids = list(self.sockets(req.rooms))
            self._respond(req.uid, encode_response({"requestId": req.request_id, "sockets": sids}))

    def _send_server_side_answer(self, request_id: str, answer: Any) -> None:
        # Node answers server-side emits on the generic response channel, always.
        try:
            payload = encode_response(
                {"type": int(RequestType.SERVER_SIDE_EMIT), "requestId": request_id, "data": answer}
            )
        except LocalProtocolError as exc:
            self.log.warning("server-side emit answer not sent: %s", exc)
            return
        self.publish(self.channels.response, payload)

    def _send_fetched(
        self, requester_uid: str | None, request_id: str | None, sockets: list[dict[str, Any]]
    ) -> None:
        payload = encode_response({"requestId": request_id, "sockets": sockets})
        self._respond(requester_uid, payload)

    def _respond(self, requester_uid: str | None, payload: bytes) -> None:
        channel = self.channels.response_to(
            requester_uid, self.publish_on_specific_response_channel
        )
        self.publish(channel, payload)

    def _on_response(self, resp: Response) -> None:
        request_id = resp.request_id
        # Only a client count carries ``client_count``.
        is_ack = resp.type == RequestType.BROADCAST_ACK
        if self._on_ack_response(request_id, resp.client_count, is_ack, resp.answer):
            return
        pending = self._pending(request_id)
        if pending is None:
            return
        kind = pending.kind
        if kind is RequestType.REMOTE_FETCH:
            if resp.sockets is None:
                return
            for entry in resp.sockets:
                s = parse_fetched_socket(entry)
                pending.results.append(
                    {"id": s.id, "handshake": s.handshake, "rooms": s.rooms, "data": s.data}
                )
        elif kind is RequestType.ALL_ROOMS:
            if resp.rooms is None:
                return
            pending.results.extend(resp.rooms)
        elif kind is RequestType.SERVER_SIDE_EMIT:
            if not resp.has_answer:
                return
            pending.results.append(resp.answer)
        self._answered(pending)

    def on_remote_broadcast(self, msg: BroadcastMessage) -> None:
        """Hook: another server's broadcast, about to be delivered to the local
        sockets (a subclass that keeps a history for recovery keeps it). Does
        nothing here."""

    # -- outgoing ------------------------------------------------------------------------

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        if not opts.local:
            self.warn_if_not_ready("a broadcast")
            payload = encode_broadcast(
                self.uid,
                self.nsp.name,
                packet.data,
                opts.rooms,
                opts.except_rooms,
                volatile=opts.volatile,
                compress=opts.compress,
            )
            self.publish(self.channels.for_rooms(opts.rooms), payload)
        self.broadcast_local(message, opts, packet)

    def _broadcast_request(
        self, packet: Any, opts: BroadcastOptions, request_id: str
    ) -> Callable[[], None]:
        self.warn_if_not_ready("a broadcast with acks")
        payload = encode_broadcast_request(
            self.uid,
            request_id,
            self.nsp.name,
            packet.data,
            opts.rooms,
            opts.except_rooms,
            volatile=opts.volatile,
            compress=opts.compress,
            timeout=opts.timeout,
        )
        return partial(self.publish, self.channels.request, payload)

    async def _ask(
        self, kind: RequestType, local: list[Any], what: str, **fields: Any
    ) -> list[Any]:
        """Publish a request to the other servers and gather their answers with ``local``."""
        self.warn_if_not_ready(what)
        servers = await self.server_count()
        if servers <= 1:
            return local

        def send(request_id: str) -> None:
            self.publish(
                self.channels.request, encode_request(self.uid, kind, request_id, **fields)
            )

        try:
            return await self._request(kind, servers - 1, local, self.requests_timeout, send)
        except TimeoutError:
            raise RequestTimeout(f"timeout reached while waiting for {what} response") from None

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        local = await super().fetch_sockets(opts)
        if opts.local:
            return local
        return await self._ask(
            RequestType.REMOTE_FETCH,
            local,
            "fetchSockets",
            opts=targets(opts.rooms, opts.except_rooms),
        )

    async def all_rooms(self) -> set[str]:
        """Every room of the namespace, across the cluster."""
        rooms = await self._ask(RequestType.ALL_ROOMS, list(self.rooms), "allRooms")
        return set(rooms)

    def _publish_targeted(self, kind: RequestType, opts: BroadcastOptions, **fields: Any) -> None:
        self.warn_if_not_ready(kind.name)
        payload = encode_request(
            self.uid, kind, opts=targets(opts.rooms, opts.except_rooms), **fields
        )
        self.publish(self.channels.request, payload)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        if opts.local:
            super().add_sockets(opts, rooms)
        else:
            self._publish_targeted(RequestType.REMOTE_JOIN, opts, rooms=list(rooms))

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        if opts.local:
            super().del_sockets(opts, rooms)
        else:
            self._publish_targeted(RequestType.REMOTE_LEAVE, opts, rooms=list(rooms))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if opts.local:
            super().disconnect_sockets(opts, close)
        else:
            self._publish_targeted(RequestType.REMOTE_DISCONNECT, opts, close=close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        self.warn_if_not_ready("serverSideEmit")
        self.publish(
            self.channels.request,
            encode_request(self.uid, RequestType.SERVER_SIDE_EMIT, data=packet),
        )

    async def server_side_emit_with_ack(
        self, packet: list[Any], timeout: float | None
    ) -> list[Any]:
        self.warn_if_not_ready("serverSideEmit")
        kind = RequestType.SERVER_SIDE_EMIT

        def send(request_id: str) -> None:
            self.publish(
                self.channels.request, encode_request(self.uid, kind, request_id, data=packet)
            )

        return await self._collect_answers(kind, timeout, send)
