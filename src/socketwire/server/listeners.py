"""Event listeners and how handlers are called (layer 2).

A handler is sync or async. Its return value is the acknowledgement (a tuple
spreads into several ack arguments, ``None`` acks with no argument), unless it
takes an ``ack`` keyword parameter: then it receives the ack callable (or None
when the peer asked for no ack) and acks explicitly.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

log = logging.getLogger("socketwire.server")

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


_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Any) -> asyncio.Task[Any]:
    """Run a handler coroutine as a task that is kept alive until it finishes."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def run_async(
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
        log.exception("handler %s failed (%s)", getattr(fn, "__qualname__", fn), where)
        return
    if reply is not None:
        reply(result)


def call(
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
        spawn(run_async(fn, args, kwargs, reply, where))
        return
    try:
        result = fn(*args, **kwargs)
    except Exception:
        log.exception("handler %s failed (%s)", getattr(fn, "__qualname__", fn), where)
        return
    if inspect.isawaitable(result):
        call_awaitable(result, reply, where)
    elif reply is not None:
        reply(result)


def ack_reply(ack: Callable[..., None] | None) -> Callable[[Any], None] | None:
    """Turn an ack callable into a function of a handler's return value."""
    if ack is None:
        return None

    def reply(result: Any) -> None:
        ack(*ack_args(result))

    return reply


def call_awaitable(awaitable: Any, reply: Callable[[Any], None] | None, where: object) -> None:
    """Finish an awaitable that a sync handler returned, then ack with its result."""
    spawn(_await_then(awaitable, reply, where))


async def _await_then(awaitable: Any, reply: Callable[[Any], None] | None, where: object) -> None:
    try:
        result = await awaitable
    except Exception:
        log.exception("handler failed (%s)", where)
        return
    if reply is not None:
        reply(result)


_NO_LISTENERS: dict[str, list[Listener]] = {}


class Emitter:
    """Listener registry with ``on``/``once``/``off`` usable as decorators.

    The registry is created on first registration (most sockets never register
    a handler of their own), so reads see a shared empty mapping until then.
    """

    __slots__ = ("__weakref__", "_listeners")

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = _NO_LISTENERS

    def _own_listeners(self) -> dict[str, list[Listener]]:
        if self._listeners is _NO_LISTENERS:
            self._listeners = {}
        return self._listeners

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``event``; without a handler, a decorator."""
        if handler is None:

            def decorator(fn: Handler) -> Handler:
                self.on(event, fn)
                return fn

            return decorator
        self._own_listeners().setdefault(event, []).append(Listener(handler))
        return handler

    @overload
    def once(self, event: str, handler: F) -> F: ...

    @overload
    def once(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like ``on``, removed after its first call."""
        if handler is None:

            def decorator(fn: Handler) -> Handler:
                self.once(event, fn)
                return fn

            return decorator
        self._own_listeners().setdefault(event, []).append(Listener(handler, once=True))
        return handler

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one handler, every handler of an event, or every handler."""
        if event is None:
            self._listeners = _NO_LISTENERS
            return
        if handler is None:
            self._listeners.pop(event, None)
            return
        lst = self._listeners.get(event)
        if lst:
            lst[:] = [x for x in lst if x.fn is not handler]
            if not lst:
                del self._listeners[event]

    def listeners(self, event: str) -> list[Handler]:
        return [x.fn for x in self._listeners.get(event, ())]

    def _take(self, event: str) -> list[Listener] | None:
        """The listeners of ``event`` for one dispatch (removing ``once`` ones)."""
        lst = self._listeners.get(event)
        if not lst:
            return None
        if any(x.once for x in lst):
            keep = [x for x in lst if not x.once]
            if keep:
                self._listeners[event] = keep
            else:
                del self._listeners[event]
            return lst
        return lst

    def _emit_local(self, event: str, *args: Any, where: str = "") -> None:
        """Call every listener of a reserved event (connection, disconnect...)."""
        lst = self._take(event)
        if lst:
            for listener in list(lst):
                call(listener, args, None, None, where or event)
