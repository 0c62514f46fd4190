"""The server's event listeners (layer 2): :mod:`socketwire.handlers` bound to its logger.

Handler failures and the failures of handler tasks go to ``socketwire.server``;
a failed task is left to asyncio, as any other task of the server.
"""

from __future__ import annotations

import logging

from socketwire import handlers
from socketwire.handlers import F, Handler, Listener, Runner, ack_args, ack_reply

__all__ = [
    "Emitter",
    "F",
    "Handler",
    "Listener",
    "ack_args",
    "ack_reply",
    "call",
    "call_awaitable",
    "spawn",
]

log = logging.getLogger("socketwire.server")

runner = Runner(log)
spawn = runner.spawn
call = runner.call
call_awaitable = runner.call_awaitable


class Emitter(handlers.Emitter):
    """Listener registry of namespaces and sockets."""

    __slots__ = ()

    runner = runner
