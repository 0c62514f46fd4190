"""The in-memory adapter with connection state recovery (layer 1).

With ``connection_state_recovery`` on, Node's socket.io (4.6+) gives each socket a
private session id (``pid``, sent in the CONNECT answer), appends an offset to
every broadcast event (a plain event with no ack and not volatile) and keeps
those events for ``max_disconnection_duration``. A socket that disconnects for a
recoverable reason leaves its session (id, rooms, data) behind; a client that
reconnects in time with ``{pid, offset}`` in its CONNECT payload gets the same
id, rooms and data back, and every broadcast it missed, in order, once.

Both stores are FIFOs of one constant lifetime, so expiry pops from the front
(no timer, no scan).

A client that received no broadcast sends no offset (socket.io#5538): its
session is replayed from where it started. Here that is a position in this
history; a session copied to other servers of one host (the workers' adapter)
also carries a ``StartPoint``, which their histories understand.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from socketwire.adapters.base import Adapter, BroadcastOptions
from socketwire.adapters.ports import NamespacePort
from socketwire.core.cluster.reach import reaches
from socketwire.core.reasons import DisconnectReason

# Node's RECOVERABLE_DISCONNECT_REASONS.
RECOVERABLE_REASONS = frozenset(
    {
        DisconnectReason.TRANSPORT_ERROR,
        DisconnectReason.TRANSPORT_CLOSE,
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.PING_TIMEOUT,
        DisconnectReason.SERVER_SHUTTING_DOWN,
        DisconnectReason.FORCED_SERVER_CLOSE,
    }
)


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where the history stood when a socket connected, as any server of the host
    reads it: ``after``, the offset of the last broadcast then in the history
    (None: it was empty), and ``at``, the ``time.monotonic()`` of then (a clock
    that the processes of one host share)."""

    after: str | None
    at: float

    def export(self) -> list[Any]:
        """``[after, at]``, as ``StartPoint.of`` reads it."""
        return [self.after, self.at]

    @classmethod
    def of(cls, value: Any) -> StartPoint | None:
        """The start point of an ``export`` (None: not one)."""
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return None
        after, at = value
        if not (after is None or isinstance(after, str)):
            return None
        if isinstance(at, bool) or not isinstance(at, (int, float)):
            return None
        return cls(after, float(at))


@dataclass(slots=True)
class Session:
    """What a disconnected socket leaves behind for recovery."""

    sid: str
    pid: str
    rooms: list[str]
    data: Any
    disconnected_at: float = 0.0
    missed: list[list[Any]] = field(default_factory=list)
    #: Where the history stood when the socket connected (a client that received
    #: no broadcast sends no offset: it missed everything since).
    start: int | None = None
    #: The same for the other servers of the host (and for this one, on a copy).
    start_point: StartPoint | None = None


@dataclass(slots=True)
class _Stored:
    offset: str
    rooms: frozenset[str]
    except_rooms: frozenset[str]
    data: list[Any]
    at: float


