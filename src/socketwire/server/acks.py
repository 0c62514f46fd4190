"""Acknowledgements the server waits for (layer 2).

A socket keeps its pending acks by id; each entry knows what to do when the ack
arrives (``resolve``) and when the socket goes away first (``drop``). One entry
kind per way of asking: a callback, a callback with a deadline (Node's
``socket.timeout(ms).emit(..., cb)``: ``cb(err, ...args)``), an awaitable, and
one member of a broadcast with acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from socketwire.errors import AckTimeout, Disconnected

log = logging.getLogger("socketwire.server")


class PendingAck(Protocol):
    def resolve(self, data: list[Any]) -> None: ...

    def drop(self, reason: str) -> None: ...


def ack_value(data: list[Any]) -> Any:
    """What ``emit_with_ack`` returns: the single argument, a tuple, or None."""
    if not data:
        return None
    return data[0] if len(data) == 1 else tuple(data)


def _safe(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("ack callback %s failed", getattr(fn, "__qualname__", fn))


class CallbackAck:
    """``emit(..., callback=fn)``: ``fn(*args)`` when the ack arrives."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[..., Any]) -> None:
        self.callback = callback

    def resolve(self, data: list[Any]) -> None:
        _safe(self.callback, *data)

    def drop(self, reason: str) -> None:
        pass


class TimedCallbackAck:
    """``timeout(s).emit(..., callback=fn)``: ``fn(None, *args)`` or ``fn(AckTimeout)``."""

    __slots__ = ("acks", "callback", "handle", "id")

    def __init__(
        self, acks: dict[int, Any], ack_id: int, callback: Callable[..., Any], timeout: float
    ) -> None:
        self.acks = acks
        self.id = ack_id
        self.callback = callback
        self.handle = asyncio.get_running_loop().call_later(timeout, self.expire)

    def resolve(self, data: list[Any]) -> None:
        self.handle.cancel()
        _safe(self.callback, None, *data)

    def drop(self, reason: str) -> None:
        # As Node: the deadline still reports the missing ack.
        pass

    def expire(self) -> None:
        if self.acks.pop(self.id, None) is self:
            _safe(self.callback, AckTimeout("operation has timed out"))


class FutureAck:
    """``await emit_with_ack(...)``: a future, failed on timeout or disconnect."""

    __slots__ = ("acks", "future", "handle", "id")

    def __init__(
        self,
        acks: dict[int, Any],
        ack_id: int,
        future: asyncio.Future[Any],
        timeout: float | None,
        event: str,
    ) -> None:
        self.acks = acks
        self.id = ack_id
        self.future = future
        self.handle = (
            asyncio.get_running_loop().call_later(timeout, self.expire, event, timeout)
            if timeout is not None
            else None
        )

    def resolve(self, data: list[Any]) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if not self.future.done():
            self.future.set_result(ack_value(data))

    def drop(self, reason: str) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if not self.future.done():
            self.future.set_exception(Disconnected(reason))

    def expire(self, event: str, timeout: float) -> None:
        if self.acks.pop(self.id, None) is self and not self.future.done():
            self.future.set_exception(AckTimeout(f"no ack for {event!r} within {timeout} s"))


class BroadcastAck:
    """Collects the acks of a broadcast: one response per reached client.

    ``done(err, responses)`` runs once: when every expected client answered
    (clients that disconnect first are no longer expected), or at the deadline
    with ``AckTimeout`` carrying the responses so far. ``expect`` may be called
    several times (once per server in a cluster) before ``sealed``.
    """

    __slots__ = ("_done", "_finished", "_handle", "_pending_servers", "expected", "responses")

    def __init__(
        self, done: Callable[[AckTimeout | None, list[Any]], None], timeout: float | None
    ) -> None:
        self._done = done
        self._finished = False
        self.expected = 0
        self.responses: list[Any] = []
        self._pending_servers = 1
        self._handle = (
            asyncio.get_running_loop().call_later(timeout, self._expire)
            if timeout is not None
            else None
        )

    def member(self) -> BroadcastMemberAck:
        return BroadcastMemberAck(self)

    def expect(self, clients: int, servers: int = 1) -> None:
        """``clients`` more answers are due; ``servers`` more servers have reported."""
        self.expected += clients
        self._pending_servers -= servers
        self._check()

    def add_servers(self, count: int) -> None:
        """More servers (of a cluster) will report their client counts."""
        self._pending_servers += count

    def add(self, response: Any) -> None:
        self.responses.append(response)
        self._check()

    def lost(self) -> None:
        self.expected -= 1
        self._check()

    def _check(self) -> None:
        if (
            not self._finished
            and self._pending_servers <= 0
            and len(self.responses) >= self.expected
        ):
            self._finish(None)

    def _expire(self) -> None:
        self._finish(AckTimeout("operation has timed out", responses=list(self.responses)))

    def _finish(self, err: AckTimeout | None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._handle is not None:
            self._handle.cancel()
        _safe(self._done, err, list(self.responses))


class BroadcastMemberAck:
    """The entry a broadcast with acks leaves on each reached socket."""

    __slots__ = ("collector",)

    def __init__(self, collector: BroadcastAck) -> None:
        self.collector = collector

    def resolve(self, data: list[Any]) -> None:
        # Node keeps the first argument of each client's ack.
        self.collector.add(data[0] if data else None)

    def drop(self, reason: str) -> None:
        self.collector.lost()
