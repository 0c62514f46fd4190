"""Connections accepted by one process and served by another (layer 3, asyncio).

``socketwire --workers N`` has one listening socket, which its supervisor
accepts on; each accepted connection is passed to a worker (``SCM_RIGHTS`` over
a Unix socket pair), in turn. The workers never accept themselves:

* round robin spreads connections evenly whatever the load. Workers that all
  accept on one shared socket take whatever the kernel wakes them for (a busy
  worker may take most), and with ``SO_REUSEPORT`` each worker has a queue of
  its own, whose waiting connections are reset when that worker stops: a
  rolling restart would refuse clients;
* the listening socket stays open in the supervisor for its whole life, so a
  worker that stops, dies or restarts never makes the port refuse a
  connection: they wait in the backlog, or go to another worker.

The cost is one ``accept`` and one ``sendmsg`` in the supervisor per
connection (about 40 µs of its CPU, ``bench/RESULTS.md``), not per message: a
WebSocket or a keep-alive polling connection is passed once.

:func:`pass_connection` is the supervisor's side, :class:`ConnectionReceiver`
the worker's: it serves each connection it receives with a protocol factory of
the built-in server (``socketwire.serve.make_protocol_factory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_module
from collections.abc import Callable
from typing import Any, Final

__all__ = ["READY", "ConnectionReceiver", "pass_connection"]

log = logging.getLogger("socketwire.workers")

#: What a worker writes on its channel once it serves connections.
READY: Final = b"R"
_CONNECTION: Final = b"c"
# Descriptors taken in one read of the channel.
_MAX_FDS: Final = 64


def pass_connection(channel: socket.socket, conn: socket.socket) -> None:
    """Send an accepted connection to the worker at the other end of ``channel``
    (``OSError`` if it cannot take it now). The caller closes its own copy."""
    socket.send_fds(channel, [_CONNECTION], [conn.fileno()])


class ConnectionReceiver:
    """A worker's end of its channel: every connection received is served with
    ``factory`` (with TLS when ``ssl`` is given). ``on_lost`` is called if the
    supervisor goes away (its end of the channel closes)."""

    def __init__(
        self,
        channel: socket.socket,
        factory: Callable[[], Any],
        *,
        ssl: ssl_module.SSLContext | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.channel = channel
        self.on_lost = on_lost
        self.factory = factory
        self.ssl = ssl
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Serve the connections that arrive, and tell the supervisor so."""
        loop = self._loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._on_readable)
        self.channel.send(READY)

    def stop(self) -> None:
        """Take no more connections (those served go on).

        The connections already sent are still served: the supervisor stops
        sending before it asks a worker to stop, so they are all in the channel
        by now, and would otherwise be reset when the worker exits.
        """
        loop = self._loop
        if loop is None:
            return
        self._read(loop)
        self._loop = None
        loop.remove_reader(self.channel.fileno())

    def _on_readable(self) -> None:
        loop = self._loop
        if loop is not None and not self._read(loop):
            self._loop = None
            loop.remove_reader(self.channel.fileno())
            if self.on_lost is not None:
                self.on_lost()

    def _read(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Serve what the channel holds; False once the supervisor is gone."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 1024, _MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                log.error("the supervisor's channel failed: %s", exc)
                return False
            if not data and not fds:
                return False  # the supervisor is gone: nothing more will come
            for fd in fds:
                self.received += 1
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                if sock.family != socket.AF_UNIX:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                task = loop.create_task(
                    loop.connect_accepted_socket(self.factory, sock, ssl=self.ssl)
                )
                self._tasks.add(task)
                task.add_done_callback(self._served)

    def _served(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("a connection could not be served: %s", task.exception())
