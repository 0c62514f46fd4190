"""Dynamic namespaces: a parent that creates child namespaces on demand (layer 2).

``sio.of(re.compile(r"^/room-\\d+$"))`` or ``sio.of(predicate)`` returns a
``ParentNamespace``. When a client connects to a name that no static namespace
has, each parent is asked in order; the first that accepts creates a child
namespace with that name. Children share the parent's middlewares and listeners
(connection handlers, ``fn(socket, *args)`` event handlers), and the parent's
``emit``/``to`` reach every child, as Node's ``ParentNamespace`` does.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from socketwire.adapters.base import Adapter, BroadcastOptions
from socketwire.adapters.ports import AckCollector
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.server.broadcast_operator import BroadcastOperator
from socketwire.server.namespace import Namespace

if TYPE_CHECKING:
    from socketwire.server.server import Server

Matcher = re.Pattern[str] | Callable[[str, dict[str, Any]], Any]


class _ParentAdapter(Adapter):
    """Routes a parent's broadcasts and socket operations to its children."""

    def __init__(self, nsp: ParentNamespace) -> None:
        super().__init__(nsp)
        self.parent = nsp

    def broadcast(self, message: OutgoingMessage, packet: Any, opts: BroadcastOptions) -> None:
        # Each child encodes for its own name (the namespace is part of the packet).
        for child in list(self.parent.children):
            BroadcastOperator(child, opts=opts).emit(*packet.data)

    def broadcast_with_ack(
        self,
        message: OutgoingMessage,
        packet: Any,
        opts: BroadcastOptions,
        collector: AckCollector,
    ) -> None:
        children = list(self.parent.children)
        collector.add_servers(len(children))
        for child in children:
            text, attachments = child.parser.encode_event(child.name, packet.data, packet.id)
            child.adapter.broadcast_with_ack(
                OutgoingMessage(text, attachments), packet, opts, collector
            )
        collector.expect(0)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for child in list(self.parent.children):
            out.extend(await child.adapter.fetch_sockets(opts))
        return out

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in list(self.parent.children):
            child.adapter.add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in list(self.parent.children):
            child.adapter.del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for child in list(self.parent.children):
            child.adapter.disconnect_sockets(opts, close)


class ParentNamespace(Namespace):
    """A namespace pattern whose children are created when clients connect."""

    def __init__(self, server: Server, matcher: Matcher) -> None:
        self.matcher = matcher
        self.children: set[Namespace] = set()
        super().__init__(server, f"/_{id(self):x}")
        self.adapter = _ParentAdapter(self)

    def __repr__(self) -> str:
        return f"<ParentNamespace {self.matcher!r} children={len(self.children)}>"

    async def matches(self, name: str, auth: dict[str, Any]) -> bool:
        """Whether a client may create (or join) the child ``name``."""
        m = self.matcher
        if isinstance(m, re.Pattern):
            return m.search(name) is not None
        result = m(name, auth)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    def create_child(self, name: str) -> Namespace:
        child = Namespace(self.server, name)
        # Shared, not copied: middlewares and handlers added to the parent later
        # apply to existing children too.
        child._middlewares = self._middlewares
        child._listeners = self._own_listeners()
        child.parent = self
        self.children.add(child)
        return child


__all__ = [
    "Matcher",
    "ParentNamespace",
]
