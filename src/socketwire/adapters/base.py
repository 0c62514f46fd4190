"""The adapter interface: rooms, broadcasts and socket operations (layer 1).

An adapter serves one namespace. It keeps the room membership of the namespace's
local sockets and routes broadcasts; a cluster adapter extends it to reach the
sockets of other servers without the server layer changing. The methods are
those of Node's ``socket.io-adapter`` with Python names.

The adapter reaches sockets only through the ``LocalSocket`` port and the
namespace only through ``NamespacePort`` (``socketwire.adapters.ports``): it
never takes the namespace object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from socketwire.adapters.ports import AckCollector, LocalSocket, NamespacePort
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.rooms import Rooms

__all__ = [
    "AckCollector",
    "Adapter",
    "BroadcastOptions",
    "LocalSocket",
    "NamespacePort",
    "SocketView",
]


@dataclass(slots=True)
class BroadcastOptions:
    """Who a broadcast reaches and how (Node's ``BroadcastOptions``)."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    local: bool = False
    compress: bool = True
    timeout: float | None = None


class SocketView:
    """A light view of a socket, local or remote, as ``fetch_sockets`` returns it.

    ``emit``, ``join``, ``leave`` and ``disconnect`` act through the namespace
    (so through the adapter: a remote socket is reached on its own server).
    """

    __slots__ = ("_operator_factory", "data", "handshake", "id", "rooms")

    def __init__(
        self, sid: str, handshake: dict[str, Any], rooms: set[str], data: Any, operator_factory: Any
    ) -> None:
        self.id = sid
        self.handshake = handshake
        self.rooms = rooms
        self.data = data
        self._operator_factory = operator_factory

    def _op(self) -> Any:
        return self._operator_factory(self.id)

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to this socket, wherever it is connected."""
        self._op().emit(event, *args)

    def join(self, rooms: Rooms) -> None:
        """Make this socket join ``rooms`` (a room or a list of rooms)."""
        self._op().sockets_join(rooms)

    def leave(self, rooms: Rooms) -> None:
        """Make this socket leave ``rooms`` (a room or a list of rooms)."""
        self._op().sockets_leave(rooms)

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket; ``close=True`` also ends its connection."""
        self._op().disconnect_sockets(close)

    def timeout(self, seconds: float) -> Any:
        """An operator on this socket whose acks wait ``seconds`` at most."""
        return self._op().timeout(seconds)

    def __repr__(self) -> str:
        return f"<SocketView id={self.id!r} rooms={sorted(self.rooms)!r}>"


class Adapter:
    """The in-memory adapter; also the base class of cluster adapters.

    ``rooms`` maps a room to its socket ids, ``sids`` a socket id to its rooms. A
    cluster adapter overrides the ``*_remote`` hooks and ``server_count``.
    """

    def __init__(self, nsp: NamespacePort) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def init(self) -> None:
        """Called once when the namespace is created (a cluster adapter subscribes)."""

    async def close(self) -> None:
        """Called when the server closes."""

    async def server_count(self) -> int:
        """How many servers the cluster has (1 for the in-memory adapter)."""
        return 1

    def connecting(self, sid: str) -> Awaitable[None] | None:
        """Hook: socket ``sid`` is about to join its own room and be told it is
        connected. An adapter that must prepare first returns an awaitable, and the
        server waits for it before it connects the socket (the Redis adapter's
        interest mode subscribes the socket's own room, so that a message to the
        socket from another server cannot arrive before the subscription). If the
        connection closes meanwhile, the server calls ``delete_all(sid)``. None
        (here): connect at once."""
        return None

    # -- membership ---------------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Add socket ``sid`` to ``rooms``."""
        mine = self.sids.get(sid)
        if mine is None:
            mine = self.sids[sid] = set()
        all_rooms = self.rooms
        for room in rooms:
            if room in mine:
                continue
            mine.add(room)
            members = all_rooms.get(room)
            if members is None:
                all_rooms[room] = {sid}
                self.on_create_room(room)
            else:
                members.add(sid)
            self.on_join_room(room, sid)

    def add(self, sid: str, room: str) -> None:
        """Add socket ``sid`` to ``room``."""
        self.add_all(sid, (room,))

    def delete(self, sid: str, room: str) -> None:
        """Remove socket ``sid`` from ``room``."""
        mine = self.sids.get(sid)
        if mine is None or room not in mine:
            return
        mine.discard(room)
        self._remove_from_room(room, sid)

    def delete_all(self, sid: str) -> None:
        """Remove socket ``sid`` from every room (it disconnected)."""
        mine = self.sids.pop(sid, None)
        if not mine:
            return
        for room in mine:
            self._remove_from_room(room, sid)

    def _remove_from_room(self, room: str, sid: str) -> None:
        members = self.rooms.get(room)
        if members is None:
            return
        members.discard(sid)
        self.on_leave_room(room, sid)
        if not members:
            del self.rooms[room]
            self.on_delete_room(room)

    # Hooks for subclasses and for the namespace's room events (Node emits
    # "create-room", "join-room", "leave-room", "delete-room" on the adapter).
    def on_create_room(self, room: str) -> None:
        """Hook: ``room`` got its first member. Does nothing here."""

    def on_join_room(self, room: str, sid: str) -> None:
        """Hook: socket ``sid`` joined ``room``. Does nothing here."""

    def on_leave_room(self, room: str, sid: str) -> None:
        """Hook: socket ``sid`` left ``room``. Does nothing here."""

    def on_delete_room(self, room: str) -> None:
        """Hook: ``room`` lost its last member. Does nothing here."""

    # -- queries -----------------------------------------------------------------------------

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms of socket ``sid``, or None when it is unknown."""
        return self.sids.get(sid)

    def compute_sids(self, opts: BroadcastOptions) -> Iterable[str]:
        """The local socket ids a broadcast reaches."""
        rooms = opts.rooms
        excluded: set[str] = set()
        if opts.except_rooms:
            for room in opts.except_rooms:
                members = self.rooms.get(room)
                if members:
                    excluded |= members
        if rooms:
            if len(rooms) == 1:
                (room,) = rooms
                members = self.rooms.get(room)
                if not members:
                    return ()
                return members - excluded if excluded else members
            target: set[str] = set()
            for room in rooms:
                members = self.rooms.get(room)
                if members:
                    target |= members
            return target - excluded if excluded else target
        sids = self.nsp.local_sockets.keys()
        return [s for s in sids if s not in excluded] if excluded else sids

    async def all_rooms(self) -> set[str]:
        """Every room of the namespace (across the cluster with a cluster adapter)."""
        return set(self.rooms)

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """The ids of the sockets in any of ``rooms`` (every socket when empty)."""
        return set(self.compute_sids(BroadcastOptions(rooms=frozenset(rooms))))

    # -- broadcast ---------------------------------------------------------------------------

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        """Deliver a message, encoded once, to every local recipient.

        ``packet`` is the unencoded Socket.IO packet (a cluster adapter ships it to
        the other servers, whose own encoders frame it for their clients).
        """
        self.broadcast_local(message, opts, packet)

    def broadcast_local(
        self, message: OutgoingMessage, opts: BroadcastOptions, packet: Any = None
    ) -> int:
        """Write the message to every local recipient; returns how many were reached."""
        volatile = opts.volatile
        targets = self._local_targets(opts)
        if packet is not None and self.nsp.has_outgoing_listeners:
            for sock in targets:
                sock.notify_outgoing_broadcast(packet.data)
        self.nsp.deliver(targets, message, volatile)
        return len(targets)

    def broadcast_with_ack(
        self,
        message: OutgoingMessage,
        packet: Any,
        opts: BroadcastOptions,
        collector: AckCollector,
    ) -> None:
        """Broadcast asking each reached client for an ack (Node's ``broadcastWithAck``).

        ``collector`` gets one member entry per reached socket and, through
        ``expect``, the count of clients reached here.
        """
        ack_id = packet.id
        targets = self._local_targets(opts)
        notify = self.nsp.has_outgoing_listeners
        for sock in targets:
            sock.expect_ack(ack_id, collector.member())
            if notify:
                sock.notify_outgoing_broadcast(packet.data)
            sock.deliver(message, opts.volatile)
        collector.expect(len(targets))

    # -- connection state recovery (see adapters.session_aware) -------------------------

    def add_to_history(self, data: list[Any], opts: BroadcastOptions) -> None:
        """Keep a broadcast for recovery (and append its offset); no-op here."""

    def start_session(self, sid: str, restored: Any) -> None:
        """A socket with a recoverable session joined (``restored``: the session it
        recovered, or None); no-op here."""

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Keep a disconnected socket's session; no-op here."""

    async def restore_session(self, pid: str, offset: str | None) -> Any:
        """The session of ``pid`` with the broadcasts missed since ``offset`` (None:
        since the session started), or None."""
        return None

    # -- socket operations (cluster-wide in a cluster adapter) -------------------------

    def _local_targets(self, opts: BroadcastOptions) -> list[LocalSocket]:
        """The local sockets ``opts`` reaches, as a list (safe to iterate while
        handlers join, leave or disconnect)."""
        sockets = self.nsp.local_sockets
        if not opts.rooms and not opts.except_rooms:
            return list(sockets.values())
        return [s for sid in list(self.compute_sids(opts)) if (s := sockets.get(sid)) is not None]

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        """Describe the sockets a broadcast with ``opts`` would reach."""
        return [
            {
                "id": s.id,
                "handshake": s.handshake_dict(),
                "rooms": set(self.sids.get(s.id, ())),
                "data": s.data,
            }
            for s in self._local_targets(opts)
        ]

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the sockets that ``opts`` selects join ``rooms``."""
        rooms = list(rooms)
        for s in self._local_targets(opts):
            s.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the sockets that ``opts`` selects leave ``rooms``."""
        rooms = list(rooms)
        for s in self._local_targets(opts):
            for room in rooms:
                s.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the sockets that ``opts`` selects (``close``: their connections too)."""
        for s in self._local_targets(opts):
            s.disconnect(close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        """Send an event to the other servers (nothing to do with one server)."""
        return None

    async def server_side_emit_with_ack(
        self, packet: list[Any], timeout: float | None
    ) -> list[Any]:
        """Send an event to the other servers and collect their answers."""
        return []
