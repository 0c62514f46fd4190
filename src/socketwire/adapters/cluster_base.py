"""What the two cluster templates share, whatever their messages (layer 1, asyncio).

``socketwire.adapters.cluster`` (the classic Redis adapter's messages) and
``socketwire.adapters.message_cluster`` (``socket.io-adapter``'s
``ClusterAdapter`` messages) do the same things for the other servers of a
cluster in two wire formats. ``ClusterAdapterBase`` is their common part, which
sends and reads nothing itself:

* the requests of this server waiting for the others' answers (``fetch_sockets``,
  ``server_side_emit`` with acks...), given up on ``close``;
* a broadcast with acks of this server: the cluster's client counts and acks,
  gathered into its collector once ``server_count`` told how many servers
  answer;
* another server's broadcast delivered to the local sockets, and its broadcast
  with acks run here, each count and ack sent back through the subclass
  (``_send_client_count``, ``_send_ack``);
* another server's server-side emit handed to the handlers, and the local
  sockets described for another server's ``fetch_sockets``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from socketwire.adapters.base import Adapter, BroadcastOptions
from socketwire.adapters.ports import AckCollector, NamespacePort
from socketwire.core.cluster.fields import Flags
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.errors import AckTimeout, ProtocolError
from socketwire.handlers import Runner

__all__ = ["ClusterAdapterBase"]

# Sends the description of the local sockets (``fetch_sockets``) to a server.
_SocketsSender = Callable[[list[dict[str, Any]]], None]


class _Pending:
    """A request of this server waiting for the other servers' answers."""

    __slots__ = ("expected", "future", "kind", "received", "results")

    def __init__(self, kind: object, expected: int, results: list[Any]) -> None:
        self.kind = kind
        self.expected = expected  # answers due (other servers)
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
        # One placeholder server stood for the rest of the cluster until now.
        self.known = True
        self.collector.add_servers(others)
        self.collector.expect(self.early_clients, self.early_reports + 1)


class _AckRelay:
    """Another server's broadcast with acks, run here: the count and each ack go
    back to that server."""

    __slots__ = ("adapter", "request_id", "uid")

    def __init__(self, adapter: ClusterAdapterBase, request_id: str, uid: str | None) -> None:
        self.adapter = adapter
        self.request_id = request_id
        self.uid = uid

    def member(self) -> _RelayMember:
        return _RelayMember(self)

    def expect(self, clients: int, servers: int = 1) -> None:
        self.adapter._send_client_count(self.uid, self.request_id, clients)

    def add_servers(self, count: int) -> None:
        # The requesting server counts the servers; a relay only reports to it.
        pass

    def add(self, answer: Any) -> None:
        self.adapter._send_ack(self.uid, self.request_id, answer)


class _RelayMember:
    __slots__ = ("relay",)

    def __init__(self, relay: _AckRelay) -> None:
        self.relay = relay

    def resolve(self, data: list[Any]) -> None:
        self.relay.add(data[0] if data else None)

    def drop(self, reason: str) -> None:
        # The requesting server waits for this ack until its own timeout, as in Node.
        pass


