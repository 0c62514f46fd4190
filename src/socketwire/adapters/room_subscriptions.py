"""Room channels that follow the rooms a server holds (layer 1, asyncio).

Some adapters subscribe to one channel per room, and only while the server has
a socket in the room: the sharded adapter in its dynamic modes (Node's
``subscriptionMode: "dynamic"``) and the Redis adapter in interest mode. A
server then hears a broadcast to one room only when it can deliver it.
``RoomSubscriptions`` keeps those channels in step with the rooms, written once
for both adapters:

* ``add(channel)`` and ``discard(channel)`` are synchronous and cheap (the
  adapter calls them from its ``on_create_room`` and ``on_delete_room`` hooks,
  on the path of a join); they change the set of channels *wanted* and wake the
  one task that talks to the bus.
* That task sends the difference between what is wanted and what it sent last:
  one unsubscription of the channels no longer wanted, then one subscription of
  the new ones. Every change of one loop turn, and every change made while the
  previous command was being written, goes into the next command: a burst of a
  thousand joins is one ``SUBSCRIBE``. A room joined, left and joined again
  before the task runs costs nothing; a room that changes while a command is on
  its way is compared again afterwards. The commands are awaited one after the
  other on one connection, so Redis applies them in order and ends with the
  last word: subscribed if and only if the room is still held.
* A command that fails (Redis unreachable) is retried with a backoff (at most
  five seconds between tries); what it should have changed is compared again,
  so nothing is lost or applied twice.
* ``wait(channels)`` resolves once Redis confirmed the subscription of each of
  ``channels`` that is still wanted: from then on, every message published on
  them reaches this server. What is published on a room's channel between the
  join and that confirmation is not delivered (pub/sub keeps nothing); this is
  the window that callers document and, where they can, wait out.

The bus is reached through a ``ChannelPort``: the Redis bus (whose ``SUBSCRIBE``
confirmation arrives later, on the subscriber connection) and the sharded bus
(whose subscription returns once confirmed) both fit it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

__all__ = ["ChannelPort", "RoomSubscriptions"]

# Backoff between failed commands: from the first to the longest pause.
_FIRST_RETRY = 0.1
_LONGEST_RETRY = 5.0


class ChannelPort(Protocol):
    """What ``RoomSubscriptions`` needs of a bus: subscribe and unsubscribe channels,
    each call in order with the previous ones."""

    async def subscribe(self, channels: list[str]) -> asyncio.Future[None] | None:
        """Subscribe to ``channels``; returns once the command is sent, with a
        future of Redis's confirmation (None: already confirmed). Raises when the
        command could not be sent."""

    async def unsubscribe(self, channels: list[str]) -> None:
        """Unsubscribe from ``channels`` (returns once sent; raises when it could
        not be)."""


def _settle(fut: asyncio.Future[bool] | None, confirmed: bool) -> None:
    if fut is not None and not fut.done():
        fut.set_result(confirmed)


class RoomSubscriptions:
    """The room channels one adapter subscribes to (see the module docstring).

    Nothing is sent before ``start()`` (an adapter starts it once its own
    channels are subscribed); ``add`` and ``discard`` are recorded meanwhile.
    """

    def __init__(self, port: ChannelPort, log: logging.Logger) -> None:
        self.port = port
        self.log = log
        self._wanted: set[str] = set()
        self._sent: set[str] = set()  # what Redis has, or will have once it reads our commands
        # Channels wanted and not confirmed yet, each with the future a waiter awaits.
        self._unconfirmed: dict[str, asyncio.Future[bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._started = False
        self._closed = False
        #: ``SUBSCRIBE`` (or ``SSUBSCRIBE``) commands sent (a counter: batching shows here).
        self.subscribe_commands = 0
        #: Unsubscription commands sent (a counter).
        self.unsubscribe_commands = 0
        #: Subscription commands that Redis confirmed (a counter).
        self.confirmed_commands = 0

    @property
    def wanted(self) -> frozenset[str]:
        """The channels this server should be subscribed to now."""
        return frozenset(self._wanted)

    @property
    def settled(self) -> bool:
        """Whether every change was sent and every subscription confirmed."""
        return not self._dirty and self._sent == self._wanted and not self._unconfirmed

    # -- changes (synchronous) ----------------------------------------------------------

    def add(self, channel: str) -> None:
        """Want ``channel`` (a room got its first local socket)."""
        if self._closed or channel in self._wanted:
            return
        self._wanted.add(channel)
        if channel in self._sent:
            # Its unsubscription was not sent yet: nothing to do at all.
            return
        if channel not in self._unconfirmed:
            self._unconfirmed[channel] = asyncio.get_running_loop().create_future()
        self._wake()

    def discard(self, channel: str) -> None:
        """Stop wanting ``channel`` (a room lost its last local socket)."""
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        if channel in self._sent:
            self._wake()
        else:
            # Never sent: nobody has anything to wait for.
            _settle(self._unconfirmed.pop(channel, None), True)

    def _wake(self) -> None:
        self._dirty = True
        if self._started and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Begin sending (what was added before is sent now, in one command)."""
        if self._started or self._closed:
            return
        self._started = True
        if self._dirty:
            self._task = None
            self._wake()

    async def close(self) -> list[str]:
        """Stop; returns the channels that may be subscribed (for the adapter's last
        unsubscription)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self._unconfirmed.values():
            _settle(fut, False)
        self._unconfirmed.clear()
        subscribed = sorted(self._sent | self._wanted)
        self._sent.clear()
        self._wanted.clear()
        return subscribed

    async def wait(self, channels: Iterable[str], timeout: float) -> bool:
        """Wait until Redis confirmed the subscription of each of ``channels`` that
        is still wanted; False when that did not happen within ``timeout`` seconds
        (or a confirmation was lost with the connection)."""
        waits = [fut for c in channels if (fut := self._unconfirmed.get(c)) is not None]
        if not waits:
            return True
        # Not wait_for: the futures are shared with other waiters and must not be
        # cancelled when this one gives up.
        _, pending = await asyncio.wait(waits, timeout=timeout)
        return not pending and all(fut.result() for fut in waits)

    # -- the task -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = _FIRST_RETRY
        try:
            while self._dirty and not self._closed:
                self._dirty = False
                if await self._send_difference():
                    delay = _FIRST_RETRY
                    continue
                # Redis did not take it: try again later (the difference is computed anew).
                self._dirty = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LONGEST_RETRY)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _send_difference(self) -> bool:
        wanted, sent = self._wanted, self._sent
        leave = [c for c in sent if c not in wanted]
        join = [c for c in wanted if c not in sent]
        ok = True
        if leave:
            sent.difference_update(leave)
            for c in leave:
                _settle(self._unconfirmed.pop(c, None), True)
            try:
                await self.port.unsubscribe(leave)
                self.unsubscribe_commands += 1
            except Exception as exc:
                self.log.warning("unsubscribing %d room channel(s) failed: %s", len(leave), exc)
                sent.update(leave)  # still subscribed, as far as we know
                ok = False
        if join and ok:
            sent.update(join)
            # The futures of this very command: a later subscription of the same
            # channel (after a leave) gets a future of its own.
            batch = [(c, self._unconfirmed.get(c)) for c in join]
            try:
                confirmation = await self.port.subscribe(join)
                self.subscribe_commands += 1
            except Exception as exc:
                self.log.warning("subscribing %d room channel(s) failed: %s", len(join), exc)
                sent.difference_update(join)
                return False
            if confirmation is None:
                self._confirm(batch, None)
            else:
                confirmation.add_done_callback(lambda fut: self._confirm(batch, fut))
        return ok

    def _confirm(
        self,
        batch: list[tuple[str, asyncio.Future[bool] | None]],
        done: asyncio.Future[None] | None,
    ) -> None:
        confirmed = done is None or (not done.cancelled() and done.exception() is None)
        if confirmed:
            self.confirmed_commands += 1
        elif not self._closed:
            self.log.info("a room subscription was not confirmed (the connection was lost)")
        for channel, fut in batch:
            if fut is not None and self._unconfirmed.get(channel) is fut:
                del self._unconfirmed[channel]
            _settle(fut, confirmed)
