"""Serving as the process's main job (layer 1, asyncio).

``EngineServer.run`` and ``Server.run`` own their process: they build the event
loop (uvloop when installed), start listening, settle CPython's cycle collector
for a long-running server, serve until SIGINT or SIGTERM, then shut down. This
module is that shared sequence; ``listen`` inside a program that owns its loop
never comes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable

__all__ = ["run_until_signalled", "settle_gc"]

# Young-generation threshold while a server owns the process (CPython's default is 700).
GC_THRESHOLD0 = 7000


def run_until_signalled(
    start: Callable[[], Awaitable[object]],
    stop: Callable[[], Awaitable[object]],
    *,
    use_uvloop: bool = True,
) -> None:
    """Run ``start()``, serve until SIGINT or SIGTERM, then run ``stop()``; blocks.

    With ``use_uvloop`` the loop is uvloop's when the package is installed.
    """
    loop_factory = None
    if use_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass

    async def main() -> None:
        await start()
        settle_gc()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await stop()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


def settle_gc() -> None:
    """Tune the cycle collector for a server whose heap grows with its clients.

    Every connection keeps a score of tracked objects alive for its whole life,
    and CPython's full collections walk every tracked object: at 10,000 clients
    they cost about a fifth of the Python time of a connection. Freezing what
    exists at start-up (``gc.freeze``) takes it out of every later walk, and a
    larger young generation makes the walks rarer; per-connection objects are
    freed by reference counting (no cycles are left when a connection closes), so
    the collector has little to find anyway. Memory held by garbage cycles grows
    by at most the larger young generation.
    """
    gc.collect()
    gc.freeze()
    threshold0, threshold1, threshold2 = gc.get_threshold()
    if threshold0:  # 0: the application disabled the collector; leave it so
        gc.set_threshold(max(threshold0, GC_THRESHOLD0), threshold1, threshold2)