class SessionAwareAdapter(Adapter):
    """In-memory adapter that keeps sessions and missed broadcasts (Node's
    ``SessionAwareAdapter``)."""

    def __init__(self, nsp: NamespacePort, max_disconnection_duration: float = 120.0) -> None:
        super().__init__(nsp)
        self.max_disconnection_duration = float(max_disconnection_duration)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._packets: deque[_Stored] = deque()
        self._index: dict[str, int] = {}
        self._first_seq = 0
        self._next_seq = 0
        self._prefix = secrets.token_urlsafe(6)
        self._starts: dict[str, tuple[int, StartPoint]] = {}
        #: The latest ``at`` of the broadcasts dropped as expired: a start point
        #: after it still has every broadcast filed since.
        self._expired_at = float("-inf")

    # -- history of broadcasts ------------------------------------------------------------

    def add_to_history(self, data: list[Any], opts: BroadcastOptions) -> None:
        """Append an offset to a broadcast's arguments and keep it for recovery."""
        now = time.monotonic()
        self._expire(now)
        seq = self._next_seq
        self._next_seq = seq + 1
        offset = f"{self._prefix}-{seq:x}"
        data.append(offset)
        self._packets.append(_Stored(offset, opts.rooms, opts.except_rooms, data, now))
        self._index[offset] = seq

    def add_offset_to_history(
        self, data: list[Any], rooms: frozenset[str], except_rooms: frozenset[str]
    ) -> None:
        """Keep a broadcast whose offset another server appended (its last argument):
        a session restored here misses it otherwise."""
        now = time.monotonic()
        self._expire(now)
        offset = data[-1]
        if offset in self._index:
            return
        seq = self._next_seq
        self._next_seq = seq + 1
        self._packets.append(_Stored(offset, rooms, except_rooms, data, now))
        self._index[offset] = seq

    def knows_offset(self, offset: str) -> bool:
        """Whether the broadcast of ``offset`` is in the history here."""
        self._expire(time.monotonic())
        return offset in self._index

    def holds_session(self, pid: str) -> bool:
        """Whether the session of ``pid`` is kept here."""
        self._expire(time.monotonic())
        return pid in self._sessions

    def keep_session(self, session: Session) -> None:
        """Keep a session that another server persisted."""
        self._sessions.pop(session.pid, None)
        self._sessions[session.pid] = session

    def drop_session(self, pid: str) -> None:
        """Forget the session of ``pid`` (restored elsewhere)."""
        self._sessions.pop(pid, None)

    def start_session(self, sid: str, restored: Any) -> None:
        now = time.monotonic()
        self._expire(now)
        last = self._packets[-1].offset if self._packets else None
        self._starts[sid] = (self._next_seq, StartPoint(last, now))

    def delete_all(self, sid: str) -> None:
        self._starts.pop(sid, None)
        super().delete_all(sid)

    def persist_session(self, sid: str, pid: str, rooms: list[str], data: Any) -> None:
        now = time.monotonic()
        self._expire(now)
        self._sessions.pop(pid, None)
        start, point = self._starts.pop(sid, (None, None))
        self._sessions[pid] = Session(sid, pid, rooms, data, now, start=start, start_point=point)

    def can_restore(self, pid: str, offset: str | None) -> bool:
        """Whether the session of ``pid`` is kept here and the history here has
        what it missed since ``offset`` (None: since it started)."""
        self._expire(time.monotonic())
        session = self._sessions.get(pid)
        if session is None:
            return False
        if offset is None:
            return self._replay_from(session) is not None
        return offset in self._index

    def _replay_from(self, session: Session) -> tuple[int, float | None] | None:
        """Where to replay a session that received nothing from: the first
        position, and the earliest filing time (None: any) of what it missed;
        None when the history no longer reaches back there."""
        if session.start is not None:
            # Started here: a position in this history.
            if session.start < self._first_seq:
                return None
            return session.start, None
        point = session.start_point
        if point is None:
            return None
        # Started on another server: after the last broadcast its history had
        # then (all, when it had none), among those filed here since it started
        # (not the ones of this server's own that never reached it, nor those
        # that reached this server late).
        if point.after is None:
            if point.at <= self._expired_at:
                return None  # something filed since is gone
            return self._first_seq, point.at
        seq = self._index.get(point.after)
        if seq is None:
            return None
        return seq + 1, point.at

    async def restore_session(self, pid: str, offset: str | None) -> Session | None:
        now = time.monotonic()
        self._expire(now)
        session = self._sessions.pop(pid, None)
        if session is None:
            return None
        filed_from: float | None = None
        if offset is None:
            # Nothing received: replay from where the session started, if still kept.
            replay = self._replay_from(session)
            if replay is None:
                return None
            mark, filed_from = replay
        else:
            seq = self._index.get(offset)
            if seq is None:
                return None
            mark = seq + 1
        session.missed = self.history_since(mark, session.rooms, filed_from)
        return session

    def history_mark(self) -> int:
        """Where the history stands: ``history_since(mark, ...)`` gives what is
        filed from now on."""
        return self._next_seq

    def history_since(
        self, mark: int, rooms: Iterable[str], filed_from: float | None = None
    ) -> list[list[Any]]:
        """The broadcasts filed from ``mark`` on (a ``history_mark``) that a socket
        in ``rooms`` receives, in order (with ``filed_from``, those filed at that
        ``time.monotonic()`` or later only)."""
        in_rooms = set(rooms)
        missed: list[list[Any]] = []
        packets = self._packets
        for i in range(max(mark - self._first_seq, 0), len(packets)):
            p = packets[i]
            if filed_from is not None and p.at < filed_from:
                continue
            if reaches(in_rooms, p.rooms, p.except_rooms):
                missed.append(p.data)
        return missed

    # -- handing the history and the sessions to a server that joins ---------------------

    def export_history(self) -> list[list[Any]]:
        """The history, oldest first, as ``[offset, rooms, except_rooms, data, at]``
        (``at``: ``time.monotonic()`` when it was filed, a clock that the
        processes of one host share)."""
        self._expire(time.monotonic())
        return [
            [p.offset, sorted(p.rooms), sorted(p.except_rooms), p.data, p.at] for p in self._packets
        ]

    def export_sessions(self) -> list[list[Any]]:
        """The sessions kept, oldest first, as ``[sid, pid, rooms, data, at]``
        (``at``: ``time.monotonic()`` when the socket left)."""
        self._expire(time.monotonic())
        return [[s.sid, s.pid, s.rooms, s.data, s.disconnected_at] for s in self._sessions.values()]

    def export_starts(self) -> dict[str, list[Any]]:
        """Where the sessions kept started, by pid, as ``StartPoint.export`` gives
        it (those whose start is known)."""
        self._expire(time.monotonic())
        return {
            pid: s.start_point.export()
            for pid, s in self._sessions.items()
            if s.start_point is not None
        }

    def merge_history(self, entries: Iterable[Sequence[Any]]) -> int:
        """File the broadcasts of ``entries`` (``export_history``'s, from one or
        more processes of this host) that are not in the history yet, before
        those that are: they were filed elsewhere before this server received
        any. They go in the order they were first filed, each sender's in the
        order of its offsets; the number filed."""
        now = time.monotonic()
        self._expire(now)
        # What the others dropped before they sent their history was never seen
        # here: a start older than the lifetime may lack broadcasts filed since.
        self._expired_at = max(self._expired_at, now - self.max_disconnection_duration)
        found: dict[str, _Stored] = {}
        for offset, rooms, except_rooms, data, filed in entries:
            if not isinstance(offset, str) or not isinstance(data, list) or offset in self._index:
                continue
            at = float(filed)
            if at < now - self.max_disconnection_duration:
                continue
            seen = found.get(offset)
            if seen is None:
                found[offset] = _Stored(
                    offset, frozenset(rooms), frozenset(except_rooms), list(data), at
                )
            elif at < seen.at:
                seen.at = at  # the earliest copy is the nearest to when it was sent
        older = sorted(found.values(), key=lambda p: p.at)
        # A sender's broadcasts in the order of their offsets, in the places its
        # broadcasts take among the others'.
        by_sender: dict[str, list[int]] = {}
        for i, p in enumerate(older):
            sender, seq = _sender_of(p.offset)
            if seq is not None:
                by_sender.setdefault(sender, []).append(i)
        for places in by_sender.values():
            ordered = sorted((older[i] for i in places), key=lambda p: _sender_of(p.offset)[1] or 0)
            for i, p in zip(places, ordered, strict=True):
                older[i] = p
        for p in reversed(older):
            self._first_seq -= 1
            self._packets.appendleft(p)
            self._index[p.offset] = self._first_seq
        return len(older)

    def merge_sessions(
        self,
        sessions: Iterable[Sequence[Any]],
        skip: Container[str] = (),
        starts: Mapping[str, Any] | None = None,
    ) -> int:
        """Keep the sessions of ``sessions`` (``export_sessions``'s) that are not
        kept here yet, nor in ``skip`` (restored meanwhile), with where they
        started from ``starts`` (``export_starts``'s); the number kept."""
        now = time.monotonic()
        self._expire(now)
        kept = dict(self._sessions)
        added = 0
        for sid, pid, rooms, data, left in sessions:
            at = float(left)
            if pid in kept or pid in skip or at < now - self.max_disconnection_duration:
                continue
            point = StartPoint.of(starts.get(pid)) if starts is not None else None
            kept[pid] = Session(sid, pid, list(rooms), data, at, start_point=point)
            added += 1
        if added:
            ordered = sorted(kept.values(), key=lambda s: s.disconnected_at)
            self._sessions = OrderedDict((s.pid, s) for s in ordered)
        return added

    def _expire(self, now: float) -> None:
        threshold = now - self.max_disconnection_duration
        sessions = self._sessions
        while sessions:
            pid, session = next(iter(sessions.items()))
            if session.disconnected_at >= threshold:
                break
            del sessions[pid]
        packets = self._packets
        while packets and packets[0].at < threshold:
            old = packets.popleft()
            self._index.pop(old.offset, None)
            self._first_seq += 1
            if old.at > self._expired_at:
                self._expired_at = old.at


def _sender_of(offset: str) -> tuple[str, int | None]:
    """The sender of an offset of ``add_to_history`` (``<prefix>-<seq in hex>``)
    and its sequence number (None: an offset of another form)."""
    sender, dash, seq = offset.rpartition("-")
    if not dash:
        return offset, None
    try:
        return sender, int(seq, 16)
    except ValueError:
        return offset, None


__all__ = [
    "RECOVERABLE_REASONS",
    "Session",
    "SessionAwareAdapter",
    "StartPoint",
]
