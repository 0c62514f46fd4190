"""At-least-once delivery for the client: the ``retries`` option (layer 2).

As the JavaScript client's ``retries``: each emit is queued and sent, one at a
time, with an acknowledgement request; it leaves the queue when the server
acknowledges it, or once it failed ``retries + 1`` times (no ack before the
deadline, or the connection lost).  The queue goes on when the socket
(re)connects.

The queue knows of its socket only the :class:`RetrySender` port, passed to each
call (the queue keeps no reference back to it).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

__all__ = ["RetryQueue", "RetrySender"]

log = logging.getLogger("socketwire.client")


class RetrySender(Protocol):
    """What the queue needs of its socket."""

    @property
    def connected(self) -> bool: ...

    @property
    def retries(self) -> int: ...

    def send_event(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        with_error: bool | None,
        volatile: bool,
        timeout: float | None,
        from_queue: bool = False,
    ) -> None:
        """Encode and send one EVENT; ``from_queue`` when this queue sends it."""


class _Queued:
    """An emit of the queue: sent until acknowledged."""

    __slots__ = ("args", "callback", "event", "id", "pending", "timeout", "try_count")

    def __init__(
        self,
        seq: int,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        timeout: float | None,
    ) -> None:
        self.id = seq
        self.event = event
        self.args = args
        self.callback = callback
        self.timeout = timeout
        self.try_count = 0
        self.pending = False


class RetryQueue:
    """The emits of one socket waiting for their acknowledgement, in order."""

    __slots__ = ("_items", "_seq")

    def __init__(self) -> None:
        self._items: deque[_Queued] = deque()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self,
        sender: RetrySender,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        timeout: float | None,
    ) -> None:
        """Queue an emit; it goes out when the ones before it are done."""
        self._items.append(_Queued(self._seq, event, args, callback, timeout))
        self._seq += 1
        self.drain(sender)

    def drain(self, sender: RetrySender, force: bool = False) -> None:
        """Send the first emit unless it is in flight (``force``: after a reconnection)."""
        if not sender.connected or not self._items:
            return
        packet = self._items[0]
        if packet.pending and not force:
            return
        packet.pending = True
        packet.try_count += 1
        sender.send_event(
            packet.event,
            packet.args,
            partial(self._on_ack, sender, packet),
            True,
            False,
            packet.timeout,
            from_queue=True,
        )

    def _on_ack(
        self, sender: RetrySender, packet: _Queued, err: BaseException | None, *response: Any
    ) -> None:
        items = self._items
        if not items or items[0] is not packet:
            return  # already acknowledged
        if err is not None:
            if packet.try_count > sender.retries:
                log.debug("packet %d discarded after %d tries", packet.id, packet.try_count)
                items.popleft()
                if packet.callback is not None:
                    packet.callback(err)
        else:
            items.popleft()
            if packet.callback is not None:
                packet.callback(None, *response)
        packet.pending = False
        self.drain(sender)
