"""Socket.IO v5 without I/O (layer 0): packets, the default and msgpack parsers."""

__all__: list[str] = []
