"""Adapters (layer 1): route broadcasts and socket operations to local sockets and, in a cluster, to the other servers."""

__all__: list[str] = []
