"""The client's event listeners: :mod:`socketwire.handlers` bound to its logger.

Handler failures and the failures of the client's tasks are logged to
``socketwire.client``, never propagated into the connection.  The manager's
events use :class:`EventEmitter`; a ``Client``, which also has catch-all
listeners, is a :class:`socketwire.listeners.SocketListeners` with this
:data:`runner`.
"""

from __future__ import annotations

import logging

from socketwire.handlers import Emitter, F, Handler, Listener, Runner

__all__ = ["EventEmitter", "F", "Handler", "Listener", "runner", "spawn"]

log = logging.getLogger("socketwire.client")

runner = Runner(log, log_task_failures=True)
spawn = runner.spawn


class EventEmitter(Emitter):
    """``on``/``once``/``off`` (usable as decorators) and local dispatch."""

    __slots__ = ()

    runner = runner
    take = Emitter._take
    emit_local = Emitter._emit_local
