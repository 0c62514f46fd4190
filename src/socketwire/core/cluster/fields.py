"""The fields both cluster formats carry, read and written alike (layer 0: sans-I/O).

The classic Redis format (``socketwire.core.cluster.redis_format``) and the
``ClusterAdapter`` format (``socketwire.core.cluster.message_format``) ship the
same pieces: rooms, the ``opts`` of a broadcast (``{rooms, except, flags}``),
its flags, an event's ``[name, *args]``, and messages that are JSON or msgpack
told apart by their first byte. The readers here check what a receiver relies
on and raise ``RemoteProtocolError`` for anything malformed; each format names
its own fields in the errors where they differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from socketwire.core.describe import describe
from socketwire.core.notepack import unpack
from socketwire.core.socketio.packet import RESERVED_EVENTS
from socketwire.errors import RemoteProtocolError

__all__ = [
    "Flags",
    "decode_event",
    "decode_flags",
    "decode_options",
    "decode_room",
    "decode_room_list",
    "decode_rooms",
    "encode_flags",
    "encode_options",
    "load_message",
]

_JSON_FIRST_BYTE: Final = 0x7B  # "{"


@dataclass(slots=True)
class Flags:
    """The ``flags`` a broadcast carries (``local`` never travels)."""

    volatile: bool = False
    compress: bool = True
    timeout: float | None = None  # seconds (milliseconds on the wire)


def decode_room(value: Any) -> str:
    """A room: a string, or a number (Node rooms may be numbers, ``socket.join(1)``;
    ours are strings, and the Node receivers match numeric room names both ways,
    so a number is its text)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if t is int:
        return str(value)
    if t is float and value.is_integer():
        return str(int(value))
    raise RemoteProtocolError(f"invalid room {describe(value)}")


def decode_rooms(value: Any, what: str) -> frozenset[str]:
    """A list of rooms named ``what`` in errors; absent, none (Node's ``new
    Set(undefined)`` is empty)."""
    if value is None:
        return frozenset()
    if type(value) is not list:
        raise RemoteProtocolError(f"invalid {what}: {describe(value)}")
    return frozenset(decode_room(r) for r in value)


def decode_room_list(value: Any) -> list[str]:
    """A list of rooms, in order (the rooms that sockets join or leave, or those
    of a server)."""
    if type(value) is not list:
        raise RemoteProtocolError(f"invalid rooms: {describe(value)}")
    return [decode_room(r) for r in value]


def decode_flags(value: Any, *, any_true_volatile: bool = False) -> Flags:
    """A broadcast's ``flags`` (absent: the defaults). ``volatile`` is set by
    ``true`` only, or with ``any_true_volatile`` by any truthy value."""
    if value is None:
        return Flags()
    if type(value) is not dict:
        raise RemoteProtocolError(f"invalid flags: {describe(value)}")
    timeout = value.get("timeout")
    if timeout is not None:
        if type(timeout) not in (int, float) or not timeout >= 0:
            raise RemoteProtocolError(f"invalid flags timeout: {describe(timeout)}")
        timeout = min(float(timeout), 2**31) / 1000.0
    volatile = value.get("volatile")
    return Flags(
        volatile=bool(volatile) if any_true_volatile else volatile is True,
        compress=value.get("compress") is not False,
        timeout=timeout,
    )


def decode_options(
    value: Any, *, any_true_volatile: bool = False
) -> tuple[frozenset[str], frozenset[str], Flags]:
    """The ``opts`` of a broadcast or a targeted request: ``(rooms, except_rooms,
    flags)``."""
    if type(value) is not dict:
        raise RemoteProtocolError(f"invalid opts: {describe(value)}")
    return (
        decode_rooms(value.get("rooms"), "rooms"),
        decode_rooms(value.get("except"), "except"),
        decode_flags(value.get("flags"), any_true_volatile=any_true_volatile),
    )


def decode_event(value: Any, what: str) -> list[Any]:
    """An event's ``[name, *args]`` (named ``what`` in errors): a name that is no
    reserved event."""
    if type(value) is not list or not value:
        raise RemoteProtocolError(f"invalid {what}: {describe(value)}")
    name = value[0]
    if type(name) is not str or name in RESERVED_EVENTS:
        raise RemoteProtocolError(f"invalid event name: {describe(name)}")
    return value


def encode_flags(volatile: bool, compress: bool, timeout: float | None) -> dict[str, Any]:
    """The ``flags`` of a broadcast: only those that differ from the defaults,
    ``timeout`` in milliseconds."""
    flags: dict[str, Any] = {}
    if volatile:
        flags["volatile"] = True
    if not compress:
        flags["compress"] = False
    if timeout is not None:
        ms = timeout * 1000.0
        flags["timeout"] = int(ms) if ms.is_integer() else ms
    return flags


def encode_options(
    rooms: Iterable[str],
    except_rooms: Iterable[str],
    *,
    volatile: bool = False,
    compress: bool = True,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The ``opts`` of a message: ``{rooms, except, flags}`` (timeout in ms)."""
    return {
        "rooms": list(rooms),
        "except": list(except_rooms),
        "flags": encode_flags(volatile, compress, timeout),
    }


def load_message(payload: bytes) -> Any:
    """A JSON or msgpack message, told apart by the first byte (``{`` is JSON)."""
    if not payload:
        raise RemoteProtocolError("empty message")
    if payload[0] == _JSON_FIRST_BYTE:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    return unpack(payload)
