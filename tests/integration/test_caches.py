"""Per-process pools and caches on the connect path: they must never leak between users."""

from __future__ import annotations

import os
import string
from collections import Counter

import pytest

from socketwire import ids
from socketwire.http.request import _QUERY_CACHE, _QUERY_CACHE_SIZE, parse_query, shared_query

URLSAFE = set(string.ascii_letters + string.digits + "-_")


def test_random_ids_cross_many_refills_without_repeating() -> None:
    drawn = [ids.random_id() for _ in range(ids._BATCH * 8 + 3)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(i) == 20 and set(i) <= URLSAFE for i in drawn)
    counts = Counter("".join(drawn))
    # 41,020 characters: each of the 64 appears about 641 times.
    assert set(counts) == URLSAFE
    assert min(counts.values()) > 450 and max(counts.values()) < 850, counts


def test_forked_child_draws_ids_its_parent_does_not() -> None:
    ids._pool.clear()
    ids.random_id()  # the parent now holds a pool of _BATCH - 1 ids
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            child = ",".join(ids.random_id() for _ in range(10))
            os.write(write_end, child.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        child_ids = f.read().decode().split(",")
    os.waitpid(pid, 0)
    parent_ids = [ids.random_id() for _ in range(ids._BATCH)]
    assert len(child_ids) == 10
    assert not set(child_ids) & set(parent_ids)


def test_parse_query_result_is_the_callers_own() -> None:
    raw = "EIO=4&transport=websocket&token=abc"
    first = parse_query(raw)
    first["token"] = "changed"
    del first["EIO"]
    second = parse_query(raw)
    assert second == {"EIO": "4", "transport": "websocket", "token": "abc"}
    assert second is not first


def test_parse_query_keeps_no_per_session_queries() -> None:
    _QUERY_CACHE.clear()
    parse_query("EIO=4&transport=polling&t=Pabc123")
    parse_query("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA")
    assert _QUERY_CACHE == {}
    parse_query("EIO=4&transport=websocket")
    assert list(_QUERY_CACHE) == ["EIO=4&transport=websocket"]


def test_parse_query_cache_stays_bounded() -> None:
    _QUERY_CACHE.clear()
    for i in range(_QUERY_CACHE_SIZE * 3 + 1):
        assert parse_query(f"EIO=4&transport=websocket&user={i}")["user"] == str(i)
        assert len(_QUERY_CACHE) <= _QUERY_CACHE_SIZE
    # Decoding still applies to what is cached.
    assert parse_query("a=%20b+c&d=e") == {"a": " b c", "d": "e"}
    assert parse_query("a=%20b+c&d=e") == {"a": " b c", "d": "e"}


def test_shared_query_is_one_read_only_mapping_per_query() -> None:
    _QUERY_CACHE.clear()
    raw = "EIO=4&transport=websocket&room=a"
    first = shared_query(raw)
    assert shared_query(raw) is first
    assert dict(first) == {"EIO": "4", "transport": "websocket", "room": "a"}
    with pytest.raises(TypeError):
        first["room"] = "b"  # type: ignore[index]
    # Copies are their own, and leave the shared parse as it was.
    mine = parse_query(raw)
    mine["room"] = "b"
    assert shared_query(raw)["room"] == "a"


def test_shared_query_of_a_session_request_is_not_kept() -> None:
    _QUERY_CACHE.clear()
    raw = "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA"
    assert shared_query(raw)["sid"] == "AAAAAAAAAAAAAAAAAAAA"
    assert shared_query(raw) is not shared_query(raw)
    assert _QUERY_CACHE == {}
    assert dict(shared_query("")) == {}
