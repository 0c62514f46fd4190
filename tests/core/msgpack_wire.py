"""msgpack with chosen headers, for the tests of the notepack codec and the msgpack parser.

An encoder picks one header per value; notepack.io's meaning of an ext of type 0
depends on which header (fixext or ext 8/16/32) carried it, and map keys of any
type (or repeated keys) only come from peers.  :func:`wire` writes such bytes.
The hypothesis strategies below build values (``values``) and trees of such
pieces (``wire_values``) for both test modules.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime
from typing import Any

import msgpack  # type: ignore[import-untyped]
from hypothesis import strategies as st

from socketwire.errors import RemoteProtocolError


class Ext:
    """An ext value with a chosen header: "fix" (d4-d8), "8", "16" or "32"."""

    def __init__(self, code: int, payload: bytes, form: str = "8") -> None:
        self.code = code
        self.payload = payload
        self.form = form


class Map:
    """A msgpack map given as pairs (keys of any type, duplicates allowed)."""

    def __init__(self, *pairs: tuple[Any, Any]) -> None:
        self.pairs = pairs


class Raw:
    """Bytes written as they are."""

    def __init__(self, data: bytes) -> None:
        self.data = data


UNDEFINED = Ext(0, b"\x00", "fix")  # notepack's undefined


def date_ext(ms: int) -> Ext:
    """notepack.io 2's Date: fixext 8 of type 0, int64 milliseconds."""
    return Ext(0, ms.to_bytes(8, "big", signed=True), "fix")


def wire(obj: Any) -> bytes:
    """msgpack of obj, with Ext / Map / Raw pieces written as asked."""
    if isinstance(obj, Raw):
        return obj.data
    if isinstance(obj, Ext):
        n = len(obj.payload)
        code = struct.pack(">b", obj.code)
        if obj.form == "fix":
            head = bytes((0xD4 + {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}[n],))
        elif obj.form == "8":
            head = b"\xc7" + struct.pack(">B", n)
        elif obj.form == "16":
            head = b"\xc8" + struct.pack(">H", n)
        else:
            head = b"\xc9" + struct.pack(">I", n)
        return head + code + obj.payload
    if isinstance(obj, list):
        n = len(obj)
        head = (
            bytes((0x90 | n,))
            if n < 16
            else b"\xdc" + struct.pack(">H", n)
            if n < 65536
            else b"\xdd" + struct.pack(">I", n)
        )
        return head + b"".join(wire(item) for item in obj)
    if isinstance(obj, (Map, dict)):
        pairs = obj.pairs if isinstance(obj, Map) else tuple(obj.items())
        n = len(pairs)
        head = (
            bytes((0x80 | n,))
            if n < 16
            else b"\xde" + struct.pack(">H", n)
            if n < 65536
            else b"\xdf" + struct.pack(">I", n)
        )
        return head + b"".join(wire(k) + wire(v) for k, v in pairs)
    out: bytes = msgpack.packb(obj, use_bin_type=True)
    return out


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, and of the same types all the way down (bytes is not bytearray, 2 is not 2.0)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, list):
        assert len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), (actual, expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected


def outcome(fn: Any, data: bytes) -> Any:
    """What ``fn(data)`` returns, or the name of the protocol error it raises."""
    try:
        return fn(data)
    except RemoteProtocolError:
        return "RemoteProtocolError"


# -- strategies ----------------------------------------------------------------------------

# Datetimes a notepack.io 2 Date carries exactly (milliseconds, years 1-9999).
ms_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | ms_datetimes
)
keys = st.text(max_size=10)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)

# Trees of msgpack with exts in every header form, undefined, timestamps, odd keys.
ext_leaves = st.builds(
    Ext,
    st.sampled_from([0, 0, 0, -1, 1, 127, -128]),
    st.sampled_from([0, 1, 2, 3, 4, 8, 12, 16]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
    st.sampled_from(["fix", "8", "16", "32"]),
).filter(lambda e: e.form != "fix" or len(e.payload) in (1, 2, 4, 8, 16))
wire_leaves = scalars.filter(lambda v: not isinstance(v, datetime)) | ext_leaves
wire_keys = keys | st.sampled_from([1, b"k", None]) | ext_leaves
wire_values = st.recursive(
    wire_leaves,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(st.tuples(wire_keys, inner), max_size=4).map(lambda p: Map(*p))
    ),
    max_leaves=20,
)
