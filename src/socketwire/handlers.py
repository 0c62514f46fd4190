"""Event handlers: how they are registered and how they are called (layer 1, asyncio).

Shared by the server and the client; each side binds it to its own logger
(``server/listeners.py``, ``client/listeners.py``).  This module imports nothing
of the package.

A handler is sync or async.  Its return value is the acknowledgement (a tuple
spreads into several ack arguments, ``None`` acks with no argument), unless it
takes an ``ack`` keyword parameter: then it receives the ack callable (``None``
when the peer asked for no ack) and acks explicitly.  When several handlers
listen to one event, the first answers.

Handler failures are logged, never propagated into the connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import CoroutineType, MappingProxyType
from typing import Any, ClassVar, Final, TypeVar, overload

__all__ = ["Emitter", "F", "Handler", "Listener", "Runner", "ack_args", "ack_reply"]

Handler = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


class Listener:
    """A registered handler with what was learned about it once, at registration."""

    __slots__ = ("fn", "is_async", "once", "plain", "wants_ack")

    def __init__(self, fn: Handler, once: bool = False) -> None:
        self.fn = fn
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


def ack_args(result: Any) -> list[Any]:
    """A handler's return value as the list of ack arguments."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


def ack_reply(ack: Callable[..., None] | None) -> Callable[[Any], None] | None:
    """Turn an ack callable into a function of a handler's return value."""
    if ack is None:
        return None

    def reply(result: Any) -> None:
        ack(*ack_args(result))

    return reply


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Runner:
    """How one side calls its handlers: the logger of their failures, the tasks kept alive.

    With ``log_task_failures``, a spawned task that fails is logged; otherwise its
    exception is left to asyncio (reported when the task is collected).
    """

    __slots__ = ("_done", "_tasks", "log")

    def __init__(self, log: logging.Logger, log_task_failures: bool = False) -> None:
        self.log = log
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

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self.log.error("task failed", exc_info=exc)

    async def run_async(
        self,
        fn: Handler,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reply: Callable[[Any], None] | None,
        where: object,
    ) -> None:
        """Await an async handler, then ack with its result when asked to."""
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self.log.exception("handler %s failed (%s)", getattr(fn, "__qualname__", fn), where)
            return
        if reply is not None:
            reply(result)

    def call(
        self,
        listener: Listener,
        args: tuple[Any, ...],
        ack: Callable[..., None] | None,
        reply: Callable[[Any], None] | None,
        where: object,
    ) -> None:
        """Call one listener.

        ``ack`` is the explicit ack callable for handlers that take one; ``reply`` is
        called with the return value when the peer asked for an ack and the handler
        does not ack explicitly.
        """
        fn = listener.fn
        kwargs: dict[str, Any] = {}
        if listener.wants_ack:
            kwargs["ack"] = ack
            reply = None
        if listener.is_async:
            self.spawn(self.run_async(fn, args, kwargs, reply, where))
            return
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.log.exception("handler %s failed (%s)", getattr(fn, "__qualname__", fn), where)
            return
        if inspect.isawaitable(result):
            self.call_awaitable(result, reply, where)
        elif reply is not None:
            reply(result)

    def call_awaitable(
        self, awaitable: Any, reply: Callable[[Any], None] | None, where: object
    ) -> None:
        """Finish an awaitable that a sync handler returned, then ack with its result."""
        self.spawn(self._await_then(awaitable, reply, where))

    async def _await_then(
        self, awaitable: Any, reply: Callable[[Any], None] | None, where: object
    ) -> None:
        try:
            result = await awaitable
        except Exception:
            self.log.exception("handler failed (%s)", where)
            return
        if reply is not None:
            reply(result)

    def dispatch(
        self,
        listeners: list[Listener],
        args: tuple[Any, ...],
        ack: Callable[..., None] | None,
        where: object,
    ) -> None:
        """Call ``listeners`` with ``args``; the first one answers ``ack`` (if any)."""
        pending = ack is not None
        for listener in listeners if len(listeners) == 1 else list(listeners):
            reply = ack_reply(ack) if pending and not listener.wants_ack else None
            self.call(listener, args, ack if pending else None, reply, where)
            pending = False


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
        """Register ``handler`` for ``event``; without a handler, return a decorator."""
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
        self._own_listeners().setdefault(event, []).append(Listener(handler, once))
        return handler

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
            lst[:] = [x for x in lst if x.fn is not handler]
            if not lst:
                del self._own_listeners()[event]

    def listeners(self, event: str) -> list[Handler]:
        """The handlers of ``event``, in call order."""
        return [x.fn for x in self._listeners.get(event, ())]

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
            self.runner.dispatch(lst, args, None, where or event)
