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
import logging
import secrets
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from socketwire.adapters.base import BroadcastOptions
from socketwire.adapters.cluster_base import ClusterAdapterBase
from socketwire.adapters.ports import NamespacePort
from socketwire.core.cluster.message_format import (
    ClusterMessage,
    MessageType,
    broadcast_data,
    encode_options,
)
from socketwire.core.cluster.redis_format import parse_fetched_socket
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.errors import ProtocolError, RequestTimeout
from socketwire.handlers import Runner

__all__ = ["MessageClusterAdapter", "new_server_uid"]


def new_server_uid() -> str:
    """16 random hex characters: a server uid or a request id (Node's ``randomBytes(8)``)."""
    return secrets.token_hex(8)


class MessageClusterAdapter(ClusterAdapterBase):
    """A namespace's adapter in a cluster speaking ``ClusterAdapter`` messages
    (see the module docstring)."""

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.message_cluster")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(self, nsp: NamespacePort, *, requests_timeout: float = 5.0) -> None:
        super().__init__(nsp, uid=new_server_uid(), requests_timeout=requests_timeout)

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

    def _new_request_id(self) -> str:
        return new_server_uid()

    def _send_client_count(self, uid: str | None, request_id: str, clients: int) -> None:
        assert uid is not None  # a relay answers a request with a uid
        self.publish_response(
            uid,
            MessageType.BROADCAST_CLIENT_COUNT,
            {"requestId": request_id, "clientCount": clients},
        )

    def _send_ack(self, uid: str | None, request_id: str, answer: Any) -> None:
        assert uid is not None  # a relay answers a request with a uid
        self.publish_response(
            uid, MessageType.BROADCAST_ACK, {"requestId": request_id, "packet": answer}
        )

    # -- incoming -----------------------------------------------------------------------

    def on_message(self, msg: ClusterMessage) -> None:
        """A message of another server (its own and other namespaces' are ignored)."""
        if msg.uid == self.uid or msg.nsp != self.nsp.name:
            return
        kind = msg.type
        if kind is MessageType.BROADCAST:
            if msg.request_id is not None:
                if msg.uid is not None:
                    self._relay_remote(
                        msg.data, msg.rooms, msg.except_rooms, msg.flags, msg.request_id, msg.uid
                    )
            else:
                self._deliver_remote(msg.data, msg.rooms, msg.except_rooms, msg.flags)
        elif kind is MessageType.SOCKETS_JOIN:
            super().add_sockets(self._targets(msg), msg.new_rooms)
        elif kind is MessageType.SOCKETS_LEAVE:
            super().del_sockets(self._targets(msg), msg.new_rooms)
        elif kind is MessageType.DISCONNECT_SOCKETS:
            super().disconnect_sockets(self._targets(msg), msg.close)
        elif kind is MessageType.FETCH_SOCKETS:
            if msg.uid is not None and msg.request_id is not None:
                self._answer_fetch(msg, msg.uid, msg.request_id)
        elif kind is MessageType.SERVER_SIDE_EMIT:
            reply = None
            if msg.request_id is not None and msg.uid is not None:
                reply = partial(self._send_server_side_answer, msg.uid, msg.request_id)
            self._run_server_side_emit(msg.data, reply)
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

    def _send_server_side_answer(self, uid: str, request_id: str, answer: Any) -> None:
        self.publish_response(
            uid, MessageType.SERVER_SIDE_EMIT_RESPONSE, {"requestId": request_id, "packet": answer}
        )

    def _answer_fetch(self, msg: ClusterMessage, uid: str, request_id: str) -> None:
        kind = MessageType.FETCH_SOCKETS_RESPONSE

        def send(sockets: list[dict[str, Any]]) -> None:
            self.do_publish_response(uid, kind, {"requestId": request_id, "sockets": sockets})

        def send_again(sockets: list[dict[str, Any]]) -> None:
            self.publish_response(uid, kind, {"requestId": request_id, "sockets": sockets})

        self.runner.spawn(self._send_sockets(self._targets(msg), send, send_again))

    def on_response(self, msg: ClusterMessage) -> None:
        """A response to one of this server's requests (others are ignored)."""
        request_id = msg.request_id
        if request_id is None:
            return
        kind = msg.type
        count = msg.client_count if kind is MessageType.BROADCAST_CLIENT_COUNT else None
        is_ack = kind is MessageType.BROADCAST_ACK
        if self._on_ack_response(request_id, count, is_ack, msg.answer):
            return
        pending = self._pending(request_id)
        if pending is None:
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
        self._answered(pending)

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

    def _broadcast_request(
        self, packet: Any, opts: BroadcastOptions, request_id: str
    ) -> Callable[[], None]:
        options = encode_options(
            opts.rooms,
            opts.except_rooms,
            volatile=opts.volatile,
            compress=opts.compress,
            timeout=opts.timeout,
        )
        data = broadcast_data(packet.data, options, request_id)
        return partial(self._publish, MessageType.BROADCAST, data)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        local: list[dict[str, Any]]
        local, servers = await asyncio.gather(super().fetch_sockets(opts), self._others(opts))
        if opts.local or servers <= 0:
            return local
        kind = MessageType.FETCH_SOCKETS

        def send(request_id: str) -> None:
            targets = encode_options(opts.rooms, opts.except_rooms)
            self._publish(kind, {"opts": targets, "requestId": request_id})

        try:
            return await self._request(kind, servers, local, self.requests_timeout, send)
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
        kind = MessageType.SERVER_SIDE_EMIT
        # The presence of ``requestId`` is what asks for answers (first, as Node).
        return await self._collect_answers(
            kind, timeout, lambda rid: self._publish(kind, {"requestId": rid, "packet": packet})
        )
