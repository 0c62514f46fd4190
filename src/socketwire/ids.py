"""Session and socket ids: 15 bytes from the operating system's CSPRNG, 20 URL-safe characters.

Ids are cut from one ``os.urandom`` read of many at a time, so a connection
costs no ``getrandom`` system call of its own.  15 bytes are five whole
base64 groups, so one encoding of the whole read splits into independent ids
at every 20th character, each as unpredictable as ``secrets.token_urlsafe(15)``.
"""

from __future__ import annotations

import base64
import os

_BATCH = 256
_WIDTH = 20  # characters per id: 15 bytes in base64, no padding

_pool: list[str] = []


def random_id() -> str:
    """A new 20-character id (the alphabet of ``secrets.token_urlsafe``)."""
    try:
        return _pool.pop()
    except IndexError:
        _refill()
        return _pool.pop()


def _refill() -> None:
    text = base64.urlsafe_b64encode(os.urandom(15 * _BATCH)).decode("ascii")
    _pool.extend([text[i : i + _WIDTH] for i in range(0, _WIDTH * _BATCH, _WIDTH)])


# A forked child must not hand out the ids its parent will also hand out.
os.register_at_fork(after_in_child=_pool.clear)

__all__ = ["random_id"]
