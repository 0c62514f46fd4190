"""Bounded descriptions of remote data for error messages (layer 0: sans-I/O).

Every decoder of the core names the offending value when it refuses remote data.
The value comes from the peer: its size and nesting are the peer's choice, so it
is never formatted with a plain ``repr``.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["describe"]

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 40
_REPR.maxother = 40


def describe(value: Any, limit: int = 80) -> str:
    """A description of ``value`` of at most ``limit`` characters.

    ``reprlib`` stops at a fixed depth: the peer's nesting (up to the JSON or
    msgpack parser's limit) must never reach ``repr``'s recursion limit.
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
