"""One broadcast's frames written to many WebSockets at once (layer 1, I/O).

A broadcast hands the same framed bytes to every recipient (server frames are
unmasked). Through the general path each recipient costs a chain of calls down
to its transport's ``write``; on a broadcast to thousands of clients that chain,
not the encoding, is most of the server's own time per delivered message.

:func:`send_all` writes the frames straight to the descriptor of each WebSocket
that offers one (``DirectWriter.direct``: the built-in server's plain-TCP
WebSockets, while open and not holding back writes), with one non-blocking
``send`` each, in one loop (compiled in ``socketwire._fanout`` when it was built,
unless ``SOCKETWIRE_NO_SPEEDUPS`` is set; on Linux the compiled loop submits
the sends of a large broadcast through io_uring, a batch per system call,
unless ``SOCKETWIRE_NO_URING`` is set). Such a write is exactly what the
transport's own ``write`` does first when nothing is queued before it, so it is
made only when the transport is open and its buffer is empty: nothing queued
can be overtaken, and a transport that closed (its descriptor possibly reused
already) is never written around. Whatever is not taken whole (another kind
of writer, a full kernel buffer, an error, a frame cut short) is returned for
the caller to write the general way, which buffers, holds the write-buffer
cap, and meets and reports any error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = ["COMPILED", "DirectWriter", "send_all", "uring_state"]


class DirectWriter(Protocol):
    """A WebSocket whose frames may be written to its descriptor directly."""

    #: The descriptor while frames may go to it directly (a plain TCP
    #: connection, open, not holding back writes), else -1.
    direct: int
    #: The connection's transport (only read while ``direct`` is not -1).
    transport: asyncio.Transport


def _send_all_python(writers: list[Any], data: bytes, /) -> list[int]:
    """``send_all`` in Python."""
    rest: list[int] = []
    size = len(data)
    write = os.write
    for i, w in enumerate(writers):
        fd = -1 if w is None else getattr(w, "direct", -1)
        sent = 0
        if fd >= 0:
            t = w.transport
            if not t.is_closing() and not t.get_write_buffer_size():
                try:
                    sent = write(fd, data)
                except OSError:
                    # A full buffer (BlockingIOError) or a broken connection:
                    # the transport's own write queues it or meets the error.
                    sent = 0
                if sent == size:
                    continue
        rest += (i, sent)
    return rest


def _compiled() -> Callable[[list[Any], bytes], list[int]] | None:
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        return None
    try:
        from socketwire._fanout import send_all as c_send_all
        from socketwire._fanout import set_uring
    except ImportError:
        return None
    if os.environ.get("SOCKETWIRE_NO_URING"):
        set_uring(0)
    return c_send_all


def uring_state() -> str:
    """How the compiled loop hands its writes to the kernel: ``"open"`` (through
    io_uring, in this process), ``"unopened"`` (not needed yet), ``"unavailable"``
    (refused or failed here: one ``send`` each), ``"off"`` (``SOCKETWIRE_NO_URING``),
    ``"unsupported"`` (built without io_uring, or not compiled)."""
    if not COMPILED:
        return "unsupported"
    from socketwire._fanout import uring_state as state

    return state()


_chosen = _compiled()
#: Whether the compiled loop is in use.
COMPILED: Final = _chosen is not None

#: ``send_all(writers, data)``: ``data`` written straight to each writer (a
#: ``DirectWriter``, or None, or any object without ``direct``) that may take
#: it; returns the flat list ``[index, sent, ...]`` of the others, ``sent``
#: being what was written of ``data`` (0: nothing; more: the rest must follow
#: before anything else).
send_all: Final[Callable[[list[Any], bytes], list[int]]] = (
    _chosen if _chosen is not None else _send_all_python
)
