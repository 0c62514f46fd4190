"""Tests of the notepack.io value codec (socketwire.core.notepack).

Values, not packets: what notepack.io writes and reads (``undefined``, ``Date``,
ArrayBuffers, msgpack timestamps), the reader's limits and the writer's
refusals.  Every reading is checked on both paths, the C path (``unpack``) and
the pure Python decoder it falls back to (``_unpack_exact``): they must agree on
any input.  The byte forms are those of notepack.io 2.2.0 and 3.0.1 (the npm
peers of tests/core/test_socketio_msgpack.py and test_cluster_redis_format.py).
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socketwire.core import notepack
from socketwire.core.notepack import INT_MAX, INT_MIN, pack, pack_timestamps, unpack
from socketwire.errors import LocalProtocolError, RemoteProtocolError
from tests.core.msgpack_wire import (
    UNDEFINED,
    Ext,
    Map,
    assert_same,
    date_ext,
    outcome,
    values,
    wire,
    wire_values,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read(data: bytes) -> Any:
    """``unpack(data)``, after checking the pure Python decoder reads the same."""
    value = unpack(data)
    assert_same(notepack._unpack_exact(data), value)
    return value


def refused(data: bytes, match: str | None = None) -> None:
    """Both decoders refuse ``data`` with a RemoteProtocolError matching ``match``."""
    with pytest.raises(RemoteProtocolError, match=match):
        unpack(data)
    with pytest.raises(RemoteProtocolError, match=match):
        notepack._unpack_exact(data)


# -- reading: the msgpack forms ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00", 0),
        (b"\x7f", 127),
        (b"\xff", -1),
        (b"\xe0", -32),
        (b"\xcc\x80", 128),
        (b"\xcd\x01\x00", 256),
        (b"\xce\x00\x01\x00\x00", 65536),
        (b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", INT_MAX),
        (b"\xd0\x80", -128),
        (b"\xd1\x80\x00", -32768),
        (b"\xd2\x80\x00\x00\x00", -(2**31)),
        (b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", INT_MIN),
        (b"\xca\x3f\xc0\x00\x00", 1.5),
        (b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 1.5),
        (b"\xc0", None),
        (b"\xc2", False),
        (b"\xc3", True),
        (b"\xa0", ""),
        (b"\xa2\xc3\xa9", "\u00e9"),
        (b"\xd9\x01a", "a"),
        (b"\xda\x00\x01a", "a"),
        (b"\xdb\x00\x00\x00\x01a", "a"),
        (b"\xc4\x01\x00", b"\x00"),
        (b"\xc5\x00\x01\x00", b"\x00"),
        (b"\xc6\x00\x00\x00\x01\x00", b"\x00"),
        (b"\x90", []),
        (b"\x92\x01\x02", [1, 2]),
        (b"\xdc\x00\x01\x01", [1]),
        (b"\xdd\x00\x00\x00\x01\x01", [1]),
        (b"\x80", {}),
        (b"\x81\xa1a\x01", {"a": 1}),
        (b"\xde\x00\x01\xa1a\x01", {"a": 1}),
        (b"\xdf\x00\x00\x00\x01\xa1a\x01", {"a": 1}),
        (b"\x82\xa1b\x90\xa1a\x80", {"b": [], "a": {}}),
    ],
)
def test_every_header(data: bytes, expected: Any) -> None:
    assert_same(read(data), expected)


def test_any_buffer_is_read() -> None:
    raw = wire(["x", b"\x01", {"k": 2}])
    for data in (bytearray(raw), memoryview(raw), memoryview(b"xx" + raw)[2:]):
        assert unpack(data) == ["x", b"\x01", {"k": 2}]  # type: ignore[arg-type]


# -- reading: notepack.io's exts -------------------------------------------------------------


def test_undefined() -> None:
    # undefined is absent from maps and None in arrays, as JSON.stringify would have it.
    assert_same(read(wire([UNDEFINED, 1, [UNDEFINED]])), [None, 1, [None]])
    assert_same(read(wire(Map(("a", UNDEFINED), ("b", 1)))), {"b": 1})
    assert_same(read(wire([Map(("a", [Map(("c", UNDEFINED))])), UNDEFINED])), [{"a": [{}]}, None])
    # a later undefined wins over an earlier value of the same key (as in JavaScript)
    assert_same(read(wire(Map(("a", 1), ("a", UNDEFINED)))), {})
    assert_same(read(wire(Map(("a", UNDEFINED), ("a", 2)))), {"a": 2})
    # notepack reads d4 00 <any byte> as undefined
    assert_same(read(wire([Ext(0, b"\x7f", "fix")])), [None])
    # undefined as the whole value is None, on every path: no sentinel gets out
    assert read(b"\xd4\x00\x00") is None
    assert read(b"\xd4\x00\x7f") is None


def test_dates() -> None:
    # notepack.io 2's Date: fixext 8 of type 0, int64 milliseconds since the epoch.
    assert_same(read(wire(date_ext(5))), EPOCH + timedelta(milliseconds=5))
    assert_same(read(wire([date_ext(-1)])), [EPOCH - timedelta(milliseconds=1)])
    moment = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert read(bytes.fromhex("d7000000018bcfe5687b")) == moment
    # JavaScript would make an Invalid Date of these; Python has no such value.
    for ms in (2**62, -(2**62)):
        refused(wire([date_ext(ms)]), "Date out of range")


def test_msgpack_timestamps() -> None:
    # ext -1 (notepack.io 3's Date, and any msgpack writer's): 32, 64 and 96 bits.
    for moment in (
        datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime(1900, 1, 1, tzinfo=UTC),
    ):
        data = msgpack.packb(msgpack.Timestamp.from_datetime(moment))
        assert_same(read(data), moment)
    for bad in (Ext(-1, b"\x00", "fix"), Ext(-1, b"abc", "8")):
        refused(wire(["x", bad]), "(?i)timestamp")


def test_array_buffers() -> None:
    # An ext 8/16/32 of type 0 is an ArrayBuffer, whatever its length.
    for form in ("8", "16", "32"):
        buffers = [bytes(range(n)) for n in (0, 1, 2, 3, 4, 8, 16, 200)]
        assert_same(read(wire([Ext(0, b, form) for b in buffers])), buffers)


def test_other_exts() -> None:
    # [type, data] for any type but 0, and for fixext 2/4/16 of type 0
    exts = [Ext(5, b"\x01", "fix"), Ext(-3, b"ab", "8"), Ext(127, bytes(16), "fix")]
    exts += [
        Ext(0, b"\x01\x02", "fix"),
        Ext(0, b"\x01\x02\x03\x04", "fix"),
        Ext(0, bytes(16), "fix"),
    ]
    expected = [[5, b"\x01"], [-3, b"ab"], [127, bytes(16)]]
    expected += [[0, b"\x01\x02"], [0, b"\x01\x02\x03\x04"], [0, bytes(16)]]
    assert_same(read(wire(exts)), expected)


def test_ambiguous_exts_resolved_by_the_header_patterns() -> None:
    # The C unpacker sees one ExtType for d4 00 00 and c7 01 00 ..: when only one
    # header pattern occurs in the message, it tells.
    assert_same(read(wire([UNDEFINED, date_ext(5)])), [None, EPOCH + timedelta(milliseconds=5)])
    assert_same(read(wire([Ext(0, b"\x09"), Ext(0, bytes(8), "16")])), [b"\x09", bytes(8)])
    # a length seen once is decided for the rest of the message
    assert_same(read(wire([UNDEFINED, UNDEFINED])), [None, None])
    assert_same(read(wire([Ext(0, b"\x01"), Ext(0, b"\x02")])), [b"\x01", b"\x02"])


def test_ambiguous_exts_with_both_patterns_take_the_exact_decoder() -> None:
    both = wire(["m", UNDEFINED, Ext(0, b"\x00"), date_ext(0), Ext(0, bytes(8))])
    assert_same(read(both), ["m", None, b"\x00", EPOCH, bytes(8)])
    # A pattern inside a bin is no header: the exact decoder is not fooled.
    assert_same(read(wire([UNDEFINED, b"\xc7\x01\x00\x00"])), [None, b"\xc7\x01\x00\x00"])
    assert_same(read(wire([b"\xd4\x00\x00", Ext(0, b"\x00")])), [b"\xd4\x00\x00", b"\x00"])
    assert_same(read(wire([b"\xd7\x00", Ext(0, bytes(8), "32")])), [b"\xd7\x00", bytes(8)])
    expected = EPOCH - timedelta(milliseconds=1)
    assert_same(read(wire([b"\xc7\x08\x00", date_ext(-1)])), [b"\xc7\x08\x00", expected])
    # undefined in maps and nested arrays on that path too
    data = wire([Map(("a", UNDEFINED), ("b", [UNDEFINED, Ext(0, b"\x09")])), b"\xd4\x00"])
    assert_same(read(data), [{"b": [None, b"\x09"]}, b"\xd4\x00"])


# -- reading: refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated|incomplete"),
        (b"\xc1", "invalid msgpack"),
        (b"\x92\x01", "truncated|incomplete"),
        (b"\x01\x02", "trailing"),
        (b"\x90\x90", "trailing"),
        (b"\xa1\xff", "UTF-8"),
        (b"\xd9\x01\xff", "UTF-8"),
        (b"\x81\xa2\xc3\x28\x01", "UTF-8"),
    ],
)
def test_malformed(data: bytes, match: str) -> None:
    refused(data, match)


def test_every_truncation_is_refused() -> None:
    samples: list[Any] = [
        ["s", "a" * 40, b"\x01" * 300, {"k": [1, 2**40, -(2**40), 1.5]}, list(range(20))],
        [UNDEFINED, date_ext(5), Ext(0, b"\x01"), Ext(0, bytes(8)), Ext(7, b"abc", "16")],
        Map(*((f"k{i}", i) for i in range(20))),
    ]
    for sample in samples:
        raw = wire(sample)
        read(raw)
        for end in range(len(raw)):
            refused(raw[:end])


@pytest.mark.parametrize(
    "key",
    [1, -1, None, True, 1.5, b"k", [1], Ext(0, b"k"), Ext(0, b"\x00", "fix"), Ext(3, b"k"), Map()],
    ids=lambda k: type(k).__name__,
)
def test_map_keys_must_be_strings(key: Any) -> None:
    # notepack.io would turn any key into a string; here they must be strings.
    for data in (
        wire(Map((key, 1))),
        wire(["x", Map(("a", 1), (key, 1))]),
        wire([Map(("a", [Map((key, UNDEFINED))]))]),
    ):
        refused(data, "key")


def innermost(value: Any, depth: int) -> Any:
    for _ in range(depth):
        assert type(value) is list and len(value) == 1
        value = value[0]
    return value


def test_nesting_limit() -> None:
    # At most 1024 nested containers, empty ones included (the C unpacker's limit).
    cases: list[tuple[bytes, Any]] = [
        (b"\x00", 0),
        (b"\xd4\x00\x00", None),
        (b"\x90", []),
        (b"\x80", {}),
    ]
    for leaf, expected in cases:
        depth = 1024 if leaf[0] < 0x80 or leaf[0] >= 0xC0 else 1023
        data = b"\x91" * depth + leaf
        for decoder in (unpack, notepack._unpack_exact):
            assert innermost(decoder(data), depth) == expected
        refused(b"\x91" + data, "deep")
    # deep undefined is dropped without recursion
    data = b"\x91" * 1020 + b"\x92\xd4\x00\x00\x01"
    for decoder in (unpack, notepack._unpack_exact):
        assert innermost(decoder(data), 1020) == [None, 1]


def test_huge_declared_lengths_are_refused_cheaply() -> None:
    for raw in (
        b"\xdd\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff",
        b"\xc9\xff\xff\xff\xff\x00",
    ):
        refused(raw)


# -- writing -------------------------------------------------------------------------------


def test_pack_writes_notepack_bytes() -> None:
    # The forms notepack.io writes: the smallest header that fits, bin for binary.
    value = {"a": [1, -1, 128, "x", b"\x01", None, True, 1.5]}
    assert pack(value) == bytes.fromhex("81a1619801ffcc80a178c40101c0c3cb3ff8000000000000")
    # notepack.io 2's Date (fixext 8 of type 0), and 3's msgpack timestamp
    moment = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert pack(moment) == bytes.fromhex("d7000000018bcfe5687b")
    assert pack_timestamps(moment) == msgpack.packb(
        msgpack.Timestamp.from_datetime(moment), datetime=True
    )
    # 32 bits when it fits, 64 bits with a fraction, 96 bits before 1970
    assert pack_timestamps(EPOCH + timedelta(seconds=1))[:2] == b"\xd6\xff"
    assert pack_timestamps(EPOCH + timedelta(milliseconds=1))[:2] == b"\xd7\xff"
    assert pack_timestamps(EPOCH - timedelta(seconds=1))[:3] == b"\xc7\x0c\xff"


def test_pack_accepts() -> None:
    class Color(enum.IntEnum):
        RED = 1

    data: Any = ("e", bytearray(b"\x01"), memoryview(b"\x02"), (1, 2), INT_MAX, INT_MIN, Color.RED)
    expected = ["e", b"\x01", b"\x02", [1, 2], INT_MAX, INT_MIN, 1]
    for packer in (pack, pack_timestamps):
        assert_same(read(packer(data)), expected)
    assert math.isnan(read(pack(math.nan)))
    # any timezone, written as the same instant; notepack.io 2 keeps milliseconds
    moment = datetime(2020, 1, 2, 3, 4, 5, 678999, tzinfo=timezone(timedelta(hours=2)))
    assert read(pack({"at": [moment]})) == {"at": [moment.replace(microsecond=678000)]}
    assert read(pack_timestamps({"at": (moment,)})) == {"at": [moment]}


class Unserialisable:
    pass


BAD_DATA = [
    pytest.param(2**64, id="int-too-big"),
    pytest.param(-(2**63) - 1, id="int-too-small"),
    pytest.param({1: "x"}, id="int-key"),
    pytest.param({b"k": "x"}, id="bytes-key"),
    pytest.param({(1,): "x"}, id="tuple-key"),
    pytest.param({None: "x"}, id="none-key"),
    pytest.param([{"a": {2: "x"}}], id="nested-int-key"),
    pytest.param({1, 2}, id="set"),
    pytest.param(Unserialisable(), id="object"),
    pytest.param("\ud800", id="surrogate"),
    pytest.param(datetime(2020, 1, 1), id="naive-datetime"),
    pytest.param(date(2020, 1, 1), id="date"),
    pytest.param(msgpack.ExtType(1, b"x"), id="ext"),
]


@pytest.mark.parametrize("value", BAD_DATA)
def test_pack_refuses(value: Any) -> None:
    for data in (value, ["e", value], {"k": [value]}):
        with pytest.raises(LocalProtocolError):
            pack(data)
        with pytest.raises(LocalProtocolError):
            pack_timestamps(data)


def test_pack_refuses_deep_and_cyclic_data() -> None:
    cyclic: list[Any] = ["e"]
    cyclic.append(cyclic)
    deep: list[Any] = ["e"]
    for _ in range(300):
        deep = [deep]
    for data in (cyclic, deep):
        with pytest.raises(LocalProtocolError):
            pack(data)
        with pytest.raises(LocalProtocolError):
            pack_timestamps(data)


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_round_trip(value: Any) -> None:
    assert_same(read(pack(value)), value)
    assert_same(read(pack_timestamps(value)), value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(wire_values)
def test_c_path_agrees_with_the_exact_decoder(value: Any) -> None:
    data = wire(value)
    got = outcome(unpack, data)
    exact = outcome(notepack._unpack_exact, data)
    if isinstance(exact, str):
        assert got == exact
    else:
        assert_same(got, exact)


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes(data: bytes) -> None:
    got = outcome(unpack, data)
    exact = outcome(notepack._unpack_exact, data)
    if isinstance(exact, str):
        assert got == exact
    else:
        assert_same(got, exact)
