"""Event listeners of the client and how its handlers are called.

The convention is the server's: a handler is sync or async; its return value is the
acknowledgement (a tuple spreads into several ack arguments, ``None`` acks with no
argument), unless it has an ``ack`` parameter: then it receives the ack callable
(``None`` when the server asked for no ack) and acks explicitly.  When several
handlers listen to one event, the first answers.

Handler failures are logged, never propagated into the connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["EventEmitter", "Listener", "ack_args", "dispatch", "spawn"]

log = logging.getLogger("socketwire.client")

Handler = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])

_tasks: set[asyncio.Task[Any]] = set()


def spawn(awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run an awaitable as a task kept alive until it finishes; failures are logged."""

    async def run() -> Any:
        return await awaitable

    task = asyncio.get_running_loop().create_task(
        awaitable if inspect.iscoroutine(awaitable) else run()
    )
    _tasks.add(task)
    task.add_done_callback(_task_done)
    return task


def _task_done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            log.error("client task failed", exc_info=exc)


class Listener:
    """A handler with what was learned about it once, at registration."""

    __slots__ = ("fn", "is_async", "once", "wants_ack")

    def __init__(self, fn: Handler, once: bool = False) -> None:
        self.fn = fn
        self.once = once
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.wants_ack = "ack" in params


def ack_args(result: Any) -> list[Any]:
    """A handler's return value as the list of ack arguments."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


async def _finish(
    awaitable: Awaitable[Any], reply: Callable[[Any], None] | None, where: str
) -> None:
    try:
        result = await awaitable
    except Exception:
        log.exception("handler for %s failed", where)
        return
    if reply is not None:
        reply(result)


def dispatch(
    listeners: list[Listener],
    args: tuple[Any, ...],
    ack: Callable[..., None] | None,
    where: str,
) -> None:
    """Call ``listeners`` with ``args``; the first one answers ``ack`` (if any)."""
    pending = ack is not None
    for listener in listeners:
        fn = listener.fn
        reply: Callable[[Any], None] | None = None
        if listener.wants_ack:
            call_ack = ack if pending else None
            pending = False
            kwargs: dict[str, Any] = {"ack": call_ack}
        else:
            kwargs = {}
            if pending:
                pending = False
                assert ack is not None
                answer = ack

                def reply(result: Any, answer: Callable[..., None] = answer) -> None:
                    answer(*ack_args(result))

        if listener.is_async:
            spawn(_finish(fn(*args, **kwargs), reply, where))
            continue
        try:
            result = fn(*args, **kwargs)
        except Exception:
            log.exception("handler for %s failed", where)
            continue
        if inspect.isawaitable(result):
            spawn(_finish(result, reply, where))
        elif reply is not None:
            reply(result)


class EventEmitter:
    """``on``/``once``/``off`` (usable as decorators) and local dispatch."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``event``; without a handler, return a decorator."""
        if handler is None:

            def decorator(fn: F) -> F:
                self.on(event, fn)
                return fn

            return decorator
        self._listeners.setdefault(event, []).append(Listener(handler))
        return handler

    @overload
    def once(self, event: str, handler: F) -> F: ...

    @overload
    def once(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`on`, removed after its first call."""
        if handler is None:

            def decorator(fn: F) -> F:
                self.once(event, fn)
                return fn

            return decorator
        self._listeners.setdefault(event, []).append(Listener(handler, once=True))
        return handler

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one handler, every handler of ``event``, or every handler."""
        if event is None:
            self._listeners.clear()
            return
        if handler is None:
            self._listeners.pop(event, None)
            return
        listeners = self._listeners.get(event)
        if listeners:
            listeners[:] = [x for x in listeners if x.fn is not handler]
            if not listeners:
                del self._listeners[event]

    def listeners(self, event: str) -> list[Handler]:
        """The handlers of ``event``, in call order."""
        return [x.fn for x in self._listeners.get(event, ())]

    def take(self, event: str) -> list[Listener] | None:
        """The listeners for one dispatch of ``event`` (``once`` ones are removed)."""
        listeners = self._listeners.get(event)
        if not listeners:
            return None
        if any(x.once for x in listeners):
            keep = [x for x in listeners if not x.once]
            if keep:
                self._listeners[event] = keep
            else:
                del self._listeners[event]
            return listeners
        return list(listeners) if len(listeners) > 1 else listeners

    def emit_local(self, event: str, *args: Any) -> None:
        """Call the listeners of ``event`` with ``args`` (no acknowledgement)."""
        listeners = self.take(event)
        if listeners:
            dispatch(listeners, args, None, repr(event))
