"""What an adapter may ask of the server layer above it (layer 1).

An adapter routes the broadcasts and socket operations of one namespace. It
never takes the namespace object itself (as Node's adapter does, reaching into
its private methods): it sees a ``NamespacePort``, whose sockets it reaches as
``LocalSocket`` ports, and the collector of a broadcast with acks as an
``AckCollector``. The server layer (``socketwire.server``) implements them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.parser import Parser
from socketwire.rooms import Room, Rooms

__all__ = ["AckCollector", "AckEntry", "LocalSocket", "NamespacePort"]


class AckEntry(Protocol):
    """What a socket keeps for an ack it waits for."""

    def resolve(self, data: list[Any]) -> None:
        """The ack arrived with ``data`` (its arguments)."""

    def drop(self, reason: str) -> None:
        """The socket went away first (``reason``: why it disconnected)."""


class AckCollector(Protocol):
    """Gathers the acks of one broadcast with acks, across the servers of a cluster.

    Each server that runs the broadcast reports how many clients it reached
    (``expect``); the collector completes once every server has reported and
    that many answers arrived, or at its deadline.
    """

    def member(self) -> AckEntry:
        """A new entry for one reached socket: its answer goes to ``add``."""

    def expect(self, clients: int, servers: int = 1) -> None:
        """``servers`` more servers reported; ``clients`` more answers are due."""

    def add_servers(self, count: int) -> None:
        """``count`` more servers will report (a cluster adapter learns it late)."""

    def add(self, answer: Any) -> None:
        """One client's answer (the first argument of its ack)."""


class LocalSocket(Protocol):
    """What an adapter may do with a socket of this server."""

    id: str
    data: Any

    def deliver(self, message: OutgoingMessage, volatile: bool) -> None:
        """Write a broadcast's pre-encoded message (``volatile``: dropped when the
        transport cannot take it now)."""

    def expect_ack(self, ack_id: int, entry: AckEntry) -> None:
        """Route the socket's ack ``ack_id`` of a broadcast to ``entry``."""

    def notify_outgoing_broadcast(self, data: list[Any]) -> None:
        """Show a broadcast's ``[event, *args]`` to the socket's outgoing catch-all listeners."""

    def handshake_dict(self) -> dict[str, Any]:
        """The handshake as Node's ``fetchSockets`` describes it."""

    def join(self, rooms: Rooms) -> None:
        """Join one room or several."""

    def leave(self, room: Room) -> None:
        """Leave one room."""

    def disconnect(self, close: bool = False) -> Any:
        """Disconnect from the namespace (``close``: the whole connection)."""


class NamespacePort(Protocol):
    """What an adapter may ask of its namespace."""

    name: str

    @property
    def local_sockets(self) -> Mapping[str, LocalSocket]:
        """This server's sockets of the namespace, by id."""

    @property
    def has_outgoing_listeners(self) -> bool:
        """Whether a broadcast must be shown to outgoing catch-all listeners."""

    @property
    def parser(self) -> Parser:
        """The Socket.IO parser that encodes for the namespace's clients."""

    @property
    def max_disconnection_duration(self) -> float | None:
        """How long a disconnected socket's session is kept for recovery (seconds),
        or None when the server does not recover connection state."""

    def next_ack_id(self) -> int:
        """A new ack id, unique among the namespace's pending acks."""

    def deliver(self, targets: list[LocalSocket], message: OutgoingMessage, volatile: bool) -> None:
        """Write a broadcast's pre-encoded message to each of ``targets`` (what
        ``LocalSocket.deliver`` does for one, for all of them at once)."""

    def dispatch_server_side_emit(self, data: list[Any]) -> Any:
        """Run the handlers of another server's ``[event, *args]``; their answer."""
