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
import errno
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Final

__all__ = [
    "AcceptErrorLogger",
    "raise_nofile_limit",
    "run_until_signalled",
    "settle_gc",
]

log = logging.getLogger("socketwire.engine")

# Accept failures closer together than this are one burst, logged once.
ACCEPT_BURST_GAP = 10.0

_OUT_OF_DESCRIPTORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# Seconds a stop() that keeps its own time limit is given beyond it before it
# is cancelled.
STOP_GRACE = 0.5

# Young-generation threshold while a server owns the process (CPython's default is 700).
GC_THRESHOLD0 = 7000


def run_until_signalled(
    start: Callable[[], Awaitable[object]],
    stop: Callable[[], Awaitable[object]],
    *,
    use_uvloop: bool = True,
    stop_timeout: float | None = None,
) -> None:
    """Run ``start()``, serve until SIGINT or SIGTERM, then run ``stop()``; blocks.

    With ``use_uvloop`` the loop is uvloop's when the package is installed.
    ``stop()`` is cancelled after ``stop_timeout`` seconds (a bit more, for its
    own bounded steps to finish first) or at a second signal.
    """
    loop_factory = None
    if use_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass

    raise_nofile_limit()

    async def main() -> None:
        AcceptErrorLogger().install(asyncio.get_running_loop())
        await start()
        settle_gc()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        stopping.clear()
        stopping_task: asyncio.Future[Any] = asyncio.ensure_future(stop())
        second = loop.create_task(stopping.wait())
        bound = None if stop_timeout is None else stop_timeout + STOP_GRACE
        await asyncio.wait(
            [stopping_task, second], timeout=bound, return_when=asyncio.FIRST_COMPLETED
        )
        second.cancel()
        if not stopping_task.done():
            log.warning("stopping took too long or was interrupted: exiting now")
            stopping_task.cancel()
            with contextlib.suppress(BaseException):
                await stopping_task
        else:
            stopping_task.result()  # raises what stop() raised

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


def raise_nofile_limit() -> None:
    """Raise the soft limit on open descriptors to the hard one, as Node does.

    Every connection holds a descriptor, and the usual soft limit (1,024) is far
    below what a server holds; the hard limit is what the administrator allows.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open file limit from %d: %s", soft, exc)


class AcceptErrorLogger:
    """A loop exception handler that turns accept failures into one log line per burst.

    When ``accept()`` fails for want of descriptors (EMFILE, ENFILE...), asyncio
    reports it through the loop's exception handler on every attempt and stops
    accepting for a second before trying again, so the server serves again once
    descriptors come back. That report would repeat every second for as long as
    the shortage lasts: here the first failure of a burst is logged (a warning
    with the error), later ones are counted, and the count is logged with the
    next burst. Anything else goes to the handler that was there before.
    """

    __slots__ = ("_last", "_previous", "_suppressed")

    def __init__(self) -> None:
        self._last = -ACCEPT_BURST_GAP * 2
        self._suppressed = 0
        self._previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (
            isinstance(exc, OSError)
            and exc.errno in _OUT_OF_DESCRIPTORS
            and "accept" in str(context.get("message", ""))
        ):
            now = loop.time()
            if now - self._last > ACCEPT_BURST_GAP:
                more = (
                    f" ({self._suppressed} more in the previous burst)" if self._suppressed else ""
                )
                log.warning("cannot accept connections: %s%s", exc, more)
                self._suppressed = 0
            else:
                self._suppressed += 1
            self._last = now
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
