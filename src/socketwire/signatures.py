"""Handler signatures, checked when a handler is registered (layer 1).

A handler that cannot take the arguments it will be called with would otherwise
fail only when its event arrives, logged on the server while the client waits
out its acknowledgement timeout. Registration is the better moment: the mistake
is in the program, and the traceback points at the line that made it.

Each side says how it calls a handler (how many positional arguments, whether
an ``ack`` keyword is passed) and :func:`check_call` compares that with the
handler's parameters. A callable whose signature cannot be read (some builtins)
is accepted as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Arity", "arity", "check_call", "describe"]


@dataclass(frozen=True, slots=True)
class Arity:
    """What a callable accepts: ``required`` to ``most`` positional arguments
    (``most`` None: any number), and the keyword-only parameters it requires."""

    required: int
    most: int | None
    keyword_only: tuple[str, ...]

    def accepts(self, count: int) -> bool:
        """Whether ``count`` positional arguments can be passed."""
        return self.required <= count and (self.most is None or count <= self.most)


def arity(fn: Callable[..., Any]) -> Arity | None:
    """The positional parameters of ``fn`` (None when its signature cannot be read)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    required = 0
    most: int | None = 0
    keyword_only: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if most is not None:
                most += 1
            if p.default is p.empty:
                required += 1
        elif p.kind is p.VAR_POSITIONAL:
            most = None
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            keyword_only.append(p.name)
    return Arity(required, most, tuple(keyword_only))


def describe(fn: Callable[..., Any]) -> str:
    """``name(params)``, as the handler was written."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    try:
        return f"{name}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return str(name)


def check_call(
    fn: Callable[..., Any],
    what: str,
    call: str,
    counts: Sequence[int],
    *,
    ack: bool = False,
    hint: str = "",
) -> int | None:
    """Raise ``TypeError`` unless ``fn`` can be called with one of ``counts``
    positional arguments (and an ``ack`` keyword when ``ack``).

    ``what`` names the handler's role (``'handler of "chat" on namespace "/"'``),
    ``call`` the way it is called (``fn(socket, *args)``), ``hint`` the way to
    write it when it does not fit. Returns the largest count of ``counts`` that
    ``fn`` accepts, or None when its signature cannot be read.
    """
    a = arity(fn)
    if a is None:
        return None
    allowed = {"ack"} if ack else set()
    missing = [name for name in a.keyword_only if name not in allowed]
    fits = [n for n in counts if a.accepts(n)]
    if fits and not missing:
        return max(fits)
    why = (
        f"keyword-only parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
        "would never be given"
        if fits
        else f"it is called as {call}"
    )
    message = f"{describe(fn)} cannot be the {what}: {why}"
    raise TypeError(f"{message}. {hint}" if hint else message)
