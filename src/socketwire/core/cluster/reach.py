"""Which sockets a broadcast reaches, by their rooms (layer 0: sans-I/O).

The rule of Node's adapters (``shouldIncludePacket``): a broadcast to some rooms
but not to others reaches a socket in one of the rooms (any socket when there
are none) and in none of the exceptions. Connection state recovery applies it
to the broadcasts a session missed, whichever adapter kept them. Nothing here
needs an optional dependency: every server imports it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Set

__all__ = ["reaches"]


def reaches(rooms: Set[str], to: Collection[str], except_rooms: Iterable[str]) -> bool:
    """Whether a broadcast to ``to`` (every socket when empty) but not to
    ``except_rooms`` reaches a socket in ``rooms``."""
    return (not to or not rooms.isdisjoint(to)) and rooms.isdisjoint(except_rooms)
