"""The servers' keyword options: their dict shapes, and unknown names refused (layer 1).

``EngineServer`` and ``Server`` take Node's options in snake_case. Their dict
options are typed here (``CorsOptions``, ``CookieOptions``,
``CompressionOptions``) so that mypy checks them, and a name neither server
knows is refused by :func:`reject_unknown` with the nearest valid one: Node's
camelCase (``pingInterval``) and typos (``ping_intervall``) both get "did you
mean ping_interval?", not a TypeError naming an internal class.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

__all__ = [
    "CompressionOptions",
    "CookieOptions",
    "CorsOptions",
    "reject_unknown",
    "snake_case",
]


class CorsOptions(TypedDict, total=False):
    """The ``cors`` option (see ``socketwire.engine.cors``)."""

    origin: (
        bool | str | re.Pattern[str] | Sequence[str | re.Pattern[str]] | Callable[[str | None], Any]
    )
    credentials: bool
    methods: str | Sequence[str] | None
    allowed_headers: str | Sequence[str] | None
    exposed_headers: str | Sequence[str] | None
    max_age: int | None


class CookieOptions(TypedDict, total=False):
    """The ``cookie`` option: the session cookie's attributes."""

    name: str
    path: str
    domain: str
    max_age: int
    http_only: bool
    secure: bool
    same_site: str


class CompressionOptions(TypedDict, total=False):
    """The ``http_compression`` option: bodies above ``threshold`` bytes are compressed."""

    threshold: int


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """``pingInterval`` -> ``ping_interval``."""
    return _CAMEL.sub(r"_\1", name).lower()


def reject_unknown(owner: str, given: Mapping[str, object], valid: Iterable[str]) -> None:
    """Raise ``TypeError`` for the first name of ``given`` (options that no
    parameter took), with the nearest valid name when one is close."""
    if not given:
        return
    known = sorted(valid)
    name = next(iter(given))
    snake = snake_case(name)
    if snake in known:
        nearest: str | None = snake
    else:
        close = difflib.get_close_matches(snake, known, n=1, cutoff=0.6)
        nearest = close[0] if close else None
    hint = f" (did you mean {nearest}?)" if nearest else f"; options: {', '.join(known)}"
    raise TypeError(f"{owner}() got an unknown option {name!r}{hint}")
