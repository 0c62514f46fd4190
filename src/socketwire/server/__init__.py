"""The Socket.IO server (layer 2): Server, namespaces, sockets, broadcasts."""

__all__: list[str] = []
