"""The ``adapter`` option that the Redis adapters' ``create_*`` functions return (layer 1).

A server calls its ``adapter`` option once per namespace. The Redis adapters'
factories share one bus (one set of Redis connections) between the adapters of
all the namespaces of a server: ``adapter_factory`` makes such a factory, with
the bus as its ``bus`` attribute, and ``own_client`` gives the Redis client of
a ``create_*`` argument that may be a client or a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from socketwire.adapters.ports import NamespacePort

__all__ = ["adapter_factory", "own_client"]

A = TypeVar("A")
C = TypeVar("C")


def adapter_factory(
    make: Callable[[NamespacePort], A], bus: object
) -> Callable[[NamespacePort], A]:
    """The ``adapter`` option: ``make(nsp)`` for each namespace, all on ``bus``
    (the factory's ``bus`` attribute)."""

    def factory(nsp: NamespacePort) -> A:
        return make(nsp)

    factory.bus = bus  # type: ignore[attr-defined]
    return factory


def own_client(client: C | str, from_url: Callable[[str], C]) -> tuple[C, bool]:
    """``client``, or for a URL a client made by ``from_url`` that the bus owns
    (closes with itself); and whether it is owned."""
    if isinstance(client, str):
        return from_url(client), True
    return client, False
