"""The client's event listeners: :mod:`socketwire.handlers` bound to its logger.

Handler failures and the failures of the client's tasks are logged to
``socketwire.client``, never propagated into the connection.
"""

from __future__ import annotations

import logging

from socketwire.handlers import Emitter, F, Handler, Listener, Runner, ack_args

__all__ = ["EventEmitter", "F", "Handler", "Listener", "ack_args", "dispatch", "spawn"]

log = logging.getLogger("socketwire.client")

runner = Runner(log, log_task_failures=True)
spawn = runner.spawn
dispatch = runner.dispatch


class EventEmitter(Emitter):
    """``on``/``once``/``off`` (usable as decorators) and local dispatch."""

    __slots__ = ()

    runner = runner
    take = Emitter._take
    emit_local = Emitter._emit_local
