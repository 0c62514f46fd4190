"""What a socket listens with, on either side: named events and catch-all listeners (layer 1).

:class:`SocketListeners` is the base of the server's ``Socket`` and of the
client's ``Client``: the :class:`~socketwire.handlers.Emitter` registry (``on``,
``once``, ``off``) plus Node's catch-all listeners, ``on_any`` for every incoming
event and ``on_any_outgoing`` for every event sent (acks excluded), each with its
``prepend_*``, ``off_*`` and ``listeners_*`` companions.

Both catch-all lists stay ``None`` until a listener is added, so the per-event
check is one attribute test.  A catch-all listener is called ``fn(event,
*args)``, synchronously, before the event's own handlers; its failure is logged
to the side's logger and never stops the event.
"""

from __future__ import annotations

from typing import Any

from socketwire.handlers import Emitter, F, Handler

__all__ = ["SocketListeners"]


class SocketListeners(Emitter):
    """Named and catch-all listeners of one socket (see the module docstring)."""

    __slots__ = ("_any", "_any_out")

    def __init__(self) -> None:
        super().__init__()
        self._any: list[Handler] | None = None
        self._any_out: list[Handler] | None = None

    # -- incoming ----------------------------------------------------------------------

    def on_any(self, handler: F) -> F:
        """Call ``handler(event, *args)`` for every incoming event (before its handlers)."""
        if self._any is None:
            self._any = []
        self._any.append(handler)
        return handler

    def prepend_any(self, handler: F) -> F:
        """Like :meth:`on_any`, called before the catch-all listeners already there."""
        if self._any is None:
            self._any = []
        self._any.insert(0, handler)
        return handler

    def off_any(self, handler: Handler | None = None) -> None:
        """Remove one catch-all listener of incoming events, or all of them."""
        if handler is None or self._any is None:
            self._any = None
            return
        self._any = [h for h in self._any if h is not handler] or None

    def listeners_any(self) -> list[Handler]:
        """The catch-all listeners of incoming events, in call order."""
        return list(self._any or ())

    def _notify_any(self, data: list[Any]) -> None:
        """Call the catch-all listeners with an incoming ``[event, *args]``."""
        for fn in list(self._any or ()):
            try:
                fn(*data)
            except Exception:
                self.runner.log.exception(
                    "catch-all listener %s failed on %r (%r)", _name(fn), data[0], self
                )

    # -- outgoing ----------------------------------------------------------------------

    def on_any_outgoing(self, handler: F) -> F:
        """Call ``handler(event, *args)`` for every event sent to the peer (acks excluded)."""
        return self._add_outgoing(handler, False)

    def prepend_any_outgoing(self, handler: F) -> F:
        """Like :meth:`on_any_outgoing`, called before the ones already there."""
        return self._add_outgoing(handler, True)

    def off_any_outgoing(self, handler: Handler | None = None) -> None:
        """Remove one outgoing catch-all listener, or all of them."""
        if self._any_out is None:
            return
        if handler is not None:
            self._any_out = [h for h in self._any_out if h is not handler]
        if handler is None or not self._any_out:
            self._any_out = None
            self._watch_outgoing(False)

    def listeners_any_outgoing(self) -> list[Handler]:
        """The catch-all listeners of outgoing events, in call order."""
        return list(self._any_out or ())

    def _add_outgoing(self, handler: F, first: bool) -> F:
        if self._any_out is None:
            self._any_out = []
            self._watch_outgoing(True)
        if first:
            self._any_out.insert(0, handler)
        else:
            self._any_out.append(handler)
        return handler

    def _watch_outgoing(self, watched: bool) -> None:
        """Called when the first outgoing listener comes and when the last one goes.

        The server's socket counts them on its namespace, whose broadcasts then
        tell each reached socket what it sent.
        """

    def _notify_outgoing(self, data: list[Any]) -> None:
        """Call the outgoing catch-all listeners with a sent ``[event, *args]``."""
        for fn in list(self._any_out or ()):
            try:
                fn(*data)
            except Exception:
                self.runner.log.exception(
                    "outgoing catch-all listener %s failed on %r (%r)", _name(fn), data[0], self
                )


def _name(fn: Any) -> Any:
    return getattr(fn, "__qualname__", fn)
