"""Disconnect reasons (socketwire.core.reasons): Node's exact strings, usable as strings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import orjson
import pytest

from socketwire.core.engineio.errors import EngineErrorCode
from socketwire.core.engineio.transport import Transport
from socketwire.core.reasons import DisconnectReason
from tests.source_tree import modules

NODE_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"
# Where Node says each reason: the built packages of the pinned npm peers.
NODE_SOURCES = (
    NODE_MODULES / "engine.io" / "build",
    NODE_MODULES / "engine.io-client" / "build" / "cjs",
    NODE_MODULES / "socket.io" / "dist",
    NODE_MODULES / "socket.io-client" / "build" / "cjs",
)
NOT_NODES = {DisconnectReason.SLOW_CONSUMER}


def node_text() -> str:
    return "\n".join(
        path.read_text() for folder in NODE_SOURCES for path in sorted(folder.rglob("*.js"))
    )


@pytest.mark.parametrize("reason", sorted(set(DisconnectReason) - NOT_NODES))
def test_every_reason_is_said_by_node(reason: DisconnectReason) -> None:
    text = node_text()
    assert f'"{reason.value}"' in text, f"{reason.value!r} is not one of Node's reasons"


def test_reasons_are_plain_strings() -> None:
    reason = DisconnectReason.TRANSPORT_CLOSE
    assert reason == "transport close"
    assert str(reason) == "transport close"
    assert f"{reason}" == "transport close"
    assert orjson.dumps(reason) == b'"transport close"'
    assert json.dumps(reason) == '"transport close"'
    assert DisconnectReason("ping timeout") is DisconnectReason.PING_TIMEOUT


def test_values_are_unique() -> None:
    assert len({r.value for r in DisconnectReason}) == len(DisconnectReason)


def test_transport_names_are_the_wire_names() -> None:
    assert [str(t) for t in Transport] == ["polling", "websocket"]
    assert orjson.dumps([Transport.WEBSOCKET]) == b'["websocket"]'


def test_engine_error_codes_are_nodes() -> None:
    # Node's engine.io Server.errors, with their messages, and our 503.
    assert {c.value: c.message for c in EngineErrorCode} == {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
        6: "Server busy",
    }
    text = node_text()
    for code in EngineErrorCode:
        if code is not EngineErrorCode.SERVER_BUSY:
            assert f'"{code.message}"' in text, code
    assert [c.status for c in EngineErrorCode] == [400, 400, 400, 400, 403, 400, 503]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        # Attribute docstrings (a string right after an assignment in a class).
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    found.add(id(stmt.value))
    return found


VOCABULARY = {str(r) for r in DisconnectReason} | {str(t) for t in Transport}
# Where the words are defined, and where "websocket" is HTTP's, not Engine.IO's:
# the Upgrade header (RFC 6455) and the ASGI scope type.
OWNERS = {
    "socketwire.core.reasons",
    "socketwire.core.engineio.transport",
    "socketwire.core.websocket.handshake",
    "socketwire.serve.connection",
    "socketwire.asgi.app",
    "socketwire.asgi.request",
    "socketwire.asgi.websocket",
}


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_literal_reasons_or_transport_names(name: str) -> None:
    """Reasons and transport names come from the enums, never from a literal."""
    if name in OWNERS:
        return
    tree = modules()[name].tree
    docs = _docstrings(tree)
    found = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in VOCABULARY
        and id(node) not in docs
    ]
    assert found == [], f"{name}: use DisconnectReason / Transport: {found}"
