"""A disconnected socket's session as the Redis adapters store it (layer 0: sans-I/O).

Connection state recovery keeps, for each socket that disconnected for a
recoverable reason, its id, its private session id, its rooms and its data.
The Redis adapter (``socketwire.core.cluster.recovery_format``) and the Redis
Streams adapter (``socketwire.core.cluster.stream_format``) store the same
``StoredSession``, each in its own encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["StoredSession"]


@dataclass(slots=True)
class StoredSession:
    """A disconnected socket's session as stored in Redis."""

    sid: str
    pid: str
    rooms: list[str]
    data: Any
