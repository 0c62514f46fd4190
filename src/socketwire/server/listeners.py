"""The server's event listeners (layer 2): :mod:`socketwire.handlers` bound to its logger.

Handler failures and the failures of handler tasks go to ``socketwire.server``;
a failed task is left to asyncio, as any other task of the server.  Namespaces
use :class:`Emitter`; sockets, which also have catch-all listeners, use
:class:`socketwire.listeners.SocketListeners` with this :data:`runner`.
"""

from __future__ import annotations

import logging

from socketwire import handlers
from socketwire.handlers import F, Handler, Listener, Runner

__all__ = ["Emitter", "F", "Handler", "Listener", "runner", "spawn"]

log = logging.getLogger("socketwire.server")

runner = Runner(log)
spawn = runner.spawn


class Emitter(handlers.Emitter):
    """Listener registry of namespaces."""

    __slots__ = ()

    runner = runner
