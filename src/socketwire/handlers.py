"""Event handlers: how they are registered and how they are called (layer 1, asyncio).

Shared by the server and the client; each side binds a :class:`Runner` to its own
logger (``server/listeners.py``, ``client/listeners.py``).

A handler is sync or async.  Its return value is the acknowledgement (a tuple
spreads into several ack arguments, ``None`` acks with no argument), unless it
takes an ``ack`` keyword parameter: then it receives the ack callable (``None``
when the peer asked for no ack) and acks explicitly.  When several handlers
listen to one event, the first answers.

:meth:`Runner.dispatch` is the one implementation of that rule for both sides.
It is on the path of every incoming event, so the common case stays short: a
plain sync handler (learned once, at registration) is called directly and its
usual answers (``None``, a tuple, a str, a number, a dict...) are sent as the
ack with no awaitable check and no ack callable built.

Handler failures are logged, never propagated into the connection, in one
format whether the handler is sync or async: ``<where>: handler <name> failed on
event <event>`` at ERROR with the traceback (``where`` is the socket: its id and
namespace on the server). A peer can make a faulty handler fail once per packet,
so repeats are summarised: the first failure of a handler on an event with an
exception type is logged with its traceback, later ones within
``Runner.failure_log_interval`` seconds are counted and reported in one line
when that window ends.

Each side checks a handler's parameters when it is registered
(:meth:`Emitter._prepare`, with :mod:`socketwire.signatures`), so that one that
cannot take its arguments fails at once, not when its event arrives.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import CoroutineType, MappingProxyType
from typing import Any, ClassVar, Final, TypeVar, overload

from socketwire.acks import AckSink, ack_args, once_ack

__all__ = ["Emitter", "F", "Handler", "Listener", "Runner"]

Handler = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])

# Return values that are certainly not awaitable: checking their type first
# saves the ``__await__`` lookup, which costs more than the rest of an ack.
_PLAIN_ANSWERS = frozenset({str, int, float, bool, dict, list, bytes})

# Distinct (handler, event, exception type) windows open at once; past it, the
# failures of further events share one window per handler and exception type
# (event names come from the peer, so their number must not size the state).
_MAX_FAILURE_WINDOWS = 256
_OTHER_EVENTS = "<other events>"

_FailureKey = tuple[Any, Any, type[BaseException]]


class Listener:
    """A registered handler with what was learned about it once, at registration.

    ``handler`` is what was registered (``off`` and ``listeners`` see it),
    ``fn`` what is called: the handler itself, or a thin wrapper that leaves
    out trailing arguments the handler does not take (a ``disconnect`` handler
    without the reason).
    """

    __slots__ = ("fn", "handler", "is_async", "once", "plain", "wants_ack")

    def __init__(self, fn: Handler, once: bool = False, call: Handler | None = None) -> None:
        self.handler = fn
        self.fn = fn if call is None else call
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.once = once
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.wants_ack = "ack" in params
        # Called directly, its return value being the ack.
        self.plain = not self.is_async and not self.wants_ack


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _name(fn: Any) -> Any:
    return getattr(fn, "__qualname__", fn)


class Runner:
    """How one side calls its handlers: the logger of their failures, the tasks kept alive.

    With ``log_task_failures``, a spawned task that fails is logged; otherwise its
    exception is left to asyncio (reported when the task is collected).

    ``where`` arguments name the caller in failure logs (a socket, whose repr
    carries its id and namespace); they are formatted only when a handler fails.
    """

    __slots__ = ("_done", "_failures", "_tasks", "failure_log_interval", "log")

    def __init__(self, log: logging.Logger, log_task_failures: bool = False) -> None:
        self.log = log
        #: Seconds during which repeated failures are counted instead of logged.
        self.failure_log_interval = 10.0
        # Open windows: failures counted (not logged) since the last log line.
        self._failures: dict[_FailureKey, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._done: Callable[[asyncio.Task[Any]], object] = (
            self._task_done if log_task_failures else self._tasks.discard
        )

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run an awaitable as a task that is kept alive until it finishes."""
        task = asyncio.get_running_loop().create_task(
            awaitable if type(awaitable) is CoroutineType else _await(awaitable)
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no spawned task runs (the calling task aside), for at most
        ``timeout`` seconds; True if none is left.

        Tasks spawned during the wait are waited for too: a graceful shutdown
        lets the handlers in flight send their acknowledgements.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        me = asyncio.current_task()
        while True:
            tasks = self._tasks - {me} if me is not None else set(self._tasks)
            left = deadline - loop.time()
            if not tasks:
                return True
            if left <= 0:
                return False
            await asyncio.wait(tasks, timeout=left)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self.log.error("task failed", exc_info=exc)

    def _failed(self, fn: Any, event: Any, where: object) -> None:
        """Log the handler failure being handled, or count it as a repeat.

        Called from an ``except`` block. Not on the path of a successful call.
        """
        exc_type = sys.exc_info()[0] or Exception
        name = "" if fn is None else _name(fn)
        failures = self._failures
        key: _FailureKey = (name, event, exc_type)
        try:
            count = failures.get(key)
        except TypeError:  # an unhashable event (a peer's list, say)
            key = (name, _OTHER_EVENTS, exc_type)
            count = failures.get(key)
        if count is None and len(failures) >= _MAX_FAILURE_WINDOWS:
            key = (name, _OTHER_EVENTS, exc_type)
            count = failures.get(key)
        if count is not None:
            failures[key] = count + 1
            return
        self.log.exception("%s: handler %s failed on event %r", where, name, event)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to end a window: every failure is logged
        failures[key] = 0
        loop.call_later(self.failure_log_interval, self._end_failure_window, key)

    def _end_failure_window(self, key: _FailureKey) -> None:
        count = self._failures.pop(key, 0)
        if not count:
            return  # quiet window: the next failure is logged in full again
        name, event, exc_type = key
        self.log.error(
            "handler %s failed %d more times on %r with %s in the last %g s (tracebacks omitted)",
            name,
            count,
            event,
            exc_type.__name__,
            self.failure_log_interval,
        )
        # Keep counting: a steady flood gives one line per window.
        self._failures[key] = 0
        asyncio.get_running_loop().call_later(
            self.failure_log_interval, self._end_failure_window, key
        )

    def dispatch(
        self,
        listeners: list[Listener],
        event: Any,
        args: tuple[Any, ...],
        ack_id: int | None,
        sink: AckSink | None,
        where: object,
    ) -> int | None:
        """Call ``listeners`` with ``args``; the first one answers ``ack_id`` (if any).

        Returns the ack id still unanswered: ``ack_id`` when there was no
        listener, else None.  A caller with a second set of listeners (the
        server: the socket's own, then its namespace's) passes it on.
        """
        if len(listeners) == 1:
            self.call(listeners[0], event, args, ack_id, sink, where)
            return None
        if not listeners:
            return ack_id
        # A copy: a handler may add or remove listeners of this event.
        for listener in list(listeners):
            self.call(listener, event, args, ack_id, sink, where)
            ack_id = None
        return None

    def call(
        self,
        listener: Listener,
        event: Any,
        args: tuple[Any, ...],
        ack_id: int | None,
        sink: AckSink | None,
        where: object,
    ) -> None:
        """Call one listener; with an ``ack_id``, its answer goes to ``sink``."""
        fn = listener.fn
        if listener.plain:
            try:
                result = fn(*args)
            except Exception:
                self._failed(listener.handler, event, where)
                return
            if ack_id is None or sink is None:
                if (
                    result is not None
                    and type(result) not in _PLAIN_ANSWERS
                    and inspect.isawaitable(result)
                ):
                    # A sync function that returned a coroutine: run it to the end.
                    self.spawn(self._finish(result, listener.handler, None, None, event, where))
                return
            t = type(result)
            if t is tuple:
                sink.send_ack(ack_id, list(result))
            elif result is None:
                sink.send_ack(ack_id, [])
            elif t in _PLAIN_ANSWERS or not hasattr(t, "__await__"):
                sink.send_ack(ack_id, [result])
            else:
                self.spawn(self._finish(result, listener.handler, ack_id, sink, event, where))
            return
        kwargs: dict[str, Any]
        if listener.wants_ack:
            kwargs = {"ack": None if ack_id is None or sink is None else once_ack(sink, ack_id)}
            ack_id = None  # the handler answers itself
        else:
            kwargs = {}
        if listener.is_async:
            self.spawn(
                self._run_async(fn, listener.handler, args, kwargs, ack_id, sink, event, where)
            )
            return
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self._failed(listener.handler, event, where)
            return
        if inspect.isawaitable(result):
            self.spawn(self._finish(result, listener.handler, None, None, event, where))

    async def _run_async(
        self,
        fn: Handler,
        handler: Handler,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ack_id: int | None,
        sink: AckSink | None,
        event: Any,
        where: object,
    ) -> None:
        """Await an async handler, then ack with its result when asked to."""
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self._failed(handler, event, where)
            return
        if ack_id is not None and sink is not None:
            sink.send_ack(ack_id, ack_args(result))

    async def _finish(
        self,
        awaitable: Any,
        handler: Handler,
        ack_id: int | None,
        sink: AckSink | None,
        event: Any,
        where: object,
    ) -> None:
        """Finish an awaitable that a sync handler returned, then ack with its result."""
        try:
            result = await awaitable
        except Exception:
            self._failed(handler, event, where)
            return
        if ack_id is not None and sink is not None:
            sink.send_ack(ack_id, ack_args(result))


# The registry of an emitter that never registered a listener: one shared empty
# mapping, immutable, so that a write that skipped ``_own_listeners`` fails
# instead of registering on every emitter at once.
_NO_LISTENERS: Final[Mapping[str, list[Listener]]] = MappingProxyType({})


class Emitter:
    """Listener registry with ``on``/``once``/``off`` usable as decorators.

    The registry is created on first registration (most server sockets never
    register a handler of their own), so reads see a shared empty mapping until
    then.  A subclass sets ``runner``, the :class:`Runner` of its side.
    """

    __slots__ = ("__weakref__", "_listeners")

    runner: ClassVar[Runner]

    def __init__(self) -> None:
        self._listeners: Mapping[str, list[Listener]] = _NO_LISTENERS

    def _own_listeners(self) -> dict[str, list[Listener]]:
        """The registry, for a write: the emitter's own dict, created on first use."""
        listeners = self._listeners
        if type(listeners) is not dict:
            self._listeners = listeners = {}
        return listeners

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``event``; without a handler, return a decorator.

        Sync or async.  For an event from the peer, the handler's return value is
        the acknowledgement when the peer asked for one (a tuple spreads into
        several arguments); a handler with an ``ack`` parameter gets the ack
        callable instead.
        """
        return self._register(event, handler, False)

    @overload
    def once(self, event: str, handler: F) -> F: ...

    @overload
    def once(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`on`, removed after its first call."""
        return self._register(event, handler, True)

    def _register(self, event: str, handler: Handler | None, once: bool) -> Any:
        if handler is None:

            def decorator(fn: F) -> F:
                self._register(event, fn, once)
                return fn

            return decorator
        call = self._prepare(event, handler)
        self._own_listeners().setdefault(event, []).append(Listener(handler, once, call))
        return handler

    def _prepare(self, event: str, handler: Handler) -> Handler | None:
        """Check ``handler`` for ``event`` before it is registered (raise
        ``TypeError`` when it cannot be called as it will be); return a wrapper
        to call instead, or None to call it as it is. Each side says how."""
        return None

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one handler, every handler of ``event``, or every handler."""
        if event is None:
            # Dropped, not cleared: the registry may be shared (dynamic namespaces).
            self._listeners = _NO_LISTENERS
            return
        if handler is None:
            if event in self._listeners:
                del self._own_listeners()[event]
            return
        lst = self._listeners.get(event)
        if lst:
            lst[:] = [x for x in lst if x.handler is not handler]
            if not lst:
                del self._own_listeners()[event]

    def listeners(self, event: str) -> list[Handler]:
        """The handlers of ``event``, in call order."""
        return [x.handler for x in self._listeners.get(event, ())]

    def _take(self, event: str) -> list[Listener] | None:
        """The listeners of ``event`` for one dispatch (``once`` ones are removed).

        The list may be the registry's own: copy it before calling more than one.
        """
        lst = self._listeners.get(event)
        if not lst:
            return None
        if any(x.once for x in lst):
            registry = self._own_listeners()  # holds ``lst``: the emitter's own dict
            keep = [x for x in lst if not x.once]
            if keep:
                registry[event] = keep
            else:
                del registry[event]
        return lst

    def _emit_local(self, event: str, *args: Any, where: object = "") -> None:
        """Call every listener of ``event`` with ``args`` (no acknowledgement)."""
        lst = self._take(event)
        if lst:
            self.runner.dispatch(lst, event, args, None, None, where)
