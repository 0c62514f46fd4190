"""The message cluster adapter: the template of ``socket.io-adapter``'s ``ClusterAdapter``
(layer 1, asyncio).

Node has two ways for the servers of a cluster to talk. The classic Redis adapter
has its own channels and messages, and ``socketwire.adapters.cluster`` speaks
them. The sharded Redis adapter (and Node's Postgres, Mongo and streams
adapters) share another: ``socket.io-adapter``'s ``ClusterAdapter``, one message
shape for everything (``socketwire.core.cluster.message_format``). This module
is that second template; ``socketwire.adapters.sharded`` is its Redis Cluster
subclass.

What the servers do for each other, as Node's ``ClusterAdapter``:

* a broadcast, ``sockets_join``, ``sockets_leave`` and ``disconnect_sockets``
  are published, then applied locally; a server ignores its own messages;
* ``fetch_sockets`` asks every other server and waits for as many answers as
  ``server_count()`` says there are other servers, at most
  ``requests_timeout`` seconds, then raises ``RequestTimeout``;
* ``server_side_emit`` with acks waits for one answer per other server, or
  raises ``AckTimeout`` with the answers that came;
* a broadcast with acks completes once every server has told how many clients
  it reached and that many acks arrived, or at its timeout;
* ``all_rooms`` is this server's rooms only (Node's ``ClusterAdapter`` asks no
  one either).

Node's sharded adapter derives from ``ClusterAdapter``, not from
``ClusterAdapterWithHeartbeat``: it sends no heartbeat and counts the servers
with Redis (``PUBSUB SHARDNUMSUB``). So does this template: heartbeats
(types 1, 2 and 13) are read and ignored, and ``server_count`` is the
subclass's.

A subclass provides ``do_publish`` (a message for every server),
``do_publish_response`` (a message for one server) and ``server_count``, and
feeds what it receives to ``on_message`` or ``on_response``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from socketwire.adapters.base import Adapter, BroadcastOptions
from socketwire.adapters.ports import AckCollector, NamespacePort
from socketwire.core.cluster.message_format import (
    ClusterMessage,
    MessageType,
    broadcast_data,
    encode_options,
)
from socketwire.core.cluster.redis_format import parse_fetched_socket
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.errors import AckTimeout, ProtocolError, RequestTimeout
from socketwire.handlers import Runner

__all__ = ["MessageClusterAdapter", "new_server_uid"]


def new_server_uid() -> str:
    """16 random hex characters: a server uid or a request id (Node's ``randomBytes(8)``)."""
    return secrets.token_hex(8)


class _Pending:
    """A request of this server waiting for the other servers' answers."""

    __slots__ = ("expected", "future", "kind", "received", "results")

    def __init__(self, kind: MessageType, expected: int, results: list[Any]) -> None:
        self.kind = kind
        self.expected = expected
        self.received = 0
        self.results = results
        self.future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()


class _AckRequest:
    """A broadcast with acks of this server while the cluster answers.

    Client counts that arrive before ``server_count`` told how many servers
    there are wait here, so that the collector never completes early.
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
        # One placeholder server stood for the rest of the cluster until now.
        self.known = True
        self.collector.add_servers(others)
        self.collector.expect(self.early_clients, self.early_reports + 1)


class _AckRelay:
    """Another server's broadcast with acks, run here: the count and each ack go
    back to that server."""

    __slots__ = ("adapter", "request_id", "uid")

    def __init__(self, adapter: MessageClusterAdapter, request_id: str, uid: str) -> None:
        self.adapter = adapter
        self.request_id = request_id
        self.uid = uid

    def member(self) -> _RelayMember:
        return _RelayMember(self)

    def expect(self, clients: int, servers: int = 1) -> None:
        self.adapter.publish_response(
            self.uid,
            MessageType.BROADCAST_CLIENT_COUNT,
            {"requestId": self.request_id, "clientCount": clients},
        )

    def add_servers(self, count: int) -> None:
        # The requesting server counts the servers; a relay only reports to it.
        pass

    def add(self, answer: Any) -> None:
        self.adapter.publish_response(
            self.uid, MessageType.BROADCAST_ACK, {"requestId": self.request_id, "packet": answer}
        )


class _RelayMember:
    __slots__ = ("relay",)

    def __init__(self, relay: _AckRelay) -> None:
        self.relay = relay

    def resolve(self, data: list[Any]) -> None:
        self.relay.add(data[0] if data else None)

    def drop(self, reason: str) -> None:
        # The requesting server waits for this ack until its own timeout, as in Node.
        pass


class MessageClusterAdapter(Adapter):
    """A namespace's adapter in a cluster speaking ``ClusterAdapter`` messages
    (see the module docstring)."""

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.message_cluster")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(self, nsp: NamespacePort, *, requests_timeout: float = 5.0) -> None:
        super().__init__(nsp)
        self.uid = new_server_uid()
        self.requests_timeout = float(requests_timeout)
        self._requests: dict[str, _Pending] = {}
        self._ack_requests: dict[str, _AckRequest] = {}

    # -- the transport (a subclass's part) ------------------------------------------------

    def do_publish(self, kind: MessageType, data: dict[str, Any] | None) -> None:
        """Queue a message for every server of the namespace; never blocks."""
        raise NotImplementedError

    def do_publish_response(
        self, requester_uid: str, kind: MessageType, data: dict[str, Any]
    ) -> None:
        """Queue a response for the server ``requester_uid``; never blocks."""
        raise NotImplementedError

    async def server_count(self) -> int:
        """The servers of the namespace, this one included."""
        raise NotImplementedError

    def publish_response(self, requester_uid: str, kind: MessageType, data: dict[str, Any]) -> None:
        """Send a response, logging what cannot be sent (unserialisable data, say)."""
        try:
            self.do_publish_response(requester_uid, kind, data)
        except ProtocolError as exc:
            self.log.warning("response %s not sent: %s", kind.name, exc)

    async def close(self) -> None:
        """Give up the requests still waiting for the other servers."""
        for pending in self._requests.values():
            if not pending.future.done():
                pending.future.cancel()
        self._requests.clear()

    # -- incoming -----------------------------------------------------------------------

    def on_message(self, msg: ClusterMessage) -> None:
        """A message of another server (its own and other namespaces' are ignored)."""
        if msg.uid == self.uid or msg.nsp != self.nsp.name:
            return
        kind = msg.type
        if kind is MessageType.BROADCAST:
            if msg.request_id is not None:
                if msg.uid is not None:
                    self._relay_broadcast(msg, msg.request_id, msg.uid)
            else:
                self._broadcast_from(msg)
        elif kind is MessageType.SOCKETS_JOIN:
            super().add_sockets(self._targets(msg), msg.new_rooms)
        elif kind is MessageType.SOCKETS_LEAVE:
            super().del_sockets(self._targets(msg), msg.new_rooms)
        elif kind is MessageType.DISCONNECT_SOCKETS:
            super().disconnect_sockets(self._targets(msg), msg.close)
        elif kind is MessageType.FETCH_SOCKETS:
            if msg.uid is not None and msg.request_id is not None:
                self.runner.spawn(self._answer_fetch(msg, msg.uid, msg.request_id))
        elif kind is MessageType.SERVER_SIDE_EMIT:
            self._on_server_side_emit(msg)
        elif kind in (
            MessageType.FETCH_SOCKETS_RESPONSE,
            MessageType.SERVER_SIDE_EMIT_RESPONSE,
            MessageType.BROADCAST_CLIENT_COUNT,
            MessageType.BROADCAST_ACK,
        ):
            # A transport may not tell messages and responses apart (as in Node).
            self.on_response(msg)
        # Heartbeats and ADAPTER_CLOSE: this template counts servers otherwise.

    @staticmethod
    def _targets(msg: ClusterMessage) -> BroadcastOptions:
        return BroadcastOptions(rooms=msg.rooms, except_rooms=msg.except_rooms)

    def _broadcast_from(self, msg: ClusterMessage) -> None:
        nsp = self.nsp
        text, attachments = nsp.parser.encode_event(nsp.name, msg.data)
        opts = BroadcastOptions(
            rooms=msg.rooms,
            except_rooms=msg.except_rooms,
            volatile=msg.flags.volatile,
            compress=msg.flags.compress,
        )
        packet = Packet(PacketType.EVENT, nsp.name, msg.data)
        self.broadcast_local(OutgoingMessage(text, attachments), opts, packet)

    def _relay_broadcast(self, msg: ClusterMessage, request_id: str, uid: str) -> None:
        nsp = self.nsp
        ack_id = nsp.next_ack_id()
        text, attachments = nsp.parser.encode_event(nsp.name, msg.data, ack_id)
        opts = BroadcastOptions(
            rooms=msg.rooms,
            except_rooms=msg.except_rooms,
            volatile=msg.flags.volatile,
            compress=msg.flags.compress,
        )
        packet = Packet(PacketType.EVENT, nsp.name, msg.data, ack_id)
        relay = _AckRelay(self, request_id, uid)
        super().broadcast_with_ack(OutgoingMessage(text, attachments), packet, opts, relay)

    def _on_server_side_emit(self, msg: ClusterMessage) -> None:
        answer = self.nsp.dispatch_server_side_emit(msg.data)
        request_id = msg.request_id
        if request_id is None or msg.uid is None:
            if inspect.isawaitable(answer):
                self.runner.spawn(answer)
            return
        if inspect.isawaitable(answer):
            self.runner.spawn(self._answer_server_side_emit(msg.uid, request_id, answer))
        else:
            self._send_server_side_answer(msg.uid, request_id, answer)

    async def _answer_server_side_emit(self, uid: str, request_id: str, answer: Any) -> None:
        self._send_server_side_answer(uid, request_id, await answer)

    def _send_server_side_answer(self, uid: str, request_id: str, answer: Any) -> None:
        self.publish_response(
            uid, MessageType.SERVER_SIDE_EMIT_RESPONSE, {"requestId": request_id, "packet": answer}
        )

    async def _answer_fetch(self, msg: ClusterMessage, uid: str, request_id: str) -> None:
        found = await super().fetch_sockets(self._targets(msg))
        sockets = [
            {
                "id": d["id"],
                # Node drops the session store: it may hold circular references.
                "handshake": {k: v for k, v in d["handshake"].items() if k != "sessionStore"},
                "rooms": list(d["rooms"]),
                "data": d["data"],
            }
            for d in found
        ]
        try:
            self.do_publish_response(
                uid,
                MessageType.FETCH_SOCKETS_RESPONSE,
                {"requestId": request_id, "sockets": sockets},
            )
        except ProtocolError as exc:
            self.log.warning("socket data not sendable to the cluster (%s): sent without data", exc)
            for s in sockets:
                s["data"] = None
            self.publish_response(
                uid,
                MessageType.FETCH_SOCKETS_RESPONSE,
                {"requestId": request_id, "sockets": sockets},
            )

    def on_response(self, msg: ClusterMessage) -> None:
        """A response to one of this server's requests (others are ignored)."""
        request_id = msg.request_id
        if request_id is None:
            return
        kind = msg.type
        ack_request = self._ack_requests.get(request_id)
        if ack_request is not None:
            if kind is MessageType.BROADCAST_CLIENT_COUNT:
                ack_request.client_count(msg.client_count)
            elif kind is MessageType.BROADCAST_ACK:
                ack_request.collector.add(msg.answer)
            return
        pending = self._requests.get(request_id)
        if pending is None or pending.future.done():
            return
        if kind is MessageType.FETCH_SOCKETS_RESPONSE and pending.kind is MessageType.FETCH_SOCKETS:
            for entry in msg.sockets:
                try:
                    s = parse_fetched_socket(entry)
                except ProtocolError as exc:
                    self.log.info("invalid socket in a fetch response ignored: %s", exc)
                    continue
                pending.results.append(
                    {"id": s.id, "handshake": s.handshake, "rooms": s.rooms, "data": s.data}
                )
        elif (
            kind is MessageType.SERVER_SIDE_EMIT_RESPONSE
            and pending.kind is MessageType.SERVER_SIDE_EMIT
        ):
            pending.results.append(msg.answer)
        else:
            return
        pending.received += 1
        if pending.received >= pending.expected:
            pending.future.set_result(pending.results)

    # -- outgoing ------------------------------------------------------------------------

    def _publish(self, kind: MessageType, data: dict[str, Any] | None) -> None:
        try:
            self.do_publish(kind, data)
        except ProtocolError as exc:
            self.log.warning("%s not published: %s", kind.name, exc)

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        if not opts.local:
            self._publish(
                MessageType.BROADCAST,
                broadcast_data(
                    packet.data,
                    encode_options(
                        opts.rooms,
                        opts.except_rooms,
                        volatile=opts.volatile,
                        compress=opts.compress,
                    ),
                ),
            )
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
        request_id = new_server_uid()
        record = self._ack_requests[request_id] = _AckRequest(collector)
        collector.add_servers(1)  # the rest of the cluster, until server_count tells
        self._publish(
            MessageType.BROADCAST,
            broadcast_data(
                packet.data,
                encode_options(
                    opts.rooms,
                    opts.except_rooms,
                    volatile=opts.volatile,
                    compress=opts.compress,
                    timeout=opts.timeout,
                ),
                request_id,
            ),
        )
        super().broadcast_with_ack(message, packet, opts, collector)
        self.runner.spawn(self._count_servers(record))
        # As Node: the request is kept for the broadcast's timeout; later answers are ignored.
        keep = opts.timeout if opts.timeout is not None else self.requests_timeout
        asyncio.get_running_loop().call_later(keep, self._ack_requests.pop, request_id, None)

    async def _count_servers(self, record: _AckRequest) -> None:
        try:
            servers = await self.server_count()
        except Exception as exc:
            self.log.warning("server count unavailable (%s): waiting for local acks only", exc)
            servers = 1
        record.servers_known(max(servers - 1, 0))

    async def _ask(
        self,
        kind: MessageType,
        make_data: Callable[[str], dict[str, Any]],
        results: list[Any],
        timeout: float,
        others: int,
    ) -> list[Any]:
        request_id = new_server_uid()
        data = make_data(request_id)
        pending = self._requests[request_id] = _Pending(kind, others, results)
        self._publish(kind, data)
        try:
            return await asyncio.wait_for(pending.future, timeout)
        finally:
            self._requests.pop(request_id, None)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        local: list[dict[str, Any]]
        local, servers = await asyncio.gather(super().fetch_sockets(opts), self._others(opts))
        if opts.local or servers <= 0:
            return local
        try:
            return await self._ask(
                MessageType.FETCH_SOCKETS,
                lambda rid: {
                    "opts": encode_options(opts.rooms, opts.except_rooms),
                    "requestId": rid,
                },
                local,
                self.requests_timeout,
                servers,
            )
        except TimeoutError:
            raise RequestTimeout(
                "timeout reached while waiting for fetchSockets response"
            ) from None

    async def _others(self, opts: BroadcastOptions) -> int:
        if opts.local:
            return 0
        return await self.server_count() - 1

    def _publish_targeted(self, kind: MessageType, opts: BroadcastOptions, **fields: Any) -> None:
        self._publish(kind, {"opts": encode_options(opts.rooms, opts.except_rooms), **fields})

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._publish_targeted(MessageType.SOCKETS_JOIN, opts, rooms=rooms)
        super().add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._publish_targeted(MessageType.SOCKETS_LEAVE, opts, rooms=rooms)
        super().del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            self._publish_targeted(MessageType.DISCONNECT_SOCKETS, opts, close=close)
        super().disconnect_sockets(opts, close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        self._publish(MessageType.SERVER_SIDE_EMIT, {"packet": packet})

    async def server_side_emit_with_ack(
        self, packet: list[Any], timeout: float | None
    ) -> list[Any]:
        others = await self.server_count() - 1
        if others <= 0:
            return []
        results: list[Any] = []
        try:
            # The presence of ``requestId`` is what asks for answers (first, as Node).
            return await self._ask(
                MessageType.SERVER_SIDE_EMIT,
                lambda rid: {"requestId": rid, "packet": packet},
                results,
                timeout if timeout is not None else self.requests_timeout,
                others,
            )
        except TimeoutError:
            raise AckTimeout(
                f"timeout reached: only {len(results)} responses received out of {others}",
                responses=list(results),
            ) from None
