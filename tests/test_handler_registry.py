"""Tests of the listener registry shared by the server and the client (socketwire.handlers).

An emitter that never registered a listener reads one shared, immutable empty
registry; these tests pin down that every way of writing (``on``, ``once``,
``off``, the removal of ``once`` listeners at dispatch) works on an emitter of
its own and never on the shared one.  Sync handlers only: they run at once.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from socketwire.handlers import Emitter, Runner


class Probe(Emitter):
    runner = Runner(logging.getLogger("tests.handlers"))


def test_fresh_emitters_share_one_immutable_empty_registry() -> None:
    a, b = Probe(), Probe()
    assert a._listeners is b._listeners
    assert not a._listeners
    with pytest.raises(TypeError):
        a._listeners["x"] = []  # type: ignore[index]
    # Reading and removing on a fresh emitter changes nothing anywhere.
    assert a.listeners("x") == []
    a.off("x")
    a.off("x", print)
    a.off()
    a._emit_local("x", 1)
    assert a._listeners is b._listeners and not b._listeners


def test_registering_gives_the_emitter_its_own_registry() -> None:
    a, b = Probe(), Probe()
    calls: list[Any] = []

    @a.on("x")
    def on_x(value: Any) -> None:
        calls.append(("on", value))

    a.once("x", lambda value: calls.append(("once", value)))
    assert a._listeners is not b._listeners
    assert not b._listeners and b.listeners("x") == []
    assert len(a.listeners("x")) == 2

    a._emit_local("x", 1)
    a._emit_local("x", 2)
    assert calls == [("on", 1), ("once", 1), ("on", 2)]
    assert a.listeners("x") == [on_x]


def test_off() -> None:
    a = Probe()
    a.on("x", print)
    a.on("x", repr)
    a.on("y", print)
    a.off("x", print)
    assert a.listeners("x") == [repr]
    a.off("x", repr)  # the last one: the event goes
    assert "x" not in a._listeners
    a.off("y")
    assert not a._listeners
    a.on("z", print)
    a.off()  # everything: back to the shared empty registry
    assert a._listeners is Probe()._listeners


def test_a_once_listener_alone_leaves_no_entry() -> None:
    a = Probe()
    seen: list[Any] = []
    a.once("x", seen.append)
    a._emit_local("x", 1)
    a._emit_local("x", 2)
    assert seen == [1]
    assert "x" not in a._listeners
