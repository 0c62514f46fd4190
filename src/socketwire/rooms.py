"""Room names as the public API takes them (layer 0).

A room is named by a string; a number is accepted too, as Node accepts
``socket.join(5)``, and names the room of its decimal string (``5`` and
``"5"`` are one room), which is also how a number arrives in a cluster
message from Node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["Room", "Rooms", "room_name", "room_names"]

Room: TypeAlias = str | int
"""One room: a string, or a number naming the room of its decimal string."""

Rooms: TypeAlias = str | int | Iterable[str | int]
"""One room or several."""


def room_name(room: object) -> str:
    """The name of ``room``; a TypeError that says what is accepted otherwise."""
    if type(room) is str:
        return room
    if isinstance(room, int) and not isinstance(room, bool):
        return str(int(room))
    if isinstance(room, str):  # a str subclass (an enum member): its value
        return str.__str__(room)
    raise TypeError(f"a room is a str or an int, got {type(room).__name__} {room!r}")


def room_names(rooms: object) -> frozenset[str]:
    """The names of ``rooms``: one room (str or int) or an iterable of them."""
    if type(rooms) is str:
        return frozenset((rooms,))
    if isinstance(rooms, (str, int)):
        return frozenset((room_name(rooms),))
    if not isinstance(rooms, Iterable):
        raise TypeError(
            f"rooms are a str, an int or an iterable of them, got {type(rooms).__name__} {rooms!r}"
        )
    return frozenset(room_name(room) for room in rooms)
