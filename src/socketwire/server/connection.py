"""One Engine.IO connection seen by the Socket.IO server (layer 2).

``Connection`` (Node's ``Client``) decodes the Socket.IO packets of one Engine.IO
socket, routes them to the socket of their namespace, answers CONNECT requests,
and closes the connection on a protocol error (Socket.IO v5 "Exchange
protocol": a receiver that gets an invalid payload closes the connection).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.reasons import DisconnectReason
from socketwire.core.socketio.packet import Packet, PacketDecoder, PacketType
from socketwire.core.socketio.parser import DEFAULT_PARSER, Decoder
from socketwire.engine.socket import EngineSocket
from socketwire.errors import RemoteProtocolError

if TYPE_CHECKING:
    from socketwire.server.server import Server
    from socketwire.server.socket import Socket

log = logging.getLogger("socketwire.server")

_CONNECT = PacketType.CONNECT
_CONNECT_ERROR = PacketType.CONNECT_ERROR
_dumps = orjson.dumps


class Connection:
    """The Socket.IO side of one Engine.IO connection."""

    # ``__weakref__``: the connect-timeout queue holds connections weakly, so a
    # connection that closes early is freed at once, not after ``connect_timeout``.
    __slots__ = (
        "__weakref__",
        "deadline",
        "decoder",
        "engine",
        "joined",
        "lanes",
        "pending",
        "server",
    )

    def __init__(self, server: Server, engine: EngineSocket) -> None:
        self.server = server
        self.engine = engine
        # Created for the first packet that needs it: the events on "/" and the
        # first CONNECT never do (``_sync_lane``, ``_on_message``).
        self.decoder: Decoder | None = None
        # Whether the events on "/" may skip the decoder (``_sync_lane``): the
        # default parser's JSON text is what ``core.wire`` reads.
        self.lanes = server.parser is DEFAULT_PARSER
        #: The sockets of the connection, one per namespace, in the order they
        #: joined: a tuple rather than a dict by name, since nearly every
        #: connection has one (a one-entry dict costs three times the memory).
        self.joined: tuple[Socket, ...] = ()
        self.deadline = 0.0
        # Namespaces whose CONNECT is still being answered (async middleware,
        # dynamic namespace, session recovery); created on first use.
        self.pending: set[str] | None = None
        engine.on("message", self._on_message)
        engine.on("close", self._on_close)

    @property
    def sockets(self) -> dict[str, Socket]:
        """The sockets of the connection by namespace name (a new dict each time)."""
        return {s.nsp.name: s for s in self.joined}

    def socket_of(self, nsp: str) -> Socket | None:
        """The connection's socket on namespace ``nsp``, if it joined it."""
        for socket in self.joined:
            if socket.nsp.name == nsp:
                return socket
        return None

    def _on_message(self, data: bytes, binary: bool) -> None:
        decoder = self.decoder
        if decoder is None:
            if data == b"0" and self.lanes and not binary:
                # A CONNECT to "/" without auth, the first packet of nearly every
                # client: what the decoder would make of it, without one.
                self._route(Packet(_CONNECT, "/"))
                return
            decoder = self.decoder = self.server.parser.decoder()
        try:
            packet = decoder.feed_binary(data) if binary else decoder.feed_text(data)
        except RemoteProtocolError as exc:
            log.info("sid=%s invalid Socket.IO packet: %s: closing", self.engine.id, exc)
            self.close_on_error(DisconnectReason.PARSE_ERROR)
            return
        except Exception:
            # A decoder bug must not take the connection handler down with it.
            log.exception("sid=%s undecodable Socket.IO packet: closing", self.engine.id)
            self.close_on_error(DisconnectReason.PARSE_ERROR)
            return
        if packet is None:
            # A binary packet awaits its attachments: text events go through
            # the decoder (which refuses them) until it is complete.
            self._sync_lane()
            return
        if binary:
            self._sync_lane()
        self._route(packet)

    def _route(self, packet: Packet) -> None:
        socket = self.socket_of(packet.nsp)
        ptype = packet.type
        if socket is not None and ptype != _CONNECT and ptype != _CONNECT_ERROR:
            socket.handle_packet(packet)
        elif socket is None and ptype == _CONNECT:
            self._connect(packet.nsp, packet.data)
        else:
            # Socket.IO v5 "Connection to a namespace": a CONNECT must come first;
            # like Node, any other order closes the connection.
            log.info(
                "sid=%s invalid state: packet type %d for namespace %s: closing",
                self.engine.id,
                ptype,
                packet.nsp,
            )
            self.close_on_error(DisconnectReason.PARSE_ERROR)

    def _connect(self, nsp: str, auth: Any) -> None:
        # At most one socket per namespace per connection: a CONNECT that arrives
        # while an earlier one for the same namespace is unanswered is ignored
        # (the client gets one answer, for the first). Node would create a second
        # socket and keep both until the connection ends.
        pending = self.pending
        if pending is None:
            pending = self.pending = set()
        elif nsp in pending:
            log.debug("sid=%s CONNECT to %s while one is pending: ignored", self.engine.id, nsp)
            return
        pending.add(nsp)
        self.server.handle_connect(self, nsp, auth)

    # -- answers ---------------------------------------------------------------------

    def _send(self, packet: Packet) -> None:
        text, attachments = self.server.parser.encode(packet)
        if attachments:
            self.engine.write_message(OutgoingMessage(text, attachments))
        else:
            self.engine.send_text(text)

    def accept(self, socket: Socket, payload: dict[str, Any]) -> None:
        """Answer a CONNECT with ``payload`` (``{"sid": ...}``): ``socket`` joined its namespace."""
        name = socket.nsp.name
        # (A second CONNECT to a joined namespace closes the connection in
        # ``_route``, so ``name`` is new here.)
        self.joined = (*self.joined, socket)
        self._answered(name)
        # The first namespace joined ends the connect timeout (as Node).
        self.deadline = -1.0
        if name == "/" and self.lanes:
            self._sync_lane()
            # What the default parser encodes for this CONNECT, without the packet.
            self.engine.send_text(b"0" + _dumps(payload))
            return
        self._send(Packet(_CONNECT, name, payload))

    def _answered(self, name: str) -> None:
        pending = self.pending
        if pending is not None:
            pending.discard(name)
            if not pending:
                # Dropped, not kept empty: one object less per connection.
                self.pending = None

    def refuse(self, nsp: str, payload: dict[str, Any]) -> None:
        """Answer a CONNECT with CONNECT_ERROR (Socket.IO v5 "Connection to a namespace")."""
        self._answered(nsp)
        self._send(Packet(PacketType.CONNECT_ERROR, nsp, payload))

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left its namespace."""
        name = socket.nsp.name
        if self.socket_of(name) is socket:
            self.joined = tuple(s for s in self.joined if s is not socket)
            if name == "/":
                self._sync_lane()

    def _sync_lane(self) -> None:
        """Give the engine the lane of the socket on "/" while its events can skip
        the decoder: the default parser, no binary packet half received."""
        decoder = self.decoder
        socket = self.socket_of("/") if self.lanes else None
        if socket is not None and (
            decoder is None
            or (isinstance(decoder, PacketDecoder) and not decoder.awaiting_attachments)
        ):
            self.engine.set_lane(socket.handle_event, self._on_message)
        else:
            self.engine.set_lane(None)

    # -- closing -------------------------------------------------------------------------

    def close_on_error(self, reason: str) -> None:
        self._close_sockets(reason)
        self.engine.close_now(reason)

    def disconnect_all(self) -> None:
        """Disconnect every namespace, then close the Engine.IO connection."""
        for socket in self.joined:
            socket.disconnect()
        self.engine.close(DisconnectReason.FORCED_SERVER_CLOSE)

    def _close_sockets(self, reason: str) -> None:
        for socket in self.joined:
            socket.handle_close(reason)
        if self.decoder is not None:
            self.decoder.reset()

    def _on_close(self, reason: str, description: Any) -> None:
        self._close_sockets(reason)

    @staticmethod
    def connect_timeout_due_ref(ref: weakref.ref[Connection], deadline: float) -> None:
        """The connect-timeout queue's callback: its entries are weak references."""
        conn = ref()
        if conn is not None:
            conn.connect_timeout_due(deadline)

    def connect_timeout_due(self, deadline: float) -> None:
        """No namespace joined within ``connect_timeout``: close (as Node does)."""
        if self.deadline == deadline and not self.joined and self.engine.connected:
            log.info("sid=%s joined no namespace in time: closing", self.engine.id)
            self.engine.close_now(DisconnectReason.FORCED_CLOSE)


__all__ = [
    "Connection",
]
