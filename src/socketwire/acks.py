"""Acknowledgements, both ways, for one socket of either side (layer 1, asyncio).

Shared by the server's ``Socket`` and the client's ``Client``:

* the shape of ack values: :func:`ack_args` turns a handler's return value into
  the arguments of the ACK packet (a tuple spreads into several arguments,
  ``None`` gives none), :func:`ack_value` turns received ACK arguments into what
  ``emit_with_ack`` returns (the single argument, a tuple, or ``None``);
* the ack callable a handler receives (:func:`once_ack`), which sends through an
  :class:`AckSink`, the socket's narrow port for writing an ACK packet;
* the entries a socket keeps, by ack id, for the acks it waits for: one kind per
  way of asking (:class:`CallbackAck`, :class:`ErrorFirstAck`,
  :class:`FutureAck`).  Each entry knows what to do when its ack arrives
  (``resolve``) and when the socket goes away first (``drop``).

Failures of user callbacks are logged to the logger each entry is given (the
side's own), never raised into the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from socketwire.errors import AckTimeout, Disconnected

__all__ = [
    "AckSink",
    "CallbackAck",
    "ErrorFirstAck",
    "FutureAck",
    "PendingAck",
    "ack_args",
    "ack_value",
    "call_safely",
    "once_ack",
]


class AckSink(Protocol):
    """Where a socket's ACK packets go (the server's Socket and the client's Client)."""

    def send_ack(self, ack_id: int, args: list[Any]) -> None: ...


class PendingAck(Protocol):
    """An ack a socket waits for."""

    def resolve(self, data: list[Any]) -> None: ...

    def drop(self, reason: str) -> None: ...


def ack_args(result: Any) -> list[Any]:
    """A handler's return value as the list of ack arguments."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


def ack_value(data: list[Any] | tuple[Any, ...]) -> Any:
    """What ``emit_with_ack`` returns for ack arguments: the single one, a tuple, or None."""
    if len(data) == 1:
        return data[0]
    return tuple(data) if data else None


def once_ack(sink: AckSink, ack_id: int) -> Callable[..., None]:
    """The ack callable handed to a handler: sends ``ack_id`` once, ignores later calls."""
    sent = False

    def ack(*args: Any) -> None:
        nonlocal sent
        if sent:
            return
        sent = True
        sink.send_ack(ack_id, list(args))

    return ack


def call_safely(log: logging.Logger, fn: Callable[..., Any], *args: Any) -> None:
    """Call a user's ack callback; its failure is logged, not raised."""
    try:
        fn(*args)
    except Exception:
        log.exception("ack callback %s failed", getattr(fn, "__qualname__", fn))


class CallbackAck:
    """``emit(..., callback=fn)``: ``fn(*args)`` when the ack arrives; nothing if it never does."""

    __slots__ = ("callback", "log")

    def __init__(self, callback: Callable[..., Any], log: logging.Logger) -> None:
        self.callback = callback
        self.log = log

    def resolve(self, data: list[Any]) -> None:
        call_safely(self.log, self.callback, *data)

    def drop(self, reason: str) -> None:
        pass


class ErrorFirstAck:
    """``fn(None, *args)`` when the ack arrives, ``fn(AckTimeout)`` at the deadline (if any).

    ``report_drop`` says what happens when the socket goes away first: the
    server leaves the deadline to report the missing ack (as Node's
    ``socket.timeout(ms).emit(..., cb)``), the client calls ``fn(Disconnected)``
    at once (as the JavaScript client's ``_clearAcks``).
    """

    __slots__ = ("acks", "callback", "handle", "id", "log", "report_drop")

    def __init__(
        self,
        acks: dict[int, Any],
        ack_id: int,
        callback: Callable[..., Any],
        timeout: float | None,
        log: logging.Logger,
        report_drop: bool,
    ) -> None:
        self.acks = acks
        self.id = ack_id
        self.callback = callback
        self.log = log
        self.report_drop = report_drop
        self.handle = (
            asyncio.get_running_loop().call_later(timeout, self.expire)
            if timeout is not None
            else None
        )

    def resolve(self, data: list[Any]) -> None:
        if self.handle is not None:
            self.handle.cancel()
        call_safely(self.log, self.callback, None, *data)

    def drop(self, reason: str) -> None:
        if not self.report_drop:
            return
        if self.handle is not None:
            self.handle.cancel()
        call_safely(self.log, self.callback, Disconnected(reason))

    def expire(self) -> None:
        if self.acks.pop(self.id, None) is self:
            call_safely(self.log, self.callback, AckTimeout("operation has timed out"))


class FutureAck:
    """``await emit_with_ack(...)``: a future, failed on timeout or disconnect.

    The timeout's error says which event went unanswered, unless
    ``timeout_message`` is given (the client's, as the JavaScript client words it).
    """

    __slots__ = ("acks", "future", "handle", "id", "timeout_message")

    def __init__(
        self,
        acks: dict[int, Any],
        ack_id: int,
        future: asyncio.Future[Any],
        timeout: float | None,
        event: str,
        timeout_message: str | None = None,
    ) -> None:
        self.acks = acks
        self.id = ack_id
        self.future = future
        self.timeout_message = timeout_message
        self.handle = (
            future.get_loop().call_later(timeout, self.expire, event, timeout)
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
            message = self.timeout_message or f"no ack for {event!r} within {timeout} s"
            self.future.set_exception(AckTimeout(message))
