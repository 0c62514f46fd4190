"""Durations are seconds: a warning for values that look like Node's milliseconds (layer 0).

socketwire counts every duration in seconds, as Python does (``asyncio.sleep``,
``socket.settimeout``); Node's socket.io counts milliseconds. Code ported from
Node keeps its numbers, ``socket.timeout(5000)``, and would wait 83 minutes
without a word. No acknowledgement, heartbeat or handshake wait is meant to
last an hour, so a duration above one is taken for milliseconds and warned
about, once per line of code (Python's warning filter), with the value meant.
"""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Final

__all__ = ["ONE_HOUR", "SecondsWarning", "check_seconds", "spell_duration"]

#: Seconds: durations above it are warned about.
ONE_HOUR: Final = 3600.0


# Warnings point at the first caller outside this package: the user's line.
_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    frame = inspect.currentframe()
    level = 0
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


class SecondsWarning(UserWarning):
    """A duration above an hour, probably written in milliseconds."""


def spell_duration(seconds: float) -> str:
    """``5000`` -> ``"1 h 23 min"``: how long a duration really is."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def check_seconds(value: float | None, spelled: str) -> None:
    """Warn (``SecondsWarning``) when ``value`` is above an hour.

    ``spelled`` shows the call or option with ``{}`` for the value, such as
    ``"timeout({})"`` or ``"ping_interval={}"``. The warning names the line
    of the first caller outside socketwire.
    """
    if value is None or not value > ONE_HOUR:
        return
    warnings.warn(
        f"{spelled.format(f'{value:g}')} waits {spell_duration(value)}: socketwire counts "
        f"seconds, not milliseconds as Node does (did you mean {spelled.format(f'{value / 1000:g}')}?)",
        SecondsWarning,
        stacklevel=_user_stacklevel(),
    )
