"""Which XOR unmasks WebSocket frames (socketwire.core.websocket.frames._compiled_xor).

The compiled ``socketwire._speedups`` when it was built, unless
``SOCKETWIRE_NO_SPEEDUPS`` is set; the pure-Python XOR otherwise.  The module
makes its choice once, at import: these tests ask the same question again under
each condition (the environment variable set, the compiled module missing).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from socketwire.core.websocket import frames

BUILT = importlib.util.find_spec("socketwire._speedups") is not None


def test_the_environment_variable_selects_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETWIRE_NO_SPEEDUPS", "1")
    assert frames._compiled_xor() is None


def test_without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKETWIRE_NO_SPEEDUPS", raising=False)
    # None in sys.modules makes the import raise ImportError, as when it was never built.
    monkeypatch.setitem(sys.modules, "socketwire._speedups", None)
    assert frames._compiled_xor() is None


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_with_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKETWIRE_NO_SPEEDUPS", raising=False)
    xor = frames._compiled_xor()
    assert xor is not None and xor.__module__ == "socketwire._speedups"
    assert xor(b"\x00\x00\x00\x00\xff", b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04\xfe"