class ClusterAdapterBase(Adapter):
    """The part of a cluster template that is the same in every format (see the
    module docstring). A template derives from it, names its ``log`` and
    ``runner``, and provides ``server_count``, ``_new_request_id``,
    ``_broadcast_request``, ``_send_client_count`` and ``_send_ack``."""

    log: ClassVar[logging.Logger]
    runner: ClassVar[Runner]

    def __init__(self, nsp: NamespacePort, *, uid: str, requests_timeout: float) -> None:
        super().__init__(nsp)
        self.uid = uid
        self.requests_timeout = float(requests_timeout)
        self._requests: dict[str, _Pending] = {}
        self._ack_requests: dict[str, _AckRequest] = {}

    async def close(self) -> None:
        """Give up the requests still waiting for the other servers."""
        for pending in self._requests.values():
            if not pending.future.done():
                pending.future.cancel()
        self._requests.clear()

    # -- the format (a template's part) ----------------------------------------------------

    def _new_request_id(self) -> str:
        """A new request id, in the format's shape."""
        raise NotImplementedError

    def _broadcast_request(
        self, packet: Any, opts: BroadcastOptions, request_id: str
    ) -> Callable[[], None]:
        """The request of a broadcast with acks to the other servers, made now (an
        error raises before anything is sent) and published when called."""
        raise NotImplementedError

    def _send_client_count(self, uid: str | None, request_id: str, clients: int) -> None:
        """Tell the server ``uid`` how many local clients its broadcast with acks reached."""
        raise NotImplementedError

    def _send_ack(self, uid: str | None, request_id: str, answer: Any) -> None:
        """Send the server ``uid`` one local client's ack of its broadcast."""
        raise NotImplementedError

    # -- requests of this server -------------------------------------------------------------

    async def _request(
        self,
        kind: object,
        others: int,
        results: list[Any],
        timeout: float,
        send: Callable[[str], None],
    ) -> list[Any]:
        """Send a request (``send(request_id)``) and wait, at most ``timeout``
        seconds (then TimeoutError), for ``others`` answers; ``results`` with
        what they added."""
        request_id = self._new_request_id()
        pending = self._requests[request_id] = _Pending(kind, others, results)
        send(request_id)
        try:
            return await asyncio.wait_for(pending.future, timeout)
        finally:
            self._requests.pop(request_id, None)

    async def _collect_answers(
        self, kind: object, timeout: float | None, send: Callable[[str], None]
    ) -> list[Any]:
        """Send a request (``send(request_id)``) that every other server answers
        once (``server_side_emit`` with acks) and gather the answers, for at most
        ``timeout`` seconds (None: ``requests_timeout``); AckTimeout with the
        answers that came when some are missing."""
        others = await self.server_count() - 1
        if others <= 0:
            return []
        results: list[Any] = []
        try:
            return await self._request(
                kind,
                others,
                results,
                timeout if timeout is not None else self.requests_timeout,
                send,
            )
        except TimeoutError:
            raise AckTimeout(
                f"timeout reached: only {len(results)} responses received out of {others}",
                responses=list(results),
            ) from None

    def _pending(self, request_id: str) -> _Pending | None:
        """The request of this server that ``request_id`` answers, if still waiting."""
        pending = self._requests.get(request_id)
        if pending is None or pending.future.done():
            return None
        return pending

    @staticmethod
    def _answered(pending: _Pending) -> None:
        """One more server answered ``pending``: the last one completes it."""
        pending.received += 1
        if pending.received >= pending.expected:
            pending.future.set_result(pending.results)

    # -- broadcasts with acks of this server ---------------------------------------------

    def broadcast_with_ack(
        self,
        message: OutgoingMessage,
        packet: Any,
        opts: BroadcastOptions,
        collector: AckCollector,
    ) -> None:
        """Broadcast asking every client of the cluster for an ack (``local``: of
        this server only); ``collector`` also gets the other servers' counts and
        acks, for the broadcast's timeout."""
        if opts.local:
            super().broadcast_with_ack(message, packet, opts, collector)
            return
        request_id = self._new_request_id()
        publish = self._broadcast_request(packet, opts, request_id)
        record = self._ack_requests[request_id] = _AckRequest(collector)
        collector.add_servers(1)  # the rest of the cluster, until server_count tells
        publish()
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

    def _on_ack_response(
        self, request_id: str, client_count: int | None, is_ack: bool, answer: Any
    ) -> bool:
        """A response to a broadcast with acks of this server: a server's count of
        the clients it reached (``client_count``), or one client's ack
        (``is_ack``, ``answer``); anything else is ignored. False when
        ``request_id`` is none of these broadcasts."""
        record = self._ack_requests.get(request_id)
        if record is None:
            return False
        if client_count is not None:
            record.client_count(client_count)
        elif is_ack:
            record.collector.add(answer)
        return True

    # -- other servers' broadcasts and requests, run here ---------------------------------

    def _remote_event(
        self,
        data: list[Any],
        rooms: frozenset[str],
        except_rooms: frozenset[str],
        flags: Flags,
        ack_id: int | None = None,
    ) -> tuple[OutgoingMessage, Packet, BroadcastOptions]:
        nsp = self.nsp
        text, attachments = nsp.parser.encode_event(nsp.name, data, ack_id)
        opts = BroadcastOptions(
            rooms=rooms,
            except_rooms=except_rooms,
            volatile=flags.volatile,
            compress=flags.compress,
        )
        return (
            OutgoingMessage(text, attachments),
            Packet(PacketType.EVENT, nsp.name, data, ack_id),
            opts,
        )

    def _deliver_remote(
        self, data: list[Any], rooms: frozenset[str], except_rooms: frozenset[str], flags: Flags
    ) -> None:
        """Deliver another server's broadcast to the local sockets."""
        message, packet, opts = self._remote_event(data, rooms, except_rooms, flags)
        self.broadcast_local(message, opts, packet)

    def _relay_remote(
        self,
        data: list[Any],
        rooms: frozenset[str],
        except_rooms: frozenset[str],
        flags: Flags,
        request_id: str,
        uid: str | None,
    ) -> None:
        """Run another server's broadcast with acks here: the count of the local
        clients reached and each of their acks go back to the server ``uid``."""
        message, packet, opts = self._remote_event(
            data, rooms, except_rooms, flags, self.nsp.next_ack_id()
        )
        super().broadcast_with_ack(message, packet, opts, _AckRelay(self, request_id, uid))

    def _run_server_side_emit(self, data: list[Any], reply: Callable[[Any], None] | None) -> None:
        """Hand another server's event to the server-side handlers; ``reply`` (None:
        no answer asked) gets their answer once there is one."""
        answer = self.nsp.dispatch_server_side_emit(data)
        if inspect.isawaitable(answer):
            self.runner.spawn(answer if reply is None else _reply_later(answer, reply))
        elif reply is not None:
            reply(answer)

    async def _send_sockets(
        self, opts: BroadcastOptions, send: _SocketsSender, send_again: _SocketsSender
    ) -> None:
        """Describe the local sockets ``opts`` selects for another server and
        ``send`` them; when their data cannot travel (ProtocolError), log it and
        ``send_again`` without it."""
        found = await super().fetch_sockets(opts)
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
            send(sockets)
        except ProtocolError as exc:
            self.log.warning("socket data not sendable to the cluster (%s): sent without data", exc)
            for s in sockets:
                s["data"] = None
            send_again(sockets)


async def _reply_later(answer: Awaitable[Any], reply: Callable[[Any], None]) -> None:
    reply(await answer)
