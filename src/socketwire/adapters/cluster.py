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

import asyncio
import inspect
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from socketwire.adapters.base import Adapter, BroadcastOptions
from socketwire.adapters.ports import AckCollector, NamespacePort
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
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.errors import AckTimeout, LocalProtocolError, ProtocolError, RequestTimeout
from socketwire.handlers import Runner

__all__ = ["ClusterAdapter"]


class _Pending:
    """A request of this server waiting for the others' responses."""

    __slots__ = ("expected", "future", "kind", "received", "results")

    def __init__(self, kind: RequestType, expected: int, results: list[Any]) -> None:
        self.kind = kind
        self.expected = expected  # responses due (other servers)
        self.received = 0
        self.results = results
        self.future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()


class _AckRequest:
    """A broadcast with acks of this server, while the cluster answers.

    Client counts that arrive before ``server_count`` told how many servers there
    are wait here, so that the collector never completes early.
    """

    __slots__ = ("collector", "early_clients", "early_reports", "known")

    def __init__(self, collector: AckCollector) -> None:
        self.collector = collector
        self.known = False
        self.early_clients = 0
        self.early_reports = 0

    def client_count(self, count: int) -> None:
        if self.known:
            self.collector.expect(count, 1)
        else:
            self.early_clients += count
            self.early_reports += 1

    def servers_known(self, others: int) -> None:
        # One placeholder server stood for the cluster until now.
        self.known = True
        self.collector.add_servers(others)
        self.collector.expect(self.early_clients, self.early_reports + 1)


class _AckRelay:
    """Another server's broadcast with acks, run here: counts and acks go back to it."""

    __slots__ = ("adapter", "request_id", "uid")

    def __init__(self, adapter: ClusterAdapter, request_id: str, uid: str | None) -> None:
        self.adapter = adapter
        self.request_id = request_id
        self.uid = uid

    def member(self) -> _RelayMember:
        return _RelayMember(self)

    def expect(self, clients: int, servers: int = 1) -> None:
        payload = encode_response(
            {
                "type": int(RequestType.BROADCAST_CLIENT_COUNT),
                "requestId": self.request_id,
                "clientCount": clients,
            }
        )
        self.adapter._respond(self.uid, payload)

    def add_servers(self, count: int) -> None:
        # The requesting server counts the servers; a relay only reports to it.
        pass

    def add(self, answer: Any) -> None:
        try:
            payload = encode_broadcast_ack(self.request_id, answer)
        except LocalProtocolError as exc:
            self.adapter.log.warning("ack not relayed to the cluster: %s", exc)
            return
        self.adapter._respond(self.uid, payload)


class _RelayMember:
    __slots__ = ("relay",)

    def __init__(self, relay: _AckRelay) -> None:
        self.relay = relay

    def resolve(self, data: list[Any]) -> None:
        self.relay.add(data[0] if data else None)

    def drop(self, reason: str) -> None:
        # The requesting server waits for this ack until its own timeout, as in Node.
        pass


