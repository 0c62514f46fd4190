"""Building and sending a broadcast (layer 2).

``BroadcastOperator`` is immutable: ``to``, ``in_``, ``except_``, ``volatile``,
``local`` and ``timeout`` each return a new operator, so an operator can be kept
and reused. ``emit`` encodes the packet once and hands the same bytes to the
adapter, which writes them to every recipient.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from socketwire.adapters.base import BroadcastOptions, SocketView
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import RESERVED_EVENTS, Packet, PacketType
from socketwire.durations import check_seconds
from socketwire.emit_options import SENT, Sent
from socketwire.errors import AckTimeout
from socketwire.rooms import Rooms, room_names
from socketwire.server.acks import BroadcastAck

if TYPE_CHECKING:
    from socketwire.server.namespace import Namespace


class BroadcastOperator:
    """A target (rooms, exceptions) and flags for an emit or a socket operation."""

    __slots__ = ("_nsp", "_opts")

    def __init__(
        self,
        nsp: Namespace,
        rooms: frozenset[str] = frozenset(),
        except_rooms: frozenset[str] = frozenset(),
        opts: BroadcastOptions | None = None,
    ) -> None:
        self._nsp = nsp
        self._opts = opts or BroadcastOptions(rooms=rooms, except_rooms=except_rooms)

    def _with(self, **changes: Any) -> BroadcastOperator:
        o = self._opts
        # Built field by field: ``to`` is on the path of every room broadcast,
        # and ``dataclasses.replace`` costs about three times more.
        get = changes.get
        return BroadcastOperator(
            self._nsp,
            opts=BroadcastOptions(
                get("rooms", o.rooms),
                get("except_rooms", o.except_rooms),
                get("volatile", o.volatile),
                get("local", o.local),
                get("compress", o.compress),
                get("timeout", o.timeout),
            ),
        )

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """Add rooms to the target (a socket in any of them is reached)."""
        return self._with(rooms=self._opts.rooms | room_names(rooms))

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        """Leave out the sockets of these rooms."""
        return self._with(except_rooms=self._opts.except_rooms | room_names(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients whose transport cannot take it now."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Reach only this server's sockets (with a cluster adapter)."""
        return self._with(local=True)

    def compress(self, value: bool = True) -> BroadcastOperator:
        """Node's ``compress`` flag: accepted, and changes nothing on the wire."""
        return self._with(compress=value)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Ask every reached client for an ack within ``seconds`` (not Node's
        milliseconds: above an hour, a ``SecondsWarning`` says so)."""
        check_seconds(seconds, "timeout({})")
        return self._with(timeout=seconds)

    @property
    def options(self) -> BroadcastOptions:
        """The rooms, exceptions and flags this operator broadcasts with."""
        return self._opts

    # -- emitting -----------------------------------------------------------------------

    def emit(
        self, event: str, *args: Any, callback: Callable[[Any, list[Any]], Any] | None = None
    ) -> Sent:
        """Send ``event`` to every targeted socket. Needs no ``await`` (awaiting the
        result completes at once).

        With ``callback``, every reached client is asked for an ack and
        ``callback(err, responses)`` runs once they all answered (``err`` None) or
        at the ``timeout`` (``err`` an ``AckTimeout``).
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if callback is not None:
            self._emit_with_ack(event, args, callback)
            return SENT
        nsp = self._nsp
        data = [event, *args]
        opts = self._opts
        if nsp.server.recovery is not None and not opts.volatile:
            nsp.adapter.add_to_history(data, opts)
        text, attachments = nsp.parser.encode_event(nsp.name, data)
        message = OutgoingMessage(text, attachments)
        nsp.adapter.broadcast(message, Packet(PacketType.EVENT, nsp.name, data), opts)
        return SENT

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Broadcast and await one response per reached client.

        Raises ``AckTimeout`` (with ``.responses``, those received so far) when a
        ``timeout`` is set and not every client answered in time.
        """
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def done(err: AckTimeout | None, responses: list[Any]) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(responses)

        self._emit_with_ack(event, args, done)
        return await fut

    def _emit_with_ack(
        self, event: str, args: tuple[Any, ...], done: Callable[[Any, list[Any]], Any]
    ) -> None:
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        nsp = self._nsp
        data = [event, *args]
        ack_id = nsp.next_ack_id()
        # The same ack id for every recipient: the packet is still encoded once.
        text, attachments = nsp.parser.encode_event(nsp.name, data, ack_id)
        message = OutgoingMessage(text, attachments)
        collector = BroadcastAck(done, self._opts.timeout)
        packet = Packet(PacketType.EVENT, nsp.name, data, ack_id)
        nsp.adapter.broadcast_with_ack(message, packet, self._opts, collector)

    def send(self, *args: Any) -> Sent:
        """Broadcast a ``message`` event (``write`` is the same method)."""
        return self.emit("message", *args)

    write = send

    # -- socket operations -----------------------------------------------------------------

    async def fetch_sockets(self) -> list[SocketView]:
        """Light views of the targeted sockets (on every server with a cluster adapter)."""
        nsp = self._nsp
        found = await nsp.adapter.fetch_sockets(self._opts)
        return [
            SocketView(d["id"], d["handshake"], set(d["rooms"]), d["data"], nsp.to) for d in found
        ]

    def sockets_join(self, rooms: Rooms) -> None:
        """Make the targeted sockets join ``rooms``."""
        self._nsp.adapter.add_sockets(self._opts, room_names(rooms))

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make the targeted sockets leave ``rooms``."""
        self._nsp.adapter.del_sockets(self._opts, room_names(rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the targeted sockets (``close=True`` closes their connections)."""
        self._nsp.adapter.disconnect_sockets(self._opts, close)


__all__ = [
    "BroadcastOperator",
]
