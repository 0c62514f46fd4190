"""The bus between the workers of one host (layer 1, asyncio).

``WorkerBus`` is the transport under ``socketwire.adapters.workers``: the
pub/sub of Redis, without Redis, between the processes that ``socketwire
--workers N`` runs on one machine. Every worker listens on a Unix socket of
its own in a directory the workers share (``bus-<worker>.sock``) and, when it
starts, connects to every socket already there: the workers form a full mesh,
one stream connection per pair. A message goes straight from its publisher to
each worker subscribed to its channel, encoded once and written once per
worker; nothing relays it.

A mesh, not the supervisor as a hub: through a hub every message crosses one
more process and two more system calls (measured: about 8 % more CPU per
message, with a relay that does not even parse what it forwards; see
``bench/RESULTS.md``), one more hop of latency, and the hub (one process for
all the workers) would be the first thing to saturate. The mesh costs one
connection per pair of workers, a handful on one host.

Each worker tells its peers its subscriptions (channels and ``prefix*``
patterns), as Redis keeps them, so a message is written only to the workers
that want it and ``numsub`` counts the servers of a namespace as Redis's
``PUBSUB NUMSUB`` does.

Frames on a connection: a 4-byte big-endian length, then one byte of kind
(hello, subscribe, unsubscribe, message), a 2-byte channel length, the
channel (UTF-8) and the payload. A peer whose connection falls behind by more
than ``max_pending_bytes`` is cut off (and logged) rather than buffered
without limit: it is stuck, and its clients reconnect elsewhere.

Two workers that start at the same moment may connect to each other twice;
both ends keep the connection opened by the worker of the lower id and close
the other, so each pair shares exactly one.

A worker that leaves (``close``) ends each connection with an end of file
after what it queued, reads on until the peer closes its end too, then closes:
closing a socket with unread data resets the connection, and a peer writing at
that moment would fail its write and drop the connection before reading the
last messages of the worker that left (the sessions it handed over while
shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

__all__ = ["MessageHandler", "WorkerBus", "bus_socket_path"]

log = logging.getLogger("socketwire.adapters.workers")

MessageHandler = Callable[[str, bytes], None]

_HEAD: Final = struct.Struct(">IBH")
_HELLO: Final = 1
_SUBSCRIBE: Final = 2
_UNSUBSCRIBE: Final = 3
_MESSAGE: Final = 4
# A subscription's payload: an exact channel or a pattern (``prefix*``).
_CHANNEL: Final = b"c"
_PATTERN: Final = b"p"
# The largest frame accepted from a peer (a broadcast larger than this is a bug).
MAX_FRAME: Final = 256 * 1024 * 1024
_CONNECT_TIMEOUT: Final = 5.0
# How long a worker that leaves waits for its peers to close their ends.
_LEAVE_TIMEOUT: Final = 2.0


def bus_socket_path(directory: str | Path, worker: int) -> str:
    """The Unix socket a worker's bus listens on."""
    return os.path.join(directory, f"bus-{worker}.sock")


def _frame(kind: int, channel: str, payload: bytes) -> bytes:
    name = channel.encode()
    return _HEAD.pack(1 + 2 + len(name) + len(payload), kind, len(name)) + name + payload