class ClusterAdapter(Adapter):
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
        super().__init__(nsp)
        self.uid = new_uid()
        self.key = key
        self.requests_timeout = float(requests_timeout)
        self.publish_on_specific_response_channel = publish_on_specific_response_channel
        self.channels = Channels(nsp.name, self.uid, key)
        self._requests: dict[str, _Pending] = {}
        self._ack_requests: dict[str, _AckRequest] = {}
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

    async def close(self) -> None:
        """Give up the requests still waiting for the other servers."""
        for pending in self._requests.values():
            if not pending.future.done():
                pending.future.cancel()
        self._requests.clear()

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
        nsp = self.nsp
        if msg.uid == self.uid or msg.nsp != nsp.name:
            return
        offset = self.received_offset(msg)
        if offset is not None:
            msg.data = [*msg.data, offset]
        self.on_remote_broadcast(msg)
        text, attachments = nsp.parser.encode_event(nsp.name, msg.data)
        opts = BroadcastOptions(
            rooms=msg.rooms,
            except_rooms=msg.except_rooms,
            volatile=msg.flags.volatile,
            compress=msg.flags.compress,
        )
        packet = Packet(PacketType.EVENT, nsp.name, msg.data)
        self.broadcast_local(OutgoingMessage(text, attachments), opts, packet)

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
            self._relay_broadcast(req)
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
            self._on_server_side_emit(req)
        elif req.request_id in self._requests:
            return  # our own SOCKETS / ALL_ROOMS / REMOTE_FETCH request, back to us
        elif kind is RequestType.REMOTE_FETCH:
            self.runner.spawn(self._answer_fetch(req))
        elif kind is RequestType.ALL_ROOMS:
            self._respond(
                req.uid, encode_response({"requestId": req.request_id, "rooms": list(self.rooms)})
            )
        elif kind is RequestType.SOCKETS:
            sids = list(self.sockets(req.rooms))
            self._respond(req.uid, encode_response({"requestId": req.request_id, "sockets": sids}))

    def _relay_broadcast(self, req: Request) -> None:
        nsp = self.nsp
        assert req.request_id is not None
        ack_id = nsp.next_ack_id()
        text, attachments = nsp.parser.encode_event(nsp.name, req.data, ack_id)
        opts = BroadcastOptions(
            rooms=req.rooms,
            except_rooms=req.except_rooms,
            volatile=req.flags.volatile,
            compress=req.flags.compress,
        )
        packet = Packet(PacketType.EVENT, nsp.name, req.data, ack_id)
        relay = _AckRelay(self, req.request_id, req.uid)
        super().broadcast_with_ack(OutgoingMessage(text, attachments), packet, opts, relay)

    def _on_server_side_emit(self, req: Request) -> None:
        answer = self.nsp.dispatch_server_side_emit(req.data)
        request_id = req.request_id
        if request_id is None:
            if inspect.isawaitable(answer):
                self.runner.spawn(answer)
            return
        if inspect.isawaitable(answer):
            self.runner.spawn(self._answer_server_side_emit(request_id, answer))
        else:
            self._send_server_side_answer(request_id, answer)

    async def _answer_server_side_emit(self, request_id: str, answer: Any) -> None:
        self._send_server_side_answer(request_id, await answer)

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

    async def _answer_fetch(self, req: Request) -> None:
        opts = BroadcastOptions(rooms=req.rooms, except_rooms=req.except_rooms)
        found = await super().fetch_sockets(opts)
        sockets = [
            {
                "id": d["id"],
                "handshake": _without_session_store(d["handshake"]),
                "rooms": list(d["rooms"]),
                "data": d["data"],
            }
            for d in found
        ]
        try:
            payload = encode_response({"requestId": req.request_id, "sockets": sockets})
        except LocalProtocolError as exc:
            self.log.warning("socket data not sendable to the cluster (%s): sent without data", exc)
            for s in sockets:
                s["data"] = None
            payload = encode_response({"requestId": req.request_id, "sockets": sockets})
        self._respond(req.uid, payload)

    def _respond(self, requester_uid: str | None, payload: bytes) -> None:
        channel = self.channels.response_to(
            requester_uid, self.publish_on_specific_response_channel
        )
        self.publish(channel, payload)

    def _on_response(self, resp: Response) -> None:
        request_id = resp.request_id
        ack_request = self._ack_requests.get(request_id)
        if ack_request is not None:
            if resp.type == RequestType.BROADCAST_CLIENT_COUNT:
                assert resp.client_count is not None
                ack_request.client_count(resp.client_count)
            elif resp.type == RequestType.BROADCAST_ACK:
                ack_request.collector.add(resp.answer)
            return
        pending = self._requests.get(request_id)
        if pending is None or pending.future.done():
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
        pending.received += 1
        if pending.received >= pending.expected:
            pending.future.set_result(pending.results)

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

    def broadcast_with_ack(
        self,
        message: OutgoingMessage,
        packet: Any,
        opts: BroadcastOptions,
        collector: AckCollector,
    ) -> None:
        if opts.local:
            super().broadcast_with_ack(message, packet, opts, collector)
            return
        self.warn_if_not_ready("a broadcast with acks")
        request_id = new_uid()
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
        record = self._ack_requests[request_id] = _AckRequest(collector)
        collector.add_servers(1)  # the rest of the cluster, until NUMSUB tells
        self.publish(self.channels.request, payload)
        super().broadcast_with_ack(message, packet, opts, collector)
        self.runner.spawn(self._count_servers(request_id, record))
        # Node keeps the request for the broadcast's timeout; later answers are ignored.
        keep = opts.timeout if opts.timeout is not None else self.requests_timeout
        asyncio.get_running_loop().call_later(keep, self._ack_requests.pop, request_id, None)

    async def _count_servers(self, request_id: str, record: _AckRequest) -> None:
        try:
            servers = await self.server_count()
        except Exception as exc:
            self.log.warning("server count unavailable (%s): waiting for local acks only", exc)
            servers = 1
        record.servers_known(max(servers - 1, 0))

    async def _ask(
        self, kind: RequestType, local: list[Any], what: str, **fields: Any
    ) -> list[Any]:
        """Publish a request to the other servers and gather their answers with ``local``."""
        self.warn_if_not_ready(what)
        servers = await self.server_count()
        if servers <= 1:
            return local
        request_id = new_uid()
        pending = self._requests[request_id] = _Pending(kind, servers - 1, local)
        self.publish(self.channels.request, encode_request(self.uid, kind, request_id, **fields))
        try:
            return await asyncio.wait_for(pending.future, self.requests_timeout)
        except TimeoutError:
            raise RequestTimeout(f"timeout reached while waiting for {what} response") from None
        finally:
            self._requests.pop(request_id, None)

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
        others = await self.server_count() - 1
        if others <= 0:
            return []
        request_id = new_uid()
        pending = self._requests[request_id] = _Pending(RequestType.SERVER_SIDE_EMIT, others, [])
        self.publish(
            self.channels.request,
            encode_request(self.uid, RequestType.SERVER_SIDE_EMIT, request_id, data=packet),
        )
        try:
            return await asyncio.wait_for(
                pending.future, timeout if timeout is not None else self.requests_timeout
            )
        except TimeoutError:
            got = pending.results
            raise AckTimeout(
                f"timeout reached: only {len(got)} responses received out of {others}",
                responses=list(got),
            ) from None
        finally:
            self._requests.pop(request_id, None)


def _without_session_store(handshake: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in handshake.items() if k != "sessionStore"}
