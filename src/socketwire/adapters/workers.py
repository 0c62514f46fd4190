"""The adapter of the workers of one host: a cluster without Redis (layer 1).

``socketwire --workers N`` gives every namespace of every worker a
``WorkersAdapter``: the ``ClusterAdapter`` template (``socketwire.adapters.cluster``,
the messages of Node's Redis adapter) on a ``WorkerBus``
(``socketwire.adapters.worker_bus``, a mesh of Unix sockets), so everything the
adapter interface does works across the workers as across Redis servers:
broadcasts (encoded once, written once per worker), rooms, ``fetch_sockets``,
``server_side_emit`` with acks, broadcasts with acks, ``sockets_join``,
``disconnect_sockets``.

Unlike the classic Redis adapter it also recovers connection state
(``connection_state_recovery``) when the client comes back on another worker:

* every worker keeps the history of every broadcast, its own and the others',
  to rooms that none of its sockets is in included (a broadcast carries its
  offset as its last argument, so each worker files it under the offset its
  sender gave it);
* a session left behind by a socket is kept by its worker and copied to the
  others, so it outlives its worker (a rolling restart stops the old worker
  right after its clients left); a copy says where the session started (the
  offset of the last broadcast in the history then, or none, and when), so a
  client that received no broadcast and sends no offset (socket.io#5538) gets
  what was sent from then on from any worker;
* a worker that joins asks the others for their histories and sessions before
  it serves (each sends what it keeps, its own broadcasts included, on the
  asking worker's channel), so the history outlives the workers that filed it
  first: in a rolling restart the old workers are gone by the time their
  clients come back, and a broadcast sent just before a worker joined reached
  only them;
* a worker asked to restore a session that it does not hold, or whose offset
  (or start) its history does not reach, asks the others; the one that has
  both answers with the session and the broadcasts missed, the asking worker
  adds those it filed itself while the answer was on its way, and every copy
  is dropped.

The session messages travel on a channel of their own beside the cluster's
(``<key>-workers#<nsp>#``, and ``<key>-workers#<nsp>#<uid>#`` for the answers
to one worker), in msgpack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from socketwire.adapters.cluster import ClusterAdapter
from socketwire.adapters.ports import NamespacePort
from socketwire.adapters.session_aware import Session, SessionAwareAdapter, StartPoint
from socketwire.adapters.worker_bus import MessageHandler, WorkerBus
from socketwire.core.cluster.redis_format import DEFAULT_KEY, BroadcastMessage, new_uid
from socketwire.core.notepack import pack_timestamps, unpack
from socketwire.errors import ProtocolError
from socketwire.handlers import Runner

__all__ = ["WorkerBusPort", "WorkersAdapter", "create_adapter"]

# Kinds of the session messages.
_PERSIST = "persist"
_TAKEN = "taken"
_RESTORE = "restore"
_RESTORED = "restored"
_SYNC = "sync"
_SYNCED = "synced"


class WorkerBusPort(Protocol):
    """What a ``WorkersAdapter`` needs of its bus (``WorkerBus`` is the real one)."""

    def publish(self, channel: str, payload: bytes) -> None:
        """Send a message to the workers subscribed to ``channel``."""

    async def numsub(self, channel: str) -> int:
        """The workers subscribed to ``channel``, this one included."""

    async def subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        """Route the messages of ``channels`` and ``patterns`` to ``handler``."""

    async def unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        """Stop routing them."""


class _Restore:
    """A restore request of this worker, while the others answer."""

    __slots__ = ("answers", "expected", "future")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.answers = 0
        self.future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()


class _Sync:
    """This worker's request for the others' histories and sessions, as it joins."""

    __slots__ = ("answers", "expected", "future", "history", "id", "sessions", "starts", "taken")

    def __init__(self, request_id: str, expected: int) -> None:
        self.id = request_id
        self.expected = expected
        self.answers = 0
        self.history: list[Any] = []
        self.sessions: list[Any] = []
        self.starts: dict[str, Any] = {}
        self.taken: set[str] = set()  # restored elsewhere meanwhile: not kept
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def answer(self, history: Any, sessions: Any, starts: Any) -> None:
        self.history.extend(history)
        self.sessions.extend(sessions)
        if isinstance(starts, dict):
            self.starts.update(starts)
        self.answers += 1
        if self.answers >= self.expected and not self.future.done():
            self.future.set_result(None)


class WorkersAdapter(ClusterAdapter, SessionAwareAdapter):
    """A namespace's adapter among the workers of one host (see the module docstring).

    ``recovery``: the seconds a disconnected session is kept
    (``max_disconnection_duration``), or None when the server does not recover
    connection state.
    """

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.workers")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        bus: WorkerBusPort,
        *,
        recovery: float | None = None,
        key: str = DEFAULT_KEY,
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, key=key, requests_timeout=requests_timeout)
        self.bus = bus
        self.recovery = recovery
        if recovery is not None:
            self.max_disconnection_duration = float(recovery)
        self.session_channel = f"{key}-workers#{nsp.name}#"
        #: Where the other workers answer this one alone.
        self.reply_channel = f"{self.session_channel}{self.uid}#"
        self._subscribed = False
        self._restores: dict[str, _Restore] = {}
        self._sync: _Sync | None = None

    @property
    def ready(self) -> bool:
        """Subscribed: the other workers count this one and reach it."""
        return self._subscribed

    # -- the transport ---------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> None:
        """Send a message to the other workers (written once per worker)."""
        self.bus.publish(channel, payload)

    async def server_count(self) -> int:
        """The workers serving this namespace, this one included."""
        return await self.bus.numsub(self.channels.request)

    async def init(self) -> None:
        """Subscribe to the cluster's channels and to the session channels; with
        recovery, take the history and the sessions the other workers keep."""
        channels, patterns = self.subscriptions
        await self.bus.subscribe(channels, patterns, self.on_message)
        await self.bus.subscribe(
            (self.session_channel, self.reply_channel), (), self.on_session_message
        )
        self._subscribed = True
        if self.recovery is not None:
            await self._join()

    async def _join(self) -> None:
        # Asked once subscribed: a worker answers after it read the subscription
        # (the same connection, in order), so what it broadcasts from then on
        # comes here live, and what it broadcast before is in its answer.
        others = await self.bus.numsub(self.session_channel) - 1
        if others <= 0:
            return
        sync = self._sync = _Sync(new_uid(), others)
        self._send({"kind": _SYNC, "id": sync.id, "reply": self.reply_channel})
        try:
            await asyncio.wait_for(sync.future, self.requests_timeout)
        except TimeoutError:
            self.log.warning(
                "nsp=%s: %d of %d workers sent their history in %.1fs; joining without the rest",
                self.nsp.name,
                sync.answers,
                sync.expected,
                self.requests_timeout,
            )
        finally:
            self._sync = None
        try:
            self.merge_history(sync.history)
            self.merge_sessions(sync.sessions, sync.taken, sync.starts)
        except (TypeError, ValueError) as exc:
            self.log.warning("nsp=%s: the other workers' history not taken: %s", self.nsp.name, exc)

    async def close(self) -> None:
        """Give up waiting requests and unsubscribe."""
        if not self._subscribed:
            return
        self._subscribed = False
        await super().close()
        for pending in self._restores.values():
            if not pending.future.done():
                pending.future.set_result(None)
        if self._sync is not None and not self._sync.future.done():
            self._sync.future.set_result(None)
        channels, patterns = self.subscriptions
        await self.bus.unsubscribe(channels, patterns)
        await self.bus.unsubscribe((self.session_channel, self.reply_channel), ())

    # -- connection state recovery across workers -------------------------------------------

    def takes_room(self, room: str) -> bool:
        """With recovery, every broadcast: one to a room that no socket here is
        in still goes in the history, for a socket of that room restored here."""
        return self.recovery is not None or room in self.rooms

    def on_remote_broadcast(self, msg: BroadcastMessage) -> None:
        """File another worker's broadcast in the history under its offset."""
        if self.recovery is None or msg.flags.volatile or not msg.data:
            return
        if isinstance(msg.data[-1], str):
            self.add_offset_to_history(msg.data, msg.rooms, msg.except_rooms)

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        """Keep the session here and copy it to the other workers, with where it
        started."""
        super().persist_session(sid, pid, rooms, data)
        kept = self._sessions.get(pid)
        point = kept.start_point if kept is not None else None
        message: dict[str, Any] = {"kind": _PERSIST, "session": [sid, pid, rooms, data]}
        if point is not None:
            # A key of its own: a worker of an earlier release reads the rest.
            message["start"] = point.export()
        self._send(message)

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        """The session of ``pid`` and what it missed since ``offset`` (None: it
        received nothing): from here when this worker has both, else from the
        worker that has."""
        if self.can_restore(pid, offset):
            session: Session | None = await super().restore_session(pid, offset)
            if session is not None:
                self._send({"kind": _TAKEN, "pid": pid})
            return session
        others = await self.server_count() - 1
        if others <= 0:
            return None
        # What is filed here from now on may miss the answer (it is built
        # elsewhere) and the socket (not joined yet): it is added to the answer.
        mark = self.history_mark()
        request_id = new_uid()
        pending = self._restores[request_id] = _Restore(others)
        self._send({"kind": _RESTORE, "id": request_id, "pid": pid, "offset": offset})
        try:
            found = await asyncio.wait_for(pending.future, self.requests_timeout)
        except TimeoutError:
            found = None
        finally:
            self._restores.pop(request_id, None)
        if found is not None:
            self.drop_session(pid)
            answered = {m[-1] for m in found.missed if m and isinstance(m[-1], str)}
            for data in self.history_since(mark, found.rooms):
                if data[-1] not in answered:
                    found.missed.append(data)
        return found

    def _send(self, message: dict[str, Any]) -> None:
        try:
            payload = pack_timestamps(message)
        except ProtocolError as exc:
            self.log.warning("session not shared with the other workers: %s", exc)
            return
        self.publish(self.session_channel, payload)

    def on_session_message(self, channel: str, payload: bytes) -> None:
        """A session message of another worker (malformed ones are logged and ignored)."""
        try:
            message = unpack(payload)
            kind = message["kind"]
            if kind == _PERSIST:
                sid, pid, rooms, data = message["session"]
                point = StartPoint.of(message.get("start"))
                self.keep_session(
                    Session(sid, pid, list(rooms), data, time.monotonic(), start_point=point)
                )
            elif kind == _TAKEN:
                self.drop_session(message["pid"])
                if self._sync is not None:
                    self._sync.taken.add(message["pid"])
            elif kind == _RESTORE:
                self.runner.spawn(
                    self._answer_restore(message["id"], message["pid"], message["offset"])
                )
            elif kind == _RESTORED:
                self._on_restored(message["id"], message.get("session"))
            elif kind == _SYNC:
                self._answer_sync(message["id"], message["reply"])
            elif kind == _SYNCED:
                sync = self._sync
                if sync is not None and sync.id == message["id"]:
                    sync.answer(
                        _entries(message["history"], 5),
                        _entries(message["sessions"], 5),
                        message.get("starts"),
                    )
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            self.log.info("invalid session message ignored: %s", exc)

    def _answer_sync(self, request_id: str, reply: str) -> None:
        """Send a worker that joins the history and the sessions kept here."""
        if not isinstance(reply, str) or not reply.startswith(self.session_channel):
            raise ValueError(f"not a reply channel: {reply!r}")
        history, sessions = self.export_history(), self.export_sessions()
        message = {
            "kind": _SYNCED,
            "id": request_id,
            "history": history,
            "sessions": sessions,
            # Beside the sessions: a worker of an earlier release checks their entries.
            "starts": self.export_starts(),
        }
        try:
            payload = pack_timestamps(message)
        except ProtocolError:
            # Some data msgpack cannot carry (a local broadcast's): the rest goes.
            message["history"] = [e for e in history if _packs(e)]
            message["sessions"] = [e for e in sessions if _packs(e)]
            left = len(history) + len(sessions) - len(message["history"]) - len(message["sessions"])
            self.log.warning(
                "nsp=%s: %d entries not sent to a worker that joins", self.nsp.name, left
            )
            payload = pack_timestamps(message)
        self.publish(reply, payload)

    async def _answer_restore(self, request_id: str, pid: str, offset: str | None) -> None:
        session: Session | None = None
        # Still joining, the history here may lack what the others filed before.
        joined = self._sync is None
        if joined and self.can_restore(pid, offset):
            session = await super().restore_session(pid, offset)
        answer = None
        if session is not None:
            answer = [session.sid, session.pid, session.rooms, session.data, session.missed]
        self._send({"kind": _RESTORED, "id": request_id, "session": answer})

    def _on_restored(self, request_id: str, answer: Any) -> None:
        pending = self._restores.get(request_id)
        if pending is None or pending.future.done():
            return
        pending.answers += 1
        if answer is not None:
            sid, pid, rooms, data, missed = answer
            session = Session(sid, pid, list(rooms), data, time.monotonic(), list(missed))
            pending.future.set_result(session)
        elif pending.answers >= pending.expected:
            pending.future.set_result(None)


def _entries(value: Any, size: int) -> list[Any]:
    """The entries of a sync answer: lists of ``size`` items with a string first."""
    if not isinstance(value, list) or not all(
        isinstance(e, list) and len(e) == size and isinstance(e[0], str) for e in value
    ):
        raise ValueError("malformed entries")
    return value


def _packs(entry: Any) -> bool:
    try:
        pack_timestamps(entry)
    except ProtocolError:
        return False
    return True


def create_adapter(
    bus: WorkerBus,
    *,
    recovery: float | None = None,
    key: str = DEFAULT_KEY,
    requests_timeout: float = 5.0,
) -> Callable[[NamespacePort], WorkersAdapter]:
    """The ``adapter`` option of a worker: every namespace on ``bus``.

    ``recovery`` is the ``max_disconnection_duration`` of the server's
    ``connection_state_recovery`` (None without it).
    """

    def factory(nsp: NamespacePort) -> WorkersAdapter:
        return WorkersAdapter(
            nsp, bus, recovery=recovery, key=key, requests_timeout=requests_timeout
        )

    return factory