class _Peer(asyncio.Protocol):
    """One connection of the mesh, and what the worker at its other end subscribed to."""

    def __init__(self, bus: WorkerBus, outgoing: bool) -> None:
        self.bus = bus
        self.outgoing = outgoing
        self.worker = 0  # known from its hello
        self.channels: set[str] = set()
        self.prefixes: set[str] = set()
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._buffer = bytearray()

    def wants(self, channel: str) -> bool:
        if channel in self.channels:
            return True
        return any(channel.startswith(p) for p in self.prefixes)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.bus.peer_opened(self)

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        offset = 0
        size = len(buf)
        bus = self.bus
        while size - offset >= _HEAD.size:
            length, kind, name_length = _HEAD.unpack_from(buf, offset)
            if length > MAX_FRAME or length < 3:
                log.warning("worker bus: malformed frame from worker %d; closing", self.worker)
                self.close()
                return
            end = offset + 4 + length
            if end > size:
                break
            start = offset + _HEAD.size
            channel = bytes(buf[start : start + name_length]).decode()
            payload = bytes(buf[start + name_length : end])
            offset = end
            if kind == _MESSAGE:
                bus.deliver(channel, payload)
            elif kind == _SUBSCRIBE:
                (self.prefixes if payload == _PATTERN else self.channels).add(channel)
            elif kind == _UNSUBSCRIBE:
                (self.prefixes if payload == _PATTERN else self.channels).discard(channel)
            elif kind == _HELLO:
                self.worker = int(channel)
                if not self.hello.done():
                    self.hello.set_result(None)
                bus.peer_ready(self)
            if self.transport is None or self.transport.is_closing():
                return
        del buf[:offset]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.hello.done():
            self.hello.set_exception(ConnectionError("the worker went away"))
            self.hello.exception()  # retrieved: nobody may wait for it
        self.bus.peer_closed(self)

    def send(self, frame: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(frame)
        if transport.get_write_buffer_size() > self.bus.max_pending_bytes:
            log.warning(
                "worker bus: worker %d is %d bytes behind; cutting it off",
                self.worker,
                transport.get_write_buffer_size(),
            )
            transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def leave(self) -> None:
        """End the connection gracefully: an end of file once what is queued is
        written, then read on until the peer closes its end."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()


class WorkerBus:
    """The full mesh of Unix-socket connections between the workers of one host.

    ``directory`` is shared by the workers (the supervisor makes it); ``worker``
    is this worker's id, unique for the supervisor's lifetime. ``start`` listens
    and connects to the workers already there; ``close`` leaves the mesh.
    """

    def __init__(
        self, directory: str | Path, worker: int, *, max_pending_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.directory = str(directory)
        self.worker = int(worker)
        self.max_pending_bytes = max_pending_bytes
        self.path = bus_socket_path(self.directory, self.worker)
        self.peers: dict[int, _Peer] = {}
        self._opened: set[_Peer] = set()
        self._channels: dict[str, MessageHandler] = {}
        self._prefixes: dict[str, MessageHandler] = {}
        self._server: asyncio.AbstractServer | None = None
        self._leaving = False
        self._hello = _frame(_HELLO, str(self.worker), b"")

    @property
    def started(self) -> bool:
        """Whether ``start`` ran (and ``close`` did not)."""
        return self._server is not None

    async def start(self) -> None:
        """Listen, then join the workers already listening (once their hello came)."""
        if self._server is not None:
            return
        self._leaving = False
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await loop.create_unix_server(lambda: _Peer(self, False), self.path)
        joining: list[_Peer] = []
        for name in sorted(os.listdir(self.directory)):
            if not (name.startswith("bus-") and name.endswith(".sock")):
                continue
            path = os.path.join(self.directory, name)
            if path == self.path:
                continue
            try:
                _, peer = await loop.create_unix_connection(lambda: _Peer(self, True), path)
            except OSError:
                continue  # a worker that is gone (its file not yet removed)
            joining.append(peer)
        for peer in joining:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(peer.hello), _CONNECT_TIMEOUT)
        log.debug("worker %d joined the bus: workers %s", self.worker, sorted(self.peers))

    async def close(self, timeout: float = _LEAVE_TIMEOUT) -> None:
        """Leave the mesh: stop listening, end every connection after what is
        queued for it (a session handed over while shutting down), and wait at
        most ``timeout`` seconds for the peers to close their ends."""
        server, self._server = self._server, None
        if server is None:
            return
        self._leaving = True
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.peers.clear()
        leaving = list(self._opened)
        for peer in leaving:
            peer.leave()
        if leaving:
            await asyncio.wait([p.closed for p in leaving], timeout=timeout)
        for peer in leaving:
            transport = peer.transport
            if transport is not None:
                transport.abort()

    # -- connections ------------------------------------------------------------------

    def peer_opened(self, peer: _Peer) -> None:
        """A connection of the mesh is up: say who we are and what we want."""
        self._opened.add(peer)
        peer.send(self._hello)
        for channel in self._channels:
            peer.send(_frame(_SUBSCRIBE, channel, _CHANNEL))
        for prefix in self._prefixes:
            peer.send(_frame(_SUBSCRIBE, prefix, _PATTERN))

    def peer_ready(self, peer: _Peer) -> None:
        """The peer said who it is: keep one connection per worker."""
        if self._leaving:
            return
        other = self.peers.get(peer.worker)
        if other is not None and other is not peer:
            # Both ends keep the connection opened by the lower id: each pair, one.
            opener_of_peer = self.worker if peer.outgoing else peer.worker
            if opener_of_peer != min(self.worker, peer.worker):
                peer.close()
                return
            other.close()
        self.peers[peer.worker] = peer

    def peer_closed(self, peer: _Peer) -> None:
        self._opened.discard(peer)
        if self.peers.get(peer.worker) is peer:
            del self.peers[peer.worker]
            log.debug("worker %d left the bus", peer.worker)

    # -- pub/sub -------------------------------------------------------------------------

    async def subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        """Route messages of ``channels`` and ``patterns`` (``prefix*``) to ``handler``."""
        for channel in channels:
            self._channels[channel] = handler
            self._tell(_frame(_SUBSCRIBE, channel, _CHANNEL))
        for pattern in patterns:
            prefix = pattern.removesuffix("*")
            self._prefixes[prefix] = handler
            self._tell(_frame(_SUBSCRIBE, prefix, _PATTERN))

    async def unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        """Stop routing them."""
        for channel in channels:
            if self._channels.pop(channel, None) is not None:
                self._tell(_frame(_UNSUBSCRIBE, channel, _CHANNEL))
        for pattern in patterns:
            prefix = pattern.removesuffix("*")
            if self._prefixes.pop(prefix, None) is not None:
                self._tell(_frame(_UNSUBSCRIBE, prefix, _PATTERN))

    def _tell(self, frame: bytes) -> None:
        for peer in list(self._opened):
            peer.send(frame)

    def publish(self, channel: str, payload: bytes) -> None:
        """Send a message to every other worker subscribed to ``channel``: one
        frame, built once, written once per such worker. Never blocks."""
        frame: bytes | None = None
        for peer in list(self.peers.values()):
            if peer.wants(channel):
                if frame is None:
                    frame = _frame(_MESSAGE, channel, payload)
                peer.send(frame)

    async def numsub(self, channel: str) -> int:
        """The workers subscribed to ``channel``, this one included."""
        mine = 1 if channel in self._channels else 0
        return mine + sum(1 for peer in self.peers.values() if channel in peer.channels)

    def deliver(self, channel: str, payload: bytes) -> None:
        """A message from a peer: to the handler of its channel or pattern
        (none once this worker leaves)."""
        if self._leaving:
            return
        handler = self._channels.get(channel)
        if handler is None:
            for prefix, candidate in self._prefixes.items():
                if channel.startswith(prefix):
                    handler = candidate
                    break
            else:
                return
        try:
            handler(channel, payload)
        except Exception:
            log.exception("worker bus: the handler of %s failed", channel)
