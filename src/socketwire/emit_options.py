"""How one socket emits, on either side: the emit methods and their flags (layer 1).

The server's ``Socket`` and the client's ``Client`` inherit :class:`EmitMethods`
(``emit``, ``send``/``write``, ``emit_with_ack``, and the flag builders
``volatile``, ``timeout(s)``, ``compress(b)``); each side implements the
:class:`EmitPort` underneath: ``emit_flagged`` and ``emit_flagged_with_ack`` with the flags
spelled out.  A flag builder returns an :class:`EmitOptions`, which carries the
flags to one emit (Node's ``socket.volatile.timeout(5000).emit(...)``)::

    socket.timeout(5).emit("question", callback=lambda err, answer=None: ...)
    answer = await socket.volatile.timeout(5).emit_with_ack("question")

Acknowledgements: ``callback(*args)`` is called with the peer's ack arguments;
when a deadline applies it is called error first, ``callback(err, *args)`` with
``err`` None, or an :class:`~socketwire.errors.AckTimeout` at the deadline.
``emit_with_ack`` returns the single ack argument, a tuple of several, or None.

``emit`` sends at once and returns :data:`SENT`, which may be awaited (it
completes at once): ``await sio.emit(...)``, as code written for
python-socketio's asyncio server has it, works. Durations are seconds; a
``timeout`` above an hour warns (:mod:`socketwire.durations`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, Protocol

from socketwire.durations import check_seconds

__all__ = ["SENT", "EmitMethods", "EmitOptions", "EmitPort", "Sent"]


class Sent:
    """What ``emit`` returns: the packet is already sent, there is nothing to wait for.

    Awaiting it completes at once, so ``await socket.emit(...)`` (python-socketio's
    asyncio habit) works as well as ``socket.emit(...)``. One shared instance,
    :data:`SENT`: an emit allocates nothing for it.
    """

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator function: awaiting yields nothing and returns None

    def __repr__(self) -> str:
        return "<socketwire SENT>"


#: The value of every ``emit``.
SENT: Final = Sent()


class EmitPort(Protocol):
    """What a socket implements for :class:`EmitMethods` and :class:`EmitOptions`."""

    def emit_flagged(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        volatile: bool,
        timeout: float | None,
    ) -> None:
        """Send ``event`` with ``args`` and the flags; ``callback`` gets the ack."""

    def emit_flagged_with_ack(
        self, event: str, args: tuple[Any, ...], volatile: bool, timeout: float | None
    ) -> Awaitable[Any]:
        """Send ``event`` with ``args`` and the flags; the result is the ack."""


class EmitMethods:
    """The emit API of a socket, over its :class:`EmitPort` (a mixin without state)."""

    __slots__ = ()

    def emit(
        self: EmitPort, event: str, *args: Any, callback: Callable[..., Any] | None = None
    ) -> Sent:
        """Send ``event`` with ``args`` (``bytes`` anywhere travel as binary). Needs no
        ``await`` (awaiting the result completes at once).

        ``callback`` receives the peer's acknowledgement (see the module docstring
        for when it is called error first).
        """
        self.emit_flagged(event, args, callback, False, None)
        return SENT

    def send(self: EmitPort, *args: Any, callback: Callable[..., Any] | None = None) -> Sent:
        """Emit a ``message`` event (the WebSocket-like API)."""
        self.emit_flagged("message", args, callback, False, None)
        return SENT

    write = send

    async def emit_with_ack(
        self: EmitPort, event: str, *args: Any, timeout: float | None = None
    ) -> Any:
        """Emit and wait for the peer's acknowledgement.

        Returns its single argument, a tuple when there are several, or None when
        there are none.  Raises :class:`~socketwire.errors.AckTimeout` after
        ``timeout`` seconds and :class:`~socketwire.errors.Disconnected` if the
        connection goes away first.
        """
        check_seconds(timeout, "emit_with_ack(..., timeout={})")
        return await self.emit_flagged_with_ack(event, args, False, timeout)

    @property
    def volatile(self: EmitPort) -> EmitOptions:
        """Emit without buffering: dropped if the transport cannot take it now."""
        return EmitOptions(self, volatile=True)

    def timeout(self: EmitPort, seconds: float) -> EmitOptions:
        """Emit with an acknowledgement deadline in seconds: the callback then takes an
        error first. Above an hour, a ``SecondsWarning`` says that this is not Node's
        milliseconds."""
        check_seconds(seconds, "timeout({})")
        return EmitOptions(self, timeout=seconds)

    def compress(self: EmitPort, value: bool = True) -> EmitOptions:
        """Node's per-emit compression flag, accepted for compatibility.

        No WebSocket extension is negotiated (no ``permessage-deflate``), so it
        changes nothing on the wire.
        """
        return EmitOptions(self, compress=value)


class EmitOptions:
    """Flags for one emit, built by ``volatile``, ``timeout(s)`` and ``compress(b)``.

    Immutable: each builder returns a new object, so one can be kept and reused.
    """

    __slots__ = ("_compress", "_target", "_timeout", "_volatile")

    def __init__(
        self,
        target: EmitPort,
        volatile: bool = False,
        timeout: float | None = None,
        compress: bool = True,
    ) -> None:
        self._target = target
        self._volatile = volatile
        self._timeout = timeout
        self._compress = compress

    @property
    def volatile(self) -> EmitOptions:
        """The same flags, volatile."""
        return EmitOptions(self._target, True, self._timeout, self._compress)

    def timeout(self, seconds: float) -> EmitOptions:
        """The same flags, with an acknowledgement deadline (seconds)."""
        check_seconds(seconds, "timeout({})")
        return EmitOptions(self._target, self._volatile, seconds, self._compress)

    def compress(self, value: bool = True) -> EmitOptions:
        """The same flags, with Node's compression flag (no effect on the wire)."""
        return EmitOptions(self._target, self._volatile, self._timeout, value)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> Sent:
        """Emit with these flags; with a timeout, ``callback(err, *args)``."""
        self._target.emit_flagged(event, args, callback, self._volatile, self._timeout)
        return SENT

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> Sent:
        """Emit a ``message`` event with these flags."""
        return self.emit("message", *args, callback=callback)

    write = send

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        """Emit with these flags and await the ack (``AckTimeout`` after the timeout, if set)."""
        return await self._target.emit_flagged_with_ack(event, args, self._volatile, self._timeout)
